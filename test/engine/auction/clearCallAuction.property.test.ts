// Property tests on seeded random books (fast-check; fixed seeds, so a failure reproduces; set
// AUCTION_PROPERTY_SEED to explore others). The oracles are brute force and a naive model in
// helpers.ts, never the implementation under test.
import { expect } from "chai";
import fc from "fast-check";
import { clearCallAuction, type AuctionOrder, type AuctionResult } from "../../../engine/auction/clearCallAuction.js";
import { accepts, demandAt, naiveClearCallAuction, naiveExactClearCallAuction, shuffled, supplyAt } from "./helpers.js";

const SEED = process.env.AUCTION_PROPERTY_SEED === undefined ? 0x00a0c710 : Number(process.env.AUCTION_PROPERTY_SEED);
const RUNS = Number(process.env.AUCTION_PROPERTY_RUNS ?? 400);

interface BookShape {
  maxOrders: number;
  maxPrice: number;
  preferences: boolean;
  /** Makers drawn from a few names (self-trades possible) instead of one per order. */
  sharedMakers: boolean;
  /** Seqs and prices sometimes near 2^53 (the float radix paths). */
  hugeNumbers: boolean;
  /** Volumes sometimes near 2^53, so a side's total passes 2^53 - 1 (the bigint path). */
  hugeVolumes?: boolean;
}

function bookArb(shape: BookShape): fc.Arbitrary<AuctionOrder[]> {
  const price = shape.hugeNumbers
    ? fc.oneof(fc.integer({ min: 0, max: shape.maxPrice }), fc.constantFrom(2 ** 32, 2 ** 40 + 1, 2 ** 52, Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER))
    : fc.integer({ min: 0, max: shape.maxPrice });
  const seq = shape.hugeNumbers ? fc.oneof(fc.nat({ max: 10_000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })) : fc.nat({ max: 10_000 });
  const raw = fc.record({
    side: fc.constantFrom(0 as const, 1 as const),
    price,
    remainingWh: fc.oneof(
      { weight: 1, arbitrary: fc.constant(0) },
      { weight: 6, arbitrary: fc.integer({ min: 1, max: 60 }) },
      { weight: shape.hugeVolumes ? 4 : 0, arbitrary: fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1, 2 ** 52, 2 ** 52 + 1, 2 ** 53 - 60) },
    ),
    maker: fc.constantFrom("m0", "m1", "m2", "m3"),
    source: fc.integer({ min: 1, max: 4 }),
    acceptedSources: shape.preferences ? fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 15 }).map((m) => m << 1)) : fc.constant(0),
    minSellerReputationBps: shape.preferences ? fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10_000 })) : fc.constant(0),
    sellerReputationBps: fc.integer({ min: 0, max: 10_000 }),
  });
  return fc.array(raw, { maxLength: shape.maxOrders }).chain((rows) =>
    fc.uniqueArray(seq, { minLength: rows.length, maxLength: rows.length }).map((seqs) =>
      rows.map((r, i): AuctionOrder => ({
        seq: seqs[i]!,
        side: r.side,
        price: r.price,
        remainingWh: r.remainingWh,
        maker: shape.sharedMakers ? r.maker : `maker-${i}`,
        source: r.side === 1 ? r.source : 0,
        acceptedSources: r.side === 0 ? r.acceptedSources : 0,
        minSellerReputationBps: r.side === 0 ? r.minSellerReputationBps : 0,
        sellerReputationBps: r.side === 1 ? r.sellerReputationBps : 0,
      })),
    ),
  );
}

const reference = (maxPrice: number): fc.Arbitrary<number> => fc.integer({ min: 0, max: maxPrice + 2 });
const capacity = fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined });

