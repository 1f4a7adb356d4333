// Faults that delay confirmations but must never lose or double them: the broker restarting in
// the middle of a stream of readings (embedded Aedes, and a Mosquitto of our own), and the chain
// RPC refusing connections, refusing broadcasts, or swallowing the answer to a broadcast that
// was mined. Every due trade ends with exactly one DeliveryConfirmed.
import { once } from "node:events";
import { expect } from "chai";
import { sql } from "kysely";
import type { Bridge } from "../../bridge/startBridge.js";
import type { Trade } from "../../contracts/client/trade.js";
import { mosquittoAvailable, startOwnMosquitto, startRpcProxy } from "./faultInjection.js";
import {
  addProsumer, connectDevice, counterReading, databaseTargets, deliveryEvents, intervalReading, pastWindow, readingTopic,
  restartableAedes, settleTrades, startTestBridge, startTestChain, testSettings, waitForMetrics, type Prosumer, type TestChain,
} from "./harness.js";

const READING_STEP_MS = 30_000;

async function expectEachConfirmedOnce(chain: TestChain, trades: Trade[], expectedWh: (t: Trade) => bigint) {
  const { confirmed } = await deliveryEvents(chain);
  for (const t of trades) {
    const mine = confirmed.filter((c) => c.tradeId === t.tradeId);
    expect(mine, `trade ${t.tradeId}`).to.have.length(1);
    expect(mine[0]!.deliveredWh, `trade ${t.tradeId}`).to.equal(expectedWh(t));
  }
  expect(confirmed).to.have.length(trades.length);
}

interface RestartableBroker {
  name: string;
  available: boolean;
  start(): Promise<{ url: string; restart(during: () => Promise<void>): Promise<void>; close(): Promise<void> }>;
}

const restartable: RestartableBroker[] = [
  {
    name: "embedded Aedes (sessions kept across the restart)",
    available: true,
    start: async () => {
      const b = await restartableAedes();
      return { url: b.url, restart: (during) => b.restart(during), close: () => b.close() };
    },
  },
  {
    name: "Mosquitto of our own (persistence file)",
    available: mosquittoAvailable(),
    start: async () => {
      const m = await startOwnMosquitto();
      return {
        url: m.url,
        restart: async (during) => {
          await m.stop();
          await during();
          await m.start();
        },
        close: () => m.close(),
      };
    },
  },
];

for (const target of restartable) {
  describe(`broker restarted mid-stream: ${target.name}`, function () {
    if (!target.available) {
      it.skip("needs the mosquitto binary");
      return;
    }
    let chain: TestChain;
    let broker: Awaited<ReturnType<RestartableBroker["start"]>>;
    let database: Awaited<ReturnType<ReturnType<typeof databaseTargets>[number]["open"]>>;
    let bridge: Bridge;

    before(async () => {
      [chain, broker, database] = await Promise.all([startTestChain(), target.start(), databaseTargets()[0]!.open()]);
    });
    after(async () => {
      await bridge?.close();
      await Promise.all([chain?.close(), broker?.close(), database?.close()]);
    });

    it("loses no reading and confirms every trade once", async () => {
      const settings = testSettings();
      const w = pastWindow(2);
      const suffix = settings.topicRoot.slice(-4);
      const [s1, b1, s2, b2] = await Promise.all(["S1", "B1", "S2", "B2"].map((id) => addProsumer(chain, `${id}-${suffix}`)));
      const trades = await settleTrades(chain, [
        { seller: s1!, buyer: b1!, energyWh: 1_000n },
        { seller: s2!, buyer: b2!, energyWh: 800n },
      ], w.start, w.end);
      let nowMs = w.endMs + 1_000;
      bridge = await startTestBridge({ chain, mqttUrl: broker.url, db: database.db, settings, clock: () => nowMs });
      const device = await connectDevice(broker.url, { clean: true });
      const t = (m: Prosumer, metric: string) => readingTopic(settings.topicRoot, m.meterId, metric);

      // Two registers, a reading every 30 s through the window: 31 each, 1000 and 800 Wh in all.
      const stream: [string, unknown][] = [];
      for (let i = 0; i <= 30; i++) {
        stream.push([t(s1!, "export"), counterReading(w.startMs + i * READING_STEP_MS, 2_000_000 + Math.round((1_000 * i) / 30))]);
        stream.push([t(s2!, "export"), counterReading(w.startMs + i * READING_STEP_MS, 7_000_000 + Math.round((800 * i) / 30))]);
      }
      stream.push([t(b1!, "interval"), intervalReading(w.startMs, 0, 1_500)], [t(b2!, "interval"), intervalReading(w.startMs, 0, 1_500)]);

      const half = 24;
      for (const [topic, payload] of stream.slice(0, half)) await device.publish(topic, payload);
      await waitForMetrics(bridge, (m) => m.accepted === half, "the first half");

      // The broker goes away while the devices keep publishing; their client queues the rest.
      const rest: Promise<void>[] = [];
      const connectsBefore = bridge.metrics().mqttConnects;
      await broker.restart(async () => {
        for (const [topic, payload] of stream.slice(half)) rest.push(device.publish(topic, payload));
      });
      await Promise.all(rest);
      const m = await waitForMetrics(bridge, (x) => x.accepted === stream.length && x.mqttConnects > connectsBefore, "the second half after the restart");
      expect(m.mqttDisconnects).to.be.greaterThan(0);
      expect(Object.keys(m.deadLettered)).to.have.length(0);
      await device.close();

      nowMs = w.endMs + 301_000;
      await bridge.tick();
      await expectEachConfirmedOnce(chain, trades, (tr) => tr.energyWh);
      expect(bridge.metrics().confirmations.confirmed).to.equal(2);
    });
  });
}

