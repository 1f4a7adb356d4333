// The retention pruner against real migrations on in-memory PGlite and, when DATABASE_URL is set,
// on PostgreSQL (a database of its own per test), with the clock pinned: rows
// past their retention in a final state go, everything else stays, row by row. Covered: readings
// an undecided delivery still needs, non-final batches / outbox / keeper rows however old,
// tables auditors keep (indexer, decisions, engine log), batching and the per-run cap, a
// database without some parts, and the timer.
import assert from "node:assert/strict";
import { sql, type Insertable, type Kysely } from "kysely";
import { pino } from "pino";
import { migrateBridgeDatabase, type BridgeDatabase, type BridgeReadingsTable } from "../../bridge/database.js";
import { migrateEngineStore, type EngineDatabase } from "../../engine/store/engineStore.js";
import type { IndexerDatabase, TradeTable } from "../../indexer/store/schema.js";
import { migrateIndexerDatabase } from "../../indexer/store/migrate.js";
import { openDatabase, type OpenedDatabase } from "../../lib/database.js";
import { NodeConfigError } from "../../server/config.js";
import { migrateKeeperDatabase, type KeeperActionsTable, type KeeperDatabase } from "../../server/keeper/database.js";
import { pruneOnce } from "../../server/retention/pruneStores.js";
import { defaultRetentionPolicy, readRetentionPolicy, type RetentionPolicy } from "../../server/retention/retentionPolicy.js";
import { startRetention } from "../../server/retention/startRetention.js";
import { migrateVppStore, type VppDatabase } from "../../server/vpp/vppStore.js";

type TestDatabase = BridgeDatabase & IndexerDatabase & KeeperDatabase & EngineDatabase & VppDatabase;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** The pinned clock: 2027-01-20 12:00 UTC. */
const NOW = Date.UTC(2027, 0, 20, 12);
const ago = (ms: number) => BigInt(NOW - ms);
const CHAIN = 31337;
const policy = defaultRetentionPolicy;

const targets: { name: string; url?: string }[] = [{ name: "PGlite" }];
if (process.env.DATABASE_URL) targets.push({ name: "PostgreSQL", url: process.env.DATABASE_URL });
let databaseCounter = 0;

/** An empty database: PGlite in memory, or a new database on the server, dropped at close. */
async function openEmpty(url: string | undefined): Promise<OpenedDatabase<TestDatabase>> {
  if (!url) return openDatabase<TestDatabase>({});
  const name = `retention_test_${process.pid}_${databaseCounter++}`;
  const admin = await openDatabase<unknown>({ url });
  await sql`create database ${sql.id(name)}`.execute(admin.db);
  await admin.close();
  const own = new URL(url);
  own.pathname = `/${name}`;
  const opened = await openDatabase<TestDatabase>({ url: own.toString() });
  return {
    ...opened,
    async close() {
      await opened.close();
      const cleanup = await openDatabase<unknown>({ url });
      await sql`drop database if exists ${sql.id(name)} with (force)`.execute(cleanup.db);
      await cleanup.close();
    },
  };
}

async function openMigrated(parts: { indexer?: boolean; engine?: boolean; keeper?: boolean; vpp?: boolean } = {}, url?: string): Promise<OpenedDatabase<TestDatabase>> {
  const opened = await openEmpty(url);
  // Each part migrates its own tables; migrations work on Kysely<any>, as the files they run do.
  const db: Kysely<any> = opened.db;
  if (parts.indexer ?? true) await migrateIndexerDatabase(db);
  await migrateBridgeDatabase(db);
  if (parts.engine ?? true) await migrateEngineStore(db);
  if (parts.keeper ?? true) await migrateKeeperDatabase(db);
  if (parts.vpp ?? true) await migrateVppStore(db);
  return opened;
}

// ---------------------------------------------------------------- rows

