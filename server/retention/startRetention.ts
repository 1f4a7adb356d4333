// Runs the pruner (pruneStores.ts) every RETENTION_INTERVAL_MS on the node's clock. One run at a
// time: a run that outlasts the interval makes the next tick a no-op, never a second pruner
// competing for the same rows. A failed run is logged and the next tick tries again.
import type { Kysely } from "kysely";
import type { Logger } from "../../lib/logger.js";
import { pruneOnce, type PruneOnceReturnType } from "./pruneStores.js";
import type { RetentionPolicy } from "./retentionPolicy.js";

export interface StartRetentionParameters<DB> {
  db: Kysely<DB>;
  policy: RetentionPolicy;
  /** Unix milliseconds (the node's clock, which may follow the chain's). */
  clock: () => number;
  logger: Logger;
  /** Rows per DELETE statement (default 5,000). */
  batchSize?: number;
}

export interface Retention {
  /** Prunes now, or joins the run under way; rejects when the run fails. Works with the timer off too. */
  runNow(): Promise<PruneOnceReturnType>;
  /** Stops the timer and waits for a run under way. */
  stop(): Promise<void>;
}

export function startRetention<DB>({ db, policy, clock, logger, batchSize }: StartRetentionParameters<DB>): Retention {
  let running: Promise<PruneOnceReturnType> | undefined;

  function run(): Promise<PruneOnceReturnType> {
    running ??= (async () => {
      const startedMs = Date.now();
      const result = await pruneOnce({ db, now: clock(), policy, ...(batchSize !== undefined ? { batchSize } : {}) });
      const total = Object.values(result.deleted).reduce((a, n) => a + n, 0);
      if (total > 0) {
        const tables = Object.fromEntries(Object.entries(result.deleted).filter(([, n]) => n > 0));
        logger.info({ msg: "retention: pruned rows past their retention", rows: total, tables, ms: Date.now() - startedMs });
      }
      return result;
    })().finally(() => (running = undefined));
    return running;
  }

  let timer: NodeJS.Timeout | undefined;
  if (policy.enabled) {
    timer = setInterval(() => {
      if (running) return;
      run().catch((err: unknown) => logger.warn({ msg: "retention: pruning failed; trying again next run", err: err instanceof Error ? err.message : String(err) }));
    }, policy.intervalMs);
    // Pruning never keeps the process alive on its own.
    timer.unref();
  } else {
    logger.info({ msg: "retention off (RETENTION_ENABLED=0): nothing is pruned, the data folder keeps every row" });
  }

  return {
    runNow: run,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