describe("database refusing writes", function () {
  let chain: TestChain;
  let aedes: Awaited<ReturnType<typeof restartableAedes>>;
  let database: Awaited<ReturnType<ReturnType<typeof databaseTargets>[number]["open"]>>;

  before(async () => {
    [chain, aedes, database] = await Promise.all([startTestChain(), restartableAedes(), databaseTargets()[0]!.open()]);
  });
  after(async () => {
    await Promise.all([chain?.close(), aedes?.close(), database?.close()]);
  });

  it("leaves readings unacknowledged, so the broker hands them to the next bridge", async () => {
    const settings = testSettings();
    const meter = await addProsumer(chain, `SM-DB-${settings.topicRoot.slice(-4)}`, { buyer: false });
    const nowMs = Date.now();
    const first = await startTestBridge({ chain, mqttUrl: aedes.url, db: database.db, settings, clock: () => nowMs });
    // The readings table disappears: every commit fails.
    await sql`alter table bridge_readings rename to bridge_readings_away`.execute(database.db);
    const failed = once(first.events, "commitFailed");
    const device = await connectDevice(aedes.url);
    const topic = readingTopic(settings.topicRoot, meter.meterId, "export");
    await device.publish(topic, counterReading(nowMs - 120_000, 1_000));
    await device.publish(topic, counterReading(nowMs - 60_000, 1_050));
    await failed;
    expect(first.metrics().accepted).to.equal(0);
    await first.close(); // gives up on the batch: nothing was acknowledged

    await sql`alter table bridge_readings_away rename to bridge_readings`.execute(database.db);
    const second = await startTestBridge({ chain, mqttUrl: aedes.url, db: database.db, settings, clock: () => nowMs });
    await waitForMetrics(second, (m) => m.accepted === 2, "the redelivered readings");
    const rows = await database.db.selectFrom("bridge_readings").select("value").where("meter_id", "=", meter.meterId).orderBy("reading_at").execute();
    expect(rows.map((r) => r.value)).to.deep.equal([1_000n, 1_050n]);
    await device.close();
    await second.close();
  });
});

