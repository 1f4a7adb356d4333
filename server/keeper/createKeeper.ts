// The escrow keeper: the node's own account closing what the market lets anyone close once its
// deadline has passed, so no escrow waits for someone to build the trade struct and its proof by
// hand (IEnergyMarket: finalizeDispute for an uncontested proposal after its dispute window or a
// contest past the arbitration timeout, reclaim for a trade nobody reported by the confirmation
// deadline; funds go where the contract says, never to the keeper).
//
// Each tick: read the chain's latest block (its timestamp is the only clock deadlines are judged
// by), plan from the indexer's tables what has become due (planActions.ts) into the outbox
// (actionStore.ts), and drain the outbox to the chain (sendActions.ts). A plan runs only when
// the earliest deadline not yet read has passed, when the last drain needs a trade decided
// again, or every REPLAN_MS; an indexer commit only re-reads that earliest deadline.
import type { Kysely } from "kysely";
import type { Address, LocalAccount, PublicClient } from "viem";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import type { IndexerDatabase } from "../../indexer/store/schema.js";
import type { Logger } from "../../lib/logger.js";
import { countUnfinished, listActive, listRecent, type ActionResult } from "./actionStore.js";
import type { KeeperActionKind, KeeperActionOutcome, KeeperActionReason, KeeperActionRow, KeeperActionState, KeeperDatabase } from "./database.js";
import { listUnplannedDue, listUpcomingActions, planDueActions, type MarketWindows, type PlannedAction } from "./planActions.js";
import { describe, sendActions, type KeeperFaults } from "./sendActions.js";
import { DEADLINE_LANES, nextDeadline, type LaneCursor } from "./tradeDeadlines.js";

export interface CreateKeeperParameters {
  /** The keeper's own tables. */
  db: Kysely<KeeperDatabase>;
  /** The indexer's tables, read only (in the node, the same database). */
  indexerDb: Kysely<IndexerDatabase>;
  client: PublicClient;
  /** Signs the keeper's transactions; it only needs gas money. */
  account: LocalAccount;
  market: Address;
  chainId: number;
  logger: Logger;
  /** Milliseconds between ticks. */
  tickMs: number;
  /** Run tick() every tickMs (default true); tests call tick() themselves. */
  autoTick?: boolean;
  /** Changes whenever the indexer commits; the next deadline is re-read after a change. */
  indexerVersion?: () => number;
  /** Unix milliseconds of the wall clock, for retry times. Default Date.now. */
  clock?: () => number;
  /** Actions sent per tick. Default 100. */
  maxActionsPerTick?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  receiptTimeoutMs?: number;
  faults?: KeeperFaults;
}

export interface KeeperMetrics {
  ticks: number;
  tickErrors: number;
  /** Escrows our transactions closed, by action, since start. */
  finalized: number;
  reclaimed: number;
  /** Found closed by someone else when due. */
  alreadyClosed: number;
  pending: number;
  inFlight: number;
  failed: number;
}

/** One action as GET /v1/keeper/actions lists it. */
export interface KeeperActionView {
  tradeId: bigint;
  action: KeeperActionKind;
  reason: KeeperActionReason;
  /** Chain time after which the contract allows the action. */
  dueAt: bigint;
  /** scheduled: not due yet; due: due, about to be planned; then the outbox's states. */
  state: "scheduled" | "due" | KeeperActionState;
  outcome: KeeperActionOutcome | null;
  txHash: string | null;
  attempts: number;
  lastError: string | null;
  buyer: string;
  seller: string;
  /** Block time of the transaction that closed the escrow. */
  closedAt: bigint | null;
}

export interface KeeperActionsView {
  /** The latest block's timestamp at the last tick; null before the first. */
  chainTime: bigint | null;
  keeper: { address: Address; running: boolean; tickMs: number; lastTickAt: number | null; lastError: string | null };
  windows: MarketWindows | null;
  /** Due or in flight, soonest due first. */
  pending: KeeperActionView[];
  /** Not due yet, soonest first. */
  scheduled: KeeperActionView[];
  /** Done or failed, most recent first. */
  recent: KeeperActionView[];
}

export interface Keeper {
  address: Address;
  tickMs: number;
  /** One round (plan and send); resolves when it is done. Ticks never overlap. */
  tick(): Promise<ActionResult[]>;
  listActions(options: { limit: number }): Promise<KeeperActionsView>;
  metrics(): KeeperMetrics;
  close(): Promise<void>;
}

