// The key that signs each prosumer's meter readings (ProsumerRegistry.MeterSignerSet). Frozen:
// a later change is a new migration, and this file imports no application code.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  // Null while the meter has no key (never set, revoked, or cleared when the meter changed).
  await db.schema.alterTable("indexer_prosumers").addColumn("meter_signer", "text").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("indexer_prosumers").dropColumn("meter_signer").execute();
}
