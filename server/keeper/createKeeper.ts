// The escrow keeper: the node's own account closing what the market lets anyone close once its
// deadline has passed, so no escrow waits for someone to build the trade struct and its proof by
// hand (IEnergyMarket: finalizeDispute for an uncontested proposal after its dispute window or a
// contest past the arbitration timeout, reclaim for a trade nobody reported by the confirmation
// deadline; funds go where the contract says, never to the keeper).
//
// Each tick: read the chain's latest block (its timestamp is the only clock deadlines are judged
// by), plan from the indexer's tables what has become due (planActions.ts) into the outbox
// (actionStore.ts), and drain the outbox to the chain (sendActions.ts). Planning is skipped
// while nothing it reads changed: no indexer commit and no planned deadline passed.
import type { Kysely } from "kysely";
import type { Address, LocalAccount, PublicClient } from "viem";
import { tradeLeaf } from "../../contracts/client/trade.js";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import { merkleProofsForAll } from "../../bridge/merkleProofs.js";
import type { IndexerDatabase } from "../../indexer/store/schema.js";
import { getBatchTrades, tradeOf } from "../../indexer/store/tradeQueries.js";
import type { Logger } from "../../lib/logger.js";
import { countUnfinished, listActionsOfTrades, listActive, listRecent, planDue, type ActionResult, type NewKeeperAction } from "./actionStore.js";
import type { KeeperActionKind, KeeperActionOutcome, KeeperActionReason, KeeperActionRow, KeeperActionState, KeeperDatabase } from "./database.js";
import { createOpenTradeScan, escrowActions, type EscrowAction, type MarketWindows, type PlannedTrade } from "./planActions.js";
import { describe, sendActions, type KeeperFaults } from "./sendActions.js";

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
  /** Changes whenever the indexer commits; planning waits for a change (or a deadline). */
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

interface Scheduled {
  trade: PlannedTrade;
  action: EscrowAction;
}

/** Plans again after indexer commits at most this often; a planned deadline passing plans at once. */
const REPLAN_ON_INDEX_MS = 1_000;
/** Plans even without an indexer commit this often, so nothing waits on a missed signal. */
const REPLAN_MS = 30_000;

