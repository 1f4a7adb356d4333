// Drains the outbox onto the chain as METER_ORACLE: reportDeliveries for many trades per
// transaction, reportDelivery for one. The order of steps is what makes it exactly-once:
//   1. transactions already signed (in_flight) are resolved first: receipt found -> done; still
//      known to the node -> wait; unknown with its nonce unused -> the same signed bytes are
//      broadcast again (same hash, cannot double); nonce used by something else -> pending;
//   2. pending reports are checked against the market's trade status: one that is no longer
//      reportable (we reported it before a crash, the buyer released or reclaimed) is done;
//   3. the rest is simulated per batch (a revert splits the batch to find the one trade at
//      fault), signed, stored with its hash and raw bytes, and only then broadcast.
// The market rejects a second report of a trade, so whatever happens the chain sees each
// report at most once, and a trade in the outbox is retried until it is.
import type { Kysely } from "kysely";
import {
  BaseError as ViemBaseError, ContractFunctionRevertedError, decodeErrorResult, encodeFunctionData, keccak256, parseEventLogs,
  type Address, type Hex, type LocalAccount, type PublicClient, type TransactionReceipt,
} from "viem";
import { energyMarketAbi } from "../contracts/client/abi.js";
import type { Logger } from "../lib/logger.js";
import type { BridgeDatabase } from "./database.js";
import type { BridgeMetrics } from "./metrics.js";
import {
  countUnsent, listInFlight, listPendingDue, markDone, markInFlight, markRetry, noteError, type OutboxEntry, type ReportOutcome,
} from "./outbox.js";

export interface SendDependencies {
  db: Kysely<BridgeDatabase>;
  client: PublicClient;
  account: LocalAccount;
  market: Address;
  chainId: number;
  /** Where to look for earlier DeliveryConfirmed events. */
  fromBlock: bigint;
  /** Unix milliseconds. */
  clock: () => number;
  batchSize: number;
  retryMinMs: number;
  retryMaxMs: number;
  receiptTimeoutMs?: number;
  metrics: BridgeMetrics;
  logger: Logger;
  onReported?: (reports: ReportResult[]) => void;
}

export interface ReportResult {
  tradeId: bigint;
  outcome: ReportOutcome;
  txHash: Hex | null;
}

/** TradeStatus of IEnergyMarket. */
const TradeStatus = { Open: 0, Proposed: 1, Contested: 2, Settled: 3, Refunded: 4 } as const;
/** Reports per drain, so one drain never holds the sender for long. */
const MAX_BATCHES_PER_DRAIN = 40;

export function retryDelayMs(attempts: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(attempts, 30));
}

export async function sendDeliveryReports(deps: SendDependencies): Promise<ReportResult[]> {
  const results: ReportResult[] = [];
  results.push(...(await resolveInFlight(deps)));
  const pending = await listPendingDue(deps.db, deps.clock(), deps.batchSize * MAX_BATCHES_PER_DRAIN);
  if (pending.length > 0) {
    try {
      results.push(...(await sendPending(deps, pending)));
    } catch (err) {
      // The chain is unreachable or answered nonsense: these rows wait and try again later.
      const nowMs = deps.clock();
      const attempts = Math.max(...pending.map((p) => p.attempts));
      await noteError(deps.db, pending.map((p) => p.tradeId), describe(err), nowMs + retryDelayMs(attempts, deps.retryMinMs, deps.retryMaxMs), nowMs);
      throw err;
    }
  }
  deps.metrics.confirmationsPending = await countUnsent(deps.db);
  if (results.length > 0) deps.onReported?.(results);
  return results;
}

async function resolveInFlight(deps: SendDependencies): Promise<ReportResult[]> {
  const { db, client } = deps;
  const rows = await listInFlight(db);
  const byHash = new Map<Hex, OutboxEntry[]>();
  for (const r of rows) byHash.set(r.txHash!, [...(byHash.get(r.txHash!) ?? []), r]);
  const results: ReportResult[] = [];
  for (const [hash, entries] of byHash) {
    const receipt = await client.getTransactionReceipt({ hash }).catch((err) => (isNotFound(err) ? null : Promise.reject(err)));
    if (receipt) {
      results.push(...(await recordReceipt(deps, entries, receipt)));
      continue;
    }
    const known = await client.getTransaction({ hash }).catch((err) => (isNotFound(err) ? null : Promise.reject(err)));
    if (known) continue; // still in the node's pool
    const nonce = await client.getTransactionCount({ address: deps.account.address, blockTag: "latest" });
    const nowMs = deps.clock();
    if (BigInt(nonce) > entries[0]!.txNonce!) {
      // The nonce went to another transaction: ours can never be mined. Check and send anew.
      await markRetry(db, entries.map((e) => e.tradeId), `transaction ${hash} was replaced`, nowMs, nowMs, { countAttempt: false });
    } else {
      deps.logger.warn({ msg: "re-broadcasting a signed delivery report", txHash: hash, trades: entries.length });
      await client.sendRawTransaction({ serializedTransaction: entries[0]!.rawTx! });
      const mined = await client.waitForTransactionReceipt({ hash, pollingInterval: 100, timeout: deps.receiptTimeoutMs ?? 60_000 });
      results.push(...(await recordReceipt(deps, entries, mined)));
    }
  }
  return results;
}

