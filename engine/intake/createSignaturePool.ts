// Order digests and signer recovery off the main thread: a few worker threads (recoverWorker.ts)
// that take, per event-loop turn, one message holding every order that arrived in it. The main
// thread keeps the rest of intake; recovery is ~25% of an order's CPU there (hash + libsecp256k1).
// Results equal the main thread's own (same function); anything unusual is recovered in-thread.
import { Worker } from "node:worker_threads";
import type { Hex } from "viem";
import type { MarketDomain, Order } from "../../contracts/client/order.js";
import type { Logger } from "../../lib/logger.js";
import { workerEntry } from "../../lib/workerEntry.js";
import { IntakeInterruptedError } from "./errors.js";
import { createOrderRecoverer, type RecoveredOrder } from "./orderSignature.js";
import {
  decodeRecoveryResult, encodeRecoveryRequest, type RecoveryBatchMessage, type RecoveryWorkerData, type RecoveryWorkerMessage,
} from "./signatureBatch.js";

export interface SignaturePoolParameters {
  domain: MarketDomain;
  /** Worker threads, at least 1. */
  workers: number;
  /** A batch unanswered this long means a hung worker: it is replaced and its orders fail
   *  with IntakeInterruptedError (default 10 s; a batch normally takes well under 100 ms). */
  batchTimeoutMs?: number;
  logger?: Logger;
}

export interface SignaturePoolStats {
  workers: number;
  /** Workers loaded and taking batches. */
  ready: number;
  batches: number;
  /** Orders recovered by a worker. */
  offloaded: number;
  /** Orders recovered on the main thread: no worker ready (starting, restarting, closed) or an
   *  order whose fields the wire format does not carry (it fails there as it always did). */
  inThread: number;
  /** Workers that stopped without being asked to. */
  crashes: number;
}

export interface SignaturePool {
  /** The order's digest (its id) and signer; rejects with IntakeInterruptedError when the
   *  worker holding it stops, or with the main thread's own TypeError for a malformed order. */
  recover(order: Order, signature: Hex): Promise<RecoveredOrder>;
  stats(): SignaturePoolStats;
  /** The worker threads running now (tests stop one to see a crash handled). */
  threads(): Worker[];
  /** Stops the workers; orders they hold fail (retryable), later ones are recovered in-thread. */
  close(): Promise<void>;
}

interface Pending {
  line: string;
  order: Order;
  signature: Hex;
  resolve(result: RecoveredOrder): void;
  reject(error: Error): void;
}

interface Batch {
  entries: Pending[];
  postedAt: number;
}

interface Slot {
  index: number;
  worker: Worker | undefined;
  ready: boolean;
  /** Batches posted and not answered, oldest first (Map keeps insertion order). */
  inflight: Map<number, Batch>;
  /** Why the worker is being stopped, when the pool stopped it (hung). */
  stopReason?: string;
  error?: Error;
  failedStarts: number;
  respawnTimer?: NodeJS.Timeout;
  watchdog?: NodeJS.Timeout;
}

/** Orders per message at least when a turn's orders are split over several workers. */
const MIN_CHUNK = 16;
const MAX_RESTART_DELAY_MS = 30_000;

