// The rounding rule is shared by Solidity and TypeScript; both must reproduce every vector.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { amountFor } from "../../contracts/client/amount.js";
import { ethers } from "./fixtures.js";

interface Vector { energyWh: string; pricePerKWh: string; amount: string }
const { vectors } = JSON.parse(
  readFileSync(new URL("../vectors/amounts.json", import.meta.url), "utf8"),
) as { vectors: Vector[] };

describe("amount rounding vectors (test/vectors/amounts.json)", () => {
  it("has vectors that exercise rounding down", () => {
    expect(vectors.length).to.be.greaterThan(20);
    const rounded = vectors.filter((v) => (BigInt(v.energyWh) * BigInt(v.pricePerKWh)) % 1000n !== 0n);
    expect(rounded.length).to.be.greaterThan(5);
  });

  it("TypeScript amountFor() reproduces every vector", () => {
    for (const v of vectors) {
      expect(amountFor(BigInt(v.energyWh), BigInt(v.pricePerKWh)), JSON.stringify(v)).to.equal(BigInt(v.amount));
    }
  });

  it("Solidity EnergyMath.amountFor reproduces every vector", async () => {
    const harness = await ethers.deployContract("EnergyMathHarness");
    for (const v of vectors) {
      expect(await harness.amountFor(BigInt(v.energyWh), BigInt(v.pricePerKWh)), JSON.stringify(v)).to.equal(
        BigInt(v.amount),
      );
    }
  });

  it("the market charges amountFor() on a listing take", async () => {
    // The vector's rule as the escrow applies it, end to end on one odd-sized trade.
    const { deployMarket, networkHelpers, ZONE_A } = await import("./fixtures.js");
    const f = await networkHelpers.loadFixture(deployMarket);
    const seller = f.sellers[0]!;
    const buyer = f.buyers[0]!;
    await f.market.connect(seller).createListing(ZONE_A, 1234n, 187_654n, f.deliveryStart, f.deliveryEnd, f.deliveryStart, 1);
    const before = await f.token.balanceOf(await buyer.getAddress());
    await f.market.connect(buyer).executeTrade(1n, 1234n);
    expect(before - (await f.token.balanceOf(await buyer.getAddress()))).to.equal(amountFor(1234n, 187_654n));
  });
});