async function recordReceipt(deps: SendDependencies, entries: OutboxEntry[], receipt: TransactionReceipt): Promise<ReportResult[]> {
  const nowMs = deps.clock();
  if (receipt.status !== "success") {
    // Nothing happened on-chain; the status check of the next drain tells why.
    await markRetry(deps.db, entries.map((e) => e.tradeId), `transaction ${receipt.transactionHash} reverted`, nowMs, nowMs, { countAttempt: false });
    return [];
  }
  const confirmed = new Map<bigint, boolean>();
  for (const log of parseEventLogs({ abi: energyMarketAbi, logs: receipt.logs, eventName: "DeliveryConfirmed" })) {
    confirmed.set(log.args.tradeId, log.args.withinTolerance);
  }
  const results: ReportResult[] = entries.map((e) => ({
    tradeId: e.tradeId,
    outcome: confirmed.get(e.tradeId) === false ? "disputed" : "confirmed",
    txHash: receipt.transactionHash,
  }));
  await markDone(deps.db, results, nowMs);
  for (const r of results) {
    if (r.outcome === "confirmed") deps.metrics.confirmations.confirmed++;
    else deps.metrics.confirmations.disputed++;
  }
  return results;
}

async function sendPending(deps: SendDependencies, pending: OutboxEntry[]): Promise<ReportResult[]> {
  const { client, market } = deps;
  const results: ReportResult[] = [];
  // Only a report tried before can have reached the chain already (or met a trade the buyer
  // released meanwhile): those are checked first. A fresh report that meets a final trade is
  // found by the batch's simulation instead, which costs nothing in the usual case.
  const retried = pending.filter((p) => p.attempts > 0);
  const [statuses, block] = await Promise.all([
    Promise.all(retried.map((p) => client.readContract({ address: market, abi: energyMarketAbi, functionName: "tradeStatus", args: [p.tradeId] }))),
    client.getBlock({ blockTag: "latest" }),
  ]);
  const statusOf = new Map(retried.map((p, i) => [p.tradeId, statuses[i]!]));
  const contested = retried.filter((p) => statusOf.get(p.tradeId) === TradeStatus.Contested);
  const reportedWhileContested = new Map<bigint, boolean>();
  await Promise.all(
    contested.map(async (p) => {
      const d = await client.readContract({ address: market, abi: energyMarketAbi, functionName: "dispute", args: [p.tradeId] });
      reportedWhileContested.set(p.tradeId, d.reported);
    }),
  );

  const final: OutboxEntry[] = [];
  const notYet: OutboxEntry[] = [];
  const sendable: OutboxEntry[] = [];
  for (const p of pending) {
    const status = statusOf.get(p.tradeId) ?? TradeStatus.Open;
    // A party may contest before the oracle reports; the report then becomes the arbiter's evidence.
    const reportable = status === TradeStatus.Open || (status === TradeStatus.Contested && !reportedWhileContested.get(p.tradeId));
    if (!reportable) final.push(p);
    else if (p.trade.deliveryEnd > block.timestamp) notYet.push(p);
    else sendable.push(p);
  }
  if (final.length > 0) results.push(...(await recordAlreadyFinal(deps, final)));
  if (notYet.length > 0) {
    const nowMs = deps.clock();
    await markRetry(deps.db, notYet.map((p) => p.tradeId), `chain time ${block.timestamp} is before the delivery end`, nowMs + deps.retryMinMs, nowMs, { countAttempt: false });
  }

  const queue: OutboxEntry[][] = [];
  for (let i = 0; i < sendable.length; i += deps.batchSize) queue.push(sendable.slice(i, i + deps.batchSize));
  let nonce: number | undefined;
  let fees: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | undefined;
  const broadcast: { hash: Hex; entries: OutboxEntry[] }[] = [];
  while (queue.length > 0) {
    const batch = queue.shift()!;
    const data = batch.length === 1
      ? encodeFunctionData({ abi: energyMarketAbi, functionName: "reportDelivery", args: [batch[0]!.trade, batch[0]!.proof, batch[0]!.deliveredWh, batch[0]!.evidenceHash] })
      : encodeFunctionData({
          abi: energyMarketAbi, functionName: "reportDeliveries",
          args: [batch.map((e) => ({ trade: e.trade, proof: e.proof, deliveredWh: e.deliveredWh, evidenceHash: e.evidenceHash }))],
        });
    let gas: bigint;
    try {
      gas = await client.estimateGas({ account: deps.account, to: market, data });
    } catch (err) {
      const revert = revertName(err);
      if (!revert) throw err;
      if (batch.length > 1) {
        // One trade spoils the batch: send the rest without it, one by one until it is found.
        queue.unshift(...batch.map((e) => [e]));
        continue;
      }
      results.push(...(await handleSingleRevert(deps, batch[0]!, revert, err)));
      continue;
    }
    nonce ??= await client.getTransactionCount({ address: deps.account.address, blockTag: "pending" });
    fees ??= await client.estimateFeesPerGas();
    const txNonce = nonce++;
    const raw = await deps.account.signTransaction!({
      type: "eip1559", chainId: deps.chainId, to: market, data, nonce: txNonce, gas: (gas * 12n) / 10n, ...fees,
    });
    const hash = keccak256(raw);
    const nowMs = deps.clock();
    await markInFlight(deps.db, batch.map((e) => e.tradeId), { hash, nonce: BigInt(txNonce), raw }, nowMs);
    await client.sendRawTransaction({ serializedTransaction: raw });
    deps.metrics.reportTransactions++;
    broadcast.push({ hash, entries: batch });
  }
  for (const { hash, entries } of broadcast) {
    const receipt = await client.waitForTransactionReceipt({ hash, pollingInterval: 100, timeout: deps.receiptTimeoutMs ?? 60_000 });
    results.push(...(await recordReceipt(deps, entries, receipt)));
  }
  return results;
}

