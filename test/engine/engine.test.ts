// The engine's API without a chain: intake rules with their errors, order kinds through the
// log, call-auction markets, gate closure, and replay determinism across restarts.
import { expect } from "chai";
import { ValidationError } from "../../lib/errors.js";
import { openDatabase } from "../../lib/database.js";
import type { EngineDatabase } from "../../engine/store/engineStore.js";
import { freshDatabase, INTERVAL, makeOrder, market, memoryEngine, signer, staticDirectory, T0, testDomain, wallet, ZONE_HEX } from "./helpers.js";

const sign = signer(testDomain);
const alice = wallet("alice");
const bob = wallet("bob");
const carol = wallet("carol");
const now = T0;

async function rejects(p: Promise<unknown>, field: string, pattern: RegExp) {
  let error: unknown;
  try {
    await p;
  } catch (err) {
    error = err;
  }
  expect(error, `expected a ValidationError on ${field}`).to.be.instanceOf(ValidationError);
  expect((error as ValidationError).field).to.equal(field);
  expect((error as Error).message).to.match(pattern);
}

describe("engine intake", () => {
  it("rejects bad orders with errors naming the field and rule, and keeps nothing of them", async () => {
    const { engine, opened } = await memoryEngine();
    const good = makeOrder(alice, 1, 1_000, 200_000);
    await rejects(engine.placeOrder({ order: makeOrder(alice, 1, 1_000, 79_999), signature: sign(alice, makeOrder(alice, 1, 1_000, 79_999)) }, now), "order.limitPricePerKWh", /feed-in tariff 80000.*retail price 350000/);
    const high = makeOrder(bob, 0, 1_000, 350_001);
    await rejects(engine.placeOrder({ order: high, signature: sign(bob, high) }, now), "order.limitPricePerKWh", /outside zone ZONE-A's corridor/);
    await rejects(engine.placeOrder({ order: good, signature: sign(bob, good) }, now), "signature", /maker's EIP-712 signature/);
    const tampered = { ...good, energyWh: 2_000n };
    await rejects(engine.placeOrder({ order: tampered, signature: sign(alice, good) }, now), "signature", /signature/);
    const otherZone = makeOrder(alice, 1, 1_000, 200_000, { zone: `0x${"11".repeat(32)}` });
    await rejects(engine.placeOrder({ order: otherZone, signature: sign(alice, otherZone) }, now), "order.zone", /no market for zone/);
    const misaligned = makeOrder(alice, 1, 1_000, 200_000, { deliveryStart: BigInt(INTERVAL + 60), deliveryEnd: BigInt(INTERVAL + 960) });
    await rejects(engine.placeOrder({ order: misaligned, signature: sign(alice, misaligned) }, now), "order.deliveryStart", /15-minute interval/);
    const expired = makeOrder(alice, 1, 1_000, 200_000, { expiry: BigInt(now) });
    await rejects(engine.placeOrder({ order: expired, signature: sign(alice, expired) }, now), "order.expiry", /after now/);
    const noSource = makeOrder(alice, 1, 1_000, 200_000, { source: 0 });
    await rejects(engine.placeOrder({ order: noSource, signature: sign(alice, noSource) }, now), "order.source", /must name its source/);
    await rejects(engine.placeOrder({ order: good, signature: sign(alice, good), kind: "market", timeInForce: "gtc" }, now), "timeInForce", /cannot rest/);
    await rejects(engine.placeOrder({ order: good, signature: sign(alice, good), postOnly: true, timeInForce: "ioc" }, now), "postOnly", /only with timeInForce gtc/);
    expect(engine.state.orders.size).to.equal(0);
    expect(engine.state.lastSeq).to.equal(0);
    await opened.close();
  });

  it("checks the registry: active maker in the zone, seller's registered source", async () => {
    const directory = staticDirectory(1 << 2); // wind only
    directory.inactive.add(carol.address.toLowerCase());
    const { engine, opened } = await memoryEngine({ directory });
    const solar = makeOrder(alice, 1, 1_000, 200_000);
    await rejects(engine.placeOrder({ order: solar, signature: sign(alice, solar) }, now), "order.source", /registered sources/);
    const fromCarol = makeOrder(carol, 0, 1_000, 200_000);
    await rejects(engine.placeOrder({ order: fromCarol, signature: sign(carol, fromCarol) }, now), "order.maker", /not an active prosumer/);
    const wind = makeOrder(alice, 1, 1_000, 200_000, { source: 2 });
    expect((await engine.placeOrder({ order: wind, signature: sign(alice, wind) }, now)).status).to.equal("open");
    await rejects(engine.placeOrder({ order: wind, signature: sign(alice, wind) }, now), "order", /already submitted/);
    await opened.close();
  });

  it("closes a book at gate closure and refuses orders for it", async () => {
    const { engine, opened } = await memoryEngine();
    const o = makeOrder(alice, 1, 1_000, 200_000);
    await engine.placeOrder({ order: o, signature: sign(alice, o) }, now);
    await engine.advance(INTERVAL - 5 * 60);
    expect(engine.getOrder((await engine.state.orders.keys().next()).value!)!.status).to.equal("closed");
    const late = makeOrder(bob, 0, 1_000, 200_000, { expiry: BigInt(INTERVAL + 100) });
    await rejects(engine.placeOrder({ order: late, signature: sign(bob, late) }, INTERVAL - 5 * 60), "order.deliveryStart", /closed at/);
    await opened.close();
  });
});

describe("engine order kinds", () => {
  it("limit, market (priced at the reference, within the signed limit), cancel, shrink keeps priority", async () => {
    const { engine, opened } = await memoryEngine({ referencePrice: 210_000 });
    // The second engine below shares the test database, so give it its own afterwards.
    const a1 = makeOrder(alice, 1, 1_000, 200_000);
    const a2 = makeOrder(carol, 1, 1_000, 200_000);
    const r1 = await engine.placeOrder({ order: a1, signature: sign(alice, a1) }, now);
    const r2 = await engine.placeOrder({ order: a2, signature: sign(carol, a2) }, now);
    // Alice shrinks: still first in line at 200,000.
    await engine.replaceOrder(r1.orderId, alice.address, { sizeWh: 600 }, now);
    const buy = makeOrder(bob, 0, 900, 300_000);
    const m = await engine.placeOrder({ order: buy, signature: sign(bob, buy), kind: "market" }, now);
    expect(m.fills.map((f) => [f.sellId, f.energyWh, f.price])).to.deep.equal([[r1.orderId, 600, 200_000], [r2.orderId, 300, 200_000]]);
    expect(m.status).to.equal("filled");
    // A market buy whose reference price is below every ask takes nothing and does not rest.
    const { engine: e2, opened: o2 } = await memoryEngine({ referencePrice: 150_000, db: await openDatabase<EngineDatabase>() });
    await e2.placeOrder({ order: a1, signature: sign(alice, a1) }, now);
    const m2 = await e2.placeOrder({ order: buy, signature: sign(bob, buy), kind: "market" }, now);
    expect([m2.status, m2.fills.length, m2.reason]).to.deep.equal(["cancelled", 0, "market_order_remainder"]);
    await o2.close();
    // Carol's order has 700 Wh left and is open; only Carol may cancel it.
    await rejects(engine.cancelOrder(r2.orderId, bob.address, now), "orderId", /another maker/);
    expect((await engine.cancelOrder(r2.orderId, carol.address, now)).status).to.equal("cancelled");
    await rejects(engine.cancelOrder(r2.orderId, carol.address, now), "orderId", /is cancelled, not open/);
    await opened.close();
  });
});

describe("engine order kinds (continued)", () => {
  it("fill-or-kill, post-only, capacity cap, and a repriced replacement losing priority", async () => {
    const { engine, opened } = await memoryEngine({ markets: [{ ...market, capacityKWh: 2 }] });
    const dave = wallet("dave");
    const s1 = makeOrder(alice, 1, 1_000, 200_000);
    const s2 = makeOrder(carol, 1, 1_000, 200_000);
    const r1 = await engine.placeOrder({ order: s1, signature: sign(alice, s1) }, now);
    await engine.placeOrder({ order: s2, signature: sign(carol, s2) }, now);
    const fok = makeOrder(bob, 0, 2_500, 200_000);
    const killed = await engine.placeOrder({ order: fok, signature: sign(bob, fok), timeInForce: "fok" }, now);
    expect([killed.status, killed.reason, killed.fills.length]).to.deep.equal(["rejected", "fok_not_fillable", 0]);
    const post = makeOrder(bob, 0, 500, 200_000);
    expect((await engine.placeOrder({ order: post, signature: sign(bob, post), postOnly: true }, now)).reason).to.equal("post_only_would_cross");
    // Alice reprices (a new signed order): she queues behind Carol at the new price.
    const s1b = makeOrder(alice, 1, 1_000, 200_000, { nonce: 999_999n });
    const replaced = await engine.replaceOrder(r1.orderId, alice.address, { order: s1b, signature: sign(alice, s1b) }, now);
    expect(engine.getOrder(r1.orderId)!.status).to.equal("cancelled");
    const big = makeOrder(dave, 0, 3_000, 210_000);
    const taken = await engine.placeOrder({ order: big, signature: sign(dave, big) }, now);
    // Capacity 2 kWh: Carol's 1,000 then Alice's 1,000; the rest of Dave's order rests.
    expect(taken.fills.map((f) => [f.sellId, f.energyWh])).to.deep.equal([[engine.state.fills.get(0)!.sellId, 1_000], [replaced.orderId, 1_000]]);
    expect(engine.getOrder(engine.state.fills.get(0)!.sellId)!.accepted.order.maker).to.equal(carol.address);
    expect([taken.status, engine.getOrder(taken.orderId)!.filledWh]).to.deep.equal(["open", 2_000]);
    await opened.close();
  });
});

describe("engine call auction markets", () => {
  it("collects orders without matching, then clears at gate closure at one price", async () => {
    const callMarket = { ...market, mode: "call" as const };
    const { engine, opened } = await memoryEngine({ markets: [callMarket], referencePrice: 200_000 });
    const orders = [
      [alice, makeOrder(alice, 1, 1_000, 190_000)],
      [carol, makeOrder(carol, 1, 1_000, 210_000)],
      [bob, makeOrder(bob, 0, 1_500, 220_000)],
    ] as const;
    for (const [w, o] of orders) expect((await engine.placeOrder({ order: o, signature: sign(w, o) }, now)).fills).to.deep.equal([]);
    await engine.advance(INTERVAL - 300);
    const fills = [...engine.state.fills];
    expect(fills.map((f) => [f.energyWh, f.price])).to.deep.equal([[1_000, 210_000], [500, 210_000]]);
    expect(engine.book(ZONE_HEX, INTERVAL)!.status).to.equal("closed");
    await opened.close();
  });
});

describe("engine determinism and restart", () => {
  function stream() {
    const makers = [alice, bob, carol, wallet("dave"), wallet("erin")];
    let x = 7;
    const rnd = () => ((x = (x * 48271) % 2147483647) / 2147483647);
    return Array.from({ length: 120 }, (_, i) => {
      const w = makers[Math.floor(rnd() * makers.length)]!;
      const side = rnd() < 0.5 ? 0 : 1;
      const o = makeOrder(w, side as 0 | 1, 100 * (1 + Math.floor(rnd() * 10)), 180_000 + 1_000 * Math.floor(rnd() * 40), { nonce: BigInt(10_000 + i) });
      return { w, o, tif: rnd() < 0.1 ? ("ioc" as const) : ("gtc" as const), at: now + i };
    });
  }
  const snapshot = (engine: Awaited<ReturnType<typeof memoryEngine>>["engine"]) =>
    JSON.stringify({ fills: engine.state.fills, orders: [...engine.state.orders.values()].map((o) => [o.id, o.status, o.filledWh]) }, (_k, v) => (typeof v === "bigint" ? v.toString() : v));

  const targets: { name: string; url?: string }[] = [{ name: "PGlite" }];
  if (process.env.DATABASE_URL) targets.push({ name: "PostgreSQL", url: process.env.DATABASE_URL });
  for (const target of targets) it(`the same accepted stream gives byte-identical fills; a restart mid-stream resumes identically (${target.name})`, async () => {
    const s = stream();
    const full = await memoryEngine();
    for (const { w, o, tif, at } of s) await full.engine.placeOrder({ order: o, signature: sign(w, o), timeInForce: tif }, at).catch(() => undefined);
    expect(full.engine.state.fills.length).to.be.greaterThan(20);
    const expected = snapshot(full.engine);

    const opened = target.url ? await openDatabase<EngineDatabase>({ url: target.url }) : await freshDatabase();
    if (target.url) {
      // A real server keeps tables between runs: start from an empty log.
      for (const t of ["engine_snapshots", "engine_snapshot_parts", "engine_archived_orders"]) await opened.db.schema.dropTable(t).ifExists().execute();
      await opened.db.schema.dropTable("engine_batches").ifExists().execute();
      await opened.db.schema.dropTable("engine_ops").ifExists().execute();
      await opened.db.schema.dropTable("engine_migrations").ifExists().execute();
      await opened.db.schema.dropTable("engine_migrations_lock").ifExists().execute();
    }
    const first = await memoryEngine({ db: opened });
    for (const { w, o, tif, at } of s.slice(0, 60)) await first.engine.placeOrder({ order: o, signature: sign(w, o), timeInForce: tif }, at).catch(() => undefined);
    // "Restart": a new engine on the same database rebuilds from the log, then takes the rest.
    const second = await memoryEngine({ db: opened });
    expect(snapshot(second.engine)).to.equal(snapshot(first.engine));
    for (const { w, o, tif, at } of s.slice(60)) await second.engine.placeOrder({ order: o, signature: sign(w, o), timeInForce: tif }, at).catch(() => undefined);
    expect(snapshot(second.engine)).to.equal(expected);
    await opened.close();
  });
});

describe("engine forward price curve", () => {
  it("prices the next 24 hours from forecast supply and demand, each in the corridor", async () => {
    const { engine, opened } = await memoryEngine();
    const supply = Array.from({ length: 24 }, (_, h) => (h >= 10 && h < 16 ? 20_000 : 8_000));
    const demand = Array.from({ length: 24 }, () => 10_000);
    const curve = engine.forwardPriceCurve("ZONE-A", T0, { supplyWh: supply, demandWh: demand, renewableWh: supply.map((s) => s / 2) });
    expect(curve).to.have.length(24);
    for (const p of curve) expect(p.pricePerKWh).to.be.within(market.feedInTariff, market.retailPrice);
    expect(curve.map((p) => p.startUnixSeconds)).to.deep.equal(Array.from({ length: 24 }, (_, i) => T0 + 3600 * i));
    expect(() => engine.forwardPriceCurve("ZONE-A", T0, { supplyWh: supply.slice(1), demandWh: demand, renewableWh: demand })).to.throw(ValidationError);
    await opened.close();
  });
});

describe("engine reference price", () => {
  it("prices market orders with the dynamic formula at the interval's local hour, from the zone's conditions", async () => {
    const { engine, opened } = await memoryEngine({ markets: [{ ...market, basePrice: 200_000 }] });
    // INTERVAL is 2026-01-15T... in Europe/Berlin; whatever the hour, compute the expected price
    // independently: base x time multiplier x demand multiplier x green discount, rounded down.
    const hour = Number(new Intl.DateTimeFormat("en-GB", { hour: "numeric", hourCycle: "h23", timeZone: "Europe/Berlin" }).format(new Date(INTERVAL * 1000)));
    const time = (hour >= 7 && hour < 9) || (hour >= 17 && hour < 21) ? [3n, 2n] : hour >= 10 && hour < 16 ? [4n, 5n] : [1n, 1n];
    // No conditions: neutral demand (x1.0), no green discount.
    expect(engine.referencePrice("ZONE-A", INTERVAL, now)).to.equal(Number((200_000n * time[0]!) / time[1]!));
    // demand 3,000 / supply 10,000 -> x0.95; renewables 4,000 / 10,000 -> x(1 - 0.06) = 0.94.
    engine.setMarketConditions("ZONE-A", { demandWh: 3_000, supplyWh: 10_000, renewableWh: 4_000 });
    const expected = Number((200_000n * time[0]! * 95n * 94n) / (time[1]! * 100n * 100n));
    expect(engine.referencePrice("ZONE-A", INTERVAL, now)).to.equal(expected);
    expect(() => engine.setMarketConditions("ZONE-A", { demandWh: -1, supplyWh: 1, renewableWh: 0 })).to.throw(ValidationError, "demandWh");
    // A market buy at that reference takes asks up to it and no further.
    const cheap = makeOrder(alice, 1, 500, expected);
    const dear = makeOrder(carol, 1, 500, expected + 1);
    await engine.placeOrder({ order: cheap, signature: sign(alice, cheap) }, now);
    await engine.placeOrder({ order: dear, signature: sign(carol, dear) }, now);
    const buy = makeOrder(bob, 0, 1_000, 350_000);
    const r = await engine.placeOrder({ order: buy, signature: sign(bob, buy), kind: "market" }, now);
    expect(r.fills.map((f) => [f.energyWh, f.price])).to.deep.equal([[500, expected]]);
    await opened.close();
  });
});
