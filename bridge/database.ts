// The bridge's tables (all prefixed bridge_) as kysely types, and opening + migrating them.
// Timestamps are unix milliseconds in int8 columns; energy is integer Wh in int8; trade and
// batch ids are uint256 in numeric(78,0). int8 and numeric read back as bigint (lib/database.ts).
import { sql, type Generated, type Kysely } from "kysely";
import { Migrator, type Migration, type MigrationProvider } from "kysely/migration";
import { openDatabase, type OpenedDatabase } from "../lib/database.js";
import * as createBridgeTables from "./migrations/2026_02_14_000000_create_bridge_tables.js";
import * as signedReadings from "./migrations/2026_03_15_000000_signed_readings.js";
import * as windowEvidence from "./migrations/2026_12_07_000000_window_evidence.js";
import * as evidenceByWindow from "./migrations/2026_12_08_000000_evidence_by_window.js";

export interface BridgeReadingsTable {
  meter_id: string;
  /** export | import | interval */
  metric: string;
  /** counter | power | interval */
  kind: string;
  /** The reading's time; for interval readings the interval's start. */
  reading_at: bigint;
  /** Wh for counters, W for power, null for interval readings. */
  value: bigint | null;
  export_wh: bigint | null;
  import_wh: bigint | null;
  payload_hash: string;
  payload: string;
  received_at: bigint;
  /** True for an energy reading whose signature verified under the meter's registered key. */
  evidence: Generated<boolean>;
  /** mqtt | api | device | operator_correction | legacy (stored before signatures). */
  source: Generated<string>;
  /** Why the operator corrected it; only for source operator_correction. */
  correction_reason: string | null;
  /** "evidence", or "<source>/<kind>": part of the key, so non-evidence never blocks evidence. */
  stream: Generated<string>;
}

export interface BridgeDeadLettersTable {
  id: Generated<bigint>;
  topic: string;
  reason: string;
  field: string;
  rule: string;
  payload: string;
  payload_encoding: string;
  received_at: bigint;
}

export interface BridgeDecisionsTable {
  trade_id: bigint;
  batch_id: bigint;
  seller: string;
  buyer: string;
  seller_meter: string | null;
  buyer_meter: string | null;
  delivery_start: bigint;
  delivery_end: bigint;
  contracted_wh: bigint;
  delivered_wh: bigint;
  allocation: string;
  /** measured | seller_data_missing | buyer_data_missing */
  basis: string;
  /**
   * Version-2 evidence (one document per trade), canonical JSON whose keccak256 is evidence_hash;
   * null since version 3, whose one document per window is in bridge_evidence under evidence_hash.
   */
  evidence: string | null;
  evidence_hash: string;
  decided_at: bigint;
}

/** A delivery window's evidence (version 3), shared by every decision of the window. */
export interface BridgeEvidenceTable {
  /** keccak256 of `evidence`'s bytes: what each of the window's reports carries on chain. */
  evidence_hash: string;
  delivery_start: bigint;
  delivery_end: bigint;
  /** Canonical JSON (bridge/evidence.ts). */
  evidence: string;
  created_at: bigint;
}

export interface BridgeOutboxTable {
  trade_id: bigint;
  /** The Trade struct as JSON (bigints as decimal strings) and its Merkle proof. */
  trade: string;
  proof: string;
  delivered_wh: bigint;
  evidence_hash: string;
  /** pending | in_flight | done | failed */
  state: string;
  attempts: number;
  next_attempt_at: bigint;
  last_error: string | null;
  /** The report transaction carrying this trade (bridge_report_txs). */
  tx_hash: string | null;
  /** confirmed | disputed | already_final | rejected */
  outcome: string | null;
  created_at: bigint;
  updated_at: bigint;
}

export interface BridgeReportTxsTable {
  tx_hash: string;
  nonce: bigint;
  /** The signed transaction, so the same bytes can be broadcast again after a crash. */
  raw: string;
  created_at: bigint;
}

export interface BridgeSlotUsageTable {
  meter_id: string;
  /** export | import */
  direction: string;
  slot_start: bigint;
  used_wh: bigint;
}

export interface BridgeCommandsTable {
  command_id: string;
  topic: string;
  device_id: string;
  command: string;
  /** sent | accepted | completed | rejected | unacknowledged */
  state: string;
  sent_at: bigint;
  ack_deadline: bigint;
  acked_at: bigint | null;
  ack: string | null;
}

export interface BridgeDatabase {
  bridge_readings: BridgeReadingsTable;
  bridge_dead_letters: BridgeDeadLettersTable;
  bridge_decisions: BridgeDecisionsTable;
  bridge_outbox: BridgeOutboxTable;
  bridge_report_txs: BridgeReportTxsTable;
  bridge_slot_usage: BridgeSlotUsageTable;
  bridge_evidence: BridgeEvidenceTable;
  bridge_commands: BridgeCommandsTable;
}

/**
 * Which of a meter's readings for one metric and instant an operational view (grid balance,
 * forecasts) takes, lowest first, where several streams hold one: an operator's correction, then
 * the meter's signed reading, then unsigned ones. Delivery settles on evidence alone, never on this.
 */
export const readingPreferenceSql = sql<number>`(case when source = 'operator_correction' then 0 when evidence then 1 else 2 end)`;

const migrations: Record<string, Migration> = {
  "2026_02_14_000000_create_bridge_tables": createBridgeTables,
  "2026_03_15_000000_signed_readings": signedReadings,
  "2026_12_07_000000_window_evidence": windowEvidence,
  "2026_12_08_000000_evidence_by_window": evidenceByWindow,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Brings the bridge's tables up to date; the bookkeeping lives in bridge_migrations. */
export async function migrateBridgeDatabase(db: Kysely<BridgeDatabase>): Promise<void> {
  // Named explicitly, as the indexer does: kysely otherwise looks for its bookkeeping tables in
  // every schema, finds another schema's (a concurrent test's) and then fails to read its own.
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  const migrator = new Migrator({
    db,
    provider,
    migrationTableSchema: rows[0]!.schema,
    migrationTableName: "bridge_migrations",
    migrationLockTableName: "bridge_migrations_lock",
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === "Error");
  if (error || failed) {
    throw new Error(`bridge database migration ${failed?.migrationName ?? ""} failed: ${(error as Error | undefined)?.message ?? "unknown error"}`, { cause: error });
  }
}

export async function openBridgeDatabase(options: { url?: string; dataDir?: string }): Promise<OpenedDatabase<BridgeDatabase>> {
  const opened = await openDatabase<BridgeDatabase>(options);
  try {
    await migrateBridgeDatabase(opened.db);
  } catch (err) {
    await opened.close();
    throw err;
  }
  return opened;
}
