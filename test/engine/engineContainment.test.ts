// Trust II: nothing a user sends can stop the market. A call auction with side totals past
// 2^53 - 1 Wh clears; a step that throws anyway is contained to its book (rolled back,
// quarantined, replayed identically); and the honest side of a fill the chain refuses after gate
// closure ends "closed" with the reason, never "filled" short of its size.
import { expect } from "chai";
import type { Hex } from "viem";
import { OrderBook, type BookOrderInput, type SubmitOptions } from "../../engine/book/orderBook.js";
import type { ProsumerDirectory } from "../../engine/createEngine.js";
import type { FillRecord } from "../../engine/engineState.js";
import { zoneToHex, type MarketConfig } from "../../engine/markets.js";
import { BaseError } from "../../lib/errors.js";
import { engineSnapshot, INTERVAL, makeOrder, market, memoryEngine, signer, testDomain, wallet, ZONE_HEX, type TestWallet } from "./helpers.js";

const sign = signer(testDomain);
const MAX = Number.MAX_SAFE_INTEGER;
const now = INTERVAL - 7_200;
const gate = INTERVAL - 300;

const callMarket: MarketConfig = { ...market, zone: "ZONE-C", mode: "call" };
const otherCallMarket: MarketConfig = { ...market, zone: "ZONE-D", mode: "call" };
const CALL_HEX = zoneToHex("ZONE-C");
const OTHER_CALL_HEX = zoneToHex("ZONE-D");
const markets = [market, callMarket, otherCallMarket];

const [alice, bob, carol, grace, dave, erin, frank, heidi] = ["alice", "bob", "carol", "grace", "dave", "erin", "frank", "heidi"].map(wallet) as TestWallet[] as [
  TestWallet, TestWallet, TestWallet, TestWallet, TestWallet, TestWallet, TestWallet, TestWallet,
];
/** Each maker's zone: alice, bob, carol and grace trade in the call zone C, dave and erin in the
 *  continuous zone A, frank and heidi in the call zone D. */
const zoneOf = new Map<string, Hex>([
  ...[alice, bob, carol, grace].map((w) => [w.address.toLowerCase(), CALL_HEX] as const),
  ...[dave, erin].map((w) => [w.address.toLowerCase(), ZONE_HEX] as const),
  ...[frank, heidi].map((w) => [w.address.toLowerCase(), OTHER_CALL_HEX] as const),
]);
const directory: ProsumerDirectory = {
  profile: async (a) => ({ zone: zoneOf.get(a.toLowerCase()) ?? ZONE_HEX, active: true, sources: 0x1e }),
  reputationBps: async () => 10_000,
};

function signed(w: TestWallet, side: 0 | 1, energyWh: number, price: number, zone: Hex, extra: Parameters<typeof makeOrder>[4] = {}) {
  const order = makeOrder(w, side, energyWh, price, { zone, ...extra });
  return { order, signature: sign(w, order) };
}

/** Replaces an OrderBook method for the test's length; the returned function puts it back. */
function patchBook<K extends "submit" | "reduce">(name: K, make: (original: OrderBook[K]) => OrderBook[K]): () => void {
  const original = OrderBook.prototype[name];
  OrderBook.prototype[name] = make(original);
  return () => {
    OrderBook.prototype[name] = original;
  };
}

const view = (engine: { getOrder(id: Hex): { status: string; reason?: string; filledWh: number } | undefined }, id: Hex) => {
  const o = engine.getOrder(id)!;
  return [o.status, o.reason, o.filledWh];
};

