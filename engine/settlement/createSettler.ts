// Batches the engine's fills to EnergyMarket.settleBatch as the MATCHER. Each batch is a
// transaction signed here with an explicitly assigned nonce, stored (raw bytes and hash) before
// it is broadcast: batches in flight never share a nonce, and after a crash the very same
// transaction is looked up or re-sent, never a second one that would settle a fill twice.
// Only fills pending in the log are cut (engine.settleableFills): the engine applies operations
// before their log write is durable, and a fill the chain settles must survive a restart.
import type { Kysely } from "kysely";
import {
  decodeEventLog, encodeFunctionData, keccak256, type Account, type Address, type Chain, type Hex, type PublicClient,
  type TransactionReceipt, type Transport, type WalletClient,
} from "viem";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import type { Logger } from "../../lib/logger.js";
import type { Engine } from "../createEngine.js";
import type { FillRecord, SettlementResult } from "../engineState.js";
import { insertBatch, loadOpenBatches, maxBatchId, type EngineDatabase } from "../store/engineStore.js";

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
  /** Unix seconds, for the settlement record. */
  now?: () => number;
  logger?: Logger;
}

/** Contract RejectReason names, by enum value. */
export const rejectReasons = [
  "None", "InvalidIndex", "SideMismatch", "BadBuySignature", "BadSellSignature", "BuyOrderCancelled", "SellOrderCancelled",
  "BuyOrderExpired", "SellOrderExpired", "ZoneMismatch", "WindowMismatch", "PriceOutOfRange", "ZeroEnergy", "BuyOverfill",
  "SellOverfill", "SelfTrade", "BuyerInactive", "SellerInactive", "SourceNotRegistered", "SourceNotAccepted", "ReputationTooLow",
  "InsufficientFunds",
] as const;

interface SentBatch {
  id: number;
  fillIds: number[];
  txHash: Hex;
  rawTx: Hex;
}

export function createSettler(deps: SettlerDeps) {
  const maxFills = deps.maxFills ?? 100;
  const maxLatencyMs = deps.maxLatencyMs ?? 2_000;
  const maxInFlight = deps.maxInFlight ?? 2;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const engine = deps.engine;
  let nextNonce = -1;
  let nextBatchId = 0;
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const running = new Set<Promise<void>>();

  async function init(): Promise<void> {
    const account = deps.walletClient.account.address;
    nextNonce = await deps.publicClient.getTransactionCount({ address: account, blockTag: "pending" });
    nextBatchId = (await maxBatchId(deps.db)) + 1;
    // Finish what a previous run left in flight before cutting anything new.
    for (const b of await loadOpenBatches(deps.db)) {
      nextNonce = Math.max(nextNonce, b.nonce + 1);
      track(finish({ id: b.id, fillIds: b.fillIds, txHash: b.txHash as Hex, rawTx: b.rawTx as Hex }, true));
    }
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
      gas = await deps.publicClient.estimateGas({ account: deps.walletClient.account, to: deps.market, data });
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
      to: deps.market, data, nonce, gas: (gas * 12n) / 10n, chain: deps.walletClient.chain, account: deps.walletClient.account,
    });
    const rawTx = await deps.walletClient.signTransaction(request as never);
    const txHash = keccak256(rawTx);
    const fillIds = fills.map((f) => f.fillId);
    await insertBatch(deps.db, { id, fillIds, nonce, txHash, rawTx });
    await engine.markSettling(id, fillIds);
    nextNonce++;
    for (const f of fillIds) firstSeen.delete(f);
    track(finish({ id, fillIds, txHash, rawTx }, false));
    return true;
  }

  async function finish(batch: SentBatch, resumed: boolean): Promise<void> {
    inFlight++;
    try {
      let receipt: TransactionReceipt | null = resumed ? await deps.publicClient.getTransactionReceipt({ hash: batch.txHash }).catch(() => null) : null;
      if (!receipt) {
        await broadcast(batch.rawTx);
        receipt = await deps.publicClient.waitForTransactionReceipt({ hash: batch.txHash, pollingInterval: 200 });
      }
      if (receipt.status !== "success") {
        await engine.unsettle(batch.id, batch.fillIds);
        return;
      }
      await engine.recordSettlement(batch.id, batch.txHash, resultsOf(receipt, deps.market, batch.fillIds), now());
      deps.logger?.info({ msg: "batch settled", batch: batch.id, tx: batch.txHash, fills: batch.fillIds.length });
    } finally {
      inFlight--;
    }
  }

  async function broadcast(rawTx: Hex): Promise<void> {
    try {
      await deps.publicClient.sendRawTransaction({ serializedTransaction: rawTx });
    } catch (err) {
      // Already known or already mined: the receipt wait below settles which.
      const message = (err as Error).message;
      if (!/known|already|nonce too low/i.test(message)) throw err;
    }
  }

  async function canSettleNow(): Promise<boolean> {
    const pending = engine.settleableFills(maxFills);
    if (pending.length === 0) return false;
    const { orders, plan } = buildBatch(engine, pending);
    const data = encodeFunctionData({ abi: energyMarketAbi, functionName: "settleBatch", args: [orders, plan] });
    return deps.publicClient.estimateGas({ account: deps.walletClient.account, to: deps.market, data }).then(() => true, () => false);
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
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearInterval(timer);
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

