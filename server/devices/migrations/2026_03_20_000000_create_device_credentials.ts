// Device credentials: one row per device (its id is its MQTT username), the password only as
// Mosquitto's `$7$` PBKDF2-SHA512 hash. A revoked credential keeps its row (revoked_at set), so
// the node never re-creates it on its own (test accounts) and the audit trail stays. Frozen: a
// later change is a new migration file.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("device_credentials")
    .addColumn("device_id", "text", (c) => c.primaryKey())
    .addColumn("device_type", "text", (c) => c.notNull())
    // The one region its topics may name; null: any.
    .addColumn("region", "text")
    .addColumn("password_hash", "text", (c) => c.notNull())
    .addColumn("issued_at", "int8", (c) => c.notNull())
    // The operator's address, or "node" for credentials the node made itself (test accounts).
    .addColumn("issued_by", "text", (c) => c.notNull())
    .addColumn("password_set_at", "int8", (c) => c.notNull())
    .addColumn("revoked_at", "int8")
    .addColumn("revoked_by", "text")
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("device_credentials").execute();
}
