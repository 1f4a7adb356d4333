// Brings the indexer's tables up to date. Migrations are listed here rather than read from the
// folder at run time, so a bundled or transpiled build finds them too. Their bookkeeping tables
// are the indexer's own, apart from the engine's and the bridge's in the same database.
import { sql, type Kysely } from "kysely";
import { Migrator, type Migration, type MigrationProvider } from "kysely/migration";
import * as initial from "./migrations/20260301000000_initial.js";
import * as meterSigner from "./migrations/20260315000000_meter_signer.js";
import * as tradeDeadlines from "./migrations/20261207000000_trade_deadlines.js";

const migrations: Record<string, Migration> = {
  "20260301000000_initial": initial,
  "20260315000000_meter_signer": meterSigner,
  "20261207000000_trade_deadlines": tradeDeadlines,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

export async function migrateIndexerDatabase(db: Kysely<any>): Promise<void> {
  // Named explicitly: kysely otherwise looks for its bookkeeping tables in every schema, and
  // finds another schema's (a second indexer's, a test's) instead of creating its own.
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  const migrator = new Migrator({
    db,
    provider,
    migrationTableSchema: rows[0]!.schema,
    migrationTableName: "indexer_migrations",
    migrationLockTableName: "indexer_migrations_lock",
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new Error(`indexer: migration ${failed} failed: ${(error as Error).message}`, { cause: error });
  }
}
