// The continuous book: unit cases per order type, and seeded random streams checked after
// every operation against the book's invariants and an independent price-time model.
import { expect } from "chai";
import { BUY, MAX_SIDE_WH, SELL, OrderBook, compatible, type BookFill, type BookOrderInput, type Side, type TimeInForce } from "../../../engine/book/orderBook.js";
import { mulberry32 } from "../../../lib/random.js";

let seq = 0;
function order(side: Side, price: number, sizeWh: number, extra: Partial<BookOrderInput> = {}): BookOrderInput {
  seq++;
  return {
    seq, id: `o${seq}`, maker: `m${seq}`, side, price, sizeWh, expiry: 1_000_000,
    source: side === SELL ? 1 : 0, acceptedSources: 0, minSellerReputationBps: 0, sellerReputationBps: 10_000, ...extra,
  };
}
const gtc = { timeInForce: "gtc" as TimeInForce, postOnly: false, now: 0 };

describe("OrderBook (continuous)", () => {
  it("trades at the resting order's price, best price first, then time", () => {
    const book = new OrderBook();
    const a1 = order(SELL, 200, 500);
    const a2 = order(SELL, 190, 500);
    const a3 = order(SELL, 190, 500);
    for (const a of [a1, a2, a3]) book.submit(a, gtc);
    const r = book.submit(order(BUY, 210, 1_200), gtc);
    expect(r.status).to.equal("filled");
    expect(r.fills.map((f) => [f.sellSeq, f.energyWh, f.price])).to.deep.equal([[a2.seq, 500, 190], [a3.seq, 500, 190], [a1.seq, 200, 200]]);
    expect(book.depth().asks).to.deep.equal([{ price: 200, energyWh: 300, orders: 1 }]);
  });

  it("rests the unfilled part of a limit order and stops at its limit", () => {
    const book = new OrderBook();
    book.submit(order(SELL, 200, 500), gtc);
    const r = book.submit(order(BUY, 199, 300), gtc);
    expect(r.status).to.equal("resting");
    expect(book.top()).to.deep.equal({ bid: 199, ask: 200 });
  });

  it("IOC drops the rest, FOK fills all or nothing, post-only never takes", () => {
    const book = new OrderBook();
    book.submit(order(SELL, 200, 500), gtc);
    const ioc = book.submit(order(BUY, 200, 800), { ...gtc, timeInForce: "ioc" });
    expect([ioc.status, ioc.remainingWh, ioc.fills.length]).to.deep.equal(["partially_filled_cancelled", 300, 1]);
    book.submit(order(SELL, 200, 500), gtc);
    const fokNo = book.submit(order(BUY, 200, 600), { ...gtc, timeInForce: "fok" });
    expect([fokNo.status, fokNo.fills.length]).to.deep.equal(["rejected", 0]);
    expect(book.depth().asks[0]!.energyWh).to.equal(500);
    const fokYes = book.submit(order(BUY, 200, 500), { ...gtc, timeInForce: "fok" });
    expect([fokYes.status, fokYes.remainingWh]).to.deep.equal(["filled", 0]);
    book.submit(order(SELL, 205, 500), gtc);
    expect(book.submit(order(BUY, 205, 100), { ...gtc, postOnly: true })).to.include({ status: "rejected", reason: "post_only_would_cross" });
    expect(book.submit(order(BUY, 204, 100), { ...gtc, postOnly: true }).status).to.equal("resting");
  });

  it("skips sellers a constrained buyer refuses and its own orders, keeping priority among the rest", () => {
    const book = new OrderBook();
    const wind = order(SELL, 180, 400, { source: 2 });
    const lowRep = order(SELL, 185, 400, { source: 1, sellerReputationBps: 8_000 });
    const mine = order(SELL, 186, 400, { maker: "me" });
    const good = order(SELL, 190, 400, { source: 1, sellerReputationBps: 9_900 });
    for (const o of [wind, lowRep, mine, good]) book.submit(o, gtc);
    const r = book.submit(order(BUY, 200, 1_000, { maker: "me", acceptedSources: 1 << 1, minSellerReputationBps: 9_500 }), gtc);
    expect(r.fills.map((f) => f.sellSeq)).to.deep.equal([good.seq]);
    expect(r.status).to.equal("partially_filled_resting");
    // An unconstrained seller-side order then takes the resting constrained bid.
    expect(book.submit(order(SELL, 200, 100, { source: 1 }), gtc).fills[0]!.price).to.equal(200);
  });

  it("caps matched volume at the zone's capacity and leaves the rest in the book", () => {
    const book = new OrderBook({ capacityWh: 700 });
    book.submit(order(SELL, 200, 500), gtc);
    book.submit(order(SELL, 201, 500), gtc);
    const r = book.submit(order(BUY, 210, 1_000), gtc);
    expect(r.fills.reduce((s, f) => s + f.energyWh, 0)).to.equal(700);
    expect(r.status).to.equal("partially_filled_resting");
    expect(book.depth()).to.deep.equal({ bids: [{ price: 210, energyWh: 300, orders: 1 }], asks: [{ price: 201, energyWh: 300, orders: 1 }] });
    expect(book.submit(order(BUY, 210, 100), { ...gtc, timeInForce: "fok" }).status).to.equal("rejected");
  });

  it("rests at most 2^53 - 1 Wh a side, so every total it keeps is a safe integer; matching stops at 2^53 - 1 Wh without a capacity", () => {
    const max = Number.MAX_SAFE_INTEGER;
    const book = new OrderBook();
    expect(book.submit(order(BUY, 100, max), gtc).status).to.equal("resting");
    expect(book.roomWh(BUY)).to.equal(0);
    // A second bid would take the side past 2^53 - 1: its remainder does not rest.
    expect(book.submit(order(BUY, 101, 5), gtc)).to.deep.include({ status: "cancelled", remainingWh: 5, reason: "side_volume_limit" });
    // What matches first still trades; only the remainder that does not fit is dropped.
    book.submit(order(SELL, 150, 3), gtc);
    const partly = book.submit(order(BUY, 150, 10), gtc);
    expect([partly.status, partly.remainingWh, partly.reason, partly.fills.length]).to.deep.equal(["partially_filled_cancelled", 7, "side_volume_limit", 1]);
    expect([book.bids.totalWh, book.asks.totalWh]).to.deep.equal([max, 0]);
    // Asks take the whole bid; matchedWh reaches 2^53 - 1 and the book matches nothing more.
    book.submit(order(SELL, 100, max - 3), gtc);
    book.submit(order(SELL, 100, 10), gtc);
    expect(book.matchedWh).to.equal(max);
    expect(book.submit(order(BUY, 100, 1), { ...gtc, timeInForce: "ioc" }).fills).to.deep.equal([]);
    expect(book.asks.totalWh).to.equal(10);
    expect(MAX_SIDE_WH).to.equal(max);
  });

  it("cancels, reduces in place keeping priority, restores at the old priority, expires", () => {
    const book = new OrderBook();
    const a = order(SELL, 200, 500);
    const b = order(SELL, 200, 500, { expiry: 50 });
    const c = order(SELL, 200, 500);
    for (const o of [a, b, c]) book.submit(o, gtc);
    expect(book.reduce(a.seq, 200)).to.equal(true);
    expect(book.reduce(a.seq, 300)).to.equal(false);
    expect(book.cancel(c.seq)?.seq).to.equal(c.seq);
    expect(book.cancel(c.seq)).to.equal(undefined);
    book.restore(c, 250);
    expect(book.expire(50).map((o) => o.seq)).to.deep.equal([b.seq]);
    const r = book.submit(order(BUY, 200, 1_000), { ...gtc, now: 60 });
    expect(r.fills.map((f) => [f.sellSeq, f.energyWh])).to.deep.equal([[a.seq, 200], [c.seq, 250]]);
    // A restore of an older order goes before younger ones at its price.
    const d = order(SELL, 300, 100);
    const e = order(SELL, 300, 100);
    book.submit(e, gtc);
    book.restore(d, 100);
    expect(book.submit(order(BUY, 300, 100), gtc).fills[0]!.sellSeq).to.equal(d.seq);
  });
});

