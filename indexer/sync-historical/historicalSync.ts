// Backfill: finalised blocks in eth_getLogs ranges. Each range's logs and its last block header
// come in one JSON-RPC batch; the range size adapts to the provider (logRange.ts). The next two
// ranges are fetched and decoded while the caller writes the current one, so the database, the
// provider and the decoder all work at the same time.
import type { Address } from "viem";
import type { Logger } from "../../lib/logger.js";
import { LogRangeTooLargeError, RpcError } from "../errors.js";
import type { DecodedEvent, RawLog } from "../indexing/decodeLogs.js";
import { hex, toBlockHeader, type BlockHeader } from "../sync/blocks.js";
import { logsToEvents, type ToEventsContext } from "../sync/toEvents.js";
import type { LogRangeSizer } from "./logRange.js";

export interface HistoricalSyncContext extends ToEventsContext {
  addresses: readonly Address[];
  sizer: LogRangeSizer;
  logger?: Logger;
}

export interface LogRange {
  fromBlock: bigint;
  toBlock: bigint;
  events: DecodedEvent[];
  /** Header of `toBlock`: the checkpoint after this range. */
  end: BlockHeader;
}

/** Fetches the events of blocks `fromBlock`.. at most `maxToBlock`, shrinking the range until the provider accepts it. */
export async function fetchLogRange(ctx: HistoricalSyncContext, fromBlock: bigint, maxToBlock: bigint): Promise<LogRange> {
  for (;;) {
    const span = BigInt(ctx.sizer.size);
    const toBlock = fromBlock + span - 1n < maxToBlock ? fromBlock + span - 1n : maxToBlock;
    const requested = Number(toBlock - fromBlock + 1n);
    let answer: [RawLog[], Parameters<typeof toBlockHeader>[0] | null];
    try {
      answer = (await ctx.rpc.requestBatch<unknown>([
        { method: "eth_getLogs", params: [{ address: ctx.addresses, fromBlock: hex(fromBlock), toBlock: hex(toBlock) }] },
        { method: "eth_getBlockByNumber", params: [hex(toBlock), false] },
      ])) as typeof answer;
    } catch (err) {
      if (!(err instanceof LogRangeTooLargeError)) throw err;
      if (!ctx.sizer.refused(requested, err.hint)) {
        throw new RpcError("eth_getLogs", `the provider refuses even a one-block range at block ${fromBlock}: ${err.providerMessage}`, { retryable: false, cause: err });
      }
      ctx.logger?.info({ msg: "log range refused; shrinking", from_block: Number(fromBlock), requested_blocks: requested, next_blocks: ctx.sizer.size, provider: err.providerMessage });
      continue;
    }
    const [logs, block] = answer;
    ctx.sizer.succeeded(requested, logs.length);
    if (!block) throw new RpcError("eth_getBlockByNumber", `block ${toBlock} is not available although eth_getLogs covered it`, { retryable: true });
    const end = toBlockHeader(block);
    const events = await logsToEvents(ctx, logs, new Map([[end.number, end.timestamp]]));
    return { fromBlock, toBlock, events, end };
  }
}

/** All events of blocks `fromBlock`..`toBlock`, in as many calls as the provider needs. */
async function fetchSegment(ctx: HistoricalSyncContext, fromBlock: bigint, toBlock: bigint): Promise<LogRange> {
  const parts: LogRange[] = [];
  for (let from = fromBlock; from <= toBlock; ) {
    const part = await fetchLogRange(ctx, from, toBlock);
    parts.push(part);
    from = part.toBlock + 1n;
  }
  return { fromBlock, toBlock, events: parts.flatMap((p) => p.events), end: parts.at(-1)!.end };
}

/** Ranges from `fromBlock` to `toBlock`, in order, up to `depth` of them fetched ahead of the consumer. */
export async function* historicalSync(ctx: HistoricalSyncContext, fromBlock: bigint, toBlock: bigint, depth = 2): AsyncGenerator<LogRange> {
  const ahead: Promise<LogRange>[] = [];
  let next = fromBlock;
  const plan = () => {
    while (ahead.length < depth && next <= toBlock) {
      // Boundaries are fixed when planned; a refused range is completed in smaller calls.
      const end = next + BigInt(ctx.sizer.size) - 1n < toBlock ? next + BigInt(ctx.sizer.size) - 1n : toBlock;
      const segment = fetchSegment(ctx, next, end);
      // If the consumer stops early, a prefetch's failure must not surface as unhandled.
      segment.catch(() => undefined);
      ahead.push(segment);
      next = end + 1n;
    }
  };
  plan();
  while (ahead.length > 0) {
    const range = await ahead.shift()!;
    plan();
    yield range;
  }
}
