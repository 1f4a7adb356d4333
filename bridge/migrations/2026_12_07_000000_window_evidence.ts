// Evidence version 3: one document per delivery window (bridge_evidence), which each of the
// window's decisions names by its hash. Version-2 documents stay where they were, in
// bridge_decisions.evidence, which new rows leave null. Frozen: a later change is a new migration file.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("bridge_evidence")
    .addColumn("evidence_hash", "text", (c) => c.primaryKey())
    .addColumn("delivery_start", "int8", (c) => c.notNull())
    .addColumn("delivery_end", "int8", (c) => c.notNull())
    .addColumn("evidence", "text", (c) => c.notNull())
    .addColumn("created_at", "int8", (c) => c.notNull())
    .execute();
  await sql`alter table bridge_decisions alter column evidence drop not null`.execute(db);
  await db.schema.createIndex("bridge_decisions_evidence_idx").on("bridge_decisions").column("evidence_hash").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  // Version 2 kept a document per trade: the window's document stands in for each of its trades
  // (its hash no longer matches the report's, but nothing is lost).
  await sql`update bridge_decisions d set evidence = e.evidence from bridge_evidence e where d.evidence is null and d.evidence_hash = e.evidence_hash`.execute(db);
  await db.schema.dropIndex("bridge_decisions_evidence_idx").execute();
  await sql`alter table bridge_decisions alter column evidence set not null`.execute(db);
  await db.schema.dropTable("bridge_evidence").execute();
}