/** The invariants every result must satisfy, whatever the book. */
function checkInvariants(orders: readonly AuctionOrder[], result: AuctionResult, capacityWh: number | undefined): void {
  const bySeq = new Map(orders.map((o) => [o.seq, o]));
  const filled = new Map<number, number>();
  let sum = 0;
  for (const f of result.fills) {
    const b = bySeq.get(f.buySeq)!;
    const s = bySeq.get(f.sellSeq)!;
    expect(b.side, "buy side").to.equal(0);
    expect(s.side, "sell side").to.equal(1);
    expect(f.price).to.equal(result.clearingPrice);
    expect(f.price, "within the buy limit").to.be.at.most(b.price);
    expect(f.price, "within the sell limit").to.be.at.least(s.price);
    expect(f.energyWh).to.be.greaterThan(0);
    expect(accepts(b, s), "preferences and no self-trade").to.equal(true);
    filled.set(b.seq, (filled.get(b.seq) ?? 0) + f.energyWh);
    filled.set(s.seq, (filled.get(s.seq) ?? 0) + f.energyWh);
    sum += f.energyWh;
  }
  for (const [seq, wh] of filled) expect(wh, `order ${seq} over-filled`).to.be.at.most(bySeq.get(seq)!.remainingWh);
  expect(result.matchedWh).to.equal(sum);
  if (capacityWh !== undefined) expect(result.matchedWh).to.be.at.most(capacityWh);
  if (result.clearingPrice === null) {
    expect(result).to.deep.equal({ clearingPrice: null, matchedWh: 0, demandWh: 0, supplyWh: 0, fills: [] });
  } else {
    expect(result.demandWh).to.equal(demandAt(orders, result.clearingPrice));
    expect(result.supplyWh).to.equal(supplyAt(orders, result.clearingPrice));
    expect(result.matchedWh).to.be.at.most(Math.min(result.demandWh, result.supplyWh));
  }
}

