// The engine's change events for the WebSocket feed, and the markets snapshot: what each
// operation emits, that nothing is emitted before the operation is durable, that events come
// in sequence order, and that a failing listener harms nobody.
import { expect } from "chai";
import type { Hex } from "viem";
import type { BookEvent, OrderEvent } from "../../engine/engineEvents.js";
import type { FillRecord } from "../../engine/engineState.js";
import { zoneToHex } from "../../engine/markets.js";
import { INTERVAL, logProbe, makeOrder, market, memoryEngine, signer, testDomain, turns, wallet, ZONE, ZONE_HEX } from "./helpers.js";

const sign = signer(testDomain);
const alice = wallet("alice");
const bob = wallet("bob");
const now = INTERVAL - 7_200;
const book = `${ZONE_HEX.toLowerCase()}:${INTERVAL}`;

type Heard = ["order", OrderEvent] | ["fill", FillRecord] | ["fillUpdate", FillRecord] | ["book", BookEvent];

function listen(engine: Awaited<ReturnType<typeof memoryEngine>>["engine"]): Heard[] {
  const heard: Heard[] = [];
  engine.events.on("order", (o) => heard.push(["order", o]));
  engine.events.on("fill", (f) => heard.push(["fill", f]));
  engine.events.on("fillUpdate", (f) => heard.push(["fillUpdate", f]));
  engine.events.on("book", (b) => heard.push(["book", b]));
  return heard;
}

const orderEvent = (id: Hex, seq: number, who: typeof alice, side: "buy" | "sell", status: string, sizeWh: number, filledWh: number, price: number, reason?: string): Heard => [
  "order",
  { id, seq, maker: who.address, side, kind: "limit", book, zone: ZONE, zoneHex: ZONE_HEX, intervalStart: INTERVAL, status, ...(reason ? { reason } : {}), sizeWh, filledWh, price } as OrderEvent,
];
const bookEvent = (bid: number | null, ask: number | null, lastPrice: number | null, status: "open" | "closed" = "open"): Heard => [
  "book",
  { book, zone: ZONE, zoneHex: ZONE_HEX, intervalStart: INTERVAL, bid, ask, lastPrice, status },
];

describe("engine events", () => {
  it("each durable operation emits its fills, changed orders and changed book top, in sequence order", async () => {
    const { engine, opened } = await memoryEngine();
    const heard = listen(engine);
    const sell = makeOrder(alice, 1, 1_000, 200_000);
    const s = await engine.placeOrder({ order: sell, signature: sign(alice, sell) }, now);
    expect(heard.splice(0)).to.deep.equal([orderEvent(s.orderId, 1, alice, "sell", "open", 1_000, 0, 200_000), bookEvent(null, 200_000, null)]);

    const buy = makeOrder(bob, 0, 600, 210_000);
    const b = await engine.placeOrder({ order: buy, signature: sign(bob, buy) }, now);
    const fill = engine.state.fills.get(0)!;
    expect(heard.splice(0)).to.deep.equal([
      ["fill", { ...fill }],
      orderEvent(b.orderId, 2, bob, "buy", "filled", 600, 600, 210_000),
      orderEvent(s.orderId, 1, alice, "sell", "open", 1_000, 600, 200_000),
      bookEvent(null, 200_000, 200_000),
    ]);
    expect((heard as unknown[]).length).to.equal(0);
    expect(fill.status).to.equal("pending");

    // Shrinking leaves the top alone: an order event and no book event.
    await engine.replaceOrder(s.orderId, alice.address, { sizeWh: 800 }, now);
    expect(heard.splice(0)).to.deep.equal([orderEvent(s.orderId, 1, alice, "sell", "open", 800, 600, 200_000)]);

    await engine.markSettling(1, [0]);
    await engine.recordSettlement(1, "0xabc", [{ fillId: 0, executed: true, tradeId: 3n }], now);
    expect(heard.splice(0).map(([name, p]) => [name, (p as FillRecord).status, (p as FillRecord).tradeId])).to.deep.equal([
      ["fillUpdate", "settling", undefined],
      ["fillUpdate", "executed", 3n],
    ]);

    await engine.cancelOrder(s.orderId, alice.address, now);
    expect(heard.splice(0)).to.deep.equal([orderEvent(s.orderId, 1, alice, "sell", "cancelled", 800, 600, 200_000), bookEvent(null, null, 200_000)]);

    // Gate closure: the resting buy is closed with its book.
    const rest = makeOrder(bob, 0, 500, 190_000);
    const r = await engine.placeOrder({ order: rest, signature: sign(bob, rest) }, now);
    heard.length = 0;
    await engine.advance(INTERVAL - 300);
    expect(heard.splice(0)).to.deep.equal([orderEvent(r.orderId, 7, bob, "buy", "closed", 500, 0, 190_000), bookEvent(null, null, 200_000, "closed")]);
    await opened.close();
  });

  it("emits nothing before the operation's log write is durable, then everything in sequence order before the callers resolve", async () => {
    const probe = logProbe();
    const { engine, opened } = await memoryEngine({ probe });
    const heard = listen(engine);
    const contexts: number[] = [];
    for (const name of ["order", "fill", "fillUpdate", "book"] as const) engine.events.on(name, (_p: unknown, at: { seq: number }) => contexts.push(at.seq));
    const release = probe.hold();
    const orders = Array.from({ length: 6 }, (_, i) => makeOrder(i % 2 ? bob : alice, (i % 2) as 0 | 1, 300, 200_000));
    const heardAtResolve: number[] = [];
    const placing = orders.map((o, i) => engine.placeOrder({ order: o, signature: sign(i % 2 ? bob : alice, o) }, now).then(() => heardAtResolve.push(heard.length)));
    await turns(10);
    // Applied in memory, written to the database, but the write has not returned: silence.
    expect(engine.state.orders.size).to.equal(6);
    expect(engine.stats().queuedOps).to.equal(6);
    expect(heard).to.deep.equal([]);
    release();
    await Promise.all(placing);
    expect(heardAtResolve.every((n) => n === heard.length)).to.equal(true);
    // Every event names its operation; operations come in sequence order.
    expect(contexts).to.have.length(heard.length);
    expect(contexts).to.deep.equal([...contexts].sort((a, b) => a - b));
    expect(new Set(contexts)).to.deep.equal(new Set([1, 2, 3, 4, 5, 6]));
    expect(heard.filter((h) => h[0] === "fill")).to.have.length(3);
    await opened.close();
  });

  it("a listener that throws reaches neither the writer nor the other listeners", async () => {
    const { engine, opened } = await memoryEngine();
    let calls = 0;
    engine.events.on("order", () => {
      throw new Error("listener bug");
    });
    engine.events.on("order", () => calls++);
    engine.events.once("book", async () => {
      throw new Error("async listener bug");
    });
    const o = makeOrder(alice, 1, 1_000, 200_000);
    await engine.placeOrder({ order: o, signature: sign(alice, o) }, now);
    const o2 = makeOrder(alice, 1, 1_000, 201_000);
    await engine.placeOrder({ order: o2, signature: sign(alice, o2) }, now);
    expect(calls).to.equal(2);
    expect(engine.events.listenerCount("book")).to.equal(0);
    expect(engine.stats().status).to.equal("running");
    await opened.close();
  });
});

