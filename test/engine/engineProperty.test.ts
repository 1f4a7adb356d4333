// The whole engine under random traffic (fast-check, fixed seed: a failure reproduces; set
// ENGINE_PROPERTY_SEED / ENGINE_PROPERTY_RUNS to explore). A real createEngine over PGlite takes
// orders signed (EIP-712, viem) by a few makers, plus garbage, foreign and high-s signatures, of
// any size from 1 Wh to 2^53 - 1 Wh, prices inside and outside the corridor, every kind and time
// in force, in continuous (with and without capacity) and call-auction zones over several
// intervals, mixed with cancels, shrinks, clock moves and settlement verdicts. After every step:
// the engine never fails, every refusal is a coded error (never engine_failed), and the books'
// invariants hold; at the end a restart over the same log rebuilds the same state.
import { expect } from "chai";
import fc from "fast-check";
import type { Address, Hex } from "viem";
import { keccak256, toHex } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { signOrder, type Order } from "../../contracts/client/order.js";
import { compatible, MAX_SIDE_WH, type RestingOrder } from "../../engine/book/orderBook.js";
import type { Engine, ProsumerDirectory } from "../../engine/createEngine.js";
import { zoneToHex, type MarketConfig } from "../../engine/markets.js";
import { BaseError } from "../../lib/errors.js";
import { engineSnapshot, freshDatabase, INTERVAL, market, memoryEngine, testDomain } from "./helpers.js";

const SEED = process.env.ENGINE_PROPERTY_SEED === undefined ? 0x7257_0002 : Number(process.env.ENGINE_PROPERTY_SEED);
const RUNS = Number(process.env.ENGINE_PROPERTY_RUNS ?? 12);
const MAX = Number.MAX_SAFE_INTEGER;

const markets: MarketConfig[] = [
  market, // ZONE-A, continuous, no capacity
  { ...market, zone: "ZONE-B", mode: "call" },
  { ...market, zone: "ZONE-K", mode: "continuous", capacityKWh: 5 },
];
const zones = markets.map((m) => zoneToHex(m.zone));

/** Three makers per zone, the last with a lower reputation (buyers may ask for more). */
const makers: { account: PrivateKeyAccount; zone: Hex; reputationBps: number }[] = zones.flatMap((zone, z) =>
  [0, 1, 2].map((i) => ({ account: privateKeyToAccount(keccak256(toHex(`engine property maker ${z}.${i}`))), zone, reputationBps: i === 2 ? 6_000 : 10_000 })),
);
const byAddress = new Map(makers.map((m) => [m.account.address.toLowerCase(), m]));

/** Every maker active in its zone with every source; generous and tolerant of new fields. */
const directory: ProsumerDirectory = {
  profile: async (a: Address) => ({ zone: byAddress.get(a.toLowerCase())?.zone ?? zones[0]!, active: byAddress.has(a.toLowerCase()), sources: 0x1e }),
  reputationBps: async (a: Address) => byAddress.get(a.toLowerCase())?.reputationBps ?? 0,
};

/** The clock starts 30 minutes before delivery of the first interval (25 before its gate closes):
 *  some runs pass it on their own; every run ends by closing every book. */
const START = INTERVAL - 1_800;
const FAULTS = ["InsufficientFunds", "BuyerInactive", "SellerInactive", "SourceNotRegistered", "ReputationTooLow", "ZoneMismatch", "BadSellSignature"];

type SignatureKind = "valid" | "foreign" | "garbage" | "highS" | "short";
type Action =
  | {
      type: "place"; maker: number; side: 0 | 1; sizeWh: number; price: number | { spread: number }; style: number; interval: number; expiresEarly: boolean;
      source: number; acceptedSources: number; minRep: number; signature: SignatureKind; repeat: boolean;
    }
  | { type: "cancel"; pick: number; ownMaker: boolean }
  | { type: "reduce"; pick: number; fraction: number }
  | { type: "advance"; seconds: number }
  | { type: "settle"; count: number; verdicts: { executed: boolean; fault: number }[] };

/** Order kinds and time in force: the valid combinations mostly, and one intake refuses. */
const styles = [
  { kind: "limit", timeInForce: "gtc", postOnly: false }, { kind: "limit", timeInForce: "gtc", postOnly: false }, { kind: "limit", timeInForce: "gtc", postOnly: false },
  { kind: "limit", timeInForce: "gtc", postOnly: true }, { kind: "limit", timeInForce: "gtc", postOnly: false }, { kind: "limit", timeInForce: "gtc", postOnly: false },
  { kind: "limit", timeInForce: "ioc", postOnly: false }, { kind: "limit", timeInForce: "fok", postOnly: false },
  { kind: "market", timeInForce: "ioc", postOnly: false }, { kind: "market", timeInForce: "fok", postOnly: false }, { kind: "market", timeInForce: "gtc", postOnly: false },
] as const;