function reading(meterId: string, atMs: bigint, kind: "counter" | "power" = "counter"): Insertable<BridgeReadingsTable> {
  return {
    meter_id: meterId, metric: "export", kind, reading_at: atMs, value: 1_000n, export_wh: null, import_wh: null,
    payload_hash: `h-${meterId}-${atMs}`, payload: "{}", received_at: atMs, evidence: kind !== "power", source: "mqtt",
    correction_reason: null, stream: kind === "power" ? "mqtt/power" : "evidence",
  };
}

function trade(tradeId: bigint, deliveryStartMs: number, chainStatus: TradeTable["chain_status"], over: Partial<Insertable<TradeTable>> = {}): Insertable<TradeTable> {
  const start = BigInt(Math.floor(deliveryStartMs / 1000));
  return {
    chain_id: CHAIN, trade_id: tradeId, batch_id: 1n, listing_id: null, seller: "0xs", buyer: "0xb", zone: "ZONE-A", energy_wh: 1_000n,
    price_per_kwh: 200_000n, amount: 200_000n, delivery_start: start, delivery_end: start + 3_600n, source: 0, community_fee_bps: 0,
    network_fee_per_kwh: 0n, status: chainStatus === "open" ? "executed" : chainStatus === "refunded" ? "refunded" : "settled", chain_status: chainStatus,
    delivered_wh: null, within_tolerance: null, evidence_hash: null, delivered_tx: null, delivered_at: null, dispute_opened_by: null,
    dispute_reason_hash: null, proposed_seller_amount: null, dispute_deadline: null, disputed_tx: null, disputed_at: null, dispute_resolved_by: null,
    resolved_seller_amount: null, resolved_buyer_amount: null, resolved_tx: null, released_early: false, seller_payout: null, buyer_refund: null,
    community_fee: null, network_fee: null, final_tx: null, final_at: null, executed_block: 1n, executed_block_hash: "0xblock", executed_tx: "0xtx",
    executed_log_index: 0, executed_at: start, last_event_seq: 1n, ...over,
  };
}

async function decide(db: Kysely<TestDatabase>, tradeId: bigint, deliveryStartMs: number): Promise<void> {
  const start = BigInt(Math.floor(deliveryStartMs / 1000));
  await db.insertInto("bridge_decisions").values({
    trade_id: tradeId, batch_id: 1n, seller: "0xs", buyer: "0xb", seller_meter: "m1", buyer_meter: "m2", delivery_start: start, delivery_end: start + 3_600n,
    contracted_wh: 1_000n, delivered_wh: 1_000n, allocation: "pro_rata", basis: "measured", evidence: "{}", evidence_hash: "0xe", decided_at: start * 1000n,
  }).execute();
}

async function checkpoint(db: Kysely<TestDatabase>, blockTimeMs: number): Promise<void> {
  await db.insertInto("indexer_checkpoints").values({ chain_id: CHAIN, block_number: 100n, block_hash: "0xblock", block_timestamp: BigInt(Math.floor(blockTimeMs / 1000)) }).execute();
}

function keeperAction(tradeId: bigint, state: KeeperActionsTable["state"], updatedAt: bigint, txHash: string | null = null): Insertable<KeeperActionsTable> {
  return {
    chain_id: CHAIN, trade_id: tradeId, action: "reclaim", reason: "confirmation_deadline", buyer: "0xb", seller: "0xs", trade: "{}", proof: "[]",
    due_at: 0n, indexed_seq: 1n, state, outcome: state === "done" ? "closed" : state === "failed" ? "rejected" : null, attempts: 1,
    next_attempt_at: updatedAt, last_error: null, tx_hash: txHash, closed_block: null, closed_at: null, created_at: updatedAt, updated_at: updatedAt,
  };
}

const column = async <T>(db: Kysely<TestDatabase>, query: string): Promise<T[]> =>
  (await sql<{ v: T }>`${sql.raw(query)}`.execute(db)).rows.map((r) => r.v);
const count = async (db: Kysely<TestDatabase>, table: string): Promise<number> =>
  Number((await sql<{ n: bigint }>`select count(*)::int8 as n from ${sql.table(table)}`.execute(db)).rows[0]!.n);

