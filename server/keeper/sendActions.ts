// Drains the keeper's outbox onto the chain: finalizeDispute and reclaim for trades whose
// deadline passed, one transaction each, signed by the keeper's own account. The order of steps
// is what makes it exactly-once, as in the bridge's delivery reports (bridge/sendDeliveryReports.ts):
//   1. transactions already signed (in_flight) are resolved first: receipt found -> recorded;
//      still known to the node -> wait; unknown with its nonce unused -> the same signed bytes
//      are broadcast again (same hash, cannot double); nonce used by something else -> pending;
//   2. each pending action is checked against the market's trade status: a trade already final
//      (someone else finalised or reclaimed it, the buyer released it, the arbiter decided) is
//      done as already_closed; one in a state the action does not fit is superseded;
//   3. the rest are simulated one by one (a revert says why: not yet due, already closed, a bad
//      proof), signed with consecutive nonces, stored with their raw bytes, and only then
//      broadcast, all of this drain's in one go before their receipts are awaited.
// The market closes a trade at most once, so whatever happens the chain sees each escrow closed
// once; the outbox makes the keeper spend at most one mined transaction on it.
import type { Kysely } from "kysely";
import {
  BaseError as ViemBaseError, ContractFunctionRevertedError, decodeErrorResult, encodeFunctionData, keccak256,
  type Address, type Hex, type LocalAccount, type PublicClient, type TransactionReceipt,
} from "viem";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import type { IndexerDatabase } from "../../indexer/store/schema.js";
import type { Logger } from "../../lib/logger.js";
import { listInFlight, listPendingDue, markDone, markInFlight, markRetry, type ActionResult, type KeeperEntry } from "./actionStore.js";
import type { KeeperDatabase } from "./database.js";

/** IEnergyMarket.TradeStatus. */
const TradeStatus = { Open: 0, Proposed: 1, Contested: 2, Settled: 3, Refunded: 4 } as const;

/** Where a test stops the keeper as if the process died there. */
export interface KeeperFaults {
  /** After the signed transaction is stored, before it is broadcast. */
  afterStore?: (entry: KeeperEntry) => void;
  /** After the broadcast, before the receipt is recorded. */
  afterBroadcast?: (entry: KeeperEntry) => void;
}

export interface SendActionsDependencies {
  db: Kysely<KeeperDatabase>;
  /** Read for the transaction that closed a trade someone else closed. */
  indexerDb: Kysely<IndexerDatabase>;
  client: PublicClient;
  account: LocalAccount;
  market: Address;
  chainId: number;
  /** Unix milliseconds, for retry times. */
  clock: () => number;
  /** Actions per drain. */
  maxActions: number;
  retryMinMs: number;
  retryMaxMs: number;
  receiptTimeoutMs: number;
  logger: Logger;
  faults?: KeeperFaults;
}

export function retryDelayMs(attempts: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(attempts, 30));
}

export async function sendActions(deps: SendActionsDependencies): Promise<ActionResult[]> {
  const results: ActionResult[] = [];
  results.push(...(await resolveInFlight(deps)));
  const pending = await listPendingDue(deps.db, deps.chainId, deps.clock(), deps.maxActions);
  if (pending.length > 0) results.push(...(await sendPending(deps, pending)));
  return results;
}

async function resolveInFlight(deps: SendActionsDependencies): Promise<ActionResult[]> {
  const { db, client, chainId } = deps;
  const results: ActionResult[] = [];
  let accountNonce: number | undefined;
  for (const entry of await listInFlight(db, chainId)) {
    const hash = entry.txHash!;
    const receipt = await receiptOf(client, hash);
    if (receipt) {
      results.push(...(await recordReceipt(deps, entry, receipt)));
      continue;
    }
    const known = await client.getTransaction({ hash }).catch((err) => (isNotFound(err) ? null : Promise.reject(err)));
    if (known) continue; // still in the node's pool
    accountNonce ??= await client.getTransactionCount({ address: deps.account.address, blockTag: "latest" });
    const nowMs = deps.clock();
    if (entry.rawTx === null || BigInt(accountNonce) > entry.txNonce!) {
      // The nonce went to another transaction: ours can never be mined. Check and send anew.
      await markRetry(db, chainId, [entry], `transaction ${hash} was replaced`, nowMs, nowMs, { countAttempt: false });
    } else {
      deps.logger.warn({ msg: "keeper: broadcasting a signed transaction again", txHash: hash, tradeId: entry.tradeId.toString(), action: entry.action });
      await client.sendRawTransaction({ serializedTransaction: entry.rawTx });
      const mined = await client.waitForTransactionReceipt({ hash, pollingInterval: 100, timeout: deps.receiptTimeoutMs });
      results.push(...(await recordReceipt(deps, entry, mined)));
    }
  }
  return results;
}

