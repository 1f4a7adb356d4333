// Proofs for every trade of a settlement at once. contracts/client/trade.ts proves one leaf by
// rebuilding the tree (O(n) hashes per proof, O(n^2) for a whole batch); a bridge proving every
// trade of a 100-trade batch builds the levels once and reads each proof off them. Same tree:
// leaves in trade-id order, pairs hashed commutatively, an odd last node carried up.
import { concat, keccak256, type Hex } from "viem";

function hashPair(a: Hex, b: Hex): Hex {
  return BigInt(a) < BigInt(b) ? keccak256(concat([a, b])) : keccak256(concat([b, a]));
}

/** `proofs[i]` proves `leaves[i]`; equal to merkleProof(leaves, i) of contracts/client/trade.ts. */
export function merkleProofsForAll(leaves: readonly Hex[]): Hex[][] {
  if (leaves.length === 0) return [];
  const levels: Hex[][] = [[...leaves]];
  while (levels[levels.length - 1]!.length > 1) {
    const level = levels[levels.length - 1]!;
    const next: Hex[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(hashPair(level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    levels.push(next);
  }
  return leaves.map((_, index) => {
    const proof: Hex[] = [];
    let i = index;
    for (const level of levels.slice(0, -1)) {
      const sibling = i ^ 1;
      if (sibling < level.length) proof.push(level[sibling]!);
      i = Math.floor(i / 2);
    }
    return proof;
  });
}
