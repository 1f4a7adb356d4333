// Crash points in a settlement batch's life, for the fault tests: the node started with
// NODE_ENV=test and ENERGY_FAULT_CRASH_AT=<point>[@<n>] kills itself (SIGKILL, nothing flushed,
// no handler runs) the n-th time (default first) it reaches that point; with
// ENERGY_FAULT_ARM_FILE=<path>, only points reached while that file exists count (a test lets
// the recovery of an earlier crash run to the end, then arms the fault for a fresh batch).
// The settler calls the hook at its own steps; the engine's log writes are caught on their way
// through kysely, so a crash can land while a group commit is in flight without the engine
// knowing about faults.
import { existsSync, writeSync } from "node:fs";
import { InsertQueryNode, type KyselyPlugin, type QueryId } from "kysely";

/** In the order a batch meets them. */
export const settlementFaultPoints = [
  /** Signed, its row not yet written. */
  "before-batch-row",
  /** Its row (signed bytes, nonce) is in the store; its fills are still "pending" in the log. */
  "after-batch-row",
  /** The log write holding the "settling" operation was issued and has not reached the database. */
  "settling-write",
  /** That write is in the database; the engine has not been told. */
  "settling-written",
  /** Fills durable as "settling"; the transaction is about to be broadcast. */
  "before-broadcast",
  /** The chain took the transaction; its receipt not yet read. */
  "after-broadcast",
  /** The receipt is read; the verdict not yet recorded. */
  "after-receipt",
  /** The log write holding the verdict ("settlement") was issued, nothing of it in the database. */
  "settlement-write",
  /** Its insert ran inside the transaction that also marks the batch done; not yet committed. */
  "settlement-written",
  /** The verdict is durable. */
  "after-settlement",
] as const;

export type SettlementFaultPoint = (typeof settlementFaultPoints)[number];

/** Called at each point; a fault hook crashes there or returns. */
export type SettlementFaultHook = (point: SettlementFaultPoint) => void;

export interface SettlementFaults {
  hook: SettlementFaultHook;
  /** Sees the engine's log writes (engine_ops inserts) and calls the hook around them. */
  plugin: KyselyPlugin;
}

/**
 * The crash ENERGY_FAULT_CRASH_AT asks for, or undefined: it is honoured only when NODE_ENV is
 * "test", so a production node never kills itself over a stray variable.
 */
export function settlementFaultsFromEnv(env: Record<string, string | undefined>): SettlementFaults | undefined {
  const setting = env.ENERGY_FAULT_CRASH_AT;
  if (!setting || env.NODE_ENV !== "test") return undefined;
  const [point, nth = "1"] = setting.split("@");
  if (!settlementFaultPoints.includes(point as SettlementFaultPoint) || !/^[1-9]\d*$/.test(nth)) {
    throw new Error(`ENERGY_FAULT_CRASH_AT="${setting}": must be one of ${settlementFaultPoints.join(", ")}, optionally @n (the n-th time)`);
  }
  const armFile = env.ENERGY_FAULT_ARM_FILE;
  return settlementFaults(crashAt(point as SettlementFaultPoint, Number(nth), armFile ? () => existsSync(armFile) : undefined));
}

/** A hook that kills this process the `nth` time `target` is reached while `armed()`, saying so
 *  on stderr first. */
export function crashAt(target: SettlementFaultPoint, nth = 1, armed: () => boolean = () => true): SettlementFaultHook {
  let seen = 0;
  return (point) => {
    if (point !== target || !armed() || ++seen !== nth) return;
    // Synchronous: the line is out before the signal, which nothing can catch.
    writeSync(2, `fault: crashing at ${point}${nth > 1 ? `@${nth}` : ""}\n`);
    process.kill(process.pid, "SIGKILL");
  };
}

export function settlementFaults(hook: SettlementFaultHook): SettlementFaults {
  const pending = new Map<QueryId, "settling" | "settlement">();
  return {
    hook,
    plugin: {
      transformQuery({ node, queryId }) {
        if (InsertQueryNode.is(node) && node.into?.table.identifier.name === "engine_ops") {
          const kinds = stringsIn(node.values);
          const kind = kinds.has("settlement") ? "settlement" : kinds.has("settling") ? "settling" : undefined;
          if (kind) {
            pending.set(queryId, kind);
            hook(kind === "settling" ? "settling-write" : "settlement-write");
          }
        }
        return node;
      },
      async transformResult({ result, queryId }) {
        const kind = pending.get(queryId);
        if (kind) {
          pending.delete(queryId);
          hook(kind === "settling" ? "settling-written" : "settlement-written");
        }
        return result;
      },
    },
  };
}

/** Every string value in a query node's tree (the inserted rows' columns among them). */
function stringsIn(node: unknown, out = new Set<string>()): Set<string> {
  if (typeof node === "string") out.add(node);
  else if (Array.isArray(node)) for (const v of node) stringsIn(v, out);
  else if (node && typeof node === "object") for (const v of Object.values(node)) stringsIn(v, out);
  return out;
}
