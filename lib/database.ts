// One way to open the database for every part: PostgreSQL through `pg` when a URL is given,
// otherwise embedded PGlite (Postgres in WASM) in a data folder, or in memory for tests.
// Both read numeric and int8 columns back as bigint, so uint256 amounts stay exact.
import { PGlite } from "@electric-sql/pglite";
import { Kysely, PGliteDialect, PostgresDialect } from "kysely";
import pg from "pg";
import { bigintParsers, INT8_OID, NUMERIC_OID, parseNumeric } from "./bigintParsers.js";
import { pgliteThreadDialect } from "./pgliteThread.js";

export interface DatabaseOptions {
  /** postgres:// URL of a real server (DATABASE_URL); wins over `dataDir`. */
  url?: string;
  /** PGlite data folder; "memory://" (the default) keeps nothing on disk. */
  dataDir?: string;
  /**
   * PGlite on a thread of its own (lib/pgliteThread.ts) rather than the caller's: the node's,
   * whose requests would otherwise wait behind every statement. Components opened for a test or
   * a script keep it in their thread (no thread to start).
   */
  ownThread?: boolean;
}

export interface OpenedDatabase<DB> {
  db: Kysely<DB>;
  kind: "postgres" | "pglite";
  /**
   * The same database through a connection of its own (PostgreSQL), closed with it: for the
   * writes every request waits for (the engine's operation log), which must not queue for one of
   * the pool's connections behind archive, indexer and bridge transactions. PGlite has one
   * connection: `db`.
   */
  dedicated(): Promise<Kysely<DB>>;
  close(): Promise<void>;
}

export async function openDatabase<DB>(options: DatabaseOptions = {}): Promise<OpenedDatabase<DB>> {
  if (options.url) {
    const url = options.url;
    const main = await openPool<DB>(url, 10);
    const dedicated: { close(): Promise<void> }[] = [];
    return {
      db: main.db,
      kind: "postgres",
      dedicated: async () => {
        const one = await openPool<DB>(url, 1);
        dedicated.push(one);
        return one.db;
      },
      close: async () => {
        for (const d of dedicated.splice(0)) await d.close();
        await main.close();
      },
    };
  }
  if (options.ownThread) {
    const db = new Kysely<DB>({ dialect: pgliteThreadDialect(options.dataDir ?? "memory://") });
    // Opened now, so a data folder that cannot be read fails here rather than at the first query.
    await db.selectNoFrom((eb) => eb.val(1).as("one")).execute();
    return { db, kind: "pglite", dedicated: async () => db, close: () => db.destroy() };
  }
  const pglite = await PGlite.create(options.dataDir ?? "memory://", { parsers: bigintParsers });
  const db = new Kysely<DB>({ dialect: new PGliteDialect({ pglite }) });
  return { db, kind: "pglite", dedicated: async () => db, close: () => db.destroy() };
}

/** A pool of at most `max` connections to the server `url` names, numeric and int8 read as bigint. */
async function openPool<DB>(url: string, max: number): Promise<{ db: Kysely<DB>; close(): Promise<void> }> {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === NUMERIC_OID || oid === INT8_OID ? parseNumeric : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
    },
  });
  // An idle connection the server ends (a restart, an administrator, a database dropped while
  // the pool closes) is an 'error' on the pool; without a listener that event would end the
  // process. The pool opens a new connection at the next query, so a warning is enough, and
  // nothing at all once this side is closing.
  let closing = false;
  pool.on("error", (err) => {
    if (!closing) process.emitWarning(`database: an idle connection to ${redact(url)} failed: ${err.message}`);
  });
  // Fail at start-up, with the URL's host named, rather than at the first query.
  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end();
    throw new Error(`database: cannot connect to ${redact(url)}: ${(err as Error).message}`, { cause: err });
  }
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    close: () => {
      closing = true;
      return db.destroy();
    },
  };
}

/** A database URL with its password hidden, for messages and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "<unparseable DATABASE_URL>";
  }
}
