// What a keeper plan costs, against real migrations on in-memory PGlite: thousands of trades
// open with far deadlines and a few due. A plan reads the due ones and a handful of rows more,
// not the open ones (counted both as rows kysely gets back and as tuples Postgres reads, with
// and without planner statistics); it plans exactly what escrowActions and the outbox say; the
// next deadline is the earliest far one; a backlog is planned a budget at a time, every lane
// getting its turn.
import { expect } from "chai";
import { sql, type Insertable, type Kysely, type KyselyPlugin, type PluginTransformQueryArgs, type PluginTransformResultArgs, type QueryResult, type RootOperationNode, type UnknownRow } from "kysely";
import type { IndexerDatabase, TradeTable } from "../../indexer/store/schema.js";
import { migrateIndexerDatabase } from "../../indexer/store/migrate.js";
import { openDatabase, type OpenedDatabase } from "../../lib/database.js";
import { migrateKeeperDatabase, type KeeperActionsTable, type KeeperDatabase } from "../../server/keeper/database.js";
import { escrowActions, listUnplannedDue, listUpcomingActions, planDueActions, type MarketWindows, type PlanDependencies } from "../../server/keeper/planActions.js";
import { DEADLINE_LANES, laneOffset, nextDeadline, type LaneCursor } from "../../server/keeper/tradeDeadlines.js";

type TestDatabase = IndexerDatabase & KeeperDatabase;

const CHAIN = 31337;
const DAY = 86_400n;
/** Chain time of every plan here. */
const NOW = 1_800_000_000n;
const windows: MarketWindows = { confirmationWindow: 2n * DAY, disputeWindow: DAY, arbitrationTimeout: 14n * DAY };
const cw = windows.confirmationWindow;
const NO_CURSORS: LaneCursor[] = DEADLINE_LANES.map(() => null);

/** Counts the rows every query returns. */
class RowCounter implements KyselyPlugin {
  rows = 0;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    this.rows += args.result.rows.length;
    return args.result;
  }
}

/** Tuples Postgres itself has read from indexer_trades so far: by sequential scans, and index entries. */
async function tradeTableReads(db: Kysely<TestDatabase>): Promise<{ seq: number; index: number }> {
  await sql`select pg_stat_force_next_flush()`.execute(db);
  const { rows } = await sql<{ seq: bigint | null; index: bigint | null }>`
    select (select seq_tup_read from pg_stat_user_tables where relname = 'indexer_trades') as seq,
           (select sum(idx_tup_read) from pg_stat_user_indexes where relname = 'indexer_trades') as index`.execute(db);
  return { seq: Number(rows[0]!.seq ?? 0n), index: Number(rows[0]!.index ?? 0n) };
}

function trade(tradeId: bigint, batchId: bigint, chainStatus: TradeTable["chain_status"], over: Partial<Insertable<TradeTable>> = {}): Insertable<TradeTable> {
  return {
    chain_id: CHAIN, trade_id: tradeId, batch_id: batchId, listing_id: null, seller: `0x${"11".repeat(20)}`, buyer: `0x${"22".repeat(20)}`, zone: `0x${"00".repeat(31)}01`,
    energy_wh: 1_000n, price_per_kwh: 200_000n, amount: 200_000n, delivery_start: NOW - 3_600n, delivery_end: NOW, source: 1, community_fee_bps: 0,
    network_fee_per_kwh: 0n, status: chainStatus === "open" ? "executed" : chainStatus === "settled" ? "settled" : "disputed", chain_status: chainStatus,
    delivered_wh: null, within_tolerance: null, evidence_hash: null, delivered_tx: null, delivered_at: null, dispute_opened_by: null,
    dispute_reason_hash: null, proposed_seller_amount: null, dispute_deadline: null, disputed_tx: null, disputed_at: null, dispute_resolved_by: null,
    resolved_seller_amount: null, resolved_buyer_amount: null, resolved_tx: null, released_early: false, seller_payout: null, buyer_refund: null,
    community_fee: null, network_fee: null, final_tx: null, final_at: null, executed_block: 1n, executed_block_hash: "0xblock", executed_tx: "0xtx",
    executed_log_index: 0, executed_at: NOW - 7n * DAY, last_event_seq: 5n, ...over,
  };
}

async function insertTrades(db: Kysely<TestDatabase>, rows: Insertable<TradeTable>[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 1_000) await db.insertInto("indexer_trades").values(rows.slice(i, i + 1_000)).execute();
}

