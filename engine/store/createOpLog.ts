// Group commit for the operation log. The engine applies each operation in memory and queues
// its row here; one flusher writes everything queued in one multi-row insert, and while that
// write is in flight new rows gather for the next one, so a write grows with the load and an
// operation waits about one to two write times. A group's callers are acknowledged only once
// the write holding their rows is durable, and groups become durable in sequence order.
//
// If a write fails, memory is ahead of the log: the failed group and everything queued after
// it are rejected with EngineFailedError and nothing more is accepted until a restart replays
// the log (see engine/README.md).
import type { Kysely } from "kysely";
import type { Logger } from "../../lib/logger.js";
import { EngineFailedError } from "../errors.js";
import { appendOps, type EngineDatabase, type LogRow } from "./engineStore.js";

export interface OpLogGroup<T> {
  readonly rows: LogRow[];
  readonly batchesDone: number[];
  /** What the engine keeps with the group until it is durable (its events, ...). */
  readonly data: T;
  /** Resolves once the group is durable; rejects with EngineFailedError if its write failed. */
  readonly durable: Promise<void>;
}

export interface OpLogOptions<T> {
  newGroupData(): T;
  /** Runs once per durable group, in sequence order, before its callers are acknowledged. */
  onDurable(group: OpLogGroup<T>): void;
  /** Most rows in one write; more stay queued for the next (default 1,000). */
  maxOpsPerWrite?: number;
  logger?: Logger;
}

export interface OpLogStats {
  status: "running" | "failed";
  /** Successful log writes (one statement, or one transaction with a batch's "done" mark). */
  logWrites: number;
  /** Operations durable in the log since start (replayed ones not counted). */
  loggedOps: number;
  /** Operations applied in memory but not yet durable. */
  queuedOps: number;
  largestWrite: number;
  /** The last sequence number known durable (0 before the first write). */
  durableSeq: number;
  /** The longest write since start, ms (every caller of its group waited at least this). */
  slowestWriteMs: number;
  /** Writes that took longer than SLOW_WRITE_MS. */
  slowWrites: number;
}

/** A write this slow is logged (a warning: every placement in it waited as long). */
export const SLOW_WRITE_MS = 250;

interface Group<T> extends OpLogGroup<T> {
  resolve(): void;
  reject(err: Error): void;
}

export function createOpLog<T>(db: Kysely<EngineDatabase>, options: OpLogOptions<T>, durableSeqAtStart = 0) {
  const maxOps = options.maxOpsPerWrite ?? 1_000;
  /** Groups not yet written, oldest first; new rows go into the last one. */
  const queue: Group<T>[] = [];
  let writing: Group<T> | undefined;
  let flushScheduled = false;
  let failure: EngineFailedError | undefined;
  /** A write failed: nothing queued may be written any more (it would follow a gap). */
  let writeFailed = false;
  const stats = { logWrites: 0, loggedOps: 0, largestWrite: 0, durableSeq: durableSeqAtStart, slowestWriteMs: 0, slowWrites: 0 };

  function newGroup(): Group<T> {
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const durable = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Callers await it; this only keeps a group nobody awaits from being an unhandled rejection.
    durable.catch(() => undefined);
    return { rows: [], batchesDone: [], data: options.newGroupData(), durable, resolve, reject };
  }

  async function flush(): Promise<void> {
    flushScheduled = false;
    if (writing) return; // the running loop takes what is queued
    while (!writeFailed && queue.length > 0) {
      const group = queue.shift()!;
      writing = group;
      const started = performance.now();
      try {
        await appendOps(db, group.rows, group.batchesDone);
      } catch (err) {
        writing = undefined;
        failWrite(group, err);
        return;
      }
      writing = undefined;
      const ms = performance.now() - started;
      stats.slowestWriteMs = Math.max(stats.slowestWriteMs, Math.round(ms));
      if (ms > SLOW_WRITE_MS) {
        stats.slowWrites++;
        options.logger?.warn({ msg: "engine: operation log write slow", ms: Math.round(ms), rows: group.rows.length, batches_done: group.batchesDone.length });
      }
      stats.logWrites++;
      stats.loggedOps += group.rows.length;
      stats.largestWrite = Math.max(stats.largestWrite, group.rows.length);
      stats.durableSeq = group.rows[group.rows.length - 1]!.seq;
      try {
        options.onDurable(group);
      } catch (err) {
        options.logger?.error({ msg: "engine: after-durable step threw", err: (err as Error)?.message ?? String(err) });
      }
      group.resolve();
    }
  }

  function failWrite(group: Group<T>, cause: unknown): void {
    writeFailed = true;
    const first = group.rows[0]!.seq;
    const last = queue.length > 0 ? queue[queue.length - 1]!.rows.at(-1)!.seq : group.rows.at(-1)!.seq;
    const message = (cause as Error)?.message ?? String(cause);
    const error = new EngineFailedError({ reason: `writing operations ${first}..${group.rows.at(-1)!.seq} to the log failed (${message}); operations ${first}..${last} are not acknowledged`, cause });
    failure ??= error;
    options.logger?.error({ msg: "engine log write failed; engine stopped until restart", first_seq: first, last_seq: last, err: message });
    group.reject(error);
    for (const g of queue.splice(0)) g.reject(error);
  }

  return {
    /** Queues a row (after its operation was applied) and returns the group it will be written in. */
    append(row: LogRow, batchDone?: number): OpLogGroup<T> {
      if (failure) throw failure;
      let group = queue[queue.length - 1];
      if (group === undefined || group.rows.length >= maxOps) {
        group = newGroup();
        queue.push(group);
      }
      group.rows.push(row);
      if (batchDone !== undefined) group.batchesDone.push(batchDone);
      if (!writing && !flushScheduled) {
        // Wait for the current turn of the event loop: rows queued in it share the write.
        flushScheduled = true;
        setImmediate(() => void flush());
      }
      return group;
    },

    /** Refuses further rows (memory can no longer be trusted); what is queued is still written. */
    fail(reason: string, cause?: unknown): EngineFailedError {
      failure ??= new EngineFailedError({ reason, cause });
      options.logger?.error({ msg: "engine stopped until restart", reason });
      return failure;
    },

    failure(): EngineFailedError | undefined {
      return failure;
    },

    /** Settles (never rejects) once everything queued so far is durable or failed. */
    idle(): Promise<void> {
      const last = queue[queue.length - 1] ?? writing;
      return last ? last.durable.catch(() => undefined) : Promise.resolve();
    },

    stats(): OpLogStats {
      let queuedOps = writing?.rows.length ?? 0;
      for (const g of queue) queuedOps += g.rows.length;
      return { status: failure ? "failed" : "running", ...stats, queuedOps };
    },
  };
}

export type OpLog<T> = ReturnType<typeof createOpLog<T>>;