async function recordAlreadyFinal(deps: SendDependencies, entries: OutboxEntry[]): Promise<ReportResult[]> {
  // Our own report may be why (sent just before a crash, the hash lost with the process): say so.
  const logs = await deps.client.getContractEvents({
    address: deps.market, abi: energyMarketAbi, eventName: "DeliveryConfirmed",
    args: { tradeId: entries.map((e) => e.tradeId) }, fromBlock: deps.fromBlock, toBlock: "latest", strict: true,
  });
  const ours = new Map<bigint, { within: boolean; tx: Hex }>();
  for (const log of logs) ours.set(log.args.tradeId, { within: log.args.withinTolerance, tx: log.transactionHash });
  const results: ReportResult[] = entries.map((e) => {
    const o = ours.get(e.tradeId);
    return { tradeId: e.tradeId, outcome: o ? (o.within ? "confirmed" : "disputed") : "already_final", txHash: o?.tx ?? null };
  });
  await markDone(deps.db, results, deps.clock());
  for (const r of results) {
    if (r.outcome === "already_final") deps.metrics.confirmations.alreadyFinal++;
    else if (r.outcome === "confirmed") deps.metrics.confirmations.confirmed++;
    else deps.metrics.confirmations.disputed++;
  }
  deps.logger.info({ msg: "outbox rows already final on-chain", trades: results.length, reportedBefore: results.filter((r) => r.outcome !== "already_final").length });
  return results;
}

async function handleSingleRevert(deps: SendDependencies, entry: OutboxEntry, revert: string, err: unknown): Promise<ReportResult[]> {
  const nowMs = deps.clock();
  if (revert === "InvalidTradeStatus") return recordAlreadyFinal(deps, [entry]);
  if (revert === "DeliveryNotEnded") {
    await markRetry(deps.db, [entry.tradeId], "DeliveryNotEnded: chain time before the window's end", nowMs + deps.retryMinMs, nowMs, { countAttempt: false });
    return [];
  }
  if (revert === "InvalidTradeProof" || revert === "InvalidTradeProofOrUnknown") {
    deps.logger.error({ msg: "the market refuses a delivery report for good", tradeId: entry.tradeId.toString(), revert });
    deps.metrics.confirmations.rejected++;
    const result: ReportResult = { tradeId: entry.tradeId, outcome: "rejected", txHash: null };
    await markDone(deps.db, [{ ...result, error: `${revert}: ${describe(err)}` }], nowMs);
    return [result];
  }
  // AccessControlUnauthorizedAccount, EnforcedPause or anything new: an operator must act; retry slowly.
  deps.logger.error({ msg: "delivery report reverted", tradeId: entry.tradeId.toString(), revert, err: describe(err) });
  await markRetry(deps.db, [entry.tradeId], `${revert}: ${describe(err)}`, nowMs + retryDelayMs(entry.attempts + 1, deps.retryMinMs, deps.retryMaxMs), nowMs, { countAttempt: true });
  return [];
}

/** The custom error's name when `err` is a contract revert, else undefined (a transport problem). */
function revertName(err: unknown): string | undefined {
  if (!(err instanceof ViemBaseError)) return undefined;
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null;
  if (reverted) return reverted.data?.errorName ?? reverted.reason ?? "reverted";
  const raw = err.walk((e) => typeof (e as { data?: unknown }).data === "string" && /^0x[0-9a-f]{8}/i.test((e as { data: string }).data)) as { data?: Hex } | null;
  if (raw?.data) {
    try {
      return decodeErrorResult({ abi: energyMarketAbi, data: raw.data }).errorName;
    } catch {
      return "reverted";
    }
  }
  return /revert|execution reverted/i.test(err.message) ? "reverted" : undefined;
}

function isNotFound(err: unknown): boolean {
  const name = (err as Error)?.name ?? "";
  return name === "TransactionReceiptNotFoundError" || name === "TransactionNotFoundError";
}

function describe(err: unknown): string {
  return err instanceof ViemBaseError ? err.shortMessage : String((err as Error)?.message ?? err);
}