export function createSignaturePool(params: SignaturePoolParameters): SignaturePool {
  if (!Number.isInteger(params.workers) || params.workers < 1) throw new RangeError(`workers must be a whole number >= 1, got ${params.workers}`);
  const batchTimeoutMs = params.batchTimeoutMs ?? 10_000;
  const logger = params.logger;
  const recoverInThread = createOrderRecoverer(params.domain);
  const { name, version, chainId, verifyingContract } = params.domain;
  const workerData: RecoveryWorkerData = { domain: { name, version, chainId, verifyingContract } };
  const slots: Slot[] = Array.from({ length: params.workers }, (_, index) => ({ index, worker: undefined, ready: false, inflight: new Map(), failedStarts: 0 }));
  const stats: SignaturePoolStats = { workers: params.workers, ready: 0, batches: 0, offloaded: 0, inThread: 0, crashes: 0 };
  let queue: Pending[] = [];
  let flushScheduled = false;
  let nextSeq = 0;
  let nextSlot = 0;
  let closed = false;

  function recoverHere(order: Order, signature: Hex): Promise<RecoveredOrder> {
    stats.inThread++;
    try {
      return Promise.resolve(recoverInThread(order, signature));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  function spawn(slot: Slot): void {
    slot.stopReason = undefined;
    slot.error = undefined;
    let worker: Worker;
    try {
      const entry = workerEntry("recoverWorker", import.meta.url);
      worker = new Worker(entry.url, { workerData, ...(entry.execArgv ? { execArgv: entry.execArgv } : {}) });
    } catch (err) {
      slot.error = err as Error;
      restartLater(slot, `could not start: ${(err as Error).message}`);
      return;
    }
    // Idle workers never keep the process alive; one holding a batch does (see post()).
    worker.unref();
    slot.worker = worker;
    worker.on("message", (message: RecoveryWorkerMessage) => onMessage(slot, worker, message));
    worker.on("error", (err) => {
      if (slot.worker === worker) slot.error = err;
    });
    worker.on("messageerror", (err) => {
      if (slot.worker === worker) stop(slot, `sent a message that could not be read: ${err.message}`);
    });
    worker.on("exit", (code) => onExit(slot, worker, code));
  }

  function onMessage(slot: Slot, worker: Worker, message: RecoveryWorkerMessage): void {
    // A stopped worker's last words: its batches failed, or will when it exits.
    if (slot.worker !== worker || slot.stopReason !== undefined) return;
    if ("ready" in message) {
      slot.ready = true;
      slot.failedStarts = 0;
      stats.ready++;
      return;
    }
    const batch = slot.inflight.get(message.seq);
    if (!batch) return;
    slot.inflight.delete(message.seq);
    const results = message.results.split("\n");
    for (let i = 0; i < batch.entries.length; i++) {
      const entry = batch.entries[i]!;
      const line = results[i];
      const result = line === undefined ? new IntakeInterruptedError({ reason: `worker ${slot.index} answered ${results.length} of ${batch.entries.length} orders` }) : decodeRecoveryResult(line);
      if (result instanceof Error) entry.reject(result);
      else entry.resolve(result);
    }
    stats.offloaded += batch.entries.length;
    if (slot.inflight.size === 0) {
      clearTimeout(slot.watchdog);
      worker.unref();
    } else {
      armWatchdog(slot);
    }
  }

  function onExit(slot: Slot, worker: Worker, code: number): void {
    if (slot.worker !== worker) return; // stopped by close(), which settled its batches
    const wasReady = slot.ready;
    if (wasReady) stats.ready--;
    slot.worker = undefined;
    slot.ready = false;
    clearTimeout(slot.watchdog);
    const reason = `signature worker ${slot.index} ${slot.stopReason ?? (slot.error ? `threw: ${slot.error.message}` : `exited with code ${code}`)}`;
    const failed = failInflight(slot, reason, slot.error);
    stats.crashes++;
    // A worker that was serving is replaced at once. One that died while starting is retried
    // with backoff (a broken install must not spin); orders meanwhile are recovered in-thread.
    if (wasReady) {
      logger?.error({ msg: "intake: signature worker stopped; replacing it", worker: slot.index, reason, failedOrders: failed });
      spawn(slot);
    } else {
      restartLater(slot, reason);
    }
  }

  function restartLater(slot: Slot, reason: string): void {
    if (closed) return;
    slot.failedStarts++;
    const delay = Math.min(MAX_RESTART_DELAY_MS, 100 * 2 ** (slot.failedStarts - 1));
    if (slot.failedStarts === 1 || delay === MAX_RESTART_DELAY_MS) logger?.error({ msg: "intake: signature worker did not start; retrying", worker: slot.index, reason, retryInMs: delay });
    slot.respawnTimer = setTimeout(() => {
      slot.respawnTimer = undefined;
      if (!closed) spawn(slot);
    }, delay);
    slot.respawnTimer.unref();
  }

  function failInflight(slot: Slot, reason: string, cause?: unknown): number {
    let failed = 0;
    for (const batch of slot.inflight.values()) {
      for (const entry of batch.entries) entry.reject(new IntakeInterruptedError({ reason, cause }));
      failed += batch.entries.length;
    }
    slot.inflight.clear();
    return failed;
  }

  /** Stops a worker whose oldest batch is overdue; onExit then fails its batches and replaces it. */
  function armWatchdog(slot: Slot): void {
    clearTimeout(slot.watchdog);
    const oldest = slot.inflight.values().next().value;
    if (!oldest) return;
    slot.watchdog = setTimeout(() => stop(slot, `did not answer a batch within ${batchTimeoutMs} ms`), Math.max(0, oldest.postedAt + batchTimeoutMs - performance.now()));
    slot.watchdog.unref();
  }

  /** Stops a worker the pool gave up on; it takes no batch meanwhile, and onExit replaces it. */
  function stop(slot: Slot, reason: string): void {
    if (!slot.worker || slot.stopReason !== undefined) return;
    slot.stopReason = reason;
    void slot.worker.terminate();
  }

  function post(slot: Slot, entries: Pending[]): void {
    const seq = ++nextSeq;
    slot.inflight.set(seq, { entries, postedAt: performance.now() });
    if (slot.inflight.size === 1) {
      slot.worker!.ref();
      armWatchdog(slot);
    }
    stats.batches++;
    let lines = entries[0]!.line;
    for (let i = 1; i < entries.length; i++) lines += "\n" + entries[i]!.line;
    slot.worker!.postMessage({ seq, lines } satisfies RecoveryBatchMessage);
  }

  /** Sends everything queued in this turn: contiguous chunks, one message per worker used. */
  function flush(): void {
    flushScheduled = false;
    const entries = queue;
    queue = [];
    const ready = slots.filter((s) => s.ready && s.stopReason === undefined);
    if (ready.length === 0) {
      for (const e of entries) recoverHere(e.order, e.signature).then(e.resolve, e.reject);
      return;
    }
    const chunk = Math.max(MIN_CHUNK, Math.ceil(entries.length / ready.length));
    for (let i = 0; i < entries.length; i += chunk) {
      post(ready[nextSlot++ % ready.length]!, i === 0 && chunk >= entries.length ? entries : entries.slice(i, i + chunk));
    }
  }

  for (const slot of slots) spawn(slot);

  return {
    recover(order, signature) {
      if (closed || stats.ready === 0) return recoverHere(order, signature);
      const line = encodeRecoveryRequest(order, signature);
      if (line === undefined) return recoverHere(order, signature);
      return new Promise<RecoveredOrder>((resolve, reject) => {
        queue.push({ line, order, signature, resolve, reject });
        if (!flushScheduled) {
          flushScheduled = true;
          // After the poll phase: every request read from the sockets in this turn joins.
          setImmediate(flush);
        }
      });
    },

    stats: () => ({ ...stats }),

    threads: () => slots.flatMap((s) => (s.worker ? [s.worker] : [])),

    async close() {
      if (closed) return;
      closed = true;
      const stopping: Promise<number>[] = [];
      for (const slot of slots) {
        clearTimeout(slot.respawnTimer);
        clearTimeout(slot.watchdog);
        const worker = slot.worker;
        if (slot.ready) stats.ready--;
        slot.worker = undefined;
        slot.ready = false;
        failInflight(slot, "stopped: the engine is closing");
        if (worker) stopping.push(worker.terminate());
      }
      await Promise.all(stopping);
    },
  };
}
