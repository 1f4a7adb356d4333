// Batches the engine's fills to EnergyMarket.settleBatch as the MATCHER. Each batch is a
// transaction signed here with an explicitly assigned nonce, stored (raw bytes and hash) before
// it is broadcast: batches in flight never share a nonce, and after a crash the very same
// transaction is looked up or re-sent, never a second one that would settle a fill twice.
// Only fills pending in the log are cut (engine.settleableFills): the engine applies operations
// before their log write is durable, and a fill the chain settles must survive a restart.
//
// Exactly once, across crashes. The order is: batch row, then the fills' "settling" operation,
// then broadcast. So a durable "settling" always has its row (a row is awaited before the
// operation is even applied), and a transaction is broadcast only for fills durably settling
// under it. A crash between the two leaves a row whose fills are still "pending" in the log:
// init() claims them for that row (marks them settling) before anything new is cut, and
// finishes the row's transaction; they are never cut a second time. A "settling" fill with no
// open row (a store that lost the row) was never broadcast: init() makes it pending again.
//
// Never stuck. A broadcast or a receipt lookup that fails (dropped connection, node down) is
// retried with backoff, re-sending the same signed bytes, until the chain has the transaction;
// a nonce is never left as a gap. stop() ends the waiting; the batch stays open for init().
import type { Kysely } from "kysely";
import {
  decodeEventLog, encodeFunctionData, keccak256, TransactionReceiptNotFoundError, type Account, type Address, type Chain, type Hex, type PublicClient,
  type TransactionReceipt, type Transport, type WalletClient,
} from "viem";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import type { Logger } from "../../lib/logger.js";
import type { Engine } from "../createEngine.js";
import type { FillRecord, SettlementResult } from "../engineState.js";
import { batchStored, insertBatch, loadOpenBatches, maxBatchId, type EngineDatabase } from "../store/engineStore.js";
import type { SettlementFaultHook } from "./settlementFaults.js";

export interface SettlerDeps {
  engine: Engine;
  db: Kysely<EngineDatabase>;
  publicClient: PublicClient;
  /** A wallet whose account holds MATCHER_ROLE and signs locally. */
  walletClient: WalletClient<Transport, Chain, Account>;
  market: Address;
  /** Most fills in one transaction. */
  maxFills?: number;
  /** A fill waits at most this long for its batch to fill up, ms. */
  maxLatencyMs?: number;
  /** Batches allowed in flight at once. */
  maxInFlight?: number;
  /** How often a sent batch's receipt is looked for, ms (default 200). */
  pollingIntervalMs?: number;
  /** A batch still without a receipt is broadcast again this often, ms (default 10,000): a node
   *  that restarted may have lost it from its pool. */
  rebroadcastEveryMs?: number;
  /** Wait after a failed broadcast or lookup: doubles from minMs up to maxMs (default 200..5,000). */
  retry?: { minMs?: number; maxMs?: number };
  /** Unix seconds, for the settlement record. */
  now?: () => number;
  logger?: Logger;
  /** Fault tests only: called at each step of a batch's life (settlementFaults.ts). */
  faults?: SettlementFaultHook;
}

/** Contract RejectReason names, by enum value. */
export const rejectReasons = [
  "None", "InvalidIndex", "SideMismatch", "BadBuySignature", "BadSellSignature", "BuyOrderCancelled", "SellOrderCancelled",
  "BuyOrderExpired", "SellOrderExpired", "ZoneMismatch", "WindowMismatch", "PriceOutOfRange", "ZeroEnergy", "BuyOverfill",
  "SellOverfill", "SelfTrade", "BuyerInactive", "SellerInactive", "SourceNotRegistered", "SourceNotAccepted", "ReputationTooLow",
  "InsufficientFunds", "SellerExportLimit", "BuyerImportLimit",
] as const;

interface SentBatch {
  id: number;
  /** As signed: the transaction's fill indexes follow this order. */
  fillIds: number[];
  nonce: number;
  txHash: Hex;
  rawTx: Hex;
}

