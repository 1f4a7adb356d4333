// Which escrows the contract lets anyone close, and from when: read from the indexer's tables
// (the one reader of the market's events) and the market's current windows. A trade that is
// not final has at most two ways out the keeper can take (IEnergyMarket):
//   Open                     -> reclaim after deliveryEnd + confirmationWindow (buyer refunded)
//   Proposed                 -> finalizeDispute after the proposal's dispute window (its deadline)
//   Contested, reported      -> finalizeDispute after the arbitration timeout (the meter's word)
//   Contested, not reported  -> reclaim after deliveryEnd + confirmationWindow, or finalizeDispute
//                               after the arbitration timeout (buyer refunded), whichever is first
// The confirmation window is read from the contract at each plan: reclaim checks the window in
// force when it is called, not the one when the trade was made. Dispute deadlines are fixed when
// the dispute opens (DisputeOpened) and are indexed with it.
//
// A plan reads only what has fallen due since the last one: each deadline is a lane on an index
// (tradeDeadlines.ts) with a cursor, so its cost follows what is due, not what is open.
import type { Kysely } from "kysely";
import type { Hex } from "viem";
import { merkleProofsForAll } from "../../bridge/merkleProofs.js";
import { tradeLeaf } from "../../contracts/client/trade.js";
import type { IndexerDatabase, TradeRow } from "../../indexer/store/schema.js";
import { getBatchTrades, tradeOf } from "../../indexer/store/tradeQueries.js";
import { listActionsOfTrades, planDue, type NewKeeperAction } from "./actionStore.js";
import type { KeeperActionKind, KeeperActionReason, KeeperActionRow, KeeperDatabase } from "./database.js";
import { DEADLINE_LANES, listDueTrades, listOpenTradesById, listUpcomingTrades, nextDeadline, type LaneCursor } from "./tradeDeadlines.js";

export interface MarketWindows {
  confirmationWindow: bigint;
  disputeWindow: bigint;
  arbitrationTimeout: bigint;
}

export interface EscrowAction {
  action: KeeperActionKind;
  reason: KeeperActionReason;
  /** Chain time (unix s) after which the contract allows it: due once block time passes it. */
  dueAt: bigint;
}

/** The columns of an indexed trade the plan reads. */
export type PlannedTrade = Pick<TradeRow, "trade_id" | "batch_id" | "buyer" | "seller" | "chain_status" | "delivery_end" | "dispute_deadline" | "delivered_tx" | "last_event_seq">;

/** The actions that can close `t`'s escrow, earliest first (a tie puts the arbitration fallback first); none for a final trade. */
export function escrowActions(t: PlannedTrade, windows: MarketWindows): EscrowAction[] {
  const reclaim: EscrowAction = { action: "reclaim", reason: "confirmation_deadline", dueAt: t.delivery_end + windows.confirmationWindow };
  switch (t.chain_status) {
    case "open":
      return [reclaim];
    case "proposed":
      return t.dispute_deadline === null ? [] : [{ action: "finalize", reason: "dispute_window_ended", dueAt: t.dispute_deadline }];
    case "contested": {
      const fallback: EscrowAction[] = t.dispute_deadline === null ? [] : [{ action: "finalize", reason: "arbitration_timeout", dueAt: t.dispute_deadline }];
      // With a report the meter's word decides; without one the buyer may also be refunded
      // once the confirmation deadline passes (reclaim: Open or Contested without a report).
      if (t.delivered_tx !== null) return fallback;
      return [...fallback, reclaim].sort((a, b) => (a.dueAt < b.dueAt ? -1 : a.dueAt > b.dueAt ? 1 : 0));
    }
    default:
      return [];
  }
}

/** What the outbox holds about one action of a trade. */
export type OutboxRow = Pick<KeeperActionRow, "trade_id" | "action" | "state" | "outcome" | "indexed_seq">;

/**
 * The action the keeper may take next on `t`, judged against the outbox (`rowOf`, keyed
 * `tradeId:action`): none while one is in the outbox or closed, and past a way out already
 * tried at the trade's current state (superseded or rejected at its last indexed event).
 */
