// Block headers as the sync stages need them: number, hash, parent hash, timestamp.
import type { Hex } from "viem";
import type { ChainRpc } from "./rpc.js";

export interface BlockHeader {
  number: bigint;
  hash: Hex;
  parentHash: Hex;
  timestamp: bigint;
}

interface RpcBlock {
  number: Hex;
  hash: Hex;
  parentHash: Hex;
  timestamp: Hex;
}

export function toBlockHeader(block: RpcBlock): BlockHeader {
  return { number: BigInt(block.number), hash: block.hash, parentHash: block.parentHash, timestamp: BigInt(block.timestamp) };
}

export const hex = (n: bigint | number): Hex => `0x${n.toString(16)}`;

/** The header of block `tag`, or undefined when the chain has no such block (yet, or any more). */
export async function fetchBlockHeader(rpc: ChainRpc, tag: bigint | "latest"): Promise<BlockHeader | undefined> {
  const block = await rpc.request<RpcBlock | null>("eth_getBlockByNumber", [tag === "latest" ? "latest" : hex(tag), false]);
  return block ? toBlockHeader(block) : undefined;
}

export async function fetchBlockHeaders(rpc: ChainRpc, numbers: readonly bigint[]): Promise<Map<bigint, BlockHeader>> {
  const blocks = await rpc.requestBatch<RpcBlock | null>(numbers.map((n) => ({ method: "eth_getBlockByNumber", params: [hex(n), false] })));
  const byNumber = new Map<bigint, BlockHeader>();
  blocks.forEach((b, i) => {
    if (!b) throw new Error(`block ${numbers[i]} is not available from the provider`);
    byNumber.set(numbers[i]!, toBlockHeader(b));
  });
  return byNumber;
}
