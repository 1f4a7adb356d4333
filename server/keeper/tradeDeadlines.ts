// The keeper's reads of the indexer's trades, by deadline: each deadline an escrow action can
// fall due at (planActions.ts, escrowActions) is a column of the trade in one chain status, and
// every such lane is a range on a partial index (migration 20261207000000_trade_deadlines), read
// in (deadline, trade id) order. So what is due, what comes next and the earliest deadline cost
// what they return, however many trades are open.
import { sql, type Kysely } from "kysely";
import type { IndexerDatabase } from "../../indexer/store/schema.js";
import type { MarketWindows, PlannedTrade } from "./planActions.js";

/**
 * One deadline of one chain status. An action is due once chain time is past
 * `column + offset`: the confirmation window for reclaim (read from the market at each plan, so
 * it is not stored), nothing for the dispute deadline, which the market fixed when it was set.
 */
export interface DeadlineLane {
  status: "open" | "proposed" | "contested";
  column: "delivery_end" | "dispute_deadline";
  /** Reclaim of a contested trade only while the meter has not reported it. */
  unreportedOnly: boolean;
}

/** Every deadline escrowActions can return, one lane each; keep the two in step. */
export const DEADLINE_LANES: readonly DeadlineLane[] = [
  { status: "open", column: "delivery_end", unreportedOnly: false }, // reclaim
  { status: "proposed", column: "dispute_deadline", unreportedOnly: false }, // finalize, dispute window ended
  { status: "contested", column: "dispute_deadline", unreportedOnly: false }, // finalize, arbitration timeout
  { status: "contested", column: "delivery_end", unreportedOnly: true }, // reclaim, no report
];

/** Where a lane was read up to: the (deadline column, trade id) of the last trade read; null from the start. */
export type LaneCursor = { at: bigint; tradeId: bigint } | null;

const PLANNED_COLUMNS = ["trade_id", "batch_id", "buyer", "seller", "chain_status", "delivery_end", "dispute_deadline", "delivered_tx", "last_event_seq"] as const;
const NOT_FINAL = ["open", "proposed", "contested"] as const;

/** A lane's action falls due at its column plus this. */
export function laneOffset(lane: DeadlineLane, windows: MarketWindows): bigint {
  return lane.column === "delivery_end" ? windows.confirmationWindow : 0n;
}

/** `lane`'s trades, past `cursor` when one is given: an index range, in the index's order once sorted by (column, trade id). */
function laneQuery(db: Kysely<IndexerDatabase>, chainId: number, lane: DeadlineLane, cursor: LaneCursor = null) {
  let q = db.selectFrom("indexer_trades").where("chain_id", "=", chainId).where("chain_status", "=", lane.status);
  if (lane.unreportedOnly) q = q.where("delivered_tx", "is", null);
  if (cursor !== null) q = q.where((eb) => eb(eb.refTuple(lane.column, "trade_id"), ">", eb.tuple(cursor.at, cursor.tradeId)));
  return q;
}

/** `lane`'s trades past `cursor` whose deadline chain time `now` has passed, deadline order, at most `limit`. */
export async function listDueTrades(
  db: Kysely<IndexerDatabase>, chainId: number, lane: DeadlineLane, args: { windows: MarketWindows; now: bigint; cursor: LaneCursor; limit: number },
): Promise<PlannedTrade[]> {
  return laneQuery(db, chainId, lane, args.cursor)
    .select(PLANNED_COLUMNS)
    .where(lane.column, "<", args.now - laneOffset(lane, args.windows))
    .orderBy(lane.column)
    .orderBy("trade_id")
    .limit(args.limit)
    .execute();
}

/** `lane`'s trades whose deadline chain time `now` has not passed, soonest first, at most `limit`. */
export async function listUpcomingTrades(
  db: Kysely<IndexerDatabase>, chainId: number, lane: DeadlineLane, args: { windows: MarketWindows; now: bigint; limit: number },
): Promise<PlannedTrade[]> {
  return laneQuery(db, chainId, lane)
    .select(PLANNED_COLUMNS)
    .where(lane.column, ">=", args.now - laneOffset(lane, args.windows))
    .orderBy(lane.column)
    .orderBy("trade_id")
    .limit(args.limit)
    .execute();
}

/**
 * The earliest deadline (chain time) among the trades past each lane's cursor: a MIN per lane,
 * each the first entry of its index range, in one statement. Undefined when no trade waits on
 * one. It can lie in the past: a lane read only partly, or a trade indexed since.
 */
export async function nextDeadline(db: Kysely<IndexerDatabase>, chainId: number, args: { windows: MarketWindows; cursors: readonly LaneCursor[] }): Promise<bigint | undefined> {
  const row = await db
    .selectNoFrom(() =>
      DEADLINE_LANES.map((lane, i) =>
        laneQuery(db, chainId, lane, args.cursors[i] ?? null)
          .select(sql<bigint | null>`${sql.ref(lane.column)}`.as("at"))
          .where(lane.column, "is not", null)
          .orderBy(lane.column)
          .orderBy("trade_id")
          .limit(1)
          .as(`lane${i}`),
      ),
    )
    .executeTakeFirstOrThrow();
  let min: bigint | undefined;
  for (const [i, lane] of DEADLINE_LANES.entries()) {
    const at = (row as Record<string, bigint | string | null>)[`lane${i}`];
    if (at === null || at === undefined) continue;
    const due = BigInt(at) + laneOffset(lane, args.windows);
    if (min === undefined || due < min) min = due;
  }
  return min;
}

/** These trades, those of them not final. */
export async function listOpenTradesById(db: Kysely<IndexerDatabase>, chainId: number, tradeIds: readonly bigint[]): Promise<PlannedTrade[]> {
  if (tradeIds.length === 0) return [];
  return db
    .selectFrom("indexer_trades")
    .select(PLANNED_COLUMNS)
    .where("chain_id", "=", chainId)
    .where("trade_id", "in", tradeIds)
    .where("chain_status", "in", NOT_FINAL)
    .orderBy("trade_id")
    .execute();
}