export function nextWayOut(t: PlannedTrade, windows: MarketWindows, rowOf: ReadonlyMap<string, OutboxRow>): EscrowAction | undefined {
  for (const action of escrowActions(t, windows)) {
    const row = rowOf.get(`${t.trade_id}:${action.action}`);
    const settledWay = row?.outcome === "superseded" || row?.outcome === "rejected";
    if (row && (row.state === "pending" || row.state === "in_flight")) return undefined; // in the outbox already
    if (row && !settledWay) return undefined; // closed: the index has not caught up yet
    if (row && settledWay && row.indexed_seq >= t.last_event_seq) continue; // tried at this state: the next way out
    return action;
  }
  return undefined;
}

/** A trade with the action the keeper would take next. */
export interface PlannedAction {
  trade: PlannedTrade;
  action: EscrowAction;
}

export interface PlanDependencies {
  /** The keeper's tables. */
  db: Kysely<KeeperDatabase>;
  /** The indexer's tables, read only. */
  indexerDb: Kysely<IndexerDatabase>;
  chainId: number;
}

export interface PlanDueActionsParameters {
  windows: MarketWindows;
  /** The latest block's timestamp: an action is due once it is past the action's deadline. */
  now: bigint;
  /** Per lane of DEADLINE_LANES, where the last plan stopped; null reads the lane from its start. */
  cursors: readonly LaneCursor[];
  /** Trades to decide again whatever their deadline (the last drain found their action superseded or rejected). */
  recheck?: readonly bigint[];
  /** Unix milliseconds of the wall clock, for the outbox rows. */
  nowMs: number;
  /** Trades per query. Default 500. */
  pageSize?: number;
  /** Trades read per plan before it stops, each lane having had a page; the next plan carries on. Default 2 000. */
  maxTrades?: number;
}

export interface PlanDueActionsReturnType {
  /** Actions added to the outbox (or re-opened). */
  planned: number;
  /** Trades read from the indexer. */
  read: number;
  /** Where each lane got to, for the next plan. */
  cursors: LaneCursor[];
  /** Every lane was read up to `now`; false when maxTrades ran out first. */
  caughtUp: boolean;
  /** The earliest deadline past the cursors (nextDeadline); undefined when no trade waits on one. */
  nextDueAt: bigint | undefined;
}

const PAGE = 500;
const MAX_TRADES_PER_PLAN = 2_000;

/**
 * Puts what has become due into the outbox: each lane's trades past its cursor whose deadline
 * `now` has passed, a page at a time, each lane in turn so a backlog in one (a node back after
 * days away) delays none of the others. The cursors only skip deadlines already read, so a
 * plan from them reads what fell due since; reading from null cursors again (the keeper does
 * every REPLAN_MS) re-decides every due trade still open.
 */
export async function planDueActions(deps: PlanDependencies, args: PlanDueActionsParameters): Promise<PlanDueActionsReturnType> {
  const pageSize = args.pageSize ?? PAGE;
  const maxTrades = args.maxTrades ?? MAX_TRADES_PER_PLAN;
  const cursors = DEADLINE_LANES.map((_, i) => args.cursors[i] ?? null);
  let planned = 0;
  let read = 0;
  if (args.recheck && args.recheck.length > 0) {
    const trades = await listOpenTradesById(deps.indexerDb, deps.chainId, args.recheck);
    read += trades.length;
    planned += await planPage(deps, args, trades);
  }
  const exhausted = DEADLINE_LANES.map(() => false);
  while (read < maxTrades && exhausted.includes(false)) {
    for (const [i, lane] of DEADLINE_LANES.entries()) {
      if (exhausted[i]) continue;
      const trades = await listDueTrades(deps.indexerDb, deps.chainId, lane, { windows: args.windows, now: args.now, cursor: cursors[i]!, limit: pageSize });
      read += trades.length;
      planned += await planPage(deps, args, trades);
      const last = trades.at(-1);
      if (last) cursors[i] = { at: last[lane.column]!, tradeId: last.trade_id };
      if (trades.length < pageSize) exhausted[i] = true;
    }
  }
  const nextDueAt = await nextDeadline(deps.indexerDb, deps.chainId, { windows: args.windows, cursors });
  return { planned, read, cursors, caughtUp: !exhausted.includes(false), nextDueAt };
}

