// eth_getLogs over a block range in pieces: providers cap the range or the result size, so a
// failing range is halved until it passes (down to one block, which then fails for real).
import type { AbiEvent, Address, Log, PublicClient } from "viem";

export interface FetchLogsParameters<E extends readonly AbiEvent[]> {
  address: Address;
  events: E;
  fromBlock: bigint;
  toBlock: bigint;
  /** First attempt's range; remembered smaller after a provider refuses. */
  maxRange?: bigint;
}

const DEFAULT_RANGE = 10_000n;

export async function fetchLogs<const E extends readonly AbiEvent[]>(
  client: PublicClient,
  { address, events, fromBlock, toBlock, maxRange = DEFAULT_RANGE }: FetchLogsParameters<E>,
): Promise<Log<bigint, number, false, undefined, true, E>[]> {
  const logs: Log<bigint, number, false, undefined, true, E>[] = [];
  let range = maxRange;
  let from = fromBlock;
  while (from <= toBlock) {
    const to = from + range - 1n < toBlock ? from + range - 1n : toBlock;
    try {
      const chunk = await client.getLogs({ address, events, fromBlock: from, toBlock: to, strict: true });
      logs.push(...(chunk as unknown as typeof logs));
      from = to + 1n;
    } catch (err) {
      if (range === 1n || !looksLikeRangeLimit(err)) throw err;
      range = range / 2n;
    }
  }
  return logs;
}

function looksLikeRangeLimit(err: unknown): boolean {
  const text = String((err as Error)?.message ?? err).toLowerCase();
  return /range|too many|limit|exceed|response size|10000|timeout/.test(text);
}