// ---------------------------------------------------------------- settings

describe("retention: settings", () => {
  it("reads RETENTION_* with their defaults", () => {
    assert.deepEqual(readRetentionPolicy({}), {
      enabled: true, intervalMs: 60_000, readingsDays: 56, powerSamplesDays: 7, deadLettersDays: 7, sentTxHours: 24, doneActionsDays: 7,
    });
    assert.deepEqual(readRetentionPolicy({
      RETENTION_ENABLED: "0", RETENTION_INTERVAL_MS: "5000", RETENTION_READINGS_DAYS: "7", RETENTION_POWER_SAMPLES_DAYS: "2",
      RETENTION_DEAD_LETTERS_DAYS: "3", RETENTION_SENT_TX_HOURS: "6", RETENTION_DONE_ACTIONS_DAYS: "30",
    }), { enabled: false, intervalMs: 5_000, readingsDays: 7, powerSamplesDays: 2, deadLettersDays: 3, sentTxHours: 6, doneActionsDays: 30 });
  });

  it("refuses a bad value, naming the variable and the rule", () => {
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ RETENTION_ENABLED: "yes" }, "RETENTION_ENABLED", /must be 1 \(on\) or 0 \(off\)/],
      [{ RETENTION_READINGS_DAYS: "3" }, "RETENTION_READINGS_DAYS", /from 7 to 3650 \(a demand forecast needs a week of readings\)/],
      [{ RETENTION_DEAD_LETTERS_DAYS: "1.5" }, "RETENTION_DEAD_LETTERS_DAYS", /whole number from 1 to 3650/],
      [{ RETENTION_SENT_TX_HOURS: "0" }, "RETENTION_SENT_TX_HOURS", /whole number from 1 to 87600/],
      [{ RETENTION_DONE_ACTIONS_DAYS: "-1" }, "RETENTION_DONE_ACTIONS_DAYS", /whole number/],
      [{ RETENTION_INTERVAL_MS: "10" }, "RETENTION_INTERVAL_MS", /from 1000 to 86400000/],
      [{ RETENTION_POWER_SAMPLES_DAYS: "a week" }, "RETENTION_POWER_SAMPLES_DAYS", /whole number/],
    ];
    for (const [env, setting, rule] of cases) {
      assert.throws(() => readRetentionPolicy(env), (err: unknown) => {
        assert.ok(err instanceof NodeConfigError, setting);
        assert.equal(err.setting, setting);
        assert.match(err.message, rule);
        return true;
      });
    }
  });
});

// ---------------------------------------------------------------- what goes, what stays