describe("engine containment (Trust II)", () => {
  let restore: (() => void) | undefined;
  afterEach(() => {
    restore?.();
    restore = undefined;
  });

  it("row 1: a buy of 2^53 - 1 Wh plus another buy in a call zone: gate closure clears; the engine trades on; a restart replays it", async () => {
    const { engine, opened } = await memoryEngine({ markets, directory, referencePrice: 200_000 });
    const huge = await engine.placeOrder(signed(alice, 0, MAX, 300_000, CALL_HEX), now);
    // A book side rests at most 2^53 - 1 Wh (so the auction's sums stay exact; the auction itself
    // also clears larger totals, see clearCallAuction.test.ts): the second buy is refused in the log.
    const other = await engine.placeOrder(signed(bob, 0, 1_000, 250_000, CALL_HEX), now);
    const ask = await engine.placeOrder(signed(carol, 1, 5_000, 150_000, CALL_HEX), now);
    expect([huge.status, other.status, ask.status]).to.deep.equal(["open", "rejected", "open"]);
    expect(other.reason).to.equal("book_side_volume_limit");
    const side = engine.book(CALL_HEX, INTERVAL)!.book.bids;
    expect(side.totalWh).to.equal(MAX);

    // Before: the second buy was taken, clearCallAuction threw "total buy volume above 2^53 - 1"
    // inside apply, the log failed, and every later order got engine_failed.
    await engine.advance(gate);
    expect(engine.stats().status).to.equal("running");
    expect(engine.state.quarantined).to.deep.equal([]);
    expect(engine.book(CALL_HEX, INTERVAL)!.status).to.equal("closed");
    // D = 2^53 - 1 and S = 5,000 at both candidates: the one nearest the reference, 150,000.
    expect([...engine.state.fills].map((f) => [f.buyId, f.sellId, f.energyWh, f.price])).to.deep.equal([[huge.orderId, ask.orderId, 5_000, 150_000]]);
    expect(view(engine, huge.orderId)).to.deep.equal(["closed", undefined, 5_000]);
    expect(view(engine, other.orderId)).to.deep.equal(["rejected", "book_side_volume_limit", 0]);
    expect(view(engine, ask.orderId)).to.deep.equal(["filled", undefined, 5_000]);

    // Other books take orders and trade.
    await engine.placeOrder(signed(dave, 1, 1_000, 200_000, ZONE_HEX, { deliveryStart: BigInt(INTERVAL + 900), deliveryEnd: BigInt(INTERVAL + 1_800), expiry: BigInt(INTERVAL + 900) }), gate);
    const taker = await engine.placeOrder(signed(erin, 0, 400, 210_000, ZONE_HEX, { deliveryStart: BigInt(INTERVAL + 900), deliveryEnd: BigInt(INTERVAL + 1_800), expiry: BigInt(INTERVAL + 900) }), gate);
    expect(taker.fills.map((f) => f.energyWh)).to.deep.equal([400]);
    const nextCall = await engine.placeOrder(signed(bob, 0, MAX, 300_000, CALL_HEX, { deliveryStart: BigInt(INTERVAL + 900), deliveryEnd: BigInt(INTERVAL + 1_800), expiry: BigInt(INTERVAL + 900) }), gate);
    expect(nextCall.status).to.equal("open");

    // A restart over the same log replays the clearing and takes orders.
    await engine.idle();
    const restarted = await memoryEngine({ db: opened, markets, directory, referencePrice: 200_000 });
    expect(restarted.engine.stats().status).to.equal("running");
    expect(engineSnapshot(restarted.engine)).to.equal(engineSnapshot(engine));
    const after = await restarted.engine.placeOrder(signed(carol, 1, 1_000, 200_000, CALL_HEX, { deliveryStart: BigInt(INTERVAL + 900), deliveryEnd: BigInt(INTERVAL + 1_800), expiry: BigInt(INTERVAL + 900) }), gate);
    expect(after.status).to.equal("open");
    await restarted.engine.advance(INTERVAL + 600);
    expect(restarted.engine.stats().status).to.equal("running");
    await opened.close();
  });

  it("a gate-closure step that throws mid-allocation is rolled back and quarantines only its book; the other books close normally; a replay matches", async () => {
    // A fault no input should cause: shrinking a call-auction order to 60,007 Wh throws, after the
    // allocation already recorded a fill and filled the first buy.
    restore = patchBook("reduce", (original) => function (this: OrderBook, seq: number, remainingWh: number) {
      if (remainingWh === 60_007) throw new RangeError("injected: reduce failed");
      return original.call(this, seq, remainingWh);
    });
    const { engine, opened } = await memoryEngine({ markets, directory, referencePrice: 200_000 });
    const ask = await engine.placeOrder(signed(carol, 1, 100_007, 150_000, CALL_HEX), now);
    const bid1 = await engine.placeOrder(signed(alice, 0, 40_000, 200_000, CALL_HEX), now);
    const bid2 = await engine.placeOrder(signed(bob, 0, 30_000, 190_000, CALL_HEX), now);
    const resting = await engine.placeOrder(signed(dave, 1, 1_000, 300_000, ZONE_HEX), now);
    const otherAsk = await engine.placeOrder(signed(frank, 1, 1_000, 150_000, OTHER_CALL_HEX), now);
    const otherBid = await engine.placeOrder(signed(heidi, 0, 1_000, 200_000, OTHER_CALL_HEX), now);
    expect(otherBid.status).to.equal("open");
    const heardFills: FillRecord[] = [];
    const heardBooks: string[] = [];
    engine.events.on("fill", (f) => heardFills.push(f));
    engine.events.on("book", (b) => heardBooks.push(`${b.zone}:${b.status}`));

    await engine.advance(gate);
    const advanceSeq = engine.state.lastSeq;
    expect(engine.stats().status).to.equal("running");
    const callBook = engine.book(CALL_HEX, INTERVAL)!;
    expect(callBook.status).to.equal("quarantined");
    expect(callBook.book.orders.size).to.equal(0);
    expect(engine.state.quarantined).to.deep.equal([
      { book: callBook.key, zone: "ZONE-C", intervalStart: INTERVAL, seq: advanceSeq, opType: "advance", error: "RangeError: injected: reduce failed" },
    ]);
    // No partial allocation left behind: the fill to alice is gone, her order has its volume back.
    for (const id of [ask.orderId, bid1.orderId, bid2.orderId]) {
      expect(view(engine, id)).to.deep.equal(["closed", "book_quarantined", 0]);
      expect(engine.getOrder(id)!.fillIds).to.deep.equal([]);
    }
    expect([...engine.state.fills].every((f) => f.book !== callBook.key)).to.equal(true);
    // Book D, closed by the same operation after C threw, cleared as usual; book A closed.
    expect(engine.book(OTHER_CALL_HEX, INTERVAL)!.status).to.equal("closed");
    expect(view(engine, otherAsk.orderId)).to.deep.equal(["filled", undefined, 1_000]);
    expect(view(engine, otherBid.orderId)).to.deep.equal(["filled", undefined, 1_000]);
    expect([...engine.state.fills].map((f) => [f.buyId, f.sellId, f.energyWh, f.price])).to.deep.equal([[otherBid.orderId, otherAsk.orderId, 1_000, 200_000]]);
    expect(engine.book(ZONE_HEX, INTERVAL)!.status).to.equal("closed");
    expect(view(engine, resting.orderId)).to.deep.equal(["closed", undefined, 0]);
    // Only D's fill was announced: the rolled-back one in C never was.
    expect(heardFills.map((f) => f.fillId)).to.deep.equal([0]);
    expect(heardBooks).to.include("ZONE-C:quarantined");

    // The quarantined book takes nothing more; other books do.
    const late = makeOrder(carol, 1, 1_000, 150_000, { zone: CALL_HEX, deliveryStart: BigInt(INTERVAL + 900), deliveryEnd: BigInt(INTERVAL + 1_800), expiry: BigInt(INTERVAL + 900) });
    expect((await engine.placeOrder({ order: late, signature: sign(carol, late) }, gate)).status).to.equal("open");

    // Replay: the same log quarantines the same book at the same operation and does not fail.
    await engine.idle();
    const restarted = await memoryEngine({ db: opened, markets, directory, referencePrice: 200_000 });
    expect(restarted.engine.stats().status).to.equal("running");
    expect(engineSnapshot(restarted.engine)).to.equal(engineSnapshot(engine));
    expect(restarted.engine.state.quarantined).to.deep.equal(engine.state.quarantined);
    expect(restarted.engine.book(CALL_HEX, INTERVAL)!.status).to.equal("quarantined");
    await opened.close();
  });

  it("a continuous submit that throws quarantines its book: earlier fills stay and settle, the throwing order keeps nothing, other books trade on", async () => {
    // The matching itself throws after changing the book (an order of 4,242 Wh trips it).
    restore = patchBook("submit", (original) => function (this: OrderBook, input: BookOrderInput, options: SubmitOptions) {
      const result = original.call(this, input, options);
      if (input.sizeWh === 4_242) throw new TypeError("injected: submit failed");
      return result;
    });
    const { engine, opened } = await memoryEngine({ markets, directory });
    const ask1 = await engine.placeOrder(signed(dave, 1, 1_000, 200_000, ZONE_HEX), now);
    const ask2 = await engine.placeOrder(signed(dave, 1, 1_000, 210_000, ZONE_HEX), now);
    const early = await engine.placeOrder(signed(erin, 0, 500, 220_000, ZONE_HEX), now);
    expect(early.fills.map((f) => f.energyWh)).to.deep.equal([500]);

    const poison = await engine.placeOrder(signed(erin, 0, 4_242, 220_000, ZONE_HEX), now);
    expect(poison).to.deep.include({ status: "closed", reason: "book_quarantined", fills: [] });
    expect(engine.stats().status).to.equal("running");
    expect(engine.book(ZONE_HEX, INTERVAL)!.status).to.equal("quarantined");
    expect(engine.state.quarantined.map((q) => [q.seq, q.opType, q.error])).to.deep.equal([[engine.getOrder(poison.orderId)!.seq, "place", "TypeError: injected: submit failed"]]);
    expect(view(engine, ask1.orderId)).to.deep.equal(["closed", "book_quarantined", 500]);
    expect(view(engine, ask2.orderId)).to.deep.equal(["closed", "book_quarantined", 0]);
    expect(view(engine, early.orderId)).to.deep.equal(["filled", undefined, 500]);
    expect(view(engine, poison.orderId)).to.deep.equal(["closed", "book_quarantined", 0]);
    expect(engine.state.fills).to.have.length(1);

    // The book's earlier fill settles as usual.
    await engine.recordSettlement(1, "0x01", [{ fillId: 0, executed: true, tradeId: 1n }], now);
    expect(engine.state.fills.get(0)!.status).to.equal("executed");

    // A later order for the quarantined book is refused (by intake, or by the book in the log).
    let refusal: unknown;
    try {
      const r = await engine.placeOrder(signed(erin, 0, 100, 220_000, ZONE_HEX), now);
      refusal = [r.status, r.reason];
    } catch (err) {
      refusal = err;
    }
    if (refusal instanceof BaseError) expect(refusal.code).to.not.equal("engine_failed");
    else expect(refusal).to.deep.equal(["rejected", "book_quarantined"]);

    // Another interval of the same zone trades.
    const next = { deliveryStart: BigInt(INTERVAL + 900), deliveryEnd: BigInt(INTERVAL + 1_800), expiry: BigInt(INTERVAL + 900) };
    await engine.placeOrder(signed(dave, 1, 1_000, 200_000, ZONE_HEX, next), now);
    expect((await engine.placeOrder(signed(erin, 0, 300, 200_000, ZONE_HEX, next), now)).fills.map((f) => f.energyWh)).to.deep.equal([300]);

    await engine.idle();
    const restarted = await memoryEngine({ db: opened, markets, directory });
    expect(restarted.engine.stats().status).to.equal("running");
    expect(engineSnapshot(restarted.engine)).to.equal(engineSnapshot(engine));
    expect(restarted.engine.state.quarantined).to.deep.equal(engine.state.quarantined);
    await opened.close();
  });
});