/** A settled batch of consecutive trade ids, as the indexer writes with BatchSettled: what the proofs are built from. */
async function insertBatch(db: Kysely<TestDatabase>, batchId: bigint, firstTradeId: bigint, tradeCount: bigint): Promise<void> {
  await db.insertInto("indexer_batches").values({
    chain_id: CHAIN, batch_id: batchId, root: "0xroot", first_trade_id: firstTradeId, trade_count: tradeCount, community_fee_bps: 0, network_fee_per_kwh: 0n,
    block_number: 1n, block_hash: "0xblock", tx_hash: "0xtx", log_index: 0, settled_at: NOW - 7n * DAY, last_event_seq: 1n,
  }).execute();
}

function outboxRow(tradeId: bigint, over: Partial<Insertable<KeeperActionsTable>>): Insertable<KeeperActionsTable> {
  return {
    chain_id: CHAIN, trade_id: tradeId, action: "reclaim", reason: "confirmation_deadline", buyer: "0xb", seller: "0xs", trade: "{}", proof: "[]", due_at: 0n,
    indexed_seq: 5n, state: "pending", outcome: null, attempts: 0, next_attempt_at: 0n, last_error: null, tx_hash: null, closed_block: null, closed_at: null,
    created_at: 0n, updated_at: 0n, ...over,
  };
}

async function openMigrated(): Promise<OpenedDatabase<TestDatabase>> {
  const opened = await openDatabase<TestDatabase>({});
  await migrateIndexerDatabase(opened.db as Kysely<any>);
  await migrateKeeperDatabase(opened.db as unknown as Kysely<KeeperDatabase>);
  return opened;
}

const outbox = (db: Kysely<TestDatabase>) =>
  db.selectFrom("keeper_actions").select(["trade_id", "action", "reason", "state", "outcome", "due_at"]).where("chain_id", "=", CHAIN).orderBy("trade_id").orderBy("action").execute();

describe("keeper: deadline lanes (no database)", () => {
  it("every deadline escrowActions returns is a lane's column plus its offset", () => {
    const states: Partial<Insertable<TradeTable>>[] = [
      { chain_status: "open" },
      { chain_status: "proposed", delivered_tx: "0xd", dispute_deadline: NOW + DAY },
      { chain_status: "contested", delivered_tx: "0xd", dispute_deadline: NOW + 14n * DAY },
      { chain_status: "contested", dispute_deadline: NOW + 14n * DAY },
      { chain_status: "contested", dispute_deadline: NOW - 3n * DAY },
    ];
    for (const over of states) {
      const t = trade(1n, 1n, over.chain_status!, over) as Parameters<typeof escrowActions>[0];
      for (const a of escrowActions(t, windows)) {
        const lanes = DEADLINE_LANES.filter(
          (l) => l.status === t.chain_status && (!l.unreportedOnly || t.delivered_tx === null) && t[l.column] !== null && t[l.column]! + laneOffset(l, windows) === a.dueAt,
        );
        expect(lanes, `${t.chain_status} ${a.action}`).to.have.length(1);
      }
    }
  });
});

