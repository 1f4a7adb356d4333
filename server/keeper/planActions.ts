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
import { sql, type Kysely } from "kysely";
import type { IndexerDatabase, TradeRow } from "../../indexer/store/schema.js";
import type { KeeperActionKind, KeeperActionReason } from "./database.js";

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

const PAGE = 1_000;
const NOT_FINAL = ["open", "proposed", "contested"] as const;

export interface OpenTradeScan {
  /** Every trade that is not final (chain_status open, proposed or contested), in trade-id order. */
  list(): Promise<PlannedTrade[]>;
}

/**
 * Reads the trades that are not final without scanning the whole history each time: trade ids
 * grow along the chain and trades become final roughly in that order, so everything below the
 * oldest trade still open is final and is skipped (a primary-key range). Every `fullScanMs` the
 * range starts from the beginning again, which catches a trade a reorg made open again below it.
 */
export function createOpenTradeScan(db: Kysely<IndexerDatabase>, chainId: number, options: { fullScanMs?: number; clock?: () => number } = {}): OpenTradeScan {
  const fullScanMs = options.fullScanMs ?? 300_000;
  const clock = options.clock ?? Date.now;
  let lowWater = 0n;
  let lastFullScanMs = -Infinity;
  return {
    async list() {
      if (clock() - lastFullScanMs >= fullScanMs) {
        lowWater = 0n;
        lastFullScanMs = clock();
      }
      const out: PlannedTrade[] = [];
      let after: bigint | undefined;
      for (;;) {
        let q = db
          .selectFrom("indexer_trades")
          .select(["trade_id", "batch_id", "buyer", "seller", "chain_status", "delivery_end", "dispute_deadline", "delivered_tx", "last_event_seq"])
          .where("chain_id", "=", chainId)
          .where("trade_id", ">=", lowWater)
          .where("chain_status", "in", NOT_FINAL);
        if (after !== undefined) q = q.where("trade_id", ">", after);
        const rows = await q.orderBy("trade_id").limit(PAGE).execute();
        out.push(...rows);
        if (rows.length < PAGE) break;
        after = rows.at(-1)!.trade_id;
      }
      if (out.length > 0) lowWater = out[0]!.trade_id;
      else {
        // Nothing open: the next trade to look at is after the newest indexed one.
        const newest = await db.selectFrom("indexer_trades").select(sql<bigint | null>`max(trade_id)`.as("id")).where("chain_id", "=", chainId).executeTakeFirst();
        if (newest?.id !== null && newest?.id !== undefined) lowWater = BigInt(newest.id) + 1n;
      }
      return out;
    },
  };
}