/** Mostly household sizes; sometimes any size up to 2^53 - 1 (a side then fills up at once). */
const sizeArb = fc.oneof(
  { weight: 16, arbitrary: fc.integer({ min: 1, max: 3_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: MAX }) },
  { weight: 1, arbitrary: fc.constantFrom(MAX, MAX - 1, 2 ** 52, 2 ** 52 + 1) },
);
/** A price: a number as it is, or { spread } for a price that crosses the middle by `spread`
 *  steps of 10,000 (a buy above 200,000, a sell below it; negative: it does not cross). */
const priceArb: fc.Arbitrary<number | { spread: number }> = fc.oneof(
  { weight: 10, arbitrary: fc.integer({ min: -2, max: 3 }).map((spread) => ({ spread })) },
  { weight: 3, arbitrary: fc.integer({ min: market.feedInTariff, max: market.retailPrice }) },
  { weight: 1, arbitrary: fc.constantFrom(market.feedInTariff, market.retailPrice) },
  { weight: 1, arbitrary: fc.constantFrom(0, market.feedInTariff - 1, market.retailPrice + 1, MAX) },
);
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 14,
    arbitrary: fc.record({
      // Zones A and B mostly, and the first interval mostly, so that books fill up and trade.
      type: fc.constant("place" as const), maker: fc.tuple(fc.constantFrom(0, 0, 0, 0, 0, 1, 1, 1, 2), fc.constantFrom(0, 1, 2)).map(([zone, i]) => zone * 3 + i), side: fc.constantFrom(0 as const, 1 as const), sizeWh: sizeArb, price: priceArb,
      style: fc.nat({ max: styles.length - 1 }), interval: fc.constantFrom(0, 0, 0, 0, 0, 0, 0, 0, 1, 2), expiresEarly: fc.constantFrom(false, false, true),
      source: fc.constantFrom(1, 2, 3, 4), acceptedSources: fc.constantFrom(0, 0, 0, 0, 0, 0, 1 << 1, (1 << 2) | (1 << 3)), minRep: fc.constantFrom(0, 0, 0, 0, 0, 8_000),
      signature: fc.constantFrom<SignatureKind>(...Array<SignatureKind>(20).fill("valid"), "foreign", "garbage", "highS", "short"), repeat: fc.constantFrom(false, false, false, false, false, false, false, false, false, true),
    }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("cancel" as const), pick: fc.nat(), ownMaker: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("reduce" as const), pick: fc.nat(), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("advance" as const), seconds: fc.integer({ min: 0, max: 900 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("settle" as const), count: fc.integer({ min: 1, max: 6 }),
      verdicts: fc.array(fc.record({ executed: fc.boolean(), fault: fc.nat({ max: FAULTS.length - 1 }) }), { minLength: 6, maxLength: 6 }),
    }),
  },
);

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** The same signature in its high-s twin form (s' = n - s, v flipped): valid math, refused by the market. */
function highS(signature: Hex): Hex {
  const r = signature.slice(2, 66);
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = parseInt(signature.slice(130, 132), 16);
  return `0x${r}${(SECP256K1_N - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}` as Hex;
}

/** Runs one action; returns a description of what happened (for the failure message). */
async function run(engine: Engine, action: Action, clock: { now: number }, placed: Hex[], nonce: { next: bigint }, last: { req?: Parameters<Engine["placeOrder"]>[0] }): Promise<string> {
  const now = clock.now;
  switch (action.type) {
    case "place": {
      let req = last.req;
      if (!action.repeat || !req) {
        const m = makers[action.maker]!;
        const start = INTERVAL + action.interval * 900;
        const price = typeof action.price === "number" ? action.price : 200_000 + (action.side === 0 ? 1 : -1) * action.price.spread * 10_000;
        const order: Order = {
          maker: m.account.address, side: action.side, zone: m.zone, deliveryStart: BigInt(start), deliveryEnd: BigInt(start + 900), energyWh: BigInt(action.sizeWh),
          limitPricePerKWh: BigInt(price), source: action.side === 1 ? action.source : 0, acceptedSources: action.side === 0 ? action.acceptedSources : 0,
          minSellerReputationBps: action.side === 0 ? action.minRep : 0, nonce: nonce.next++, expiry: BigInt(action.expiresEarly ? now + 600 : start),
        };
        const valid = await signOrder(m.account, order, testDomain);
        const signature: Hex =
          action.signature === "valid" ? valid
          : action.signature === "foreign" ? await signOrder(makers[(action.maker + 1) % makers.length]!.account, order, testDomain)
          : action.signature === "highS" ? highS(valid)
          : action.signature === "short" ? "0x1234"
          : (`0x${"ab".repeat(64)}1b` as Hex);
        // A call zone takes only GTC limit orders: elsewhere the style is drawn as it is.
        const style = m.zone === zones[1] && action.style !== styles.length - 1 ? styles[action.style % 6]! : styles[action.style]!;
        req = { order, signature, kind: style.kind, timeInForce: style.timeInForce, ...(style.postOnly ? { postOnly: true } : {}) };
        last.req = req;
      }
      const result = await expectCodedRefusalOr(engine.placeOrder(req, now));
      if (typeof result === "string") return `place refused: ${result}`;
      placed.push(result.orderId);
      return `placed ${result.orderId.slice(0, 10)}: ${result.status}${result.reason ? ` (${result.reason})` : ""}, ${result.fills.length} fills`;
    }
    case "cancel": {
      if (placed.length === 0) return "cancel: nothing placed";
      const id = placed[action.pick % placed.length]!;
      const order = engine.getOrder(id)!;
      const maker = action.ownMaker ? order.accepted.order.maker : makers[0]!.account.address;
      const result = await expectCodedRefusalOr(engine.cancelOrder(id, maker, now));
      return typeof result === "string" ? `cancel refused: ${result}` : "cancelled";
    }
    case "reduce": {
      if (placed.length === 0) return "reduce: nothing placed";
      const id = placed[action.pick % placed.length]!;
      const order = engine.getOrder(id)!;
      const sizeWh = Math.floor(order.filledWh + (order.sizeWh - order.filledWh) * action.fraction);
      const result = await expectCodedRefusalOr(engine.replaceOrder(id, order.accepted.order.maker, { sizeWh }, now));
      return typeof result === "string" ? `reduce refused: ${result}` : `reduced to ${sizeWh}`;
    }
    case "advance":
      clock.now += action.seconds;
      await engine.advance(clock.now);
      return `advanced to ${clock.now - START} s`;
    case "settle": {
      const fills = engine.settleableFills(action.count);
      if (fills.length === 0) return "settle: nothing pending";
      const results = fills.map((f, i) => {
        const v = action.verdicts[i]!;
        return v.executed ? { fillId: f.fillId, executed: true, tradeId: BigInt(f.fillId + 1) } : { fillId: f.fillId, executed: false, reason: FAULTS[v.fault]! };
      });
      await engine.recordSettlement(fills[0]!.fillId + 1, "0x01", results, now);
      return `settled ${results.map((r) => (r.executed ? `${r.fillId}:ok` : `${r.fillId}:${r.reason}`)).join(" ")}`;
    }
  }
}

/** Resolves to the call's result, or to the refusal's code: any error but a coded BaseError
 *  other than engine_failed fails the test. */
async function expectCodedRefusalOr<T>(call: Promise<T>): Promise<T | string> {
  try {
    return await call;
  } catch (err) {
    expect(err, `a coded refusal, got ${(err as Error)?.stack}`).to.be.instanceOf(BaseError);
    const code = (err as BaseError).code;
    expect(code, (err as Error).message).to.not.equal("engine_failed");
    expect(code).to.be.a("string").and.not.equal("");
    return code;
  }
}

/** The invariants, checked after every step. */
function checkInvariants(engine: Engine, now: number): void {
  expect(engine.stats().status, "engine running").to.equal("running");
  const state = engine.state;
  // Each order: filledWh is the sum of its fills the chain has not refused, within its size;
  // "filled" exactly when it is filled in full.
  const filledBy = new Map<Hex, number>();
  for (const f of state.fills) {
    expect(Number.isSafeInteger(f.energyWh) && f.energyWh > 0, `fill ${f.fillId} volume`).to.equal(true);
    expect(f.buyer.toLowerCase()).to.not.equal(f.seller.toLowerCase());
    if (f.status === "failed") continue;
    for (const id of [f.buyId, f.sellId]) filledBy.set(id, (filledBy.get(id) ?? 0) + f.energyWh);
  }
  for (const o of state.orders.values()) {
    const at = `order ${o.seq} (${o.status}${o.reason ? `, ${o.reason}` : ""})`;
    expect(o.filledWh, `${at} filledWh = its fills`).to.equal(filledBy.get(o.id) ?? 0);
    expect(o.filledWh, `${at} filledWh >= 0`).to.be.at.least(0);
    expect(o.filledWh, `${at} filledWh <= sizeWh`).to.be.at.most(o.sizeWh);
    expect(o.status === "filled", `${at}: filled iff filledWh == sizeWh (${o.filledWh}/${o.sizeWh})`).to.equal(o.filledWh === o.sizeWh);
  }
  for (const rec of state.books.values()) {
    const book = rec.book;
    const at = `book ${rec.market.zone}@${rec.intervalStart - INTERVAL} (${rec.status})`;
    // Every side's total is a safe integer, the exact sum of what rests there.
    for (const side of [book.bids, book.asks]) {
      let exact = 0n;
      for (const level of side.levels.values()) {
        let levelSum = 0n;
        for (let o: RestingOrder | null = level.head; o; o = o.next) {
          expect(Number.isSafeInteger(o.remainingWh) && o.remainingWh > 0, `${at} resting volume`).to.equal(true);
          levelSum += BigInt(o.remainingWh);
        }
        expect(BigInt(level.totalWh), `${at} level total`).to.equal(levelSum);
        exact += levelSum;
      }
      expect(Number.isSafeInteger(side.totalWh) && side.totalWh >= 0 && side.totalWh <= MAX_SIDE_WH, `${at} side total ${side.totalWh}`).to.equal(true);
      expect(BigInt(side.totalWh), `${at} side total`).to.equal(exact);
    }
    expect(Number.isSafeInteger(book.matchedWh) && book.matchedWh >= 0, `${at} matched ${book.matchedWh}`).to.equal(true);
    // What rests is exactly the book's open orders, at their unfilled volume.
    const open = [...state.orders.values()].filter((o) => o.book === rec.key && o.status === "open");
    if (rec.status !== "open") expect(open.length, `${at} has no open order`).to.equal(0);
    expect(book.orders.size, `${at} resting = open`).to.equal(open.length);
    for (const o of open) expect(book.orders.get(o.seq)?.remainingWh, `${at} order ${o.seq} rests its remainder`).to.equal(o.sizeWh - o.filledWh);
    // No crossed continuous book: no live pair that could trade is left crossed (unless capacity is spent).
    const capacityLeft = (book.capacityWh ?? MAX) - book.matchedWh;
    if (rec.status === "open" && rec.market.mode === "continuous" && capacityLeft > 0) {
      const live = [...book.orders.values()].filter((o) => o.expiry > now);
      for (const b of live) {
        if (b.side !== 0) continue;
        for (const a of live) if (a.side === 1 && a.price <= b.price) expect(compatible(b, a), `${at} crossed: bid ${b.seq} @${b.price}, ask ${a.seq} @${a.price}`).to.equal(false);
      }
    }
  }
}

describe("engine property: random traffic never stops the market (seeded)", function () {
  this.timeout(120_000);

  it("every step keeps the engine running and the books consistent; a restart replays the same state", async () => {
    let steps = 0;
    await fc.assert(
      fc.asyncProperty(fc.noBias(fc.array(actionArb, { minLength: 40, maxLength: 80 })), fc.nat({ max: 1_000 }), async (actions, verdictSeed) => {
        const opened = await freshDatabase();
        const { engine } = await memoryEngine({ db: opened, markets, directory });
        const clock = { now: START };
        const placed: Hex[] = [];
        const nonce = { next: 1n };
        const last: { req?: Parameters<Engine["placeOrder"]>[0] } = {};
        const trail: string[] = [];
        for (const action of actions) {
          try {
            trail.push(await run(engine, action, clock, placed, nonce, last));
            checkInvariants(engine, clock.now);
          } catch (err) {
            (err as Error).message += `\n  after: ${trail.slice(-8).join("\n         ")}`;
            throw err;
          }
          steps++;
        }
        // Every gate closes in turn (call auctions clear), then the chain rules on every fill left.
        for (let k = 0; k < 3; k++) {
          clock.now = Math.max(clock.now, INTERVAL + k * 900 - 300);
          await engine.advance(clock.now);
          checkInvariants(engine, clock.now);
        }
        for (let pending = engine.settleableFills(); pending.length > 0; pending = engine.settleableFills()) {
          await engine.recordSettlement(pending[0]!.fillId + 1, "0x02", pending.map((f) => {
            const refused = (f.fillId * 7 + verdictSeed) % 3 === 0;
            return refused ? { fillId: f.fillId, executed: false, reason: FAULTS[(f.fillId + verdictSeed) % FAULTS.length]! } : { fillId: f.fillId, executed: true, tradeId: BigInt(f.fillId + 1) };
          }), clock.now);
          checkInvariants(engine, clock.now);
        }
        await engine.idle();
        const restarted = await memoryEngine({ db: opened, markets, directory });
        expect(restarted.engine.stats().status).to.equal("running");
        expect(engineSnapshot(restarted.engine)).to.equal(engineSnapshot(engine));
        expect(restarted.engine.state.quarantined).to.deep.equal(engine.state.quarantined);
        checkInvariants(restarted.engine, clock.now);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(steps).to.be.greaterThan(RUNS * 5);
  });
});
