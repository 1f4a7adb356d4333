// The keeper's outbox rows: planned by planActions, advanced only by sendActions. Every change
// of state is one statement (or one transaction), so a crash between any two leaves rows the
// next run can carry on from: a pending row is sent, an in_flight row is resolved from its
// stored transaction (receipt, still in the pool, or the same bytes broadcast again).
import type { Kysely } from "kysely";
import type { Hex } from "viem";
import { decodeTrade, encodeTrade } from "../../bridge/outbox.js";
import type { Trade } from "../../contracts/client/trade.js";
import type {
  KeeperActionKind, KeeperActionOutcome, KeeperActionReason, KeeperActionRow, KeeperActionState, KeeperDatabase,
} from "./database.js";

export interface KeeperEntry {
  tradeId: bigint;
  action: KeeperActionKind;
  reason: KeeperActionReason;
  trade: Trade;
  proof: Hex[];
  dueAt: bigint;
  state: KeeperActionState;
  attempts: number;
  txHash: Hex | null;
  /** The stored signed transaction of an in_flight row. */
  txNonce: bigint | null;
  rawTx: Hex | null;
}

export interface NewKeeperAction {
  tradeId: bigint;
  action: KeeperActionKind;
  reason: KeeperActionReason;
  trade: Trade;
  proof: Hex[];
  dueAt: bigint;
  indexedSeq: bigint;
}

type Row = KeeperActionRow & { nonce?: bigint | null; raw?: string | null };

function toEntry(r: Row): KeeperEntry {
  return {
    tradeId: r.trade_id, action: r.action, reason: r.reason, trade: decodeTrade(r.trade), proof: JSON.parse(r.proof) as Hex[], dueAt: r.due_at,
    state: r.state, attempts: r.attempts, txHash: r.tx_hash as Hex | null, txNonce: r.nonce ?? null, rawTx: (r.raw ?? null) as Hex | null,
  };
}

const key = (chainId: number, e: { tradeId: bigint; action: KeeperActionKind }) => ({ chain_id: chainId, trade_id: e.tradeId, action: e.action });

/** Rows of these trades (any state): what the planner has already decided about them. Primary-key lookups, a page of trades at a time. */
export async function listActionsOfTrades(db: Kysely<KeeperDatabase>, chainId: number, tradeIds: readonly bigint[]): Promise<Pick<KeeperActionRow, "trade_id" | "action" | "state" | "outcome" | "indexed_seq">[]> {
  if (tradeIds.length === 0) return [];
  return db
    .selectFrom("keeper_actions")
    .select(["trade_id", "action", "state", "outcome", "indexed_seq"])
    .where("chain_id", "=", chainId)
    .where("trade_id", "in", tradeIds)
    .execute();
}

/**
 * Adds due actions as pending, or re-opens a superseded or rejected row whose trade changed on
 * chain since (a newer indexed event). An active or closed row is left as it is.
 */
export async function planDue(db: Kysely<KeeperDatabase>, chainId: number, actions: readonly NewKeeperAction[], nowMs: number): Promise<void> {
  if (actions.length === 0) return;
  const values = actions.map((a) => ({
    ...key(chainId, a), reason: a.reason, buyer: a.trade.buyer.toLowerCase(), seller: a.trade.seller.toLowerCase(), trade: encodeTrade(a.trade),
    proof: JSON.stringify(a.proof), due_at: a.dueAt, indexed_seq: a.indexedSeq, state: "pending" as const, outcome: null, attempts: 0,
    next_attempt_at: BigInt(nowMs), last_error: null, tx_hash: null, closed_block: null, closed_at: null, created_at: BigInt(nowMs), updated_at: BigInt(nowMs),
  }));
  for (let i = 0; i < values.length; i += 500) {
    await db
      .insertInto("keeper_actions")
      .values(values.slice(i, i + 500))
      .onConflict((oc) =>
        oc.columns(["chain_id", "trade_id", "action"]).doUpdateSet((eb) => ({
          state: "pending", outcome: null, reason: eb.ref("excluded.reason"), trade: eb.ref("excluded.trade"), proof: eb.ref("excluded.proof"),
          due_at: eb.ref("excluded.due_at"), indexed_seq: eb.ref("excluded.indexed_seq"), next_attempt_at: eb.ref("excluded.next_attempt_at"),
          updated_at: eb.ref("excluded.updated_at"), last_error: null,
        })).where((eb) => eb.and([
          eb("keeper_actions.outcome", "in", ["superseded", "rejected"]),
          eb("keeper_actions.indexed_seq", "<", eb.ref("excluded.indexed_seq")),
        ])),
      )
      .execute();
  }
}

export async function listInFlight(db: Kysely<KeeperDatabase>, chainId: number): Promise<KeeperEntry[]> {
  const rows = await db
    .selectFrom("keeper_actions as a")
    .leftJoin("keeper_txs as t", "t.tx_hash", "a.tx_hash")
    .selectAll("a")
    .select(["t.nonce", "t.raw"])
    .where("a.chain_id", "=", chainId)
    .where("a.state", "=", "in_flight")
    .orderBy("t.nonce")
    .execute();
  return rows.map(toEntry);
}

