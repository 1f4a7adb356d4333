// Outbox rows: a delivery report decided but maybe not yet on-chain. Written in the same
// transaction as the decision, read and advanced only by sendDeliveryReports. States:
//   pending    -> to send (after next_attempt_at)
//   in_flight  -> signed; the hash (and in bridge_report_txs the signed bytes) stored BEFORE
//                 broadcasting, so a crash at any point leaves a transaction the next run can
//                 find, re-broadcast, or give up as replaced
//   done       -> the chain has the report (outcome confirmed / disputed), or the trade was
//                 already final (outcome already_final: reported before, released, reclaimed)
//   failed     -> the market refuses it for good (outcome rejected, e.g. a bad proof)
import type { Kysely, Selectable } from "kysely";
import type { Address, Hex } from "viem";
import type { Trade } from "../contracts/client/trade.js";
import type { BridgeDatabase, BridgeOutboxTable } from "./database.js";

export type OutboxState = "pending" | "in_flight" | "done" | "failed";
export type ReportOutcome = "confirmed" | "disputed" | "already_final" | "rejected";

export interface OutboxEntry {
  tradeId: bigint;
  trade: Trade;
  proof: Hex[];
  deliveredWh: bigint;
  evidenceHash: Hex;
  state: OutboxState;
  attempts: number;
  txHash: Hex | null;
  txNonce: bigint | null;
  rawTx: Hex | null;
}

export function encodeTrade(trade: Trade): string {
  return JSON.stringify(trade, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
}

export function decodeTrade(json: string): Trade {
  const t = JSON.parse(json) as Record<string, string | number>;
  return {
    tradeId: BigInt(t.tradeId!), batchId: BigInt(t.batchId!), seller: t.seller as Address, buyer: t.buyer as Address,
    zone: t.zone as Hex, energyWh: BigInt(t.energyWh!), pricePerKWh: BigInt(t.pricePerKWh!), amount: BigInt(t.amount!),
    deliveryStart: BigInt(t.deliveryStart!), deliveryEnd: BigInt(t.deliveryEnd!), source: Number(t.source),
    communityFeeBps: Number(t.communityFeeBps), networkFeePerKWh: BigInt(t.networkFeePerKWh!),
  };
}

type Row = Selectable<BridgeOutboxTable> & { nonce?: bigint | null; raw?: string | null };

function toEntry(r: Row): OutboxEntry {
  return {
    tradeId: r.trade_id, trade: decodeTrade(r.trade), proof: JSON.parse(r.proof) as Hex[], deliveredWh: r.delivered_wh,
    evidenceHash: r.evidence_hash as Hex, state: r.state as OutboxState, attempts: r.attempts,
    txHash: r.tx_hash as Hex | null, txNonce: r.nonce ?? null, rawTx: (r.raw ?? null) as Hex | null,
  };
}

export async function listInFlight(db: Kysely<BridgeDatabase>): Promise<OutboxEntry[]> {
  const rows = await db
    .selectFrom("bridge_outbox as o")
    .leftJoin("bridge_report_txs as t", "t.tx_hash", "o.tx_hash")
    .selectAll("o")
    .select(["t.nonce", "t.raw"])
    .where("o.state", "=", "in_flight")
    .orderBy("o.trade_id")
    .execute();
  return rows.map(toEntry);
}

export async function listPendingDue(db: Kysely<BridgeDatabase>, nowMs: number, limit: number): Promise<OutboxEntry[]> {
  const rows = await db
    .selectFrom("bridge_outbox")
    .selectAll()
    .where("state", "=", "pending")
    .where("next_attempt_at", "<=", BigInt(nowMs))
    .orderBy("trade_id")
    .limit(limit)
    .execute();
  return rows.map(toEntry);
}

export async function countUnsent(db: Kysely<BridgeDatabase>): Promise<number> {
  const r = await db
    .selectFrom("bridge_outbox")
    .select((eb) => eb.fn.countAll<bigint>().as("n"))
    .where("state", "in", ["pending", "in_flight"])
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Stores the signed transaction and ties the rows to it, before it is broadcast. */
export async function markInFlight(db: Kysely<BridgeDatabase>, tradeIds: bigint[], tx: { hash: Hex; nonce: bigint; raw: Hex }, nowMs: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.insertInto("bridge_report_txs").values({ tx_hash: tx.hash, nonce: tx.nonce, raw: tx.raw, created_at: BigInt(nowMs) }).onConflict((oc) => oc.doNothing()).execute();
    await trx
      .updateTable("bridge_outbox")
      .set((eb) => ({ state: "in_flight", tx_hash: tx.hash, attempts: eb("attempts", "+", 1), updated_at: BigInt(nowMs) }))
      .where("trade_id", "in", tradeIds)
      .execute();
  });
}

export async function markDone(
  db: Kysely<BridgeDatabase>, outcomes: { tradeId: bigint; outcome: ReportOutcome; txHash: Hex | null; error?: string }[], nowMs: number,
): Promise<void> {
  if (outcomes.length === 0) return;
  // One statement per (outcome, transaction, error): a 100-report transaction is one update.
  const groups = new Map<string, typeof outcomes>();
  for (const o of outcomes) {
    const key = JSON.stringify([o.outcome, o.txHash, o.error ?? null]);
    groups.set(key, [...(groups.get(key) ?? []), o]);
  }
  await db.transaction().execute(async (trx) => {
    for (const group of groups.values()) {
      const o = group[0]!;
      await trx
        .updateTable("bridge_outbox")
        .set({ state: o.outcome === "rejected" ? "failed" : "done", outcome: o.outcome, tx_hash: o.txHash, last_error: o.error ?? null, updated_at: BigInt(nowMs) })
        .where("trade_id", "in", group.map((g) => g.tradeId))
        .where("state", "in", ["pending", "in_flight"])
        .execute();
    }
  });
}

/** Back to pending, to be retried no earlier than `nextAttemptMs`. */
export async function markRetry(db: Kysely<BridgeDatabase>, tradeIds: bigint[], error: string, nextAttemptMs: number, nowMs: number, { countAttempt }: { countAttempt: boolean }): Promise<void> {
  if (tradeIds.length === 0) return;
  await db
    .updateTable("bridge_outbox")
    .set((eb) => ({
      state: "pending", last_error: error.slice(0, 2_000), next_attempt_at: BigInt(nextAttemptMs), updated_at: BigInt(nowMs),
      tx_hash: null,
      ...(countAttempt ? { attempts: eb("attempts", "+", 1) } : {}),
    }))
    .where("trade_id", "in", tradeIds)
    .execute();
}

/** Leaves the rows as they are but records why this attempt did not finish. */
export async function noteError(db: Kysely<BridgeDatabase>, tradeIds: bigint[], error: string, nextAttemptMs: number, nowMs: number): Promise<void> {
  if (tradeIds.length === 0) return;
  await db
    .updateTable("bridge_outbox")
    .set((eb) => ({ last_error: error.slice(0, 2_000), next_attempt_at: BigInt(nextAttemptMs), updated_at: BigInt(nowMs), attempts: eb("attempts", "+", 1) }))
    .where("trade_id", "in", tradeIds)
    .where("state", "=", "pending")
    .execute();
}
