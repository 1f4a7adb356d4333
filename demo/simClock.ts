// The simulation's clock: one instant that the node (engine gate closures, settler, bridge
// windows, sessions) reads through `now()`, and that the chain follows. Moving it moves the
// chain first (evm_setNextBlockTimestamp + evm_mine), then the node's view, so nothing in the
// node acts on an instant the chain has not reached yet. A runner may move only the node's view
// where no contract checks the time (each chain move is two journaled requests on the node).
//
// The chain mines one block per transaction and each block is at least one second after the
// one before, so during a burst of transactions chain time can run ahead of the simulated
// clock. That is harmless as long as it stays small next to the simulated steps (minutes); the
// largest lead seen is kept for the benchmark.
import type { PublicClient } from "viem";
import { ValidationError } from "../lib/errors.js";

export interface SimClock {
  /** Unix milliseconds: what the node's `clock` option reads. */
  now(): number;
  /** Unix seconds, rounded down. */
  nowSeconds(): number;
  /** Binds the chain once the node is up; the clock moves it from then on. */
  attachChain(client: PublicClient): void;
  /**
   * Moves the simulated instant forward to `unixSeconds` (never back), the chain first unless
   * `chain` is false: the node's clock may run ahead of the chain where no contract check cares.
   */
  advanceTo(unixSeconds: number, options?: { chain?: boolean }): Promise<void>;
  /**
   * Queues a move of the chain alone, forward to `unixSeconds` (not past the node's clock), and
   * returns at once: the move waits its turn behind the node's transactions while the caller
   * goes on. Moves happen in order; a failure surfaces at the next advanceTo or chainSettled.
   */
  moveChainTo(unixSeconds: number): void;
  /** Resolves once every queued chain move is done. */
  chainSettled(): Promise<void>;
  /** Most seconds the chain's latest block was ahead of a target the clock moved to. */
  maxChainLeadSeconds(): number;
}

export function createSimClock(startUnixSeconds: number): SimClock {
  let nowMs = startUnixSeconds * 1000;
  let client: PublicClient | undefined;
  let maxLead = 0;
  let moves: Promise<void> = Promise.resolve();
  let failure: unknown;
  const noteLead = (lead: number) => (maxLead = Math.max(maxLead, lead));
  const queueMove = (unixSeconds: number) => {
    const c = client;
    if (!c) return;
    moves = moves.then(() => moveChainTo(c, unixSeconds, noteLead)).catch((err: unknown) => {
      failure ??= err;
    });
  };
  const settled = async () => {
    await moves;
    if (failure !== undefined) throw failure;
  };
  return {
    now: () => nowMs,
    nowSeconds: () => Math.floor(nowMs / 1000),
    attachChain(c) {
      client = c;
    },
    async advanceTo(unixSeconds, options = {}) {
      if (unixSeconds * 1000 < nowMs) throw new ValidationError("unixSeconds", `the simulated clock only moves forward: ${unixSeconds} is before ${nowMs / 1000}`);
      if (options.chain !== false) {
        queueMove(unixSeconds);
        await settled();
      } else if (failure !== undefined) {
        throw failure;
      }
      nowMs = unixSeconds * 1000;
    },
    moveChainTo(unixSeconds) {
      if (unixSeconds * 1000 > nowMs) throw new ValidationError("unixSeconds", `the chain may not run ahead of the simulated clock: ${unixSeconds} is after ${nowMs / 1000}`);
      queueMove(unixSeconds);
    },
    chainSettled: settled,
    maxChainLeadSeconds: () => maxLead,
  };
}

async function latestTimestamp(client: PublicClient): Promise<number> {
  const block = (await client.request({ method: "eth_getBlockByNumber", params: ["latest", false] })) as { timestamp: `0x${string}` };
  return Number(block.timestamp);
}

/** Two journaled requests, in the node's order with its transactions; a read only when the chain is already past. */
async function moveChainTo(client: PublicClient, unixSeconds: number, noteLead: (seconds: number) => void): Promise<void> {
  try {
    await client.request({ method: "evm_setNextBlockTimestamp" as never, params: [`0x${unixSeconds.toString(16)}`] as never });
  } catch (err) {
    // The chain is already there: transactions mine one block (and at least one second) each.
    const latest = await latestTimestamp(client);
    if (latest < unixSeconds) throw err;
    noteLead(latest - unixSeconds);
    return;
  }
  await client.request({ method: "evm_mine" as never, params: [] as never });
}
