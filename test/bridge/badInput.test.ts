// The bad-input table: each bad message is dead-lettered on `{root}/dead-letter/...` with its
// reason and the original payload, counted by reason, stored in bridge_dead_letters, and the
// good message published right after it is still accepted.
import { expect } from "chai";
import type { Bridge } from "../../bridge/startBridge.js";
import {
  addProsumer, brokerTargets, collectMessages, connectDevice, counterReading, databaseTargets, dropSession, intervalReading,
  readingTopic, signedPayload, startTestBridge, startTestChain, testSettings, waitForMetrics, type Device, type Prosumer, type TestChain,
} from "./harness.js";

const MINUTE = 60_000;

for (const broker of brokerTargets()) {
  describe(`bad input is dead-lettered and never stops the bridge (${broker.name})`, function () {
    let chain: TestChain;
    let brokerHandle: { url: string; close(): Promise<void> };
    let database: Awaited<ReturnType<ReturnType<typeof databaseTargets>[number]["open"]>>;
    let bridge: Bridge;
    let device: Device;
    let meter: Prosumer;
    const settings = testSettings();
    // Fixed "now": 10:00:30 UTC today, so the readings below sit on the interval grid.
    const nowMs = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 2 * 3_600_000 + 30_000;

    before(async () => {
      [chain, brokerHandle, database] = await Promise.all([startTestChain(), broker.start(), databaseTargets()[0]!.open()]);
      meter = await addProsumer(chain, `SM-BAD-${settings.topicRoot.slice(-4)}`, { exportLimitW: 10_000n, importLimitW: 10_000n, buyer: false });
      bridge = await startTestBridge({ chain, mqttUrl: brokerHandle.url, db: database.db, settings, clock: () => nowMs });
      device = await connectDevice(brokerHandle.url);
    });
    after(async () => {
      await device?.close();
      await bridge?.close();
      await dropSession(brokerHandle.url, settings.mqttClientId).catch(() => {});
      await Promise.all([chain?.close(), brokerHandle?.close(), database?.close()]);
    });

    it("rejects each bad message with its reason and keeps accepting the good ones", async () => {
      const deadLetters = await collectMessages(brokerHandle.url, `${settings.topicRoot}/dead-letter/#`);
      const exportTopic = readingTopic(settings.topicRoot, meter.meterId, "export");
      const intervalTopic = readingTopic(settings.topicRoot, meter.meterId, "interval");
      // Good register readings, one a minute, 100 Wh apart (400 W: well inside the 10 kW limit).
      let goodIndex = 0;
      const good = () => {
        goodIndex++;
        return counterReading(nowMs - 60 * MINUTE + goodIndex * MINUTE, 5_000_000 + goodIndex * 100);
      };
      const firstGood = good();
      await device.publish(exportTopic, firstGood);
      await waitForMetrics(bridge, (m) => m.accepted === 1, "the first good reading");

      const alignedStart = Math.floor(nowMs / 900_000) * 900_000 - 900_000;
      const cases: { name: string; topic: string; payload: string | Buffer; reason: string; field?: string }[] = [
        { name: "malformed JSON", topic: exportTopic, payload: '{"timestamp": "2026-02-14T10:', reason: "malformed_json", field: "payload" },
        { name: "not UTF-8 at all", topic: exportTopic, payload: Buffer.from([0xff, 0xfe, 0x00, 0x01]), reason: "malformed_json" },
        { name: "wrong type (value as a string)", topic: exportTopic, payload: JSON.stringify({ ...counterReading(nowMs - 30 * MINUTE, 5_001_000), value: "5001000" }), reason: "schema_invalid", field: "value" },
        { name: "wrong type (timestamp as a number)", topic: exportTopic, payload: JSON.stringify({ ...counterReading(nowMs, 1), timestamp: nowMs }), reason: "schema_invalid", field: "timestamp" },
        { name: "unknown unit", topic: exportTopic, payload: JSON.stringify({ ...counterReading(nowMs - 30 * MINUTE, 5_001_000), unit: "MWh" }), reason: "unknown_unit", field: "unit" },
        { name: "future timestamp", topic: exportTopic, payload: JSON.stringify(counterReading(nowMs + 10 * MINUTE, 5_009_000)), reason: "timestamp_in_future", field: "timestamp" },
        { name: "older than the retention window", topic: exportTopic, payload: JSON.stringify(counterReading(nowMs - 49 * 60 * MINUTE, 1_000)), reason: "timestamp_too_old", field: "timestamp" },
        { name: "counter reset", topic: exportTopic, payload: JSON.stringify(counterReading(nowMs - 20 * MINUTE, 100)), reason: "counter_decreased", field: "value" },
        { name: "impossible register jump (1 MWh in 10 minutes on a 10 kW connection)", topic: exportTopic, payload: JSON.stringify(counterReading(nowMs - 10 * MINUTE, 6_000_000)), reason: "implausible_value", field: "value" },
        { name: "impossible power (50 kW on a 10 kW connection)", topic: exportTopic, payload: JSON.stringify({ timestamp: new Date(nowMs).toISOString(), value: 50, unit: "kW", quality: "high" }), reason: "implausible_value", field: "value" },
        { name: "negative energy", topic: intervalTopic, payload: JSON.stringify(intervalReading(alignedStart, -100, 0)), reason: "implausible_value", field: "export_kwh" },
        { name: "impossible interval export (30 kWh in 15 minutes)", topic: intervalTopic, payload: JSON.stringify(intervalReading(alignedStart, 30_000, 0)), reason: "implausible_value", field: "export_kwh" },
        { name: "interval off the 15-minute grid", topic: intervalTopic, payload: JSON.stringify(intervalReading(alignedStart + 7 * MINUTE, 100, 0)), reason: "interval_misaligned", field: "interval_start" },
        { name: "interval of the wrong length", topic: intervalTopic, payload: JSON.stringify({ ...intervalReading(alignedStart, 100, 0), interval_minutes: 5 }), reason: "interval_length_mismatch", field: "interval_minutes" },
        { name: "unknown meter", topic: readingTopic(settings.topicRoot, "SM-NOBODY", "export"), payload: JSON.stringify(counterReading(nowMs, 10)), reason: "unknown_meter", field: "topic.deviceId" },
        { name: "meter id in the payload differs from the topic", topic: intervalTopic, payload: JSON.stringify({ ...intervalReading(alignedStart, 100, 0), meter_id: "SM-OTHER" }), reason: "meter_mismatch", field: "meter_id" },
        { name: "oversize payload", topic: exportTopic, payload: JSON.stringify({ ...counterReading(nowMs, 1), pad: "x".repeat(5_000) }), reason: "payload_too_large", field: "payload" },
        { name: "unknown metric", topic: readingTopic(settings.topicRoot, meter.meterId, "voltage"), payload: JSON.stringify({ timestamp: new Date(nowMs).toISOString(), value: 231, unit: "V" }), reason: "unknown_metric", field: "topic.metric" },
        { name: "same instant, different value (conflicting duplicate)", topic: exportTopic, payload: JSON.stringify({ ...firstGood, value: firstGood.value + 1 }), reason: "conflicting_duplicate", field: "timestamp" },
      ];

      // The meter signs what it publishes, so each bad message is refused for its own fault, not
      // for a missing signature (malformed ones stay as they are).
      for (const c of cases) c.payload = signedPayload(c.topic, c.payload);

      for (const [i, c] of cases.entries()) {
        await device.publish(c.topic, c.payload);
        await device.publish(exportTopic, good());
        await deadLetters.waitForCount(i + 1);
        const m = await waitForMetrics(bridge, (x) => x.accepted === goodIndex, `the good reading after "${c.name}"`);
        const dl = deadLetters.messages[i]!;
        expect(dl.payload.reason, c.name).to.equal(c.reason);
        if (c.field) expect(dl.payload.field, c.name).to.equal(c.field);
        expect(dl.topic, c.name).to.equal(`${settings.topicRoot}/dead-letter/${c.topic.slice(settings.topicRoot.length + 1)}`);
        expect(dl.payload.topic, c.name).to.equal(c.topic);
        const original = Buffer.isBuffer(c.payload) ? c.payload : Buffer.from(c.payload);
        const carried = dl.payload.payload_encoding === "base64" ? Buffer.from(dl.payload.payload as string, "base64") : Buffer.from(dl.payload.payload as string);
        if (c.reason !== "payload_too_large") expect(carried.equals(original), `${c.name}: original payload carried`).to.equal(true);
        expect(dl.payload.payload_bytes, c.name).to.equal(original.byteLength);
        expect(m.deadLettered[c.reason as keyof typeof m.deadLettered], c.name).to.be.greaterThan(0);
      }

      const m = bridge.metrics();
      expect(m.accepted).to.equal(goodIndex);
      expect(Object.values(m.deadLettered).reduce((a, b) => a + (b ?? 0), 0)).to.equal(cases.length);
      expect(m.messagesIn).to.equal(goodIndex + cases.length);
      const stored = await database.db.selectFrom("bridge_dead_letters").select(["reason", "topic"]).orderBy("id").execute();
      expect(stored.map((s) => s.reason)).to.deep.equal(cases.map((c) => c.reason));
      const readings = await database.db.selectFrom("bridge_readings").select("value").where("meter_id", "=", meter.meterId).orderBy("reading_at").execute();
      expect(readings.map((r) => r.value)).to.deep.equal(Array.from({ length: goodIndex }, (_, i) => BigInt(5_000_000 + (i + 1) * 100)));
      await deadLetters.close();
    });
  });
}