describe("clearCallAuction properties (seeded)", () => {
  it("clears the brute-force maximum volume over every integer price, without preferences", () => {
    const maxPrice = 12;
    fc.assert(
      fc.property(bookArb({ maxOrders: 12, maxPrice, preferences: false, sharedMakers: false, hugeNumbers: false }), reference(maxPrice), (orders, referencePrice) => {
        // Every integer price, not only the limit prices: the candidates must be enough.
        let bruteForce = 0;
        for (let p = 0; p <= maxPrice + 1; p++) bruteForce = Math.max(bruteForce, Math.min(demandAt(orders, p), supplyAt(orders, p)));
        const r = clearCallAuction(orders, { referencePrice });
        expect(r.matchedWh).to.equal(bruteForce);
        if (bruteForce > 0) expect(orders.some((o) => o.remainingWh > 0 && o.price === r.clearingPrice), "a limit price").to.equal(true);
        checkInvariants(orders, r, undefined);
      }),
      { seed: SEED, numRuns: RUNS * 2 },
    );
  });

  it("picks the price of the stated tie rules and allocates exactly as the naive model", () => {
    const shape = { maxOrders: 14, maxPrice: 8, preferences: true, sharedMakers: true, hugeNumbers: false };
    fc.assert(
      fc.property(bookArb(shape), reference(shape.maxPrice), capacity, (orders, referencePrice, capacityWh) => {
        const r = clearCallAuction(orders, { referencePrice, capacityWh });
        expect(r).to.deep.equal(naiveClearCallAuction(orders, { referencePrice, capacityWh }));
        checkInvariants(orders, r, capacityWh);
      }),
      { seed: SEED + 1, numRuns: RUNS * 2 },
    );
  });

  it("agrees with the naive model on prices and seqs near 2^53", () => {
    const shape = { maxOrders: 12, maxPrice: 20, preferences: true, sharedMakers: true, hugeNumbers: true };
    fc.assert(
      fc.property(bookArb(shape), fc.oneof(reference(20), fc.constant(Number.MAX_SAFE_INTEGER)), capacity, (orders, referencePrice, capacityWh) => {
        const r = clearCallAuction(orders, { referencePrice, capacityWh });
        expect(r).to.deep.equal(naiveClearCallAuction(orders, { referencePrice, capacityWh }));
        checkInvariants(orders, r, capacityWh);
      }),
      { seed: SEED + 2, numRuns: RUNS },
    );
  });

  it("clears books whose side totals pass 2^53 - 1 Wh exactly as a bigint model, never throwing", () => {
    const shape = { maxOrders: 12, maxPrice: 8, preferences: true, sharedMakers: true, hugeNumbers: false, hugeVolumes: true };
    const bigCapacity = fc.option(fc.oneof(fc.integer({ min: 0, max: 400 }), fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(2 ** 52)), { nil: undefined });
    fc.assert(
      fc.property(bookArb(shape), reference(shape.maxPrice), bigCapacity, (orders, referencePrice, capacityWh) => {
        const r = clearCallAuction(orders, { referencePrice, capacityWh });
        expect(r).to.deep.equal(naiveExactClearCallAuction(orders, { referencePrice, capacityWh }));
        for (const v of [r.matchedWh, r.demandWh, r.supplyWh, ...r.fills.map((f) => f.energyWh)]) expect(Number.isSafeInteger(v), `${v} is a safe integer`).to.equal(true);
      }),
      { seed: SEED + 7, numRuns: RUNS },
    );
  });

  it("agrees with the naive model on larger books with preferences and capacity", () => {
    const shape = { maxOrders: 400, maxPrice: 60, preferences: true, sharedMakers: true, hugeNumbers: false };
    fc.assert(
      fc.property(bookArb(shape), reference(60), fc.option(fc.integer({ min: 0, max: 8_000 }), { nil: undefined }), (orders, referencePrice, capacityWh) => {
        const r = clearCallAuction(orders, { referencePrice, capacityWh });
        expect(r).to.deep.equal(naiveClearCallAuction(orders, { referencePrice, capacityWh }));
        checkInvariants(orders, r, capacityWh);
      }),
      { seed: SEED + 3, numRuns: Math.max(20, RUNS / 10) },
    );
  });

  it("fills min(D, S) at the clearing price when nothing constrains the allocation", () => {
    const shape = { maxOrders: 30, maxPrice: 10, preferences: false, sharedMakers: false, hugeNumbers: false };
    fc.assert(
      fc.property(bookArb(shape), reference(10), (orders, referencePrice) => {
        const r = clearCallAuction(orders, { referencePrice });
        expect(r.matchedWh).to.equal(Math.min(r.demandWh, r.supplyWh));
      }),
      { seed: SEED + 4, numRuns: RUNS },
    );
  });

  it("respects capacity: matched = min(capacity, uncapped) without preferences, and the price does not move", () => {
    const shape = { maxOrders: 20, maxPrice: 10, preferences: false, sharedMakers: false, hugeNumbers: false };
    fc.assert(
      fc.property(bookArb(shape), reference(10), fc.integer({ min: 0, max: 500 }), (orders, referencePrice, capacityWh) => {
        const uncapped = clearCallAuction(orders, { referencePrice });
        const capped = clearCallAuction(orders, { referencePrice, capacityWh });
        expect(capped.clearingPrice).to.equal(uncapped.clearingPrice);
        expect(capped.matchedWh).to.equal(Math.min(capacityWh, uncapped.matchedWh));
        checkInvariants(orders, capped, capacityWh);
      }),
      { seed: SEED + 5, numRuns: RUNS },
    );
  });

  it("is deterministic: the same input twice, or in another order, gives identical JSON", () => {
    const shape = { maxOrders: 40, maxPrice: 10, preferences: true, sharedMakers: true, hugeNumbers: false };
    fc.assert(
      fc.property(bookArb(shape), reference(10), capacity, fc.integer(), (orders, referencePrice, capacityWh, permutationSeed) => {
        const first = JSON.stringify(clearCallAuction(orders, { referencePrice, capacityWh }));
        expect(JSON.stringify(clearCallAuction(orders, { referencePrice, capacityWh }))).to.equal(first);
        expect(JSON.stringify(clearCallAuction(shuffled(orders, permutationSeed), { referencePrice, capacityWh }))).to.equal(first);
      }),
      { seed: SEED + 6, numRuns: RUNS },
    );
  });
});
