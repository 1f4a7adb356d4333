// The allocation rules on their own: worked examples for FIFO and pro rata, the buyer's cap,
// missing meters, and properties over random inputs (never more than measured on either side,
// never more than contracted, FIFO fills earlier trades first, pro rata stays within 1 Wh of
// the exact share).
import { expect } from "chai";
import fc from "fast-check";
import type { Address } from "viem";
import { allocateDeliveredEnergy, shareEnergy, type TradeClaim } from "../../bridge/allocateDeliveredEnergy.js";

const S1 = "0x0000000000000000000000000000000000000a01" as Address;
const S2 = "0x0000000000000000000000000000000000000a02" as Address;
const B1 = "0x0000000000000000000000000000000000000b01" as Address;
const B2 = "0x0000000000000000000000000000000000000b02" as Address;

describe("shareEnergy", () => {
  it("gives every claim in full when there is enough", () => {
    expect(shareEnergy(1_000n, [300n, 200n], "fifo")).to.deep.equal([300n, 200n]);
    expect(shareEnergy(1_000n, [300n, 200n], "pro-rata")).to.deep.equal([300n, 200n]);
  });

  it("FIFO: settled = min(contracted, remaining measured), in execution order", () => {
    expect(shareEnergy(1_200n, [600n, 400n, 500n], "fifo")).to.deep.equal([600n, 400n, 200n]);
    expect(shareEnergy(500n, [600n, 400n], "fifo")).to.deep.equal([500n, 0n]);
    expect(shareEnergy(0n, [1n, 2n], "fifo")).to.deep.equal([0n, 0n]);
  });

  it("pro rata by contracted energy, the Wh left by rounding to the largest remainders", () => {
    expect(shareEnergy(1_200n, [600n, 400n, 500n], "pro-rata")).to.deep.equal([480n, 320n, 400n]);
    // 100 over three equal claims: 33.33 each, the one spare Wh to the earliest trade.
    expect(shareEnergy(100n, [50n, 50n, 50n], "pro-rata")).to.deep.equal([34n, 33n, 33n]);
    expect(shareEnergy(10n, [1n, 1_000n], "pro-rata")).to.deep.equal([0n, 10n]);
  });

  it("refuses negative energy", () => {
    expect(() => shareEnergy(-1n, [1n], "fifo")).to.throw(RangeError);
  });

  for (const rule of ["fifo", "pro-rata"] as const) {
    it(`${rule}: never more than available, never more than a claim, all of it when claims exceed it`, () => {
      fc.assert(
        fc.property(fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.array(fc.bigInt({ min: 0n, max: 10n ** 9n }), { minLength: 1, maxLength: 20 }), (available, claims) => {
          const shares = shareEnergy(available, claims, rule);
          const total = claims.reduce((a, b) => a + b, 0n);
          const given = shares.reduce((a, b) => a + b, 0n);
          expect(given <= available).to.equal(true);
          shares.forEach((s, i) => expect(s >= 0n && s <= claims[i]!).to.equal(true));
          expect(given).to.equal(total < available ? total : available);
          if (rule === "fifo") {
            // A later claim gets something only when every earlier one is full.
            const firstShort = shares.findIndex((s, i) => s < claims[i]!);
            if (firstShort >= 0) shares.slice(firstShort + 1).forEach((s) => expect(s).to.equal(0n));
          } else if (total > available) {
            shares.forEach((s, i) => {
              const exact = (available * claims[i]!) / total;
              expect(s === exact || s === exact + 1n).to.equal(true);
            });
          }
        }),
        { numRuns: 300 },
      );
    });
  }
});

describe("allocateDeliveredEnergy", () => {
  const trade = (tradeId: bigint, seller: Address, buyer: Address, contractedWh: bigint): TradeClaim => ({ tradeId, seller, buyer, contractedWh });

  it("shares the seller's export, then caps each buyer by what it imported", () => {
    const result = allocateDeliveredEnergy({
      trades: [trade(3n, S1, B2, 500n), trade(1n, S1, B1, 600n), trade(2n, S2, B1, 400n)],
      sellerExportWh: new Map([[S1, 900n], [S2, 400n]]),
      buyerImportWh: new Map([[B1, 800n], [B2, 1_000n]]),
      rule: "fifo",
    });
    // S1: trade 1 gets 600, trade 3 the remaining 300. B1 imported 800 for 600 + 400: trade 2 keeps 200.
    expect(result).to.deep.equal([
      { tradeId: 1n, sellerAllocatedWh: 600n, deliveredWh: 600n, basis: "measured" },
      { tradeId: 2n, sellerAllocatedWh: 400n, deliveredWh: 200n, basis: "measured" },
      { tradeId: 3n, sellerAllocatedWh: 300n, deliveredWh: 300n, basis: "measured" },
    ]);
  });

  it("reports nothing delivered when a meter sent no data, and says which", () => {
    const result = allocateDeliveredEnergy({
      trades: [trade(1n, S1, B1, 600n), trade(2n, S2, B2, 400n)],
      sellerExportWh: new Map<Address, bigint | undefined>([[S1, undefined], [S2, 400n]]),
      buyerImportWh: new Map<Address, bigint | undefined>([[B1, 600n], [B2, undefined]]),
      rule: "pro-rata",
    });
    expect(result.map((r) => [r.deliveredWh, r.basis])).to.deep.equal([[0n, "seller_data_missing"], [0n, "buyer_data_missing"]]);
    expect(result[1]!.sellerAllocatedWh).to.equal(400n);
  });

  it("over random books: per seller <= export, per buyer <= import, per trade <= contracted", () => {
    const sellers = [S1, S2];
    const buyers = [B1, B2];
    fc.assert(
      fc.property(
        fc.array(fc.record({ s: fc.integer({ min: 0, max: 1 }), b: fc.integer({ min: 0, max: 1 }), wh: fc.bigInt({ min: 1n, max: 5_000n }) }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.bigInt({ min: 0n, max: 20_000n }), { minLength: 4, maxLength: 4 }),
        fc.constantFrom("fifo" as const, "pro-rata" as const),
        (specs, energy, rule) => {
          const trades = specs.map((x, i) => trade(BigInt(i + 1), sellers[x.s]!, buyers[x.b]!, x.wh));
          const sellerExportWh = new Map(sellers.map((s, i) => [s, energy[i]!]));
          const buyerImportWh = new Map(buyers.map((b, i) => [b, energy[2 + i]!]));
          const result = allocateDeliveredEnergy({ trades, sellerExportWh, buyerImportWh, rule });
          const sum = (pred: (t: TradeClaim) => boolean) => result.filter((r) => pred(trades[Number(r.tradeId) - 1]!)).reduce((a, r) => a + r.deliveredWh, 0n);
          for (const s of sellers) expect(sum((t) => t.seller === s) <= sellerExportWh.get(s)!).to.equal(true);
          for (const b of buyers) expect(sum((t) => t.buyer === b) <= buyerImportWh.get(b)!).to.equal(true);
          for (const r of result) expect(r.deliveredWh <= trades[Number(r.tradeId) - 1]!.contractedWh && r.deliveredWh <= r.sellerAllocatedWh).to.equal(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
