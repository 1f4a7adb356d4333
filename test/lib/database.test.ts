// The same queries on embedded PGlite and, when DATABASE_URL is set, on a real PostgreSQL.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { sql } from "kysely";
import { openDatabase } from "../../lib/database.js";

const targets: { name: string; url?: string; ownThread?: boolean }[] = [{ name: "PGlite (embedded)" }, { name: "PGlite on its own thread (the node's)", ownThread: true }];
if (process.env.DATABASE_URL) targets.push({ name: "PostgreSQL (DATABASE_URL)", url: process.env.DATABASE_URL });

for (const target of targets) {
  describe(`openDatabase on ${target.name}`, () => {
    it("stores and reads back uint256-sized numeric(78,0) values as exact bigint", async () => {
      const { db, close } = await openDatabase<{ t_amounts: { id: number; amount: bigint; n8: bigint } }>({ url: target.url, ownThread: target.ownThread });
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

describe("openDatabase(...).dedicated(): the operation log's connection", function () {
  this.timeout(30_000);
  it("on PGlite is the one connection there is: the same Kysely", async () => {
    const opened = await openDatabase();
    try {
      const dedicated = await opened.dedicated();
      expect(dedicated).to.equal(opened.db);
      expect((await sql<{ one: number }>`select 1 as one`.execute(dedicated)).rows).to.deep.equal([{ one: 1 }]);
    } finally {
      await opened.close();
    }
  });

  (process.env.DATABASE_URL ? it : it.skip)("on PostgreSQL answers while every connection of the pool is busy (DATABASE_URL)", async () => {
    const opened = await openDatabase({ url: process.env.DATABASE_URL });
    try {
      const dedicated = await opened.dedicated();
      const finished: string[] = [];
      // The pool's ten connections each held 1.5 s, and an eleventh statement queued behind them.
      const busy = Array.from({ length: 11 }, (_, i) => sql`select pg_sleep(1.5)`.execute(opened.db).then(() => finished.push(`pool ${i}`)));
      await new Promise((resolve) => setTimeout(resolve, 100));
      await sql`select 1`.execute(dedicated).then(() => finished.push("dedicated"));
      await Promise.all(busy);
      // Before any of them: it never waited for one of the pool's connections.
      expect(finished[0]).to.equal("dedicated");
      expect(finished).to.have.length(12);
    } finally {
      // Closes the dedicated pool too.
      await opened.close();
    }
  });
});

describe("PGlite on its own thread", function () {
  this.timeout(60_000);
  /** How many times a 5 ms timer of the caller's thread fired while `work` ran. */
  async function ticksDuring(work: () => Promise<unknown>): Promise<number> {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      await work();
    } finally {
      clearInterval(timer);
    }
    return ticks;
  }
  const heavy = sql<{ n: bigint }>`select count(*) as n from generate_series(1, 3000000) g where g % 7 = 0`;

  it("keeps the caller's thread free while a statement runs (in the caller's thread it holds it)", async () => {
    const inThread = await openDatabase({});
    const ownThread = await openDatabase({ ownThread: true });
    try {
      let here = 0n;
      const ticksHere = await ticksDuring(async () => (here = (await heavy.execute(inThread.db)).rows[0]!.n));
      let there = 0n;
      const ticksThere = await ticksDuring(async () => (there = (await heavy.execute(ownThread.db)).rows[0]!.n));
      expect([here, there]).to.deep.equal([428_571n, 428_571n]);
      // The same statement: the caller's timers keep running only while it runs elsewhere.
      expect(ticksThere).to.be.greaterThan(10 * Math.max(ticksHere, 1));
    } finally {
      await Promise.all([inThread.close(), ownThread.close()]);
    }
  });

  it("answers errors with Postgres's fields, rolls a failed transaction back, and commits a good one", async () => {
    const { db, close } = await openDatabase<{ t: { id: bigint } }>({ ownThread: true });
    try {
      await sql`create table t (id int8 primary key)`.execute(db);
      await db.insertInto("t").values({ id: 1n }).execute();
      const duplicate = await db.insertInto("t").values({ id: 1n }).execute().catch((err: unknown) => err);
      expect(duplicate).to.be.an("error").and.to.include({ name: "DatabaseError", code: "23505", constraint: "t_pkey" });
      const failed = await db.transaction().execute(async (trx) => {
        await trx.insertInto("t").values({ id: 2n }).execute();
        throw new Error("changed my mind");
      }).catch((err: unknown) => (err as Error).message);
      expect(failed).to.equal("changed my mind");
      await db.transaction().execute((trx) => trx.insertInto("t").values({ id: 3n }).execute());
      expect((await db.selectFrom("t").select("id").orderBy("id").execute()).map((r) => r.id)).to.deep.equal([1n, 3n]);
    } finally {
      await close();
    }
    // Closed: later statements fail instead of hanging.
    const late = await db.selectFrom("t").select("id").execute().catch((err: unknown) => err);
    expect(late).to.be.an("error");
  });

  it("keeps what it wrote in its data folder across a close and a reopen", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "pglite-thread-"));
    try {
      const first = await openDatabase<{ kept: { v: string } }>({ dataDir: dir, ownThread: true });
      await sql`create table kept (v text)`.execute(first.db);
      await first.db.insertInto("kept").values({ v: "still here" }).execute();
      await first.close();
      const second = await openDatabase<{ kept: { v: string } }>({ dataDir: dir, ownThread: true });
      expect(await second.db.selectFrom("kept").select("v").execute()).to.deep.equal([{ v: "still here" }]);
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

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
