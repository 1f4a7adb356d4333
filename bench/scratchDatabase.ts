// A database of a run's own on the PostgreSQL server DATABASE_URL names: created for a bench or
// a soak (`--postgres`, `--database postgres`), dropped after it, so runs never share tables.
import { sql } from "kysely";
import { openDatabase } from "../lib/database.js";

export interface ScratchDatabase {
  /** DATABASE_URL with the new database's name. */
  url: string;
  /** Its size on the server (pg_database_size), in MB. */
  sizeMb(): Promise<number>;
  /** Drops it, ending any connection still open to it. */
  drop(): Promise<void>;
}

export class ScratchDatabaseError extends Error {
  override name = "ScratchDatabaseError";
}

/** Creates `<prefix>_<pid>_<time>` on DATABASE_URL's server; `who` names the command in errors. */
export async function createScratchDatabase(prefix: string, who: string): Promise<ScratchDatabase> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) throw new ScratchDatabaseError(`${who}: set DATABASE_URL to a PostgreSQL server (e.g. postgres://postgres@127.0.0.1:5432/test) to create its database in`);
  const name = `${prefix}_${process.pid}_${Date.now()}`;
  const admin = await openDatabase<unknown>({ url: serverUrl });
  await sql`create database ${sql.id(name)}`.execute(admin.db);
  const own = new URL(serverUrl);
  own.pathname = `/${name}`;
  return {
    url: own.toString(),
    async sizeMb() {
      const r = await sql<{ bytes: string | bigint }>`select pg_database_size(${name}) as bytes`.execute(admin.db);
      return Math.round((Number(r.rows[0]!.bytes) / (1024 * 1024)) * 100) / 100;
    },
    async drop() {
      await sql`drop database if exists ${sql.id(name)} with (force)`.execute(admin.db);
      await admin.close();
    },
  };
}