describe("engine: a fill refused on chain after gate closure (no re-clearing)", () => {
  it("an unfunded ceiling bid takes a whole call-auction allocation; refused with InsufficientFunds, the honest sellers end closed with 0 Wh and the reason", async () => {
    const { engine, opened } = await memoryEngine({ markets, directory, referencePrice: 200_000 });
    const s1 = await engine.placeOrder(signed(carol, 1, 1_000, 150_000, CALL_HEX), now);
    const s2 = await engine.placeOrder(signed(bob, 1, 2_000, 180_000, CALL_HEX), now);
    const honest = await engine.placeOrder(signed(grace, 0, 500, 200_000, CALL_HEX), now);
    const ceiling = await engine.placeOrder(signed(alice, 0, 3_000, market.retailPrice, CALL_HEX), now);
    await engine.advance(gate);
    // D = S = 3,000 at the ceiling (imbalance 0): the ceiling bid takes every ask, the honest bid nothing.
    expect([...engine.state.fills].map((f) => [f.buyId, f.sellId, f.energyWh, f.price])).to.deep.equal([
      [ceiling.orderId, s1.orderId, 1_000, market.retailPrice],
      [ceiling.orderId, s2.orderId, 2_000, market.retailPrice],
    ]);
    expect(view(engine, s1.orderId)).to.deep.equal(["filled", undefined, 1_000]);
    expect(view(engine, honest.orderId)).to.deep.equal(["closed", undefined, 0]);

    await engine.recordSettlement(7, "0x07", [
      { fillId: 0, executed: false, reason: "InsufficientFunds" },
      { fillId: 1, executed: false, reason: "InsufficientFunds" },
    ], gate + 60);
    expect(view(engine, ceiling.orderId)).to.deep.equal(["cancelled", "settlement_rejected:InsufficientFunds", 0]);
    // Before: both sellers stayed "filled" with 0 Wh (reinstate did nothing once the book closed).
    expect(view(engine, s1.orderId)).to.deep.equal(["closed", "counterparty_refused:InsufficientFunds", 0]);
    expect(view(engine, s2.orderId)).to.deep.equal(["closed", "counterparty_refused:InsufficientFunds", 0]);
    expect(view(engine, honest.orderId)).to.deep.equal(["closed", undefined, 0]);
    expect(engine.book(CALL_HEX, INTERVAL)!.book.orders.size).to.equal(0); // nothing re-clears
    // A second verdict on the same fills changes nothing.
    await engine.recordSettlement(8, "0x08", [{ fillId: 0, executed: false, reason: "InsufficientFunds" }], gate + 90);
    expect(view(engine, s1.orderId)).to.deep.equal(["closed", "counterparty_refused:InsufficientFunds", 0]);

    await engine.idle();
    const restarted = await memoryEngine({ db: opened, markets, directory, referencePrice: 200_000 });
    expect(engineSnapshot(restarted.engine)).to.equal(engineSnapshot(engine));
    await opened.close();
  });

  it("an IOC order filled in full whose seller is refused ends cancelled with the reason, not filled short", async () => {
    const { engine, opened } = await memoryEngine({ markets, directory });
    const ask = await engine.placeOrder(signed(dave, 1, 1_000, 200_000, ZONE_HEX), now);
    const ioc = await engine.placeOrder({ ...signed(erin, 0, 600, 210_000, ZONE_HEX), timeInForce: "ioc" }, now);
    expect(ioc.status).to.equal("filled");
    await engine.recordSettlement(1, "0x01", [{ fillId: 0, executed: false, reason: "SellerInactive" }], now + 60);
    expect(view(engine, ask.orderId)).to.deep.equal(["cancelled", "settlement_rejected:SellerInactive", 0]);
    expect(view(engine, ioc.orderId)).to.deep.equal(["cancelled", "counterparty_refused:SellerInactive", 0]);
    await opened.close();
  });
});