describe("engine markets snapshot", () => {
  it("lists every open book and each zone's next interval taking orders, with top of book and last price", async () => {
    const callZone = { ...market, zone: "ZONE-B", mode: "call" as const, gateClosureMinutes: 10 };
    const { engine, opened } = await memoryEngine({ markets: [market, callZone] });
    const next = Math.floor((now + 300) / 900) * 900 + 900;
    expect(engine.marketsSnapshot(now)).to.deep.equal([
      { zone: ZONE, zoneHex: ZONE_HEX, intervalStart: next, intervalEnd: next + 900, mode: "continuous", status: "open", closesAt: next - 300, bestBid: null, bestAsk: null, lastPrice: null },
      {
        zone: "ZONE-B", zoneHex: zoneToHex("ZONE-B"), intervalStart: Math.floor((now + 600) / 900) * 900 + 900, intervalEnd: Math.floor((now + 600) / 900) * 900 + 1_800,
        mode: "call", status: "open", closesAt: Math.floor((now + 600) / 900) * 900 + 300, bestBid: null, bestAsk: null, lastPrice: null,
      },
    ]);

    const sell = makeOrder(alice, 1, 1_000, 200_000);
    const buy = makeOrder(bob, 0, 400, 205_000);
    const bid = makeOrder(bob, 0, 400, 190_000);
    for (const [w, o] of [[alice, sell], [bob, buy], [bob, bid]] as const) await engine.placeOrder({ order: o, signature: sign(w, o) }, now);
    const rows = engine.marketsSnapshot(now);
    expect(rows.map((r) => [r.zone, r.intervalStart])).to.deep.equal([[ZONE, next], [ZONE, INTERVAL], ["ZONE-B", rows[2]!.intervalStart]]);
    expect(rows[1]).to.deep.equal({
      zone: ZONE, zoneHex: ZONE_HEX, intervalStart: INTERVAL, intervalEnd: INTERVAL + 900, mode: "continuous", status: "open", closesAt: INTERVAL - 300,
      bestBid: 190_000, bestAsk: 200_000, lastPrice: 200_000,
    });
    // Past the gate the book shows as closed until the clock advances; then it is gone.
    expect(engine.marketsSnapshot(INTERVAL - 300).find((r) => r.intervalStart === INTERVAL)!.status).to.equal("closed");
    await engine.advance(INTERVAL - 300);
    expect(engine.marketsSnapshot(INTERVAL - 300).some((r) => r.intervalStart === INTERVAL)).to.equal(false);
    await opened.close();
  });
});