export async function createKeeper(p: CreateKeeperParameters): Promise<Keeper> {
  const { db, indexerDb, client, chainId, logger } = p;
  const clock = p.clock ?? Date.now;
  const scan = createOpenTradeScan(indexerDb, chainId);
  const counts = await countUnfinished(db, chainId);
  const metrics: KeeperMetrics = { ticks: 0, tickErrors: 0, finalized: 0, reclaimed: 0, alreadyClosed: 0, pending: counts.pending, inFlight: counts.in_flight, failed: counts.failed };

  let chainTime: bigint | null = null;
  let windows: MarketWindows | null = null;
  let schedule: Scheduled[] = [];
  let plannedVersion: number | undefined;
  let lastPlanMs = -Infinity;
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

  /** What is due at `now` goes into the outbox (true when anything did); the rest is remembered with its deadline. */
  async function plan(now: bigint): Promise<boolean> {
    windows = await readWindows();
    const open = await scan.list();
    const rows = open.length > 0 ? await listActionsOfTrades(db, chainId, open[0]!.trade_id) : [];
    const rowOf = new Map(rows.map((r) => [`${r.trade_id}:${r.action}`, r]));
    const next: Scheduled[] = [];
    const due: Scheduled[] = [];
    for (const trade of open) {
      for (const action of escrowActions(trade, windows)) {
        const row = rowOf.get(`${trade.trade_id}:${action.action}`);
        const settledWay = row?.outcome === "superseded" || row?.outcome === "rejected";
        if (row && (row.state === "pending" || row.state === "in_flight")) break; // in the outbox already
        if (row && !settledWay) break; // closed: the index has not caught up yet
        if (row && settledWay && row.indexed_seq >= trade.last_event_seq) continue; // tried at this state: the next way out
        next.push({ trade, action });
        if (action.dueAt < now) due.push({ trade, action });
        break;
      }
    }
    if (due.length > 0) await planDue(db, chainId, await withProofs(due), clock());
    const dueSet = new Set(due);
    schedule = next.filter((s) => !dueSet.has(s)).sort((a, b) => (a.action.dueAt < b.action.dueAt ? -1 : a.action.dueAt > b.action.dueAt ? 1 : 0));
    nextDueAt = schedule[0]?.action.dueAt;
    lastPlanMs = clock();
    return due.length > 0;
  }

  /** The Trade structs and Merkle proofs, from each batch's stored trades (the leaves of its root). */
  async function withProofs(due: Scheduled[]): Promise<NewKeeperAction[]> {
    const out: NewKeeperAction[] = [];
    const byBatch = new Map<bigint, Scheduled[]>();
    for (const d of due) byBatch.set(d.trade.batch_id, [...(byBatch.get(d.trade.batch_id) ?? []), d]);
    for (const [batchId, wanted] of byBatch) {
      const trades = (await getBatchTrades(indexerDb, chainId, batchId)).map(tradeOf);
      const proofs = merkleProofsForAll(trades.map(tradeLeaf));
      for (const d of wanted) {
        const i = trades.findIndex((t) => t.tradeId === d.trade.trade_id);
        // The indexer writes a batch's trades with its BatchSettled in one transaction.
        if (i < 0) throw new Error(`keeper: trade ${d.trade.trade_id} is not among batch ${batchId}'s stored trades`);
        out.push({ tradeId: d.trade.trade_id, action: d.action.action, reason: d.action.reason, trade: trades[i]!, proof: proofs[i]!, dueAt: d.action.dueAt, indexedSeq: d.trade.last_event_seq });
      }
    }
    return out;
  }

  async function runTick(): Promise<ActionResult[]> {
    const block = await client.getBlock({ blockTag: "latest" });
    chainTime = block.timestamp;
    const version = p.indexerVersion?.();
    const sincePlanMs = clock() - lastPlanMs;
    const deadlinePassed = nextDueAt !== undefined && block.timestamp > nextDueAt;
    const indexChanged = version === undefined || version !== plannedVersion;
    if (deadlinePassed || sincePlanMs >= REPLAN_MS || (indexChanged && sincePlanMs >= REPLAN_ON_INDEX_MS)) {
      if (await plan(block.timestamp)) outboxBusy = true;
      plannedVersion = version;
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
    if (results.length > 0) {
      // Replan at the next tick; meanwhile what this drain decided is no longer due.
      plannedVersion = undefined;
      const decided = new Set(results.map((r) => `${r.tradeId}:${r.action}`));
      schedule = schedule.filter((s) => !decided.has(`${s.trade.trade_id}:${s.action.action}`));
    }
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
  const planned = (s: Scheduled, state: "scheduled" | "due"): KeeperActionView => ({
    tradeId: s.trade.trade_id, action: s.action.action, reason: s.action.reason, dueAt: s.action.dueAt, state, outcome: null, txHash: null, attempts: 0,
    lastError: null, buyer: s.trade.buyer.toLowerCase(), seller: s.trade.seller.toLowerCase(), closedAt: null,
  });

  return {
    address: p.account.address,
    tickMs: p.tickMs,
    tick,
    async listActions({ limit }) {
      const [active, recent] = await Promise.all([listActive(db, chainId, limit), listRecent(db, chainId, limit)]);
      const now = chainTime;
      const isDue = (s: Scheduled) => now !== null && s.action.dueAt < now;
      // Due by the latest block but not planned yet (a tick is under way): unless the outbox has it.
      const dueCandidates = schedule.filter(isDue);
      const known = dueCandidates.length === 0 ? [] : await listActionsOfTrades(db, chainId, dueCandidates.reduce((m, s) => (s.trade.trade_id < m ? s.trade.trade_id : m), dueCandidates[0]!.trade.trade_id));
      const knownKeys = new Set(known.map((r) => `${r.trade_id}:${r.action}`));
      const dueNotPlanned = dueCandidates.filter((s) => !knownKeys.has(`${s.trade.trade_id}:${s.action.action}`)).map((s) => planned(s, "due"));
      return {
        chainTime: now,
        keeper: { address: p.account.address, running: !closed, tickMs: p.tickMs, lastTickAt, lastError },
        windows,
        pending: [...active.map(view), ...dueNotPlanned].slice(0, limit),
        scheduled: schedule.filter((s) => !isDue(s)).slice(0, limit).map((s) => planned(s, "scheduled")),
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
