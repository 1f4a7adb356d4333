// Trades are committed on-chain as one Merkle root per settlement. Every later call about a
// trade (report, dispute, release, reclaim) presents the trade and a proof built here, over
// the same tree as EnergyMarket._merkleRoot: leaves in trade-id order, pairs hashed
// commutatively, an odd last node carried up.
import { concat, encodeAbiParameters, keccak256, type Address, type Hex } from "viem";

export interface Trade {
  tradeId: bigint;
  batchId: bigint;
  seller: Address;
  buyer: Address;
  zone: Hex;
  energyWh: bigint;
  pricePerKWh: bigint;
  amount: bigint;
  deliveryStart: bigint;
  deliveryEnd: bigint;
  source: number;
  communityFeeBps: number;
  networkFeePerKWh: bigint;
}

export const tradeAbiParameter = {
  type: "tuple",
  components: [
    { name: "tradeId", type: "uint256" },
    { name: "batchId", type: "uint256" },
    { name: "seller", type: "address" },
    { name: "buyer", type: "address" },
    { name: "zone", type: "bytes32" },
    { name: "energyWh", type: "uint64" },
    { name: "pricePerKWh", type: "uint128" },
    { name: "amount", type: "uint256" },
    { name: "deliveryStart", type: "uint64" },
    { name: "deliveryEnd", type: "uint64" },
    { name: "source", type: "uint8" },
    { name: "communityFeeBps", type: "uint16" },
    { name: "networkFeePerKWh", type: "uint128" },
  ],
} as const;

/** keccak256(abi.encode(trade)), as EnergyMarket.tradeLeaf(). */
export function tradeLeaf(trade: Trade): Hex {
  return keccak256(encodeAbiParameters([tradeAbiParameter], [trade]));
}

function hashPair(a: Hex, b: Hex): Hex {
  return BigInt(a) < BigInt(b) ? keccak256(concat([a, b])) : keccak256(concat([b, a]));
}

/** The root over `leaves`; a single leaf is its own root. */
export function merkleRoot(leaves: readonly Hex[]): Hex {
  if (leaves.length === 0) throw new RangeError("merkleRoot: no leaves");
  let level = [...leaves];
  while (level.length > 1) level = nextLevel(level);
  return level[0]!;
}

/** The sibling hashes proving `leaves[index]` under merkleRoot(leaves). */
export function merkleProof(leaves: readonly Hex[], index: number): Hex[] {
  if (index < 0 || index >= leaves.length) throw new RangeError(`merkleProof: index ${index} outside 0..${leaves.length - 1}`);
  const proof: Hex[] = [];
  let level = [...leaves];
  let i = index;
  while (level.length > 1) {
    const sibling = i ^ 1;
    if (sibling < level.length) proof.push(level[sibling]!);
    level = nextLevel(level);
    i = Math.floor(i / 2);
  }
  return proof;
}

function nextLevel(level: readonly Hex[]): Hex[] {
  const next: Hex[] = [];
  for (let i = 0; i + 1 < level.length; i += 2) next.push(hashPair(level[i]!, level[i + 1]!));
  if (level.length % 2 === 1) next.push(level[level.length - 1]!);
  return next;
}