// ----------------------------------------------------------------- random streams


interface ModelOrder { input: BookOrderInput; remaining: number; filled: number; live: boolean }

for (const seed of [1, 2, 3, 0xbeef]) {
  it(`random stream (seed ${seed}): not crossed, volume conserved, price-time priority, limits respected`, () => {
    const rnd = mulberry32(seed);
    const book = new OrderBook({ capacityWh: seed === 3 ? 80_000 : undefined });
    const model = new Map<number, ModelOrder>();
    let now = 0;
    for (let step = 0; step < 1_500; step++) {
      now += Math.floor(rnd() * 3);
      const r = rnd();
      const live = [...model.values()].filter((m) => m.live);
      if (r < 0.25 && live.length > 0) {
        const victim = live[Math.floor(rnd() * live.length)]!;
        expect(book.cancel(victim.input.seq)?.seq).to.equal(victim.input.seq);
        victim.live = false;
        continue;
      }
      const side: Side = rnd() < 0.5 ? BUY : SELL;
      const input = order(side, 180 + Math.floor(rnd() * 40), 100 * (1 + Math.floor(rnd() * 20)), {
        maker: `m${Math.floor(rnd() * 12)}`,
        expiry: now + 20 + Math.floor(rnd() * 200),
        source: side === SELL ? 1 + Math.floor(rnd() * 4) : 0,
        acceptedSources: side === BUY && rnd() < 0.2 ? 1 << (1 + Math.floor(rnd() * 4)) : 0,
        minSellerReputationBps: side === BUY && rnd() < 0.2 ? 9_000 : 0,
        sellerReputationBps: side === SELL ? 8_000 + Math.floor(rnd() * 2_001) : 0,
      });
      const tif: TimeInForce = rnd() < 0.1 ? "ioc" : rnd() < 0.05 ? "fok" : "gtc";
      const postOnly = tif === "gtc" && rnd() < 0.05;
      // Expected matches from an independent model: best price, then seq, among compatible live orders.
      const before = new Map([...model].map(([k, v]) => [k, { ...v }]));
      const res = book.submit(input, { timeInForce: tif, postOnly, now });
      const m: ModelOrder = { input, remaining: input.sizeWh, filled: 0, live: false };
      model.set(input.seq, m);
      checkFills(res.fills, input, before, now, book);
      for (const f of res.fills) {
        const other = model.get(side === BUY ? f.sellSeq : f.buySeq)!;
        other.remaining -= f.energyWh;
        other.filled += f.energyWh;
        if (other.remaining === 0) other.live = false;
        m.remaining -= f.energyWh;
        m.filled += f.energyWh;
      }
      m.live = res.status === "resting" || res.status === "partially_filled_resting";
      expect(res.remainingWh).to.equal(m.remaining);
      // Orders the book dropped as expired while matching are gone from the book too.
      for (const mo of model.values()) if (mo.live && !book.orders.has(mo.input.seq)) { expect(mo.input.expiry).to.be.at.most(now); mo.live = false; }
      checkBook(book, model, now);
    }
  });
}