/** Decides each trade against the outbox and plans the actions due; how many it planned. */
async function planPage(deps: PlanDependencies, args: PlanDueActionsParameters, trades: readonly PlannedTrade[]): Promise<number> {
  const due = (await decide(deps, args.windows, trades)).filter((p) => p.action.dueAt < args.now);
  if (due.length > 0) await planDue(deps.db, deps.chainId, await withProofs(deps, due), args.nowMs);
  return due.length;
}

/** Each trade's next way out (nextWayOut), once per trade. */
async function decide(deps: PlanDependencies, windows: MarketWindows, trades: readonly PlannedTrade[]): Promise<PlannedAction[]> {
  const unique = [...new Map(trades.map((t) => [t.trade_id, t])).values()];
  if (unique.length === 0) return [];
  const rows = await listActionsOfTrades(deps.db, deps.chainId, unique.map((t) => t.trade_id));
  const rowOf = new Map(rows.map((r) => [`${r.trade_id}:${r.action}`, r]));
  const out: PlannedAction[] = [];
  for (const trade of unique) {
    const action = nextWayOut(trade, windows, rowOf);
    if (action) out.push({ trade, action });
  }
  return out;
}

const byDue = (a: PlannedAction, b: PlannedAction) =>
  a.action.dueAt < b.action.dueAt ? -1 : a.action.dueAt > b.action.dueAt ? 1 : a.trade.trade_id < b.trade.trade_id ? -1 : a.trade.trade_id > b.trade.trade_id ? 1 : 0;

/** Actions due at `now` that no plan has read yet (past the cursors), soonest first, at most `limit`. */
export async function listUnplannedDue(deps: PlanDependencies, args: { windows: MarketWindows; now: bigint; cursors: readonly LaneCursor[]; limit: number }): Promise<PlannedAction[]> {
  const trades: PlannedTrade[] = [];
  for (const [i, lane] of DEADLINE_LANES.entries()) {
    trades.push(...(await listDueTrades(deps.indexerDb, deps.chainId, lane, { windows: args.windows, now: args.now, cursor: args.cursors[i] ?? null, limit: args.limit })));
  }
  return (await decide(deps, args.windows, trades)).filter((p) => p.action.dueAt < args.now).sort(byDue).slice(0, args.limit);
}

/**
 * Actions not due at `now`, soonest first, at most `limit`: each lane's first `limit` trades
 * by deadline. (A trade whose earliest way out was tried at its state is listed with its next
 * one, and sorted by it among the rest.)
 */
export async function listUpcomingActions(deps: PlanDependencies, args: { windows: MarketWindows; now: bigint; limit: number }): Promise<PlannedAction[]> {
  const trades: PlannedTrade[] = [];
  for (const lane of DEADLINE_LANES) {
    trades.push(...(await listUpcomingTrades(deps.indexerDb, deps.chainId, lane, { windows: args.windows, now: args.now, limit: args.limit })));
  }
  return (await decide(deps, args.windows, trades)).filter((p) => p.action.dueAt >= args.now).sort(byDue).slice(0, args.limit);
}

/** The Trade structs and Merkle proofs, from each batch's stored trades (the leaves of its root). */
async function withProofs(deps: PlanDependencies, due: readonly PlannedAction[]): Promise<NewKeeperAction[]> {
  const out: NewKeeperAction[] = [];
  const byBatch = new Map<bigint, PlannedAction[]>();
  for (const d of due) byBatch.set(d.trade.batch_id, [...(byBatch.get(d.trade.batch_id) ?? []), d]);
  for (const [batchId, wanted] of byBatch) {
    const trades = (await getBatchTrades(deps.indexerDb, deps.chainId, batchId)).map(tradeOf);
    const proofs: Hex[][] = merkleProofsForAll(trades.map(tradeLeaf));
    for (const d of wanted) {
      const i = trades.findIndex((t) => t.tradeId === d.trade.trade_id);
      // The indexer writes a batch's trades with its BatchSettled in one transaction.
      if (i < 0) throw new Error(`keeper: trade ${d.trade.trade_id} is not among batch ${batchId}'s stored trades`);
      out.push({ tradeId: d.trade.trade_id, action: d.action.action, reason: d.action.reason, trade: trades[i]!, proof: proofs[i]!, dueAt: d.action.dueAt, indexedSeq: d.trade.last_event_seq });
    }
  }
  return out;
}
