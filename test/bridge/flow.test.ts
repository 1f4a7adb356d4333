// End to end: readings published over MQTT -> the bridge -> delivery reports on the real
// chain, with the embedded broker and with Mosquitto when MQTT_URL is set. One window holds
// every case of the issue: the 5% tolerance edge on both sides, over-delivery, zero delivery,
// a buyer whose meter sent nothing, and a seller with several trades (FIFO), measured from
// interval readings and from registers.
import { expect } from "chai";
import { keccak256, stringToBytes } from "viem";
import { amountFor } from "../../contracts/client/amount.js";
import { testEuroAbi } from "../../contracts/client/abi.js";
import type { Trade } from "../../contracts/client/trade.js";
import type { Bridge } from "../../bridge/startBridge.js";
import {
  addProsumer, brokerTargets, connectDevice, counterReading, databaseTargets, deliveryEvents, dropSession, intervalReading,
  pastWindow, PRICE, readingTopic, settleTrades, startTestBridge, startTestChain, testSettings, waitForMetrics, type Prosumer, type TestChain,
} from "./harness.js";

interface Case {
  name: string;
  seller: Prosumer;
  buyer: Prosumer;
  contractedWh: bigint;
  /** What the bridge must report. */
  expectedWh: bigint;
  within: boolean;
}

const dbTargets = databaseTargets();
const combos = [
  ...brokerTargets().map((broker) => ({ broker, db: dbTargets[0]! })),
  // PostgreSQL once, with the embedded broker (the broker does not change the SQL).
  ...dbTargets.slice(1).map((db) => ({ broker: brokerTargets()[0]!, db })),
];

