// The all-at-once proofs equal contracts/client/trade.ts' one-at-a-time proofs, for every size.
import { expect } from "chai";
import { keccak256, toHex } from "viem";
import { merkleProof, merkleRoot } from "../../contracts/client/trade.js";
import { merkleProofsForAll } from "../../bridge/merkleProofs.js";

describe("merkleProofsForAll", () => {
  it("matches merkleProof for every leaf of trees of 1 to 40 leaves", () => {
    for (let n = 1; n <= 40; n++) {
      const leaves = Array.from({ length: n }, (_, i) => keccak256(toHex(`leaf-${n}-${i}`)));
      const all = merkleProofsForAll(leaves);
      expect(all).to.have.length(n);
      all.forEach((proof, i) => expect(proof, `n=${n} i=${i}`).to.deep.equal(merkleProof(leaves, i)));
      expect(merkleRoot(leaves)).to.be.a("string");
    }
    expect(merkleProofsForAll([])).to.deep.equal([]);
  });
});