describe("chain RPC down while confirmations are due", function () {
  let chain: TestChain;
  let aedes: Awaited<ReturnType<typeof restartableAedes>>;
  let database: Awaited<ReturnType<ReturnType<typeof databaseTargets>[number]["open"]>>;
  let proxy: Awaited<ReturnType<typeof startRpcProxy>>;
  let bridge: Bridge;

  before(async () => {
    [chain, aedes, database] = await Promise.all([startTestChain(), restartableAedes(), databaseTargets()[0]!.open()]);
    proxy = await startRpcProxy(chain.url);
  });
  after(async () => {
    await bridge?.close();
    await proxy?.close();
    await Promise.all([chain?.close(), aedes?.close(), database?.close()]);
  });

  it("retries with backoff and ends with every trade confirmed exactly once", async () => {
    const settings = testSettings({ reportBatchSize: 2, retryMinMs: 1_000, retryMaxMs: 8_000 });
    const w1 = pastWindow(3);
    const w2 = pastWindow(2);
    const suffix = settings.topicRoot.slice(-4);
    const people = await Promise.all(["S1", "B1", "S2", "B2", "S3", "B3", "S4", "B4"].map((id) => addProsumer(chain, `${id}-${suffix}`)));
    const [s1, b1, s2, b2, s3, b3, s4, b4] = people as Prosumer[];
    const first = await settleTrades(chain, [
      { seller: s1!, buyer: b1!, energyWh: 1_000n }, { seller: s2!, buyer: b2!, energyWh: 1_000n }, { seller: s3!, buyer: b3!, energyWh: 1_000n },
    ], w1.start, w1.end);
    const second = await settleTrades(chain, [{ seller: s4!, buyer: b4!, energyWh: 700n }], w2.start, w2.end);

    let nowMs = w1.endMs + 1_000;
    bridge = await startTestBridge({ chain, mqttUrl: aedes.url, db: database.db, settings, clock: () => nowMs, rpcUrl: proxy.url });
    const device = await connectDevice(aedes.url);
    const t = (m: Prosumer, metric: string) => readingTopic(settings.topicRoot, m.meterId, metric);
    for (const [s, b] of [[s1, b1], [s2, b2], [s3, b3]] as const) {
      await device.publish(t(s!, "interval"), intervalReading(w1.startMs, 1_000, 0));
      await device.publish(t(b!, "interval"), intervalReading(w1.startMs, 0, 1_000));
    }
    await waitForMetrics(bridge, (m) => m.accepted === 6, "window 1's readings");

    // 1. The RPC refuses connections when window 1 closes: nothing decided, nothing lost.
    proxy.mode = "refuse";
    nowMs = w1.endMs + 301_000;
    await bridge.tick();
    expect(bridge.metrics().chainErrors).to.be.greaterThan(0);
    expect(bridge.metrics().tradesDecided).to.equal(0);

    // 2. Reads work again but broadcasts fail: decided, signed, stored, not on-chain.
    proxy.mode = "failSend";
    nowMs += 1_000;
    await bridge.tick();
    expect(bridge.metrics().tradesDecided).to.equal(3);
    expect(bridge.metrics().confirmationsPending).to.equal(3);
    const stuck = await database.db.selectFrom("bridge_outbox").selectAll().execute();
    expect(stuck.map((r) => r.state).sort()).to.deep.equal(["in_flight", "in_flight", "pending"]);
    expect((await deliveryEvents(chain)).confirmed).to.have.length(0);

    // Backing off: an immediate tick does not even try.
    const sendsBefore = proxy.sends;
    await bridge.tick();
    expect(proxy.sends).to.equal(sendsBefore);
    nowMs += 10_000;
    await bridge.tick(); // tries again: the same signed bytes, refused again
    expect(proxy.sends).to.be.greaterThan(sendsBefore);
    expect((await deliveryEvents(chain)).confirmed).to.have.length(0);

    // 3. Window 2's readings arrive and it closes; now a broadcast is mined but its answer never arrives.
    nowMs = w2.endMs + 1_000;
    await device.publish(t(s4!, "interval"), intervalReading(w2.startMs, 700, 0));
    await device.publish(t(b4!, "interval"), intervalReading(w2.startMs, 0, 700));
    await waitForMetrics(bridge, (m) => m.accepted === 8, "window 2's readings");
    await device.close();
    proxy.mode = "up";
    let cut = 0;
    proxy.onSend = () => (cut++ === 0 ? "forward-then-cut" : "forward");
    nowMs = w2.endMs + 301_000 + 60_000;
    await bridge.tick();
    proxy.onSend = undefined;
    nowMs += 60_000;
    await bridge.tick();
    await bridge.tick();

    await expectEachConfirmedOnce(chain, [...first, ...second], (tr) => tr.energyWh);
    const rows = await database.db.selectFrom("bridge_outbox").selectAll().execute();
    expect(rows.every((r) => r.state === "done")).to.equal(true);
    expect(rows.filter((r) => r.attempts > 1).length).to.be.greaterThan(0, "some rows needed more than one attempt");
    expect(bridge.metrics().confirmationsPending).to.equal(0);
  });
});