declare module "../context.js" {
  interface NodeServices {
    /** Closes escrows whose deadline passed (server/keeper); absent when KEEPER_ENABLED=0 or it has no key. */
    keeper?: Keeper;
  }
}

/** Re-reads the next deadline after indexer commits at most this often; it passing plans at once. */
const REREAD_ON_INDEX_MS = 1_000;
/**
 * Plans from the start of every lane this often (once the last plan caught up), so nothing
 * waits on a missed signal. This is what stands in for the old open-trade scan's periodic full
 * scan. The lane cursors only skip deadlines already read at the chain time of their plan, and
 * a deadline the market sets lies after the event that sets it, so new trades and disputes land
 * past the cursors. What can land behind one: a trade indexed late with a deadline already past
 * (the indexer catching up), a trade a reorg opens again, a shorter confirmation window, a
 * superseded action whose trade changed at an old deadline. Superseded and rejected outcomes are
 * re-decided by trade id at the next plan; the rest waits at most this long.
 */
const REPLAN_MS = 30_000;

export async function createKeeper(p: CreateKeeperParameters): Promise<Keeper> {
  const { db, indexerDb, client, chainId, logger } = p;
  const clock = p.clock ?? Date.now;
  const deps = { db, indexerDb, chainId };
  const counts = await countUnfinished(db, chainId);
  const metrics: KeeperMetrics = { ticks: 0, tickErrors: 0, finalized: 0, reclaimed: 0, alreadyClosed: 0, pending: counts.pending, inFlight: counts.in_flight, failed: counts.failed };

  let chainTime: bigint | null = null;
  let windows: MarketWindows | null = null;
  /** Per lane (DEADLINE_LANES), the last trade a plan read: deadlines up to it are planned. */
  let cursors: LaneCursor[] = DEADLINE_LANES.map(() => null);
  /** Whether the last plan read every lane up to its chain time (not stopped by its budget). */
  let caughtUp = true;
  let sweepStartedMs = -Infinity;
  /** Trades whose action the last drain found superseded or rejected: the next plan decides them again. */
  const recheck = new Set<bigint>();
  let seenVersion: number | undefined;
  let lastDeadlineReadMs = -Infinity;
  let nextDueAt: bigint | undefined;
  let lastTickAt: number | null = null;
  let lastError: string | null = null;
  let closed = false;
  /** Whether the outbox may hold something to send or resolve: an idle tick reads one block and stops. */
  let outboxBusy = counts.pending + counts.in_flight > 0;
  let queue: Promise<unknown> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;

  async function readWindows(): Promise<MarketWindows> {
    const [confirmationWindow, disputeWindow, arbitrationTimeout] = await client.readContract({ address: p.market, abi: energyMarketAbi, functionName: "windows" });
    return { confirmationWindow, disputeWindow, arbitrationTimeout };
  }

  /** What is due at `now` goes into the outbox (true when anything did); `fromStart` reads every lane from its start. */
  async function plan(now: bigint, fromStart: boolean): Promise<boolean> {
    windows = await readWindows();
    if (fromStart) {
      cursors = DEADLINE_LANES.map(() => null);
      sweepStartedMs = clock();
    }
    const rechecked = [...recheck];
    const r = await planDueActions(deps, { windows, now, cursors, recheck: rechecked, nowMs: clock() });
    for (const id of rechecked) recheck.delete(id);
    cursors = r.cursors;
    caughtUp = r.caughtUp;
    nextDueAt = r.nextDueAt;
    lastDeadlineReadMs = clock();
    return r.planned > 0;
  }

  async function runTick(): Promise<ActionResult[]> {
    const block = await client.getBlock({ blockTag: "latest" });
    chainTime = block.timestamp;
    const version = p.indexerVersion?.();
    const indexChanged = version === undefined || version !== seenVersion;
    // A commit can only bring deadlines to learn (new trades, disputes): re-read the earliest,
    // a few index probes, rather than plan. One already past plans below.
    if (windows !== null && indexChanged && clock() - lastDeadlineReadMs >= REREAD_ON_INDEX_MS) {
      nextDueAt = await nextDeadline(indexerDb, chainId, { windows, cursors });
      lastDeadlineReadMs = clock();
      seenVersion = version;
    }
    const deadlinePassed = nextDueAt !== undefined && block.timestamp > nextDueAt;
    const fromStart = caughtUp && clock() - sweepStartedMs >= REPLAN_MS;
    if (fromStart || deadlinePassed || recheck.size > 0) {
      if (await plan(block.timestamp, fromStart)) outboxBusy = true;
      seenVersion = version;
    }
    if (!outboxBusy) return [];
    const results = await sendActions({
      db, indexerDb, client, account: p.account, market: p.market, chainId, clock, maxActions: p.maxActionsPerTick ?? 100,
      retryMinMs: p.retryMinMs ?? 1_000, retryMaxMs: p.retryMaxMs ?? 60_000, receiptTimeoutMs: p.receiptTimeoutMs ?? 60_000, logger, ...(p.faults ? { faults: p.faults } : {}),
    });
    for (const r of results) {
      if (r.outcome === "closed") r.action === "finalize" ? metrics.finalized++ : metrics.reclaimed++;
      else if (r.outcome === "already_closed") metrics.alreadyClosed++;
    }
    // A way out that no longer fits may leave another one due now: decided again at the next tick.
    for (const r of results) if (r.outcome === "superseded" || r.outcome === "rejected") recheck.add(r.tradeId);
    const c = await countUnfinished(db, chainId);
    metrics.pending = c.pending;
    metrics.inFlight = c.in_flight;
    metrics.failed = c.failed;
    outboxBusy = c.pending + c.in_flight > 0;
    return results;
  }

  function tick(): Promise<ActionResult[]> {
    const run = queue.then(async () => {
      metrics.ticks++;
      try {
        const results = await runTick();
        lastError = null;
        return results;
      } catch (err) {
        metrics.tickErrors++;
        lastError = describe(err);
        throw err;
      } finally {
        lastTickAt = clock();
      }
    });
    queue = run.catch(() => undefined);
    return run;
  }

  function schedule_next() {
    if (closed) return;
    timer = setTimeout(() => {
      tick()
        .catch((err: unknown) => logger.warn({ msg: "keeper tick failed; retrying next tick", err: describe(err), chain_id: chainId }))
        .finally(schedule_next);
    }, p.tickMs);
  }
  if (p.autoTick !== false) schedule_next();

  const view = (r: KeeperActionRow): KeeperActionView => ({
    tradeId: r.trade_id, action: r.action, reason: r.reason, dueAt: r.due_at, state: r.state, outcome: r.outcome, txHash: r.tx_hash, attempts: r.attempts,
    lastError: r.last_error, buyer: r.buyer, seller: r.seller, closedAt: r.closed_at,
  });
  const planned = (s: PlannedAction, state: "scheduled" | "due"): KeeperActionView => ({
    tradeId: s.trade.trade_id, action: s.action.action, reason: s.action.reason, dueAt: s.action.dueAt, state, outcome: null, txHash: null, attempts: 0,
    lastError: null, buyer: s.trade.buyer.toLowerCase(), seller: s.trade.seller.toLowerCase(), closedAt: null,
  });

  return {
    address: p.account.address,
    tickMs: p.tickMs,
    tick,
    async listActions({ limit }) {
      const now = chainTime;
      const w = windows;
      const [active, recent] = await Promise.all([listActive(db, chainId, limit), listRecent(db, chainId, limit)]);
      // Due by the latest block but past the cursors, not planned yet (a tick is under way), and
      // the next not due: bounded reads by deadline, nothing kept in memory. Before the first plan, neither.
      const dueNotPlanned = now === null || w === null ? [] : await listUnplannedDue(deps, { windows: w, now, cursors, limit });
      const scheduled = now === null || w === null ? [] : await listUpcomingActions(deps, { windows: w, now, limit });
      return {
        chainTime: now,
        keeper: { address: p.account.address, running: !closed, tickMs: p.tickMs, lastTickAt, lastError },
        windows,
        pending: [...active.map(view), ...dueNotPlanned.map((s) => planned(s, "due"))].slice(0, limit),
        scheduled: scheduled.map((s) => planned(s, "scheduled")),
        recent: recent.map(view),
      };
    },
    metrics: () => ({ ...metrics }),
    async close() {
      closed = true;
      clearTimeout(timer);
      await queue;
    },
  };
}