export function createSettler(deps: SettlerDeps) {
  const maxFills = deps.maxFills ?? 100;
  const maxLatencyMs = deps.maxLatencyMs ?? 2_000;
  const maxInFlight = deps.maxInFlight ?? 2;
  const pollingMs = deps.pollingIntervalMs ?? 200;
  const rebroadcastMs = deps.rebroadcastEveryMs ?? 10_000;
  const retryMinMs = deps.retry?.minMs ?? 200;
  const retryMaxMs = deps.retry?.maxMs ?? 5_000;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const fault = deps.faults ?? (() => undefined);
  const engine = deps.engine;
  const account = deps.walletClient.account;
  let nextNonce = -1;
  let nextBatchId = 0;
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const running = new Set<Promise<void>>();
  /** Wakes the batches pausing between tries (stop() calls them). */
  const wakers = new Set<() => void>();

  async function init(): Promise<void> {
    nextNonce = await deps.publicClient.getTransactionCount({ address: account.address, blockTag: "pending" });
    nextBatchId = (await maxBatchId(deps.db)) + 1;
    const open = await loadOpenBatches(deps.db);
    const openIds = new Set(open.map((b) => b.id));
    const fills = engine.state.fills;

    // "Settling" under a batch that has no open row: nothing was ever broadcast for it (the row
    // comes first), so the fills go back to the queue.
    const orphans = new Map<number, number[]>();
    for (const f of fills) {
      if (f.status !== "settling" || f.batchId === undefined || openIds.has(f.batchId)) continue;
      const ids = orphans.get(f.batchId) ?? [];
      ids.push(f.fillId);
      orphans.set(f.batchId, ids);
    }
    for (const [batchId, fillIds] of orphans) {
      deps.logger?.warn({ msg: "settling fills without a stored transaction made pending again", batch: batchId, fills: fillIds.length });
      await engine.unsettle(batchId, fillIds);
      nextBatchId = Math.max(nextBatchId, batchId + 1);
    }

    const resume: SentBatch[] = [];
    for (const b of open) {
      const mine = (id: number) => fills.get(id)?.status === "settling" && fills.get(id)!.batchId === b.id;
      const unclaimed = b.fillIds.filter((id) => fills.get(id)?.status === "pending");
      if (b.fillIds.some((id) => !mine(id) && fills.get(id)?.status !== "pending")) {
        // Some fill belongs elsewhere (settled or in another batch): sending this one could
        // settle it twice. Not reachable through this settler; left for an operator.
        deps.logger?.error({ msg: "open settlement batch shares fills with another; not sent", batch: b.id, tx: b.txHash, nonce: b.nonce });
        continue;
      }
      // The crash came between the row and the "settling" operation: claim the fills for this
      // row now, before anything new is cut, so they cannot go into a second batch.
      if (unclaimed.length > 0) await engine.markSettling(b.id, unclaimed);
      nextNonce = Math.max(nextNonce, b.nonce + 1);
      resume.push({ id: b.id, fillIds: b.fillIds, nonce: b.nonce, txHash: b.txHash as Hex, rawTx: b.rawTx as Hex });
    }
    // Finish what a previous run left in flight (oldest first) before cutting anything new.
    for (const b of resume) track(finish(b, true));
  }

  function track(p: Promise<void>): void {
    running.add(p);
    // A batch whose verdict could not be recorded stays "sent" in the store; init() of the
    // next run picks it up. Here it is only logged.
    void p
      .catch((err: unknown) => deps.logger?.error({ msg: "settlement batch unfinished", err: (err as Error).message }))
      .finally(() => running.delete(p));
  }

  let pumping: Promise<void> | undefined;

  /** Cuts and sends batches while fills wait and there is room in flight; one pump at a time,
   *  so no fill is cut into two batches. */
  function pump(force: boolean): Promise<void> {
    if (pumping) return pumping.then(() => (force ? pump(true) : undefined));
    pumping = (async () => {
      while (!stopped && inFlight < maxInFlight) {
        await engine.idle();
        const pending = engine.settleableFills(maxFills);
        if (pending.length === 0) return;
        const oldestAgeMs = Date.now() - (firstSeen.get(pending[0]!.fillId) ?? Date.now());
        if (!force && pending.length < maxFills && oldestAgeMs < maxLatencyMs) return;
        if (!(await send(pending))) return;
      }
    })().finally(() => {
      pumping = undefined;
    });
    return pumping;
  }

  const firstSeen = new Map<number, number>();

  async function send(fills: FillRecord[]): Promise<boolean> {
    const { orders, plan } = buildBatch(engine, fills);
    const data = encodeFunctionData({ abi: energyMarketAbi, functionName: "settleBatch", args: [orders, plan] });
    const id = nextBatchId++;
    const nonce = nextNonce;
    let gas: bigint;
    try {
      gas = await deps.publicClient.estimateGas({ account, to: deps.market, data });
    } catch (err) {
      nextBatchId--;
      // Too much gas for one transaction (the chain caps it at 2^24) fails the estimate like a
      // revert does: try the first half; the rest stays queued for the next cut. A batch that
      // fails even as one fill would revert whatever its size (paused market): leave it queued.
      if (fills.length > 1) return send(fills.slice(0, Math.ceil(fills.length / 2)));
      deps.logger?.warn({ msg: "settlement batch would revert; fills stay queued", batch: id, err: (err as Error).message });
      return false;
    }
    const request = await deps.walletClient.prepareTransactionRequest({
      to: deps.market, data, nonce, gas: (gas * 12n) / 10n, chain: deps.walletClient.chain, account,
    });
    const rawTx = await deps.walletClient.signTransaction(request as never);
    const txHash = keccak256(rawTx);
    const fillIds = fills.map((f) => f.fillId);
    fault("before-batch-row");
    try {
      await insertBatch(deps.db, { id, fillIds, nonce, txHash, rawTx });
    } catch (err) {
      // The answer may be what was lost: a row that made it owns the nonce. Unknown either way,
      // the error stands (the next cut takes this nonce again; init() sorts out a stored row).
      if (!(await batchStored(deps.db, id).catch(() => false))) throw err;
    }
    // From here the row owns the nonce, whatever happens to the "settling" operation.
    nextNonce = nonce + 1;
    fault("after-batch-row");
    // Throws only when the engine has failed (its log write did): nothing more is settled until
    // a restart, whose init() claims these fills for this row.
    await engine.markSettling(id, fillIds);
    for (const f of fillIds) firstSeen.delete(f);
    track(finish({ id, fillIds, nonce, txHash, rawTx }, false));
    return true;
  }

  async function finish(batch: SentBatch, resumed: boolean): Promise<void> {
    inFlight++;
    try {
      const receipt = await awaitReceipt(batch, resumed);
      if (receipt === undefined) return; // stopped: the batch stays open for the next init()
      fault("after-receipt");
      // Only fills still settling under this batch take its verdict.
      const mine = batch.fillIds.filter((id) => engine.state.fills.get(id)?.status === "settling" && engine.state.fills.get(id)!.batchId === batch.id);
      if (receipt === "replaced" || receipt.status !== "success") {
        if (receipt === "replaced") deps.logger?.warn({ msg: "settlement nonce went to another transaction; fills queued again", batch: batch.id, tx: batch.txHash, nonce: batch.nonce });
        await engine.unsettle(batch.id, mine);
        return;
      }
      const owned = new Set(mine);
      const results = resultsOf(receipt, deps.market, batch.fillIds).filter((r) => owned.has(r.fillId));
      await engine.recordSettlement(batch.id, batch.txHash, results, now());
      fault("after-settlement");
      deps.logger?.info({ msg: "batch settled", batch: batch.id, tx: batch.txHash, fills: batch.fillIds.length });
    } finally {
      inFlight--;
    }
  }

  /**
   * Broadcasts the batch's signed bytes and polls for its receipt until the chain has it. Every
   * failure (broadcast, lookup) is retried with backoff, with the very same bytes, so at most one
   * transaction with this nonce is ever ours. Undefined once stop() was called; "replaced" when
   * the nonce went to another transaction (ours can then never be mined).
   */
  async function awaitReceipt(batch: SentBatch, resumed: boolean): Promise<TransactionReceipt | "replaced" | undefined> {
    let failures = 0;
    let sentAt: number | undefined;
    let nonceUsed = false;
    // A resumed batch may be mined already: look before sending it again.
    for (let lookup = resumed; ; lookup = true) {
      if (lookup) {
        try {
          const receipt = await receiptOf(batch.txHash);
          if (receipt) return receipt;
          failures = 0;
          if (nonceUsed && (await deps.publicClient.getTransactionCount({ address: account.address, blockTag: "latest" })) > batch.nonce) {
            // Mined nonces are final here; read the receipt again after the count to be sure.
            return (await receiptOf(batch.txHash)) ?? "replaced";
          }
        } catch (err) {
          failures++;
          deps.logger?.warn({ msg: "settlement receipt lookup failed; retrying", batch: batch.id, tx: batch.txHash, attempt: failures, err: (err as Error).message });
        }
      }
      if (stopped) return undefined;
      if (sentAt === undefined || Date.now() - sentAt >= rebroadcastMs) {
        try {
          fault("before-broadcast");
          nonceUsed = (await broadcast(batch.rawTx)) === "nonce used";
          sentAt = Date.now();
          failures = 0;
          fault("after-broadcast");
          continue; // an automining chain has it already: look right away
        } catch (err) {
          failures++;
          deps.logger?.warn({ msg: "settlement broadcast failed; retrying", batch: batch.id, tx: batch.txHash, nonce: batch.nonce, attempt: failures, err: (err as Error).message });
        }
      }
      await pause(failures > 0 ? Math.min(retryMaxMs, retryMinMs * 2 ** (failures - 1)) : pollingMs);
    }
  }

  async function receiptOf(hash: Hex): Promise<TransactionReceipt | null> {
    try {
      return await deps.publicClient.getTransactionReceipt({ hash });
    } catch (err) {
      if (err instanceof TransactionReceiptNotFoundError) return null;
      throw err;
    }
  }

  async function broadcast(rawTx: Hex): Promise<"sent" | "nonce used"> {
    try {
      await deps.publicClient.sendRawTransaction({ serializedTransaction: rawTx });
      return "sent";
    } catch (err) {
      const message = (err as Error).message;
      // Already in the pool or mined: the receipt lookup settles which. "Nonce too low": mined,
      // or the nonce went to another transaction; the account's count tells after the lookup.
      if (/nonce too low/i.test(message)) return "nonce used";
      // Not a bare /known/: viem's "An unknown RPC error occurred" is a failure to retry.
      if (/already known|known transaction|already imported|already exists/i.test(message)) return "sent";
      throw err;
    }
  }

  /** Waits `ms`, or less if stop() is called meanwhile. */
  function pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timeout);
        wakers.delete(wake);
        resolve();
      };
      const timeout = setTimeout(wake, ms);
      wakers.add(wake);
    });
  }

  async function canSettleNow(): Promise<boolean> {
    const pending = engine.settleableFills(maxFills);
    if (pending.length === 0) return false;
    const { orders, plan } = buildBatch(engine, pending);
    const data = encodeFunctionData({ abi: energyMarketAbi, functionName: "settleBatch", args: [orders, plan] });
    return deps.publicClient.estimateGas({ account, to: deps.market, data }).then(() => true, () => false);
  }

  function schedule(): void {
    if (stopped) return;
    for (const f of engine.settleableFills(maxFills)) if (!firstSeen.has(f.fillId)) firstSeen.set(f.fillId, Date.now());
    track(pump(false).catch((err: unknown) => deps.logger?.error({ msg: "settlement failed", err: (err as Error).message })));
  }

  return {
    init,
    /** Starts the loop that cuts batches by size or age. */
    start(intervalMs = Math.min(250, maxLatencyMs)): void {
      timer = setInterval(schedule, intervalMs);
    },
    /** Sends everything pending now and waits until every batch in flight has its verdict. */
    async flush(): Promise<void> {
      for (;;) {
        await engine.idle();
        const before = engine.settleableFills(1).length;
        await pump(true);
        while (running.size > 0) await Promise.allSettled([...running]);
        await engine.idle();
        // Done when nothing waits, or when what waits cannot be sent now (would revert).
        if (engine.settleableFills(1).length === 0 || stopped || (before > 0 && inFlight === 0 && !(await canSettleNow()))) return;
      }
    },
    /** Stops cutting and waiting: a batch without its verdict yet stays open in the store, and
     *  the next init() finishes it. */
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearInterval(timer);
      for (const wake of [...wakers]) wake();
      while (running.size > 0) await Promise.allSettled([...running]);
    },
  };
}