for (const target of targets) describe(`retention: pruneOnce on every part's tables (${target.name})`, function () {
  this.timeout(60_000);
  let opened: OpenedDatabase<TestDatabase>;
  let db: Kysely<TestDatabase>;

  beforeEach(async () => {
    opened = await openMigrated({}, target.url);
    db = opened.db;
    await checkpoint(db, NOW - 60_000);
  });
  afterEach(async () => opened.close());

  it("deletes final rows past their retention and keeps every other row", async () => {
    // Readings of decided windows: energy for 56 days (from a UTC midnight), power samples for 7.
    await db.insertInto("bridge_readings").values([
      reading("m1", ago(60 * DAY)), reading("m1", ago(56 * DAY + 6 * HOUR)), reading("m1", ago(50 * DAY)),
      reading("m2", ago(57 * DAY)), reading("m1", ago(8 * DAY), "power"), reading("m1", ago(6 * DAY), "power"),
      // Stored before streams: power and energy in one stream, told apart by kind.
      { ...reading("m3", ago(8 * DAY), "power"), stream: "legacy", source: "legacy" }, { ...reading("m3", ago(9 * DAY)), stream: "legacy", source: "legacy", evidence: false },
    ]).execute();
    await db.insertInto("indexer_trades").values([trade(1n, NOW - 60 * DAY, "settled"), trade(2n, NOW - 58 * DAY, "refunded")]).execute();
    await decide(db, 1n, NOW - 60 * DAY);
    // Trade 2 was never decided but is refunded: no report can change it, it holds nothing back.
    await db.insertInto("bridge_slot_usage").values([
      { meter_id: "m1", direction: "export", slot_start: ago(8 * DAY), used_wh: 10n },
      { meter_id: "m1", direction: "export", slot_start: ago(6 * DAY), used_wh: 10n },
      { meter_id: "m2", direction: "import", slot_start: ago(9 * DAY), used_wh: 10n },
    ]).execute();
    await db.insertInto("bridge_dead_letters").values([9, 8, 6].map((d) => ({
      topic: `t${d}`, reason: "bad", field: "f", rule: "r", payload: "x", payload_encoding: "utf8", received_at: ago(d * DAY),
    }))).execute();

    const outbox = (tradeId: bigint, state: string, updatedAt: bigint, txHash: string | null) => ({
      trade_id: tradeId, trade: "{}", proof: "[]", delivered_wh: 1n, evidence_hash: "0xe", state, attempts: 1, next_attempt_at: updatedAt - 1_000n,
      last_error: null, tx_hash: txHash, outcome: state === "done" ? "confirmed" : state === "failed" ? "rejected" : null, created_at: updatedAt, updated_at: updatedAt,
    });
    await db.insertInto("bridge_outbox").values([
      outbox(10n, "done", ago(2 * DAY), "0xa"), outbox(11n, "done", ago(2 * DAY), "0xa"), outbox(12n, "done", ago(12 * HOUR), "0xc"),
      outbox(13n, "pending", ago(30 * DAY), "0xd"), outbox(14n, "in_flight", ago(30 * DAY), "0xb"), outbox(15n, "done", ago(30 * DAY), "0xb"),
      outbox(16n, "failed", ago(3 * DAY), null), outbox(17n, "failed", ago(8 * DAY), null),
    ]).execute();
    await db.insertInto("bridge_report_txs").values([
      { tx_hash: "0xa", nonce: 1n, raw: "0x01", created_at: ago(2 * DAY) }, // all its rows done: goes
      { tx_hash: "0xb", nonce: 2n, raw: "0x02", created_at: ago(30 * DAY) }, // one row still in flight: stays
      { tx_hash: "0xc", nonce: 3n, raw: "0x03", created_at: ago(12 * HOUR) }, // younger than a day: stays
      { tx_hash: "0xd", nonce: 4n, raw: "0x04", created_at: ago(30 * DAY) }, // a pending row names it: stays
      { tx_hash: "0xe", nonce: 5n, raw: "0x05", created_at: ago(3 * DAY) }, // replaced, nobody names it: goes
    ]).execute();

    const batch = (id: bigint, status: "sent" | "done", createdAgo: number) => ({
      id, fill_ids: "[1]", nonce: id, tx_hash: `0x${id}`, raw_tx: "0x", status, created_at: new Date(NOW - createdAgo),
    });
    await db.insertInto("engine_batches").values([
      // 2 is not on chain yet, three days after its 24 hours: start-up must still find it. 4 is the
      // newest: the next batch id is counted from it.
      batch(1n, "done", 3 * DAY), batch(2n, "sent", 3 * DAY), batch(3n, "done", 2 * DAY), batch(4n, "done", 2 * DAY),
    ]).execute();
    await db.insertInto("engine_ops").values({ seq: 1n, kind: "order", payload: "{}", created_at: new Date(NOW - 400 * DAY) }).execute();

    // Keeper: trade 20 final on chain, 21 still open (the planner reads its row), 22 pending, 23 failed recently.
    await db.insertInto("indexer_trades").values([trade(20n, NOW - 20 * DAY, "refunded"), trade(21n, NOW - 20 * DAY, "open")]).execute();
    await decide(db, 21n, NOW - 20 * DAY);
    await db.insertInto("keeper_actions").values([
      keeperAction(20n, "done", ago(8 * DAY), "0xk1"), keeperAction(21n, "done", ago(8 * DAY), "0xk1"),
      keeperAction(22n, "pending", ago(30 * DAY), "0xk3"), keeperAction(23n, "failed", ago(6 * DAY)), keeperAction(24n, "in_flight", ago(30 * DAY), "0xk2"),
    ]).execute();
    await db.insertInto("keeper_txs").values(["0xk1", "0xk2", "0xk3", "0xk4"].map((h, i) => ({
      tx_hash: h, chain_id: CHAIN, sender: "0xkeeper", nonce: BigInt(i), raw: "0x", created_at: h === "0xk4" ? ago(12 * HOUR) : ago(2 * DAY),
    }))).execute();

    // Device commands; c-latest belongs to a VPP's latest apply, whose state GET shows.
    const command = (id: string, state: string, sentAgo: number) => ({
      command_id: id, topic: "t", device_id: "d", command: "{}", state, sent_at: ago(sentAgo), ack_deadline: ago(sentAgo - 60_000), acked_at: null, ack: null,
    });
    await db.insertInto("bridge_commands").values([
      command("c-completed", "completed", 8 * DAY), command("c-expired", "unacknowledged", 8 * DAY), command("c-sent", "sent", 8 * DAY),
      command("c-accepted", "accepted", 6 * DAY), command("c-old-apply", "completed", 9 * DAY), command("c-latest", "completed", 8 * DAY),
    ]).execute();
    await sql`insert into vpp_plants (id, name, zone, created_at, updated_at) values ('vpp1', 'V', 'ZONE-A', 0, 0)`.execute(db);
    await sql`insert into vpp_runs (id, vpp_id, status, request, resources, result, created_at) values (1, 'vpp1', 'done', '{}', '[]', '{}', 0)`.execute(db);
    await sql`insert into vpp_applies (id, vpp_id, run_id, applied_at) values (1, 'vpp1', 1, 0), (2, 'vpp1', 1, 1)`.execute(db);
    await sql`insert into vpp_commands (apply_id, position, vpp_id, resource_id, resource_type, outcome, command_id)
      values (1, 0, 'vpp1', 'r1', 'battery', 'sent', 'c-old-apply'), (2, 0, 'vpp1', 'r1', 'battery', 'sent', 'c-latest')`.execute(db);

    const auditorsBefore = await Promise.all(["indexer_trades", "indexer_checkpoints", "bridge_decisions", "engine_ops"].map((t) => count(db, t)));

    const result = await pruneOnce({ db, now: NOW, policy });

    assert.deepEqual(result.deleted, {
      bridge_readings: 4, bridge_slot_usage: 2, bridge_dead_letters: 2, bridge_outbox: 4, bridge_report_txs: 2, bridge_commands: 3,
      engine_batches: 2, keeper_actions: 1, keeper_txs: 1,
    });
    assert.deepEqual(result.notMigrated, []);

    assert.deepEqual(await column(db, "select (meter_id || '@' || ((reading_at - " + NOW + ") / 3600000)::text) as v from bridge_readings order by reading_at"), [
      "m1@-1350", // 56 days and 6 hours: kept, the cut is at the UTC midnight before 56 days ago
      "m1@-1200", "m3@-216", "m1@-144",
    ]);
    assert.deepEqual(await column(db, `select ((slot_start - ${NOW}) / 86400000)::int4 as v from bridge_slot_usage`), [-6]);
    assert.deepEqual(await column(db, "select topic as v from bridge_dead_letters order by id"), ["t6"]);
    assert.deepEqual(await column(db, "select trade_id::int4 as v from bridge_outbox order by trade_id"), [12, 13, 14, 16]);
    assert.deepEqual(await column(db, "select tx_hash as v from bridge_report_txs order by tx_hash"), ["0xb", "0xc", "0xd"]);
    assert.deepEqual(await column(db, "select id::int4 as v from engine_batches order by id"), [2, 4]);
    assert.deepEqual(await column(db, "select trade_id::int4 as v from keeper_actions order by trade_id"), [21, 22, 23, 24]);
    assert.deepEqual(await column(db, "select tx_hash as v from keeper_txs order by tx_hash"), ["0xk2", "0xk3", "0xk4"]);
    assert.deepEqual(await column(db, "select command_id as v from bridge_commands order by command_id"), ["c-accepted", "c-latest", "c-sent"]);
    // The auditor's tables, the decisions and the engine's log are never touched.
    assert.deepEqual(await Promise.all(["indexer_trades", "indexer_checkpoints", "bridge_decisions", "engine_ops"].map((t) => count(db, t))), auditorsBefore);

    // A second run finds nothing more.
    const again = await pruneOnce({ db, now: NOW, policy });
    assert.equal(Object.values(again.deleted).reduce((a, n) => a + n, 0), 0);
  });

  it("keeps the readings and credited energy an undecided delivery window still needs, until it is decided", async () => {
    // Trade 5 (window starting 69 days ago) is still open on chain and not decided: its window's
    // readings and the register reading up to a day before its start stay, older ones go.
    await db.insertInto("indexer_trades").values([
      trade(5n, NOW - 69 * DAY, "open"),
      // Contested before any report: a report is still taken, so it holds too (but starts later).
      trade(6n, NOW - 65 * DAY, "contested"),
      // Contested after a report: nothing left to decide.
      trade(7n, NOW - 90 * DAY, "contested", { delivered_tx: "0xr" }),
    ]).execute();
    await db.insertInto("bridge_readings").values([
      reading("m1", ago(80 * DAY)), reading("m1", ago(69 * DAY + 12 * HOUR)), reading("m2", ago(60 * DAY)), reading("m2", ago(10 * DAY)),
      reading("m1", ago(80 * DAY), "power"),
    ]).execute();
    await db.insertInto("bridge_slot_usage").values([
      { meter_id: "m1", direction: "export", slot_start: ago(71 * DAY), used_wh: 1n },
      { meter_id: "m1", direction: "export", slot_start: ago(69 * DAY), used_wh: 1n },
      { meter_id: "m1", direction: "export", slot_start: ago(30 * DAY), used_wh: 1n },
    ]).execute();
    const left = () => column<number>(db, `select ((reading_at - ${NOW}) / ${HOUR})::int4 as v from bridge_readings order by reading_at, kind`);
    const slotsLeft = () => column<number>(db, `select ((slot_start - ${NOW}) / ${DAY})::int4 as v from bridge_slot_usage order by slot_start`);

    const held = await pruneOnce({ db, now: NOW, policy });
    assert.equal(held.deleted.bridge_readings, 2, "the 80-day-old energy reading and power sample");
    assert.deepEqual(await left(), [-(69 * 24 + 12), -60 * 24, -10 * 24]);
    assert.equal(held.deleted.bridge_slot_usage, 1);
    assert.deepEqual(await slotsLeft(), [-69, -30]);

    // Decided: trade 6 now holds from a day before its start, 65 days ago.
    await decide(db, 5n, NOW - 69 * DAY);
    const after5 = await pruneOnce({ db, now: NOW, policy });
    assert.deepEqual(await left(), [-60 * 24, -10 * 24]);
    assert.deepEqual(await slotsLeft(), [-30]);
    assert.deepEqual([after5.deleted.bridge_readings, after5.deleted.bridge_slot_usage], [1, 1]);

    // Trade 6 reclaimed by its buyer: no report can change it; the 56-day retention applies.
    await db.updateTable("indexer_trades").set({ chain_status: "refunded", status: "refunded" }).where("trade_id", "=", 6n).execute();
    await pruneOnce({ db, now: NOW, policy });
    assert.deepEqual(await left(), [-10 * 24]);
    assert.deepEqual(await slotsLeft(), [], "credited energy goes after RETENTION_DONE_ACTIONS_DAYS");
  });

  it("never cuts energy readings past what the indexer has seen: trades it has not indexed may still need them", async () => {
    await db.deleteFrom("indexer_checkpoints").execute();
    await checkpoint(db, NOW - 65 * DAY); // the indexer is 65 days behind
    await db.insertInto("bridge_readings").values([reading("m1", ago(70 * DAY)), reading("m1", ago(60 * DAY)), reading("m1", ago(8 * DAY), "power")]).execute();
    const result = await pruneOnce({ db, now: NOW, policy });
    assert.equal(result.deleted.bridge_readings, 2, "the reading from 70 days ago and the power sample");
    assert.deepEqual(await column(db, `select ((reading_at - ${NOW}) / ${DAY})::int4 as v from bridge_readings`), [-60]);

    // Nothing indexed at all: no energy reading goes (power samples still do).
    await db.deleteFrom("indexer_checkpoints").execute();
    await db.insertInto("bridge_readings").values([reading("m1", ago(9 * DAY), "power")]).execute();
    const blind = await pruneOnce({ db, now: NOW + 30 * DAY, policy });
    assert.equal(blind.deleted.bridge_readings, 1);
    assert.deepEqual(await column(db, `select ((reading_at - ${NOW}) / ${DAY})::int4 as v from bridge_readings`), [-60]);
  });

  it("never cuts energy readings past a settlement batch still in flight: its fills become trades later", async () => {
    await db.insertInto("engine_batches").values([
      { id: 1n, fill_ids: "[1]", nonce: 1n, tx_hash: "0x1", raw_tx: "0x", status: "sent", created_at: new Date(NOW - 62 * DAY) },
      { id: 2n, fill_ids: "[2]", nonce: 2n, tx_hash: "0x2", raw_tx: "0x", status: "done", created_at: new Date(NOW - 90 * DAY) },
    ]).execute();
    await db.insertInto("bridge_readings").values([reading("m1", ago(64 * DAY)), reading("m1", ago(62 * DAY + 12 * HOUR)), reading("m1", ago(60 * DAY))]).execute();
    const result = await pruneOnce({ db, now: NOW, policy });
    assert.equal(result.deleted.bridge_readings, 1);
    assert.deepEqual(await column(db, `select ((reading_at - ${NOW}) / ${HOUR})::int4 as v from bridge_readings order by reading_at`), [-(62 * 24 + 12), -60 * 24]);
  });

  it("deletes in statements of batchSize rows and stops at the per-run cap", async () => {
    await db.insertInto("bridge_dead_letters").values(Array.from({ length: 7 }, (_, i) => ({
      topic: `t${i}`, reason: "bad", field: "f", rule: "r", payload: "x", payload_encoding: "utf8", received_at: ago(10 * DAY + i),
    }))).execute();
    await db.insertInto("bridge_readings").values(Array.from({ length: 5 }, (_, i) => reading(`m${i % 2}`, ago(10 * DAY + i), "power"))).execute();
    const first = await pruneOnce({ db, now: NOW, policy, batchSize: 2, maxBatchesPerTable: 3 });
    assert.equal(first.deleted.bridge_dead_letters, 6, "three statements of two");
    assert.equal(first.deleted.bridge_readings, 5, "two, two, then one: done");
    assert.equal(await count(db, "bridge_dead_letters"), 1);
    const second = await pruneOnce({ db, now: NOW, policy, batchSize: 2, maxBatchesPerTable: 3 });
    assert.equal(second.deleted.bridge_dead_letters, 1);
    assert.equal(await count(db, "bridge_dead_letters"), 0);
  });
});