function checkFills(fills: BookFill[], taker: BookOrderInput, before: Map<number, ModelOrder>, now: number, book: OrderBook) {
  let lastKey: [number, number] | null = null;
  for (const f of fills) {
    const makerSeq = taker.side === BUY ? f.sellSeq : f.buySeq;
    const maker = before.get(makerSeq)!;
    expect(maker.live, "fill against a live resting order").to.equal(true);
    expect(f.price).to.equal(maker.input.price);
    const buy = taker.side === BUY ? taker : maker.input;
    const sell = taker.side === BUY ? maker.input : taker;
    expect(f.price).to.be.within(sell.price, buy.price);
    expect(compatible(buy, sell)).to.equal(true);
    expect(maker.input.expiry).to.be.greaterThan(now);
    // Price-time priority among compatible orders: each fill's (price, seq) comes after the previous.
    const key: [number, number] = [taker.side === BUY ? f.price : -f.price, makerSeq];
    if (lastKey) expect(key[0] > lastKey[0] || (key[0] === lastKey[0] && key[1] > lastKey[1])).to.equal(true);
    lastKey = key;
  }
  // No better compatible live order was passed over (unless capacity ran out).
  const total = fills.reduce((s, f) => s + f.energyWh, 0);
  const capLeft = book.capacityWh === undefined ? Infinity : book.capacityWh - book.matchedWh;
  if (total < taker.sizeWh && capLeft > 0 && fills.length > 0) {
    const takenSeqs = new Set(fills.map((f) => (taker.side === BUY ? f.sellSeq : f.buySeq)));
    for (const mo of before.values()) {
      if (!mo.live || takenSeqs.has(mo.input.seq) || mo.input.side === taker.side || mo.input.expiry <= now) continue;
      const buy = taker.side === BUY ? taker : mo.input;
      const sell = taker.side === BUY ? mo.input : taker;
      const crosses = sell.price <= buy.price;
      expect(crosses && compatible(buy, sell), `passed over order ${mo.input.seq}`).to.equal(false);
    }
  }
}

function checkBook(book: OrderBook, model: Map<number, ModelOrder>, now: number) {
  const live = [...model.values()].filter((m) => m.live);
  expect(book.orders.size).to.equal(live.length);
  for (const m of model.values()) expect(m.filled + m.remaining, `order ${m.input.seq} conserves volume`).to.equal(m.input.sizeWh);
  for (const m of live) expect(book.orders.get(m.input.seq)!.remainingWh).to.equal(m.remaining);
  // Not crossed: no live compatible, unexpired pair trades through, unless capacity is spent.
  const capLeft = book.capacityWh === undefined ? Infinity : book.capacityWh - book.matchedWh;
  if (capLeft > 0) {
    const bids = live.filter((m) => m.input.side === BUY && m.input.expiry > now);
    const asks = live.filter((m) => m.input.side === SELL && m.input.expiry > now);
    for (const b of bids) for (const a of asks) {
      expect(a.input.price <= b.input.price && compatible(b.input, a.input), `crossed ${b.input.seq}/${a.input.seq}`).to.equal(false);
    }
  }
  // Levels agree with their orders.
  for (const side of [book.bids, book.asks]) {
    for (const [price, level] of side.levels) {
      let sum = 0, n = 0;
      for (let o = level.head; o; o = o.next) { sum += o.remainingWh; n++; expect(o.price).to.equal(price); }
      expect([sum, n]).to.deep.equal([level.totalWh, level.count]);
    }
    expect(side.prices.length).to.equal(side.levels.size);
    expect(side.totalWh).to.equal([...side.levels.values()].reduce((s, l) => s + l.totalWh, 0));
  }
}