export type Settler = ReturnType<typeof createSettler>;

/** The settleBatch arguments for `fills`: each order once, fills pointing at them. */
export function buildBatch(engine: Engine, fills: FillRecord[]) {
  const index = new Map<Hex, number>();
  const orders: { order: ReturnType<typeof toOrderArg>; signature: Hex }[] = [];
  const at = (id: Hex) => {
    let i = index.get(id);
    if (i === undefined) {
      const rec = engine.state.orders.get(id)!;
      i = orders.length;
      orders.push({ order: toOrderArg(rec.accepted.order), signature: rec.accepted.signature });
      index.set(id, i);
    }
    return i;
  };
  const plan = fills.map((f) => ({ buyIndex: at(f.buyId), sellIndex: at(f.sellId), energyWh: BigInt(f.energyWh), pricePerKWh: BigInt(f.price) }));
  return { orders, plan };
}

function toOrderArg(o: import("../../contracts/client/order.js").Order) {
  return { ...o };
}

/** Fill outcomes from a settleBatch receipt: FillRejected by index; the rest executed in order. */
export function resultsOf(receipt: TransactionReceipt, market: Address, fillIds: number[]): SettlementResult[] {
  const rejected = new Map<number, string>();
  const tradeIds: bigint[] = [];
  for (const log of receipt.logs) {
    if (log.address.toLowerCase() !== market.toLowerCase()) continue;
    let event;
    try {
      event = decodeEventLog({ abi: energyMarketAbi, data: log.data, topics: log.topics });
    } catch {
      continue;
    }
    if (event.eventName === "FillRejected") rejected.set(Number(event.args.fillIndex), rejectReasons[event.args.reason] ?? `Reason${event.args.reason}`);
    else if (event.eventName === "TradeExecuted") tradeIds.push(event.args.tradeId);
  }
  let t = 0;
  return fillIds.map((fillId, i) => {
    const reason = rejected.get(i);
    if (reason !== undefined) return { fillId, executed: false, reason };
    return { fillId, executed: true, tradeId: tradeIds[t++]! };
  });
}

