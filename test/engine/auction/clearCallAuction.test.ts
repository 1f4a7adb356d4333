// The call auction on hand-built books: each tie rule in turn, price-time priority, buyer
// preferences, self-trades, capacity, determinism and input validation. Expected results are
// worked out by hand in the comments.
import { expect } from "chai";
import { clearCallAuction, type AuctionOrder } from "../../../engine/auction/clearCallAuction.js";
import { ValidationError } from "../../../lib/errors.js";
import { buy, fill, naiveExactClearCallAuction, sell, shuffled, SOLAR, STORAGE, WIND, MIXED } from "./helpers.js";

const noCross = { clearingPrice: null, matchedWh: 0, demandWh: 0, supplyWh: 0, fills: [] };

describe("clearCallAuction", () => {
  describe("clearing price", () => {
    // One buy @30 and one sell @10, 100 Wh each: at both candidates D = S = 100, so volume and
    // imbalance tie and the reference price decides.
    const pair = [buy(1, 30, 100), sell(2, 10, 100)];

    it("rule 3: the candidate closest to the reference price", () => {
      expect(clearCallAuction(pair, { referencePrice: 25 }).clearingPrice).to.equal(30);
      expect(clearCallAuction(pair, { referencePrice: 12 }).clearingPrice).to.equal(10);
      expect(clearCallAuction(pair, { referencePrice: 1_000 }).clearingPrice).to.equal(30);
    });

    it("rule 4: the lower price when the reference is exactly between", () => {
      expect(clearCallAuction(pair, { referencePrice: 20 })).to.deep.equal({
        clearingPrice: 10, matchedWh: 100, demandWh: 100, supplyWh: 100, fills: [fill(1, 2, 100, 10)],
      });
    });

    it("rule 1 beats the reference: the most volume wins", () => {
      // D(10)=100 S(10)=50 -> 50; D(25)=100 S(25)=100 -> 100; D(30)=100 S(30)=100 -> 100 (imbalance 0 both).
      // Reference 10 is nearest to 10, but 10 trades less; of 25 and 30, 25 is nearer.
      const r = clearCallAuction([buy(1, 30, 100), sell(2, 10, 50), sell(3, 25, 50)], { referencePrice: 10 });
      expect(r.clearingPrice).to.equal(25);
      expect(r.matchedWh).to.equal(100);
    });

    it("rule 2 beats the reference: the least imbalance wins among equal volumes", () => {
      // D(10)=150 S=100 -> 100, |50|; D(20)=150 S=100 -> 100, |50|; D(30)=100 S=100 -> 100, |0|.
      const r = clearCallAuction([buy(1, 30, 100), buy(2, 20, 50), sell(3, 10, 100)], { referencePrice: 10 });
      expect(r).to.deep.include({ clearingPrice: 30, matchedWh: 100, demandWh: 100, supplyWh: 100 });
    });

    it("only limit prices of orders with volume are candidates", () => {
      // A buy @22 with 0 Wh left must not offer 22 (nearest to reference 21); candidates stay 10 and 30.
      const r = clearCallAuction([buy(1, 30, 100), sell(2, 10, 100), buy(3, 22, 0)], { referencePrice: 21 });
      expect(r.clearingPrice).to.equal(30);
    });

    it("reports D and S at the clearing price", () => {
      // D(12)=180, S(12)=200 -> 180 |20|; D(25)=180, S(25)=200 -> 180 |20|; reference 20 -> 25.
      const r = clearCallAuction([sell(10, 10, 60), sell(11, 10, 40), sell(3, 12, 100), buy(5, 30, 50), buy(2, 30, 50), buy(1, 25, 80)], { referencePrice: 20 });
      expect(r).to.deep.include({ clearingPrice: 25, demandWh: 180, supplyWh: 200, matchedWh: 180 });
    });

    it("no cross, no price", () => {
      expect(clearCallAuction([buy(1, 10, 100), sell(2, 20, 100)], { referencePrice: 15 })).to.deep.equal(noCross);
      expect(clearCallAuction([buy(1, 10, 100), buy(2, 20, 100)], { referencePrice: 15 })).to.deep.equal(noCross);
      expect(clearCallAuction([], { referencePrice: 15 })).to.deep.equal(noCross);
      expect(clearCallAuction([buy(1, 30, 0), sell(2, 10, 0)], { referencePrice: 15 })).to.deep.equal(noCross);
    });
  });

  describe("allocation", () => {
    it("price-time priority: bids by price desc then seq, asks by price asc then seq", () => {
      // Clears at 25 (see above). Bids: #2 @30, #5 @30, #1 @25. Asks: #10 @10, #11 @10, #3 @12.
      const r = clearCallAuction([sell(10, 10, 60), sell(11, 10, 40), sell(3, 12, 100), buy(5, 30, 50), buy(2, 30, 50), buy(1, 25, 80)], { referencePrice: 20 });
      expect(r.fills).to.deep.equal([fill(2, 10, 50, 25), fill(5, 10, 10, 25), fill(5, 11, 40, 25), fill(1, 3, 80, 25)]);
    });

    it("leaves the short side's excess unfilled, never beyond remainingWh", () => {
      // D(10)=70 S(10)=100 -> 70; D(20)=70 S(20)=100 -> 70 |30| both; reference 0 -> 10.
      const r = clearCallAuction([buy(1, 20, 30), buy(2, 20, 40), sell(3, 10, 100)], { referencePrice: 0 });
      expect(r).to.deep.equal({ clearingPrice: 10, matchedWh: 70, demandWh: 70, supplyWh: 100, fills: [fill(1, 3, 30, 10), fill(2, 3, 40, 10)] });
    });

    it("excludes bids below and asks above the clearing price", () => {
      // D(10)=150 S(10)=100 -> 100 |50|; D(20)=100 S(20)=100 -> 100 |0| -> 20; D(40)=0.
      const r = clearCallAuction([buy(1, 20, 100), buy(2, 10, 50), sell(3, 10, 100), sell(4, 40, 100)], { referencePrice: 0 });
      expect(r.clearingPrice).to.equal(20);
      expect(r.fills).to.deep.equal([fill(1, 3, 100, 20)]);
    });
  });

  describe("preferences", () => {
    // Two bids @30 for 60 Wh, two asks @10 for 60 Wh: clears at 10 (reference 10) for 120 Wh.
    it("a buy naming sources skips the asks it does not accept; priority holds among the rest", () => {
      const r = clearCallAuction(
        [buy(1, 30, 60, { acceptedSources: 1 << WIND }), buy(2, 30, 60), sell(3, 10, 60, { source: SOLAR }), sell(4, 10, 60, { source: WIND })],
        { referencePrice: 10 },
      );
      // #1 comes first but skips solar #3 and takes wind #4; #2 takes #3.
      expect(r.fills).to.deep.equal([fill(1, 4, 60, 10), fill(2, 3, 60, 10)]);
    });

    it("a mask of several sources takes the best ask among them", () => {
      const r = clearCallAuction(
        [buy(1, 30, 100, { acceptedSources: (1 << STORAGE) | (1 << MIXED) }), sell(2, 10, 50, { source: WIND }), sell(3, 11, 30, { source: MIXED }), sell(4, 12, 30, { source: STORAGE }), sell(5, 12, 30, { source: SOLAR })],
        { referencePrice: 30 },
      );
      // D=100 everywhere; S(10)=50, S(11)=80, S(12)=S(30)=140: volume 100 and imbalance 40 at 12 and 30; reference 30.
      expect(r.clearingPrice).to.equal(30);
      expect(r.fills).to.deep.equal([fill(1, 3, 30, 30), fill(1, 4, 30, 30)]);
    });

    it("a minimum seller reputation skips sellers below it (equal is enough)", () => {
      const r = clearCallAuction(
        [buy(1, 30, 60, { minSellerReputationBps: 9_000 }), buy(2, 30, 60), sell(3, 10, 30, { sellerReputationBps: 8_999 }), sell(4, 10, 30, { sellerReputationBps: 9_000 }), sell(5, 10, 60, { sellerReputationBps: 9_500 })],
        { referencePrice: 10 },
      );
      expect(r.fills).to.deep.equal([fill(1, 4, 30, 10), fill(1, 5, 30, 10), fill(2, 3, 30, 10), fill(2, 5, 30, 10)]);
    });

    it("both constraints at once, and an unsatisfiable buy trades nothing", () => {
      const r = clearCallAuction(
        [
          buy(1, 30, 50, { acceptedSources: 1 << STORAGE }), // no storage offered: nothing
          buy(2, 30, 50, { acceptedSources: (1 << SOLAR) | (1 << WIND), minSellerReputationBps: 8_000 }),
          buy(3, 30, 100),
          sell(4, 10, 40, { source: SOLAR, sellerReputationBps: 7_000 }),
          sell(5, 10, 40, { source: MIXED, sellerReputationBps: 10_000 }),
          sell(6, 10, 40, { source: WIND, sellerReputationBps: 8_000 }),
          sell(7, 10, 40, { source: SOLAR, sellerReputationBps: 9_000 }),
        ],
        { referencePrice: 10 },
      );
      // D=200 and S=160 at both candidates, 10 and 30: the reference (10) decides.
      expect(r.clearingPrice).to.equal(10);
      expect(r.fills).to.deep.equal([fill(2, 6, 40, 10), fill(2, 7, 10, 10), fill(3, 4, 40, 10), fill(3, 5, 40, 10), fill(3, 7, 20, 10)]);
      expect(r.matchedWh).to.equal(150);
    });

    it("the price ignores preferences: a picky buy can be left out at the volume-maximising price", () => {
      // D=100 at 10 and 15; S(10)=100 (solar), S(15)=150. Volume 100 at both, imbalance 0 at 10 -> 10.
      // The only wind ask (@15) is not eligible at 10, so the wind-only buy gets nothing.
      const r = clearCallAuction([buy(1, 30, 100, { acceptedSources: 1 << WIND }), sell(2, 10, 100, { source: SOLAR }), sell(3, 15, 50, { source: WIND })], { referencePrice: 30 });
      expect(r).to.deep.equal({ clearingPrice: 10, matchedWh: 0, demandWh: 100, supplyWh: 100, fills: [] });
    });

    it("never matches a maker with itself; the skipped ask stays for others", () => {
      const r = clearCallAuction(
        [buy(1, 30, 50, { maker: "alice" }), buy(2, 30, 50, { maker: "bob" }), sell(3, 10, 50, { maker: "alice" }), sell(4, 11, 50, { maker: "carol" })],
        { referencePrice: 10 },
      );
      expect(r.clearingPrice).to.equal(11);
      expect(r.fills).to.deep.equal([fill(1, 4, 50, 11), fill(2, 3, 50, 11)]);
    });

    it("compares makers by value, not by reference", () => {
      const a1 = ["al", "ice"].join("");
      const a2 = ["ali", "ce"].join("");
      const r = clearCallAuction([buy(1, 30, 50, { maker: a1 }), sell(2, 10, 50, { maker: a2 })], { referencePrice: 10 });
      expect(r.fills).to.deep.equal([]);
    });
  });

  describe("capacity", () => {
    const book = [sell(10, 10, 60), sell(11, 10, 40), sell(3, 12, 100), buy(5, 30, 50), buy(2, 30, 50), buy(1, 25, 80)];

    it("caps matched volume in priority order; the price does not move", () => {
      const r = clearCallAuction(book, { referencePrice: 20, capacityWh: 70 });
      expect(r).to.deep.equal({ clearingPrice: 25, matchedWh: 70, demandWh: 180, supplyWh: 200, fills: [fill(2, 10, 50, 25), fill(5, 10, 10, 25), fill(5, 11, 10, 25)] });
    });

    it("leaves the orders untouched, so the ones left out keep their volume", () => {
      const frozen = book.map((o) => Object.freeze({ ...o }));
      clearCallAuction(frozen, { referencePrice: 20, capacityWh: 70 });
      expect(frozen).to.deep.equal(book);
    });

    it("capacity 0 trades nothing; a large capacity changes nothing", () => {
      expect(clearCallAuction(book, { referencePrice: 20, capacityWh: 0 })).to.deep.include({ clearingPrice: 25, matchedWh: 0, fills: [] });
      expect(clearCallAuction(book, { referencePrice: 20, capacityWh: 1_000 })).to.deep.equal(clearCallAuction(book, { referencePrice: 20 }));
    });
  });

  describe("determinism and range", () => {
    const book = [sell(10, 10, 60), sell(11, 10, 40), sell(3, 12, 100), buy(5, 30, 50), buy(2, 30, 50), buy(1, 25, 80), buy(7, 12, 10, { acceptedSources: 1 << SOLAR })];

    it("gives byte-identical output for the same orders in any input order", () => {
      const expected = JSON.stringify(clearCallAuction(book, { referencePrice: 20 }));
      for (let seed = 1; seed <= 20; seed++) {
        expect(JSON.stringify(clearCallAuction(shuffled(book, seed), { referencePrice: 20 }))).to.equal(expected);
      }
    });

    it("handles prices and seqs up to 2^53 - 1 exactly", () => {
      const max = Number.MAX_SAFE_INTEGER;
      const orders = [buy(max, max, 5), sell(0, 1, 3), sell(5_000_000_000, 3 * 2 ** 32, 4), buy(2 ** 40, 2 ** 52, 2)];
      // D(1)=7 S(1)=3 -> 3; D(3*2^32)=7 S=7 -> 7 |0|; D(2^52)=7 S=7 -> 7 |0|; D(max)=5 S=7 -> 5.
      // Reference 0 -> 3*2^32. Bids: max-seq @max, 2^40-seq @2^52. Asks: #0 @1, #5e9 @3*2^32.
      const r = clearCallAuction(shuffled(orders, 7), { referencePrice: 0 });
      expect(r).to.deep.equal({
        clearingPrice: 3 * 2 ** 32, matchedWh: 7, demandWh: 7, supplyWh: 7,
        fills: [fill(max, 0, 3, 3 * 2 ** 32), fill(max, 5_000_000_000, 2, 3 * 2 ** 32), fill(2 ** 40, 5_000_000_000, 2, 3 * 2 ** 32)],
      });
    });
  });

  describe("side totals beyond 2^53 - 1 Wh (each order within it)", () => {
    const max = Number.MAX_SAFE_INTEGER;

    it("clears a buy of 2^53 - 1 Wh plus another buy (it threw 'total buy volume above 2^53 - 1')", () => {
      const r = clearCallAuction([buy(1, 30, max), buy(2, 30, 5), sell(3, 10, 100)], { referencePrice: 20 });
      // D = 2^53 + 4 at both candidates, S = 100: equal volume and imbalance, equal distance -> the lower.
      expect(r).to.deep.equal({ clearingPrice: 10, matchedWh: 100, demandWh: max, supplyWh: 100, fills: [fill(1, 3, 100, 10)] });
    });

    it("compares exact sums where doubles would round: the smaller imbalance wins by 1 Wh", () => {
      // p=20: D = 2^53 + 2, S = 4, imbalance 2^53 - 2. p=30: D = 2^53 + 1, S = 4, imbalance 2^53 - 3.
      // As doubles 2^53 + 1 rounds to 2^53 and the two imbalances compare the other way round.
      const orders = [buy(1, 30, max), buy(2, 30, 2), buy(3, 20, 1), sell(4, 10, 3), sell(5, 20, 1)];
      const r = clearCallAuction(shuffled(orders, 3), { referencePrice: 20 });
      expect(r).to.deep.equal({ clearingPrice: 30, matchedWh: 4, demandWh: max, supplyWh: 4, fills: [fill(1, 4, 3, 30), fill(1, 5, 1, 30)] });
      expect(r).to.deep.equal(naiveExactClearCallAuction(orders, { referencePrice: 20 }));
    });

    it("caps the matched volume at 2^53 - 1 without a capacity, so every total it returns is a safe integer", () => {
      const r = clearCallAuction([buy(1, 30, max), buy(2, 30, max), sell(3, 10, max), sell(4, 10, max)], { referencePrice: 10 });
      expect(r).to.deep.equal({ clearingPrice: 10, matchedWh: max, demandWh: max, supplyWh: max, fills: [fill(1, 3, max, 10)] });
    });
  });

  describe("validation names the order and field", () => {
    const ok = [buy(1, 30, 100), sell(2, 10, 100)];
    const cases: [AuctionOrder[], string][] = [
      [[ok[0]!, { ...ok[1]!, price: 10.5 }], "orders[1].price"],
      [[{ ...ok[0]!, price: -1 }, ok[1]!], "orders[0].price"],
      [[ok[0]!, { ...ok[1]!, remainingWh: -1 }], "orders[1].remainingWh"],
      [[ok[0]!, { ...ok[1]!, remainingWh: 2 ** 53 }], "orders[1].remainingWh"],
      [[{ ...ok[0]!, side: 2 as 0 }, ok[1]!], "orders[0].side"],
      [[ok[0]!, { ...ok[1]!, seq: 1 }], "orders[1].seq"],
      [[{ ...ok[0]!, seq: 2 }, ok[1]!], "orders[1].seq"],
      [[ok[0]!, { ...ok[1]!, seq: -3 }], "orders[1].seq"],
      [[ok[0]!, { ...ok[1]!, source: 0 }], "orders[1].source"],
      [[ok[0]!, { ...ok[1]!, source: 5 }], "orders[1].source"],
      [[ok[0]!, { ...ok[1]!, sellerReputationBps: 10_001 }], "orders[1].sellerReputationBps"],
      [[{ ...ok[0]!, acceptedSources: 1 }, ok[1]!], "orders[0].acceptedSources"],
      [[{ ...ok[0]!, acceptedSources: 1 << 5 }, ok[1]!], "orders[0].acceptedSources"],
      [[{ ...ok[0]!, acceptedSources: 2 ** 32 + 2 }, ok[1]!], "orders[0].acceptedSources"],
      [[{ ...ok[0]!, minSellerReputationBps: 1.5 }, ok[1]!], "orders[0].minSellerReputationBps"],
      [[{ ...ok[0]!, maker: "" }, ok[1]!], "orders[0].maker"],
    ];
    for (const [k, [orders, field]] of cases.entries()) {
      it(`case ${k}: ${field}`, () => {
        expect(() => clearCallAuction(orders, { referencePrice: 20 })).to.throw(ValidationError).with.property("field", field);
      });
    }
    it("options", () => {
      expect(() => clearCallAuction(ok, { referencePrice: -1 })).to.throw(ValidationError).with.property("field", "options.referencePrice");
      expect(() => clearCallAuction(ok, { referencePrice: 20, capacityWh: 1.5 })).to.throw(ValidationError).with.property("field", "options.capacityWh");
    });
    it("a duplicate seq names both orders", () => {
      expect(() => clearCallAuction([buy(9, 30, 1), sell(4, 10, 1), buy(4, 20, 1)], { referencePrice: 20 })).to.throw(ValidationError, /orders\[1\]/);
    });
  });
});
