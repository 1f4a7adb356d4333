// Following the head, block by block, inside the finality window. The rule relied on: every
// block links to its parent by hash. A new block whose parentHash is not the hash of the
// checkpoint block means the chain switched branches; so does a chain whose block at the
// checkpoint height has another hash, or no block there at all (it got shorter). Then the
// newest stored block the chain still has is the common ancestor; if it lies deeper than the
// finality depth, or no stored block survives, the indexer stops (DeepReorgError).
//
// One poll yields a tagged union for the indexing stage to apply, in order:
//   block    — a new block and its events, to write with undo images
//   reorg    — roll back to `ancestor`, then the next poll re-applies the new branch
//   finalize — blocks at or below `blockNumber` can no longer change
import type { Address, Hex } from "viem";
import { DeepReorgError, LogRangeTooLargeError, RpcError } from "../errors.js";
import type { DecodedEvent, RawLog } from "../indexing/decodeLogs.js";
import type { StoredBlock } from "../store/schema.js";
import { fetchBlockHeader, type BlockHeader } from "../sync/blocks.js";
import { logsToEvents, type ToEventsContext } from "../sync/toEvents.js";

export type RealtimeEvent =
  | { type: "block"; block: BlockHeader; events: DecodedEvent[] }
  | { type: "reorg"; ancestor: StoredBlock; depth: bigint; replacedTip: bigint }
  | { type: "finalize"; blockNumber: bigint };

export interface RealtimeSyncContext extends ToEventsContext {
  addresses: readonly Address[];
  finalityDepth: number;
  /** Stored window, newest first. */
  recentBlocks(): Promise<StoredBlock[]>;
}

export interface RealtimeCursor {
  /** The last indexed block. */
  number: bigint;
  hash: string;
}

/**
 * One poll: from the block after `cursor` up to `head`. Stops early after a reorg or when a
 * block vanishes under it; the next poll starts from wherever the consumer then stands.
 */
export async function* pollRealtime(ctx: RealtimeSyncContext, cursor: RealtimeCursor, head: BlockHeader): AsyncGenerator<RealtimeEvent> {
  let tip = cursor;
  if (head.number <= tip.number) {
    const atTip = head.number === tip.number ? head : await fetchBlockHeader(ctx.rpc, tip.number);
    if (!atTip || atTip.hash !== tip.hash) yield await findReorg(ctx, tip);
    return;
  }
  for (let n = tip.number + 1n; n <= head.number; n++) {
    const block = n === head.number ? head : await fetchBlockHeader(ctx.rpc, n);
    if (!block) return;
    if (block.parentHash !== tip.hash) {
      yield await findReorg(ctx, tip);
      return;
    }
    const events = await blockEvents(ctx, block);
    if (events === undefined) return;
    yield { type: "block", block, events };
    tip = { number: block.number, hash: block.hash };
    // Final relative to the indexed tip, the same reference the deep-reorg check uses: every
    // block a permitted rollback could undo keeps its undo images and its window entry.
    const finalized = tip.number - BigInt(ctx.finalityDepth);
    if (finalized >= 0n) yield { type: "finalize", blockNumber: finalized };
  }
}

/** Logs of exactly this block (by hash, so they cannot come from a sibling); undefined if the block was dropped meanwhile. */
async function blockEvents(ctx: RealtimeSyncContext, block: BlockHeader): Promise<DecodedEvent[] | undefined> {
  let logs: RawLog[];
  try {
    logs = await ctx.rpc.request<RawLog[]>("eth_getLogs", [{ address: ctx.addresses, blockHash: block.hash }]);
  } catch (err) {
    if (err instanceof LogRangeTooLargeError) {
      // One block is the smallest range there is.
      throw new RpcError("eth_getLogs", `the provider refuses the logs of block ${block.number} as too many: ${err.providerMessage}`, { retryable: false, cause: err });
    }
    // Providers answer a filter on a block they no longer have with an error; check whether
    // that is what happened before treating it as a failure.
    if (err instanceof RpcError && !err.retryable) {
      const still = await ctx.rpc.request<unknown>("eth_getBlockByHash", [block.hash as Hex, false]);
      if (still === null) return undefined;
    }
    throw err;
  }
  return logsToEvents(ctx, logs, new Map([[block.number, block.timestamp]]));
}

/** The reorg under `tip`: its common ancestor with the chain, or DeepReorgError. */
export async function findReorg(ctx: RealtimeSyncContext, tip: RealtimeCursor): Promise<Extract<RealtimeEvent, { type: "reorg" }>> {
  const stored = await ctx.recentBlocks();
  for (const candidate of stored) {
    if (candidate.number > tip.number) continue;
    const onChain = await fetchBlockHeader(ctx.rpc, candidate.number);
    if (onChain?.hash !== candidate.hash) continue;
    const depth = tip.number - candidate.number;
    if (depth > BigInt(ctx.finalityDepth)) {
      throw new DeepReorgError(tip.number, ctx.finalityDepth, `common ancestor is block ${candidate.number} (${depth} blocks deep)`);
    }
    return { type: "reorg", ancestor: candidate, depth, replacedTip: tip.number };
  }
  const oldest = stored.at(-1);
  throw new DeepReorgError(
    tip.number,
    ctx.finalityDepth,
    oldest ? `none of the ${stored.length} stored blocks (${oldest.number}..${stored[0]!.number}) is on the chain any more` : "no stored blocks to compare with",
  );
}
