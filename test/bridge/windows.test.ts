// How windows close: the grace period, late readings, the pro-rata rule, and windows that span
// or overlap intervals, where the same exported Wh must never be credited twice.
import { expect } from "chai";
import { createWalletClient, http } from "viem";
import { hardhat } from "viem/chains";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import { merkleProof, tradeLeaf } from "../../contracts/client/trade.js";
import type { Bridge } from "../../bridge/startBridge.js";
import { readStoredEvidence } from "../../bridge/storedEvidence.js";
import {
  addProsumer, connectDevice, databaseTargets, deliveryEvents, intervalReading, pastWindow, readingTopic, restartableAedes,
  settleTrades, startTestBridge, startTestChain, testSettings, waitForMetrics, type Prosumer, type TestChain,
} from "./harness.js";

describe("closing delivery windows", function () {
  let chain: TestChain;
  let aedes: Awaited<ReturnType<typeof restartableAedes>>;
  const opened: { close(): Promise<void> }[] = [];
  const bridges: Bridge[] = [];

  before(async () => {
    [chain, aedes] = await Promise.all([startTestChain(), restartableAedes()]);
  });
  after(async () => {
    for (const b of bridges) await b.close();
    for (const o of opened) await o.close();
    await Promise.all([chain?.close(), aedes?.close()]);
  });

  async function setup(ids: string[], settings = testSettings()) {
    const db = await databaseTargets()[0]!.open();
    opened.push(db);
    const suffix = settings.topicRoot.slice(-4);
    const people = (await Promise.all(ids.map((id) => addProsumer(chain, `${id}-${suffix}`)))) as Prosumer[];
    const clock = { nowMs: 0 };
    const start = async () => {
      const bridge = await startTestBridge({ chain, mqttUrl: aedes.url, db: db.db, settings, clock: () => clock.nowMs });
      bridges.push(bridge);
      return bridge;
    };
    const device = await connectDevice(aedes.url);
    const topic = (p: Prosumer, metric: string) => readingTopic(settings.topicRoot, p.meterId, metric);
    return { db, people, clock, start, device, topic, settings };
  }

  it("counts readings inside the grace period; one after the close is recorded but does not reopen the window", async () => {
    const { db, people: [s, b], clock, start, device, topic } = await setup(["S", "B"]);
    const w = pastWindow(2);
    const [trade] = await settleTrades(chain, [{ seller: s!, buyer: b!, energyWh: 1_000n }], w.start, w.end);
    clock.nowMs = w.endMs + 1_000;
    const bridge = await start();
    clock.nowMs = w.endMs + 200_000; // 200 s into the 300 s grace period
    await device.publish(topic(s!, "interval"), intervalReading(w.startMs, 1_000, 0));
    await waitForMetrics(bridge, (m) => m.accepted === 1, "the seller's reading");
    expect(bridge.metrics().late).to.equal(0);

    clock.nowMs = w.endMs + 301_000; // the grace period is over: the window closes without the buyer
    await bridge.tick();
    const { confirmed, disputes } = await deliveryEvents(chain);
    expect(confirmed.map((c) => [c.tradeId, c.deliveredWh, c.withinTolerance])).to.deep.equal([[trade!.tradeId, 0n, false]]);
    expect(disputes.map((d) => d.tradeId)).to.deep.equal([trade!.tradeId]);
    const decision = await db.db.selectFrom("bridge_decisions").selectAll().where("trade_id", "=", trade!.tradeId).executeTakeFirstOrThrow();
    expect(decision.basis).to.equal("buyer_data_missing");
    expect(JSON.parse((await readStoredEvidence(db.db, trade!.tradeId))!).sellers[0].slots[0]).to.deep.include({ source: "interval", wh: "1000" });

    // The buyer's meter reports after the close: stored, counted as late, the window stays as decided.
    await device.publish(topic(b!, "interval"), intervalReading(w.startMs, 0, 1_000));
    await waitForMetrics(bridge, (m) => m.accepted === 2 && m.late === 1, "the late reading, recorded");
    expect(await db.db.selectFrom("bridge_readings").select("meter_id").where("meter_id", "=", b!.meterId).execute()).to.have.length(1);
    clock.nowMs += 3_600_000;
    await bridge.tick();
    expect((await deliveryEvents(chain)).confirmed).to.have.length(1);
    expect(bridge.metrics().intervalsClosed).to.equal(1);
  });

  it("a bridge down across the close waits a grace period after reconnecting; queued readings still count", async () => {
    const { db, people: [s, b], clock, start, device, topic } = await setup(["S", "B"]);
    const w = pastWindow(2);
    const [trade] = await settleTrades(chain, [{ seller: s!, buyer: b!, energyWh: 1_000n }], w.start, w.end);
    clock.nowMs = w.endMs - 60_000;
    const first = await start(); // establishes the persistent session, then goes down
    await first.close();
    bridges.splice(bridges.indexOf(first), 1);
    clock.nowMs = w.endMs + 1_000;
    await device.publish(topic(s!, "interval"), intervalReading(w.startMs, 1_000, 0));
    await device.publish(topic(b!, "interval"), intervalReading(w.startMs, 0, 1_000));

    clock.nowMs = w.endMs + 400_000; // back after the grace period ended
    const bridge = await start();
    await waitForMetrics(bridge, (m) => m.accepted === 2, "the queued readings");
    await bridge.tick();
    expect(bridge.metrics().tradesDecided).to.equal(0, "not before a whole grace period connected");
    clock.nowMs += 300_000;
    await bridge.tick();
    const { confirmed } = await deliveryEvents(chain);
    const mine = confirmed.filter((c) => c.tradeId === trade!.tradeId);
    expect(mine.map((c) => [c.deliveredWh, c.withinTolerance])).to.deep.equal([[1_000n, true]]);
    expect((await db.db.selectFrom("bridge_decisions").select("basis").where("trade_id", "=", trade!.tradeId).executeTakeFirstOrThrow()).basis).to.equal("measured");
  });

  it("treats a trade its buyer already released as done, and still reports the rest of the batch", async () => {
    const { db, people: [s, b1, b2, b3], clock, start, device, topic } = await setup(["S", "B1", "B2", "B3"]);
    const w = pastWindow(2);
    const trades = await settleTrades(chain, [
      { seller: s!, buyer: b1!, energyWh: 300n }, { seller: s!, buyer: b2!, energyWh: 300n }, { seller: s!, buyer: b3!, energyWh: 300n },
    ], w.start, w.end);
    // The second buyer pays the seller in full before any report: the market will refuse ours.
    const leaves = trades.map(tradeLeaf);
    const buyer2 = createWalletClient({ chain: hardhat, account: b2!.account, transport: http(chain.url) });
    const hash = await buyer2.writeContract({ address: chain.market, abi: energyMarketAbi, functionName: "releaseEarly", args: [trades[1]!, merkleProof(leaves, 1)] });
    expect((await chain.client.waitForTransactionReceipt({ hash })).status).to.equal("success");

    clock.nowMs = w.endMs + 1_000;
    const bridge = await start();
    await device.publish(topic(s!, "interval"), intervalReading(w.startMs, 900, 0));
    for (const b of [b1, b2, b3]) await device.publish(topic(b!, "interval"), intervalReading(w.startMs, 0, 300));
    await waitForMetrics(bridge, (m) => m.accepted === 4, "the readings");
    clock.nowMs = w.endMs + 301_000;
    await bridge.tick();

    const { confirmed } = await deliveryEvents(chain);
    expect(confirmed.filter((c) => trades.some((t) => t.tradeId === c.tradeId)).map((c) => c.tradeId)).to.deep.equal([trades[0]!.tradeId, trades[2]!.tradeId]);
    const rows = await db.db.selectFrom("bridge_outbox").select(["trade_id", "state", "outcome"]).where("trade_id", "in", trades.map((t) => t.tradeId)).orderBy("trade_id").execute();
    expect(rows.map((r) => `${r.state}/${r.outcome}`)).to.deep.equal(["done/confirmed", "done/already_final", "done/confirmed"]);
    expect(bridge.metrics().confirmations.alreadyFinal).to.be.greaterThan(0);
    expect(bridge.metrics().confirmationsPending).to.equal(0);
  });

  it("shares a seller's export pro rata when configured", async () => {
    const { people: [s, b1, b2, b3], clock, start, device, topic } = await setup(["S", "B1", "B2", "B3"], testSettings({ allocation: "pro-rata" }));
    const w = pastWindow(2);
    const trades = await settleTrades(chain, [
      { seller: s!, buyer: b1!, energyWh: 600n }, { seller: s!, buyer: b2!, energyWh: 400n }, { seller: s!, buyer: b3!, energyWh: 500n },
    ], w.start, w.end);
    clock.nowMs = w.endMs + 1_000;
    const bridge = await start();
    await device.publish(topic(s!, "interval"), intervalReading(w.startMs, 1_200, 0));
    for (const b of [b1, b2, b3]) await device.publish(topic(b!, "interval"), intervalReading(w.startMs, 0, 1_000));
    await waitForMetrics(bridge, (m) => m.accepted === 4, "the readings");
    clock.nowMs = w.endMs + 301_000;
    await bridge.tick();
    const { confirmed } = await deliveryEvents(chain);
    const mine = trades.map((t) => confirmed.find((c) => c.tradeId === t.tradeId)!.deliveredWh);
    expect(mine).to.deep.equal([480n, 320n, 400n]);
  });

  it("never credits the same Wh twice to a 30-minute trade and an overlapping 15-minute one", async () => {
    const { db, people: [s, b1, b2], clock, start, device, topic } = await setup(["S", "B1", "B2"]);
    const w1 = pastWindow(3);
    const w2 = pastWindow(2);
    // Trade A covers both intervals, trade B only the second; the seller exports 400 + 800 Wh.
    const [a] = await settleTrades(chain, [{ seller: s!, buyer: b1!, energyWh: 1_000n }], w1.start, w2.end);
    const [bTrade] = await settleTrades(chain, [{ seller: s!, buyer: b2!, energyWh: 600n }], w2.start, w2.end);
    clock.nowMs = w2.endMs + 1_000;
    const bridge = await start();
    for (const [who, w, exp, imp] of [[s, w1, 400, 0], [s, w2, 800, 0], [b1, w1, 0, 500], [b1, w2, 0, 500], [b2, w2, 0, 600]] as const) {
      await device.publish(topic(who!, "interval"), intervalReading(w.startMs, exp, imp));
    }
    await waitForMetrics(bridge, (m) => m.accepted === 5, "the readings");
    clock.nowMs = w2.endMs + 301_000;
    await bridge.tick();
    const { confirmed } = await deliveryEvents(chain);
    // A (decided first: same end, earlier start) takes 1000 of the 1200; B gets the 200 left.
    expect(confirmed.find((c) => c.tradeId === a!.tradeId)!.deliveredWh).to.equal(1_000n);
    expect(confirmed.find((c) => c.tradeId === bTrade!.tradeId)!.deliveredWh).to.equal(200n);
    const usage = await db.db.selectFrom("bridge_slot_usage").selectAll().where("meter_id", "=", s!.meterId).orderBy("slot_start").execute();
    expect(usage.map((u) => u.used_wh)).to.deep.equal([400n, 800n]);
  });
});
