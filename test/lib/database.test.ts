// The same queries on embedded PGlite and, when DATABASE_URL is set, on a real PostgreSQL.
import { expect } from "chai";
import { sql } from "kysely";
import { openDatabase } from "../../lib/database.js";

const targets: { name: string; url?: string }[] = [{ name: "PGlite (embedded)" }];
if (process.env.DATABASE_URL) targets.push({ name: "PostgreSQL (DATABASE_URL)", url: process.env.DATABASE_URL });

for (const target of targets) {
  describe(`openDatabase on ${target.name}`, () => {
    it("stores and reads back uint256-sized numeric(78,0) values as exact bigint", async () => {
      const { db, close } = await openDatabase<{ t_amounts: { id: number; amount: bigint; n8: bigint } }>({ url: target.url });
      try {
        const table = `t_amounts_${process.pid}_${Date.now()}`;
        await sql`create temporary table ${sql.table(table)} (id int primary key, amount numeric(78,0) not null, n8 int8 not null)`.execute(db);
        const max = 2n ** 256n - 1n;
        await sql`insert into ${sql.table(table)} values (1, ${max.toString()}, ${(2n ** 62n).toString()}), (2, 0, -5)`.execute(db);
        const rows = await sql<{ id: number; amount: bigint; n8: bigint }>`select * from ${sql.table(table)} order by id`.execute(db);
        expect(rows.rows).to.deep.equal([
          { id: 1, amount: max, n8: 2n ** 62n },
          { id: 2, amount: 0n, n8: -5n },
        ]);
      } finally {
        await close();
      }
    });
  });
}

describe("openDatabase errors", () => {
  it("names the server it cannot reach, without the password", async () => {
    let message = "";
    try {
      await openDatabase({ url: "postgres://user:secret@127.0.0.1:1/none" });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).to.match(/cannot connect to postgres:\/\/user:\*\*\*@127\.0\.0\.1:1\/none/);
    expect(message).not.to.contain("secret");
  });
});

if (process.env.DATABASE_URL) {
  const url = process.env.DATABASE_URL;
  describe("openDatabase on PostgreSQL: a connection the server ends", () => {
    it("is a warning, not an uncaught error, and the next query opens a new connection", async () => {
      const opened = await openDatabase<unknown>({ url });
      const other = await openDatabase<unknown>({ url });
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(w.message);
      process.on("warning", onWarning);
      try {
        const first = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(opened.db);
        const pid = first.rows[0]!.pid;
        // The pool's only connection is idle now; the server ends it, as a restart or an administrator would.
        await sql`select pg_terminate_backend(${pid})`.execute(other.db);
        for (let i = 0; i < 50 && warnings.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
        expect(warnings.some((m) => /^database: an idle connection to .* failed: terminating connection/.test(m))).to.equal(true);
        const again = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(opened.db);
        expect(again.rows[0]!.pid).to.not.equal(pid);
      } finally {
        process.off("warning", onWarning);
        await opened.close();
        await other.close();
      }
    });
  });
}