describe("keeper: a plan reads what is due, not what is open", function () {
  this.timeout(120_000);
  const OPEN = 10_000;
  let opened: OpenedDatabase<TestDatabase>;
  let db: Kysely<TestDatabase>;
  let counter: RowCounter;
  let deps: PlanDependencies;
  let far: Insertable<TradeTable>[];
  /** The due trades, batch 2: ids after the far ones. */
  const id = (k: number) => BigInt(OPEN + 1 + k);
  let cursors: LaneCursor[];

  before(async () => {
    opened = await openMigrated();
    db = opened.db;
    // Open for days, as a busy community's trades are: reclaim in 5 days and more, disputes
    // ending in a day and more. Batch 1 has no stored batch: proving one of them would fail.
    far = Array.from({ length: OPEN }, (_, i) => {
      const tradeId = BigInt(i + 1);
      const deliveryEnd = NOW + 3n * DAY + BigInt(i) * 7n;
      if (i % 10 <= 6) return trade(tradeId, 1n, "open", { delivery_end: deliveryEnd });
      if (i % 10 <= 8) return trade(tradeId, 1n, "proposed", { delivery_end: deliveryEnd, delivered_tx: "0xd", dispute_deadline: NOW + DAY + BigInt(i) * 3n });
      return trade(tradeId, 1n, "contested", { delivery_end: deliveryEnd, delivered_tx: i % 20 === 9 ? "0xd" : null, dispute_deadline: NOW + 10n * DAY + BigInt(i) });
    });
    await insertTrades(db, far);
    await insertTrades(db, [
      trade(id(0), 2n, "open", { delivery_end: NOW - cw - 100n }), // reclaim
      trade(id(1), 2n, "open", { delivery_end: NOW - cw - 50n }), // reclaim, in the outbox already
      trade(id(2), 2n, "proposed", { delivered_tx: "0xd", dispute_deadline: NOW - 10n }), // finalize: dispute window ended
      trade(id(3), 2n, "contested", { delivered_tx: "0xd", dispute_deadline: NOW - 5n }), // finalize: arbitration timeout
      trade(id(4), 2n, "contested", { delivery_end: NOW - cw - 1n, dispute_deadline: NOW + 20n * DAY }), // reclaim: no report
      trade(id(5), 2n, "contested", { delivery_end: NOW - cw - 200n, dispute_deadline: NOW - 1n }), // reclaim tried at this state: finalize
      trade(id(6), 2n, "settled", { delivery_end: NOW - cw - 300n }), // final: nothing
    ]);
    await insertBatch(db, 2n, id(0), 7n);
    await db.insertInto("keeper_actions").values([
      outboxRow(id(1), { due_at: NOW - 50n }),
      outboxRow(id(5), { state: "done", outcome: "superseded", due_at: NOW - 200n }),
    ]).execute();
    counter = new RowCounter();
    deps = { db: db.withPlugin(counter) as unknown as Kysely<KeeperDatabase>, indexerDb: db.withPlugin(counter) as unknown as Kysely<IndexerDatabase>, chainId: CHAIN };
  });

  after(async () => {
    await opened?.close();
  });

  it("lists the due actions no plan has read, from indexed ranges", async () => {
    counter.rows = 0;
    const due = await listUnplannedDue(deps, { windows, now: NOW, cursors: NO_CURSORS, limit: 50 });
    expect(due.map((d) => [d.trade.trade_id, d.action.action, d.action.reason])).to.deep.equal([
      [id(0), "reclaim", "confirmation_deadline"], [id(2), "finalize", "dispute_window_ended"], [id(3), "finalize", "arbitration_timeout"],
      [id(4), "reclaim", "confirmation_deadline"], [id(5), "finalize", "arbitration_timeout"], // its reclaim was tried at this state
    ]);
    expect(counter.rows).to.be.below(50);
  });

  it("plans the due trades reading O(due) rows, and finds the earliest far deadline", async () => {
    const before = await tradeTableReads(db);
    counter.rows = 0;
    const r = await planDueActions(deps, { windows, now: NOW, cursors: NO_CURSORS, nowMs: 1_000 });
    const rowsReturned = counter.rows;
    const reads = await tradeTableReads(db);

    // Two lanes hold contested trade 5 (reclaim by delivery_end, finalize by dispute deadline).
    expect(r.read).to.equal(7);
    expect(r.planned).to.equal(5);
    expect(r.caughtUp).to.equal(true);
    // The due trades, their outbox lookups, their batch's 7 trades for each page's proofs: a few dozen rows of 10 000 open.
    expect(rowsReturned).to.be.below(100);
    expect(reads.seq - before.seq, "sequential scan of indexer_trades").to.equal(0);
    expect(reads.index - before.index, "index entries read").to.be.below(100);

    expect((await outbox(db)).map((a) => [a.trade_id, a.action, a.reason, a.state, a.outcome, a.due_at])).to.deep.equal([
      [id(0), "reclaim", "confirmation_deadline", "pending", null, NOW - 100n],
      [id(1), "reclaim", "confirmation_deadline", "pending", null, NOW - 50n], // untouched
      [id(2), "finalize", "dispute_window_ended", "pending", null, NOW - 10n],
      [id(3), "finalize", "arbitration_timeout", "pending", null, NOW - 5n],
      [id(4), "reclaim", "confirmation_deadline", "pending", null, NOW - 1n],
      [id(5), "finalize", "arbitration_timeout", "pending", null, NOW - 1n],
      [id(5), "reclaim", "confirmation_deadline", "done", "superseded", NOW - 200n], // untouched
    ]);

    const earliestFar = far.flatMap((t) => escrowActions(t as Parameters<typeof escrowActions>[0], windows)).reduce((m, a) => (a.dueAt < m ? a.dueAt : m), NOW + 1_000n * DAY);
    expect(earliestFar > NOW).to.equal(true);
    expect(r.nextDueAt).to.equal(earliestFar);
    cursors = r.cursors;
  });

  it("the next plan from the cursors reads nothing; one from the start re-decides only the due trades", async () => {
    counter.rows = 0;
    const again = await planDueActions(deps, { windows, now: NOW + 1n, cursors, nowMs: 2_000 });
    expect(again).to.deep.include({ read: 0, planned: 0, caughtUp: true });
    expect(counter.rows).to.be.at.most(1); // the next deadline
    const fromStart = await planDueActions(deps, { windows, now: NOW + 1n, cursors: NO_CURSORS, nowMs: 2_000 });
    expect(fromStart).to.deep.include({ read: 7, planned: 0, caughtUp: true });
    expect(await listUnplannedDue(deps, { windows, now: NOW + 1n, cursors, limit: 50 })).to.deep.equal([]);
  });

  it("a trade indexed since, with a deadline before every other, is the next deadline and planned once it passes", async () => {
    await insertTrades(db, [trade(id(7), 3n, "open", { delivery_end: NOW + 10n - cw })]);
    await insertBatch(db, 3n, id(7), 1n);
    expect(await nextDeadline(deps.indexerDb, CHAIN, { windows, cursors })).to.equal(NOW + 10n);
    const atDeadline = await planDueActions(deps, { windows, now: NOW + 10n, cursors, nowMs: 3_000 });
    expect(atDeadline).to.deep.include({ read: 0, planned: 0, nextDueAt: NOW + 10n }); // due once chain time is past it
    const r = await planDueActions(deps, { windows, now: NOW + 11n, cursors, nowMs: 3_000 });
    expect(r).to.deep.include({ read: 1, planned: 1 });
    expect((await outbox(db)).filter((a) => a.trade_id === id(7)).map((a) => [a.action, a.state, a.due_at])).to.deep.equal([["reclaim", "pending", NOW + 10n]]);
  });

  it("lists the soonest actions not due yet, bounded by the limit, with planner statistics too", async () => {
    await sql`analyze indexer_trades`.execute(db);
    counter.rows = 0;
    const upcoming = await listUpcomingActions(deps, { windows, now: NOW + 11n, limit: 5 });
    const expected = far
      .flatMap((t) => escrowActions(t as Parameters<typeof escrowActions>[0], windows).slice(0, 1).map((a) => [t.trade_id, a.action, a.dueAt] as const))
      .sort((a, b) => (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0))
      .slice(0, 5);
    expect(upcoming.map((u) => [u.trade.trade_id, u.action.action, u.action.dueAt])).to.deep.equal(expected);
    expect(counter.rows).to.be.at.most(DEADLINE_LANES.length * 5);

    const before = await tradeTableReads(db);
    const r = await planDueActions(deps, { windows, now: NOW + 11n, cursors: NO_CURSORS, nowMs: 4_000 });
    const reads = await tradeTableReads(db);
    expect(r).to.deep.include({ read: 8, planned: 0 });
    expect(reads.seq - before.seq, "sequential scan of indexer_trades").to.equal(0);
    expect(reads.index - before.index, "index entries read").to.be.below(100);
  });
});