for (const target of targets) describe(`retention: a database without some parts (${target.name})`, function () {
  this.timeout(60_000);

  it("skips the tables of parts not migrated here, without error", async () => {
    const opened = await openMigrated({ indexer: false, engine: false, keeper: false, vpp: false }, target.url);
    try {
      const db = opened.db;
      await db.insertInto("bridge_readings").values([reading("m1", ago(80 * DAY)), reading("m1", ago(8 * DAY), "power")]).execute();
      await db.insertInto("bridge_dead_letters").values({ topic: "t", reason: "bad", field: "f", rule: "r", payload: "x", payload_encoding: "utf8", received_at: ago(8 * DAY) }).execute();
      const result = await pruneOnce({ db, now: NOW, policy });
      assert.deepEqual(result.notMigrated, ["engine_batches", "keeper_actions", "keeper_txs"]);
      assert.equal(result.deleted.bridge_dead_letters, 1);
      // Without the indexer nobody can tell which deliveries are undecided: energy readings stay.
      assert.equal(result.deleted.bridge_readings, 1, "only the power sample");
      assert.equal(await count(db, "bridge_readings"), 1);
    } finally {
      await opened.close();
    }
  });
});

// ---------------------------------------------------------------- the timer

describe("retention: startRetention", function () {
  this.timeout(60_000);
  let opened: OpenedDatabase<TestDatabase>;

  const capture = () => {
    const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    return { lines, logger };
  };
  const deadLetter = (receivedAt: bigint) => ({ topic: "t", reason: "bad", field: "f", rule: "r", payload: "x", payload_encoding: "utf8", received_at: receivedAt });
  const until = async (check: () => boolean | Promise<boolean>, what: string) => {
    for (let i = 0; i < 200; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.fail(`timed out waiting for ${what}`);
  };

  beforeEach(async () => {
    opened = await openMigrated({ engine: false, keeper: false, vpp: false });
  });
  afterEach(async () => opened.close().catch(() => undefined));

  it("prunes on each tick with the injected clock, logs what it deleted, and one run at a time", async () => {
    const { lines, logger } = capture();
    let now = NOW;
    const fast: RetentionPolicy = { ...policy, intervalMs: 20 };
    await opened.db.insertInto("bridge_dead_letters").values([deadLetter(ago(8 * DAY)), deadLetter(ago(6 * DAY))]).execute();
    const retention = startRetention({ db: opened.db, policy: fast, clock: () => now, logger });
    try {
      await until(async () => (await count(opened.db, "bridge_dead_letters")) === 1, "the first tick");
      // Two days later by the injected clock, the other dead letter is past its week too.
      now = NOW + 2 * DAY;
      await until(async () => (await count(opened.db, "bridge_dead_letters")) === 0, "the tick after the clock moved");
      const pruned = lines.filter((l) => l.msg === "retention: pruned rows past their retention");
      assert.equal(pruned.length, 2, "one line per run that deleted something, none for empty runs");
      assert.deepEqual(pruned.map((l) => [l.level, l.rows, l.tables]), [[30, 1, { bridge_dead_letters: 1 }], [30, 1, { bridge_dead_letters: 1 }]]);

      // runNow joins a run under way instead of starting a second.
      const a = retention.runNow();
      const b = retention.runNow();
      assert.equal(a, b);
      assert.deepEqual((await a).notMigrated, ["engine_batches", "keeper_actions", "keeper_txs"]);
    } finally {
      await retention.stop();
    }
  });

  it("logs a failed run at warn and keeps ticking", async () => {
    const { lines, logger } = capture();
    await opened.close(); // every query now fails
    const retention = startRetention({ db: opened.db, policy: { ...policy, intervalMs: 20 }, clock: () => NOW, logger });
    try {
      await until(() => lines.filter((l) => l.msg === "retention: pruning failed; trying again next run").length >= 2, "two failed ticks");
      assert.equal(lines.find((l) => l.msg.startsWith("retention: pruning failed"))!.level, 40);
      await assert.rejects(retention.runNow());
    } finally {
      await retention.stop();
    }
  });

  it("does not tick when RETENTION_ENABLED=0, but runNow still prunes", async () => {
    const { lines, logger } = capture();
    await opened.db.insertInto("bridge_dead_letters").values(deadLetter(ago(8 * DAY))).execute();
    const retention = startRetention({ db: opened.db, policy: { ...policy, enabled: false, intervalMs: 20 }, clock: () => NOW, logger });
    try {
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(await count(opened.db, "bridge_dead_letters"), 1);
      assert.match(lines[0]!.msg, /retention off/);
      assert.equal((await retention.runNow()).deleted.bridge_dead_letters, 1);
    } finally {
      await retention.stop();
    }
  });
});