for (const { broker, db: dbTarget } of combos) {
  describe(`bridge end to end (${broker.name}, ${dbTarget.name})`, function () {
    let chain: TestChain;
    let brokerHandle: { url: string; close(): Promise<void> };
    let database: Awaited<ReturnType<typeof dbTarget.open>>;
    let bridge: Bridge;
    let nowMs: number;
    const settings = testSettings();

    before(async () => {
      [chain, brokerHandle, database] = await Promise.all([startTestChain(), broker.start(), dbTarget.open()]);
    });
    after(async () => {
      await bridge?.close();
      await dropSession(brokerHandle.url, settings.mqttClientId).catch(() => {});
      await Promise.all([chain?.close(), brokerHandle?.close(), database?.close()]);
    });

    it("turns published readings into DeliveryConfirmed / DisputeOpened with the right amounts", async () => {
      const w = pastWindow(2);
      const p = async (id: string) => addProsumer(chain, `${id}-${settings.topicRoot.slice(-4)}`);
      const [aS, aB, bS, bB, oS, oB, zS, zB, mS, mB, fS, fB1, fB2, fB3] = await Promise.all(
        ["A-S", "A-B", "B-S", "B-B", "O-S", "O-B", "Z-S", "Z-B", "M-S", "M-B", "F-S", "F-B1", "F-B2", "F-B3"].map(p),
      );
      const cases: Case[] = [
        { name: "exactly at the 5% tolerance (950 of 1000 Wh)", seller: aS!, buyer: aB!, contractedWh: 1_000n, expectedWh: 950n, within: true },
        { name: "one Wh below the tolerance (949 of 1000 Wh)", seller: bS!, buyer: bB!, contractedWh: 1_000n, expectedWh: 949n, within: false },
        { name: "over-delivery (1500 exported for 1000)", seller: oS!, buyer: oB!, contractedWh: 1_000n, expectedWh: 1_000n, within: true },
        { name: "zero delivery", seller: zS!, buyer: zB!, contractedWh: 1_000n, expectedWh: 0n, within: false },
        { name: "buyer meter sent nothing", seller: mS!, buyer: mB!, contractedWh: 1_000n, expectedWh: 0n, within: false },
        // One seller, three trades, 1200 Wh measured by register: FIFO gives 600, 400, 200.
        { name: "several trades per seller, first", seller: fS!, buyer: fB1!, contractedWh: 600n, expectedWh: 600n, within: true },
        { name: "several trades per seller, second", seller: fS!, buyer: fB2!, contractedWh: 400n, expectedWh: 400n, within: true },
        { name: "several trades per seller, third", seller: fS!, buyer: fB3!, contractedWh: 500n, expectedWh: 200n, within: false },
      ];
      const trades = await settleTrades(chain, cases.map((c) => ({ seller: c.seller, buyer: c.buyer, energyWh: c.contractedWh })), w.start, w.end);

      nowMs = w.endMs + 1_000;
      bridge = await startTestBridge({ chain, mqttUrl: brokerHandle.url, db: database.db, settings, clock: () => nowMs });

      const device = await connectDevice(brokerHandle.url);
      const t = (m: Prosumer, metric: string) => readingTopic(settings.topicRoot, m.meterId, metric);
      const readings: [string, unknown][] = [
        [t(aS!, "interval"), intervalReading(w.startMs, 950, 0)], [t(aB!, "interval"), intervalReading(w.startMs, 0, 1_000)],
        [t(bS!, "interval"), intervalReading(w.startMs, 949, 0)], [t(bB!, "interval"), intervalReading(w.startMs, 0, 1_000)],
        [t(oS!, "interval"), intervalReading(w.startMs, 1_500, 0)], [t(oB!, "interval"), intervalReading(w.startMs, 0, 2_000)],
        [t(zS!, "interval"), intervalReading(w.startMs, 0, 300)], [t(zB!, "interval"), intervalReading(w.startMs, 0, 1_000)],
        [t(mS!, "interval"), intervalReading(w.startMs, 1_000, 0)],
        // The FIFO seller's register (kWh) at both ends of the interval and once between.
        [t(fS!, "export"), counterReading(w.startMs, 5_000_000, "kWh")],
        [t(fS!, "export"), counterReading(w.startMs + 450_000, 5_000_700, "kWh")],
        [t(fS!, "export"), counterReading(w.endMs, 5_001_200, "kWh")],
        [t(fB1!, "interval"), intervalReading(w.startMs, 0, 2_000)], [t(fB2!, "interval"), intervalReading(w.startMs, 0, 2_000)],
        [t(fB3!, "interval"), intervalReading(w.startMs, 0, 2_000)],
      ];
      for (const [topic, payload] of readings) await device.publish(topic, payload);
      // A QoS 1 redelivery of one of them is recognised, not counted twice.
      await device.publish(t(aS!, "interval"), intervalReading(w.startMs, 950, 0));
      await waitForMetrics(bridge, (m) => m.accepted === readings.length && m.duplicates === 1, "every reading stored");
      await device.close();

      // Before the grace period ends nothing is decided.
      nowMs = w.endMs + 299_000;
      await bridge.tick();
      expect(bridge.metrics().tradesDecided).to.equal(0);

      const sellerBefore = await Promise.all(cases.map((c) => chain.client.readContract({ address: chain.token, abi: testEuroAbi, functionName: "balanceOf", args: [c.seller.address] })));
      nowMs = w.endMs + 301_000;
      await bridge.tick();
      const m = bridge.metrics();
      expect(m.intervalsClosed).to.equal(1);
      expect(m.tradesDecided).to.equal(cases.length);
      expect(m.confirmations.confirmed + m.confirmations.disputed).to.equal(cases.length);
      expect(m.confirmationsPending).to.equal(0);
      expect(m.reportTransactions).to.equal(1, "one reportDeliveries transaction for the window");

      const events = await deliveryEvents(chain);
      const decisions = await database.db.selectFrom("bridge_decisions").selectAll().execute();
      // One evidence document for the window, which every report of it names.
      const stored = await database.db.selectFrom("bridge_evidence").selectAll().execute();
      expect(stored).to.have.length(1);
      expect(decisions.map((d) => [d.evidence, d.evidence_hash])).to.deep.equal(decisions.map(() => [null, stored[0]!.evidence_hash]));
      const evidence = JSON.parse(stored[0]!.evidence);
      const outcome = (t: Trade) => evidence.trades.find((x: { tradeId: string }) => x.tradeId === String(t.tradeId));
      const partyOf = (side: "sellers" | "buyers", account: string) => evidence[side].find((p: { account: string }) => p.account === account);
      for (const [i, c] of cases.entries()) {
        const trade: Trade = trades[i]!;
        const confirmed = events.confirmed.filter((e) => e.tradeId === trade.tradeId);
        expect(confirmed, c.name).to.have.length(1);
        expect(confirmed[0]!.deliveredWh, c.name).to.equal(c.expectedWh);
        expect(confirmed[0]!.withinTolerance, c.name).to.equal(c.within);
        const decision = decisions.find((d) => d.trade_id === trade.tradeId)!;
        expect(confirmed[0]!.evidenceHash, `${c.name}: evidence hash`).to.equal(keccak256(stringToBytes(stored[0]!.evidence)));
        expect(decision.evidence_hash).to.equal(confirmed[0]!.evidenceHash);
        expect(outcome(trade), c.name).to.include({ deliveredWh: String(c.expectedWh), contractedWh: String(trade.energyWh) });
        const disputes = events.disputes.filter((e) => e.tradeId === trade.tradeId);
        if (c.within) {
          expect(disputes, c.name).to.have.length(0);
          expect(events.settled.find((e) => e.tradeId === trade.tradeId)?.sellerPayout, c.name).to.equal(trade.amount);
        } else {
          expect(disputes, c.name).to.have.length(1);
          expect(disputes[0]!.proposedSellerAmount, c.name).to.equal(amountFor(c.expectedWh, PRICE));
          expect(disputes[0]!.reasonHash, c.name).to.equal(confirmed[0]!.evidenceHash);
        }
      }
      // Paid in full exactly when within tolerance (the FIFO seller once for two trades).
      const sellerAfter = await Promise.all(cases.map((c) => chain.client.readContract({ address: chain.token, abi: testEuroAbi, functionName: "balanceOf", args: [c.seller.address] })));
      expect(sellerAfter[0]! - sellerBefore[0]!).to.equal(amountFor(1_000n, PRICE));
      expect(sellerAfter[1]! - sellerBefore[1]!).to.equal(0n);
      expect(sellerAfter[2]! - sellerBefore[2]!).to.equal(amountFor(1_000n, PRICE));
      expect(sellerAfter[5]! - sellerBefore[5]!).to.equal(amountFor(600n, PRICE) + amountFor(400n, PRICE));

      // The evidence says why: the missing buyer meter and the register-measured seller.
      expect(outcome(trades[4]!).basis).to.equal("buyer_data_missing");
      expect(partyOf("buyers", trades[4]!.buyer).slots[0].source).to.equal("missing");
      const fifoSeller = partyOf("sellers", trades[7]!.seller);
      expect(fifoSeller.slots[0]).to.deep.include({ source: "counter", wh: "1200" });
      expect(fifoSeller.slots[0].readings).to.have.length(2);
      expect(outcome(trades[7]!).sellerAllocatedWh).to.equal("200");

      // A later tick decides and sends nothing again.
      nowMs += 60_000;
      await bridge.tick();
      expect((await deliveryEvents(chain)).confirmed).to.have.length(cases.length);
      expect(bridge.metrics().reportTransactions).to.equal(1);
    });
  });
}
