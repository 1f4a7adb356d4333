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