async function recordReceipt(deps: SendActionsDependencies, entry: KeeperEntry, receipt: TransactionReceipt): Promise<ActionResult[]> {
  const nowMs = deps.clock();
  if (receipt.status !== "success") {
    // Nothing happened on-chain; the status check of the next drain tells why.
    await markRetry(deps.db, deps.chainId, [entry], `transaction ${receipt.transactionHash} reverted`, nowMs, nowMs, { countAttempt: false });
    return [];
  }
  const block = await deps.client.getBlock({ blockNumber: receipt.blockNumber });
  const result: ActionResult = { tradeId: entry.tradeId, action: entry.action, outcome: "closed", txHash: receipt.transactionHash, closedBlock: receipt.blockNumber, closedAt: block.timestamp };
  await markDone(deps.db, deps.chainId, [result], nowMs);
  deps.logger.info({ msg: "keeper: escrow closed", tradeId: entry.tradeId.toString(), action: entry.action, txHash: receipt.transactionHash, block_number: Number(receipt.blockNumber) });
  return [result];
}

async function sendPending(deps: SendActionsDependencies, pending: KeeperEntry[]): Promise<ActionResult[]> {
  const { client, market } = deps;
  const results: ActionResult[] = [];
  const statuses = await Promise.all(pending.map((p) => client.readContract({ address: market, abi: energyMarketAbi, functionName: "tradeStatus", args: [p.tradeId] })));
  const sendable: KeeperEntry[] = [];
  for (const [i, p] of pending.entries()) {
    const status = statuses[i]!;
    if (status === TradeStatus.Settled || status === TradeStatus.Refunded) {
      results.push(await recordAlreadyClosed(deps, p));
      continue;
    }
    const fits = p.action === "finalize" ? status === TradeStatus.Proposed || status === TradeStatus.Contested : status === TradeStatus.Open || status === TradeStatus.Contested;
    if (!fits) results.push(await recordSuperseded(deps, p, status));
    else sendable.push(p);
  }

  let nonce: number | undefined;
  let fees: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | undefined;
  const broadcast: KeeperEntry[] = [];
  for (const entry of sendable) {
    const data = encodeFunctionData({ abi: energyMarketAbi, functionName: entry.action === "finalize" ? "finalizeDispute" : "reclaim", args: [entry.trade, entry.proof] });
    let gas: bigint;
    try {
      gas = await client.estimateGas({ account: deps.account, to: market, data });
    } catch (err) {
      const revert = revertName(err);
      if (!revert) throw err;
      const result = await handleRevert(deps, entry, revert, err);
      if (result) results.push(result);
      continue;
    }
    nonce ??= await client.getTransactionCount({ address: deps.account.address, blockTag: "pending" });
    fees ??= await client.estimateFeesPerGas();
    const txNonce = nonce++;
    const raw = await deps.account.signTransaction!({ type: "eip1559", chainId: deps.chainId, to: market, data, nonce: txNonce, gas: (gas * 12n) / 10n, ...fees });
    const hash = keccak256(raw);
    const signed = { ...entry, txHash: hash, txNonce: BigInt(txNonce), rawTx: raw, state: "in_flight" as const };
    await markInFlight(deps.db, deps.chainId, entry, { hash, nonce: BigInt(txNonce), raw, sender: deps.account.address }, deps.clock());
    deps.faults?.afterStore?.(signed);
    try {
      await client.sendRawTransaction({ serializedTransaction: raw });
    } catch (err) {
      // Stored but maybe not sent: the next drain finds it (receipt, pool, or sends it again).
      // Later nonces would wait behind it, so this drain sends nothing more.
      deps.logger.warn({ msg: "keeper: broadcast failed; the stored transaction is resolved next tick", txHash: hash, err: describe(err) });
      break;
    }
    broadcast.push(signed);
  }
  for (const entry of broadcast) {
    deps.faults?.afterBroadcast?.(entry);
    const receipt = await client.waitForTransactionReceipt({ hash: entry.txHash!, pollingInterval: 100, timeout: deps.receiptTimeoutMs });
    results.push(...(await recordReceipt(deps, entry, receipt)));
  }
  return results;
}

