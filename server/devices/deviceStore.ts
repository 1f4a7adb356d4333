// The device credentials table in the node's database (its own migration bookkeeping in
// device_migrations). Repository functions take the database first; times are unix ms.
import type { Kysely, Selectable } from "kysely";
import { Migrator, type Migration, type MigrationProvider } from "kysely/migration";
import * as createDeviceCredentials from "./migrations/2026_03_20_000000_create_device_credentials.js";

export interface DeviceCredentialsTable {
  device_id: string;
  device_type: string;
  region: string | null;
  password_hash: string;
  issued_at: bigint;
  issued_by: string;
  password_set_at: bigint;
  revoked_at: bigint | null;
  revoked_by: string | null;
}

export interface DevicesDatabase {
  device_credentials: DeviceCredentialsTable;
}

export type DeviceCredentialRow = Selectable<DeviceCredentialsTable>;

const migrations: Record<string, Migration> = { "2026_03_20_000000_create_device_credentials": createDeviceCredentials };
const provider: MigrationProvider = { getMigrations: async () => migrations };

export async function migrateDeviceStore(db: Kysely<DevicesDatabase>): Promise<void> {
  const migrator = new Migrator({ db, provider, migrationTableName: "device_migrations", migrationLockTableName: "device_migrations_lock" });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === "Error");
  if (error || failed) throw new Error(`device store: migration ${failed?.migrationName ?? ""} failed: ${(error as Error | undefined)?.message ?? "unknown error"}`, { cause: error });
}

export async function findDeviceCredential(db: Kysely<DevicesDatabase>, deviceId: string): Promise<DeviceCredentialRow | undefined> {
  return db.selectFrom("device_credentials").selectAll().where("device_id", "=", deviceId).executeTakeFirst();
}

export async function listDeviceCredentials(db: Kysely<DevicesDatabase>, { includeRevoked }: { includeRevoked: boolean }): Promise<DeviceCredentialRow[]> {
  let q = db.selectFrom("device_credentials").selectAll().orderBy("device_id");
  if (!includeRevoked) q = q.where("revoked_at", "is", null);
  return q.execute();
}

/**
 * Inserts a credential, or (reissueRevoked) issues a revoked one again with a new password,
 * type and region. "exists" when the id has a row it may not replace: the row is left as it is.
 */
export async function insertDeviceCredential(
  db: Kysely<DevicesDatabase>,
  row: Pick<DeviceCredentialsTable, "device_id" | "device_type" | "region" | "password_hash" | "issued_by">,
  nowMs: number,
  { reissueRevoked }: { reissueRevoked: boolean },
): Promise<"created" | "reissued" | "exists"> {
  const at = BigInt(nowMs);
  const inserted = await db
    .insertInto("device_credentials")
    .values({ ...row, issued_at: at, password_set_at: at, revoked_at: null, revoked_by: null })
    .onConflict((oc) => oc.column("device_id").doNothing())
    .returning("device_id")
    .executeTakeFirst();
  if (inserted) return "created";
  if (!reissueRevoked) return "exists";
  const reissued = await db
    .updateTable("device_credentials")
    .set({ device_type: row.device_type, region: row.region, password_hash: row.password_hash, issued_by: row.issued_by, issued_at: at, password_set_at: at, revoked_at: null, revoked_by: null })
    .where("device_id", "=", row.device_id)
    .where("revoked_at", "is not", null)
    .returning("device_id")
    .executeTakeFirst();
  return reissued ? "reissued" : "exists";
}

/** Replaces an active credential's password; false when there is no active credential for the id. */
export async function setDevicePassword(db: Kysely<DevicesDatabase>, deviceId: string, passwordHash: string, nowMs: number): Promise<boolean> {
  const updated = await db
    .updateTable("device_credentials")
    .set({ password_hash: passwordHash, password_set_at: BigInt(nowMs) })
    .where("device_id", "=", deviceId)
    .where("revoked_at", "is", null)
    .returning("device_id")
    .executeTakeFirst();
  return updated !== undefined;
}

/** Marks a credential revoked (once: a second revocation keeps the first time and revoker). */
export async function revokeDeviceCredential(db: Kysely<DevicesDatabase>, deviceId: string, revokedBy: string, nowMs: number): Promise<DeviceCredentialRow | undefined> {
  await db
    .updateTable("device_credentials")
    .set({ revoked_at: BigInt(nowMs), revoked_by: revokedBy })
    .where("device_id", "=", deviceId)
    .where("revoked_at", "is", null)
    .execute();
  return findDeviceCredential(db, deviceId);
}