export async function listPendingDue(db: Kysely<KeeperDatabase>, chainId: number, nowMs: number, limit: number): Promise<KeeperEntry[]> {
  const rows = await db
    .selectFrom("keeper_actions")
    .selectAll()
    .where("chain_id", "=", chainId)
    .where("state", "=", "pending")
    .where("next_attempt_at", "<=", BigInt(nowMs))
    .orderBy("due_at")
    .orderBy("trade_id")
    .limit(limit)
    .execute();
  return rows.map(toEntry);
}

/** Rows waiting, in flight or failed (done rows, the bulk of the history, are not counted). */
export async function countUnfinished(db: Kysely<KeeperDatabase>, chainId: number): Promise<Record<Exclude<KeeperActionState, "done">, number>> {
  const rows = await db
    .selectFrom("keeper_actions")
    .select((eb) => ["state", eb.fn.countAll<bigint>().as("n")])
    .where("chain_id", "=", chainId)
    .where("state", "in", ["pending", "in_flight", "failed"])
    .groupBy("state")
    .execute();
  const counts = { pending: 0, in_flight: 0, failed: 0 };
  for (const r of rows) counts[r.state as keyof typeof counts] = Number(r.n);
  return counts;
}

/** Stores the signed transaction and ties the row to it, before it is broadcast. */
export async function markInFlight(
  db: Kysely<KeeperDatabase>, chainId: number, entry: KeeperEntry, tx: { hash: Hex; nonce: bigint; raw: Hex; sender: string }, nowMs: number,
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.insertInto("keeper_txs").values({ tx_hash: tx.hash, chain_id: chainId, sender: tx.sender.toLowerCase(), nonce: tx.nonce, raw: tx.raw, created_at: BigInt(nowMs) }).onConflict((oc) => oc.doNothing()).execute();
    await trx
      .updateTable("keeper_actions")
      .set((eb) => ({ state: "in_flight", tx_hash: tx.hash, attempts: eb("attempts", "+", 1), updated_at: BigInt(nowMs) }))
      .where("chain_id", "=", chainId)
      .where("trade_id", "=", entry.tradeId)
      .where("action", "=", entry.action)
      .execute();
  });
}

export interface ActionResult {
  tradeId: bigint;
  action: KeeperActionKind;
  outcome: KeeperActionOutcome;
  txHash: Hex | null;
  closedBlock?: bigint | null;
  closedAt?: bigint | null;
  error?: string;
}

export async function markDone(db: Kysely<KeeperDatabase>, chainId: number, results: readonly ActionResult[], nowMs: number): Promise<void> {
  if (results.length === 0) return;
  await db.transaction().execute(async (trx) => {
    for (const r of results) {
      await trx
        .updateTable("keeper_actions")
        .set({
          state: r.outcome === "rejected" ? "failed" : "done", outcome: r.outcome, tx_hash: r.txHash, closed_block: r.closedBlock ?? null, closed_at: r.closedAt ?? null,
          last_error: r.error?.slice(0, 2_000) ?? null, updated_at: BigInt(nowMs),
        })
        .where("chain_id", "=", chainId)
        .where("trade_id", "=", r.tradeId)
        .where("action", "=", r.action)
        .where("state", "in", ["pending", "in_flight"])
        .execute();
    }
  });
}

/**
 * Back to pending, to be sent no earlier than `nextAttemptMs`. The row keeps its last
 * transaction hash: if that transaction turns out to have closed the trade after all, the next
 * status check says so (closed, not already_closed).
 */
export async function markRetry(
  db: Kysely<KeeperDatabase>, chainId: number, entries: readonly KeeperEntry[], error: string, nextAttemptMs: number, nowMs: number, { countAttempt }: { countAttempt: boolean },
): Promise<void> {
  for (const e of entries) {
    await db
      .updateTable("keeper_actions")
      .set((eb) => ({
        state: "pending", last_error: error.slice(0, 2_000), next_attempt_at: BigInt(nextAttemptMs), updated_at: BigInt(nowMs),
        ...(countAttempt ? { attempts: eb("attempts", "+", 1) } : {}),
      }))
      .where("chain_id", "=", chainId)
      .where("trade_id", "=", e.tradeId)
      .where("action", "=", e.action)
      .execute();
  }
}

/** Rows waiting or in flight, soonest due first. */
export async function listActive(db: Kysely<KeeperDatabase>, chainId: number, limit: number): Promise<KeeperActionRow[]> {
  return db.selectFrom("keeper_actions").selectAll().where("chain_id", "=", chainId).where("state", "in", ["pending", "in_flight"]).orderBy("due_at").orderBy("trade_id").limit(limit).execute();
}

/** Rows done or failed, most recently changed first. */
export async function listRecent(db: Kysely<KeeperDatabase>, chainId: number, limit: number): Promise<KeeperActionRow[]> {
  return db.selectFrom("keeper_actions").selectAll().where("chain_id", "=", chainId).where("state", "in", ["done", "failed"]).orderBy("updated_at", "desc").orderBy("trade_id", "desc").limit(limit).execute();
}