/**
 * The trade is final: our own earlier transaction may be why (mined just as its status was
 * checked), else someone else closed it. The indexer names the closing transaction when it
 * has seen it.
 */
async function recordAlreadyClosed(deps: SendActionsDependencies, entry: KeeperEntry): Promise<ActionResult> {
  const nowMs = deps.clock();
  if (entry.txHash) {
    const receipt = await receiptOf(deps.client, entry.txHash);
    if (receipt?.status === "success") return (await recordReceipt(deps, entry, receipt))[0]!;
  }
  const row = await deps.indexerDb
    .selectFrom("indexer_trades")
    .select(["final_tx", "final_at"])
    .where("chain_id", "=", deps.chainId)
    .where("trade_id", "=", entry.tradeId)
    .executeTakeFirst();
  const result: ActionResult = { tradeId: entry.tradeId, action: entry.action, outcome: "already_closed", txHash: (row?.final_tx ?? null) as Hex | null, closedAt: row?.final_at ?? null };
  await markDone(deps.db, deps.chainId, [result], nowMs);
  deps.logger.info({ msg: "keeper: escrow already closed by someone else", tradeId: entry.tradeId.toString(), action: entry.action, txHash: result.txHash });
  return result;
}

async function recordSuperseded(deps: SendActionsDependencies, entry: KeeperEntry, status: number): Promise<ActionResult> {
  const names = ["Open", "Proposed", "Contested", "Settled", "Refunded"];
  const result: ActionResult = { tradeId: entry.tradeId, action: entry.action, outcome: "superseded", txHash: null, error: `the trade is ${names[status] ?? status} on chain: ${entry.action} does not apply` };
  await markDone(deps.db, deps.chainId, [result], deps.clock());
  return result;
}

async function handleRevert(deps: SendActionsDependencies, entry: KeeperEntry, revert: string, err: unknown): Promise<ActionResult | undefined> {
  const nowMs = deps.clock();
  switch (revert) {
    case "InvalidTradeStatus": {
      // Closed or moved on between the status read and the simulation.
      const status = await deps.client.readContract({ address: deps.market, abi: energyMarketAbi, functionName: "tradeStatus", args: [entry.tradeId] });
      return status === TradeStatus.Settled || status === TradeStatus.Refunded ? recordAlreadyClosed(deps, entry) : recordSuperseded(deps, entry, status);
    }
    case "DisputeWindowOpen":
    case "ConfirmationDeadlineNotReached":
    case "DeliveryNotEnded":
      // The index or the chain's clock is behind what the plan saw (a new contest moved the
      // deadline, a block not yet mined): look again shortly.
      await markRetry(deps.db, deps.chainId, [entry], `${revert}: not due on chain yet`, nowMs + deps.retryMinMs, nowMs, { countAttempt: false });
      return undefined;
    case "InvalidTradeProof": {
      deps.logger.error({ msg: "keeper: the market refuses the trade's proof", tradeId: entry.tradeId.toString(), action: entry.action });
      const result: ActionResult = { tradeId: entry.tradeId, action: entry.action, outcome: "rejected", txHash: null, error: `${revert}: ${describe(err)}` };
      await markDone(deps.db, deps.chainId, [result], nowMs);
      return result;
    }
    default:
      // NotBuyer (a market whose reclaim only the buyer may call), EnforcedPause, anything new:
      // an operator must look; retry slowly.
      deps.logger.error({ msg: "keeper: the market refused an escrow action", tradeId: entry.tradeId.toString(), action: entry.action, revert, err: describe(err) });
      await markRetry(deps.db, deps.chainId, [entry], `${revert}: ${describe(err)}`, nowMs + retryDelayMs(entry.attempts + 1, deps.retryMinMs, deps.retryMaxMs), nowMs, { countAttempt: true });
      return undefined;
  }
}

async function receiptOf(client: PublicClient, hash: Hex): Promise<TransactionReceipt | null> {
  return client.getTransactionReceipt({ hash }).catch((err) => (isNotFound(err) ? null : Promise.reject(err)));
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

export function describe(err: unknown): string {
  return err instanceof ViemBaseError ? err.shortMessage : String((err as Error)?.message ?? err);
}