describe("keeper: a backlog is planned a budget at a time", function () {
  this.timeout(60_000);
  let opened: OpenedDatabase<TestDatabase>;

  after(async () => {
    await opened?.close();
  });

  it("reads at most about the budget per plan, every lane in turn, until it has caught up", async () => {
    opened = await openMigrated();
    const db = opened.db;
    const reclaims = Array.from({ length: 25 }, (_, i) => trade(BigInt(i + 1), 1n, "open", { delivery_end: NOW - cw - 1_000n + BigInt(i) }));
    const finalizes = Array.from({ length: 5 }, (_, i) => trade(BigInt(26 + i), 1n, "proposed", { delivered_tx: "0xd", dispute_deadline: NOW - 100n + BigInt(i) }));
    await insertTrades(db, [...reclaims, ...finalizes]);
    await insertBatch(db, 1n, 1n, 30n);
    const deps: PlanDependencies = { db: db as unknown as Kysely<KeeperDatabase>, indexerDb: db as unknown as Kysely<IndexerDatabase>, chainId: CHAIN };

    let cursors = NO_CURSORS;
    const plans: { read: number; planned: number; caughtUp: boolean }[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await planDueActions(deps, { windows, now: NOW, cursors, nowMs: 1_000, pageSize: 4, maxTrades: 8 });
      plans.push({ read: r.read, planned: r.planned, caughtUp: r.caughtUp });
      cursors = r.cursors;
      if (r.caughtUp) {
        expect(r.nextDueAt).to.equal(undefined); // nothing else open
        break;
      }
      expect(r.nextDueAt! < NOW, "a plan cut short leaves a deadline passed, so the next tick plans on").to.equal(true);
    }
    // Each plan: one page of each lane with trades left, rounds until 8 are read.
    expect(plans).to.deep.equal([
      { read: 8, planned: 8, caughtUp: false }, // 4 reclaims, 4 finalizes
      { read: 9, planned: 9, caughtUp: false }, // 4 + the last finalize, then 4 more reclaims
      { read: 8, planned: 8, caughtUp: false },
      { read: 5, planned: 5, caughtUp: true },
    ]);
    const rows = await outbox(db);
    expect(rows.map((r) => r.trade_id)).to.deep.equal(Array.from({ length: 30 }, (_, i) => BigInt(i + 1)));
    expect(rows.every((r) => r.state === "pending")).to.equal(true);
  });
});
