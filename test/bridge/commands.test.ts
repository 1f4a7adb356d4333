// Device commands: published on `.../command` with kWh / kW on the wire, acknowledged by the
// device on `.../status`, tracked to completed, rejected or unacknowledged; bad commands refused.
import { expect } from "chai";
import { once } from "node:events";
import { DeviceCommandError } from "../../bridge/errors.js";
import { buildCommandPayload, commandState } from "../../bridge/deviceCommands.js";
import type { Bridge } from "../../bridge/startBridge.js";
import { brokerTargets, connectDevice, databaseTargets, dropSession, startTestBridge, startTestChain, testSettings, type TestChain } from "./harness.js";

describe("device command payloads", () => {
  const now = Date.parse("2026-02-14T10:00:00Z");
  it("converts Wh and W to the kWh and kW devices expect", () => {
    expect(buildCommandPayload({ type: "battery", action: "charge", energyWh: 40_000n, maxPowerW: 5_000n }, "c1", now, 60)).to.deep.equal({
      command_id: "c1", type: "battery", issued_at: "2026-02-14T10:00:00.000Z", ack_by: "2026-02-14T10:01:00.000Z", action: "charge", energy_kwh: 40, max_power_kw: 5,
    });
    expect(buildCommandPayload({ type: "ev_charge_schedule", slots: [{ startMs: now, endMs: now + 3_600_000, powerW: 7_400n }], targetEnergyWh: 30_000n }, "c2", now, 60))
      .to.deep.include({ schedule: [{ start: "2026-02-14T10:00:00.000Z", end: "2026-02-14T11:00:00.000Z", power_kw: 7.4 }], target_kwh: 30 });
    expect(buildCommandPayload({ type: "demand_response", eventId: "dr-7", startMs: now, endMs: now + 900_000, targetReductionW: 2_500n, signalLevel: "high" }, "c3", now, 60))
      .to.deep.include({ event_id: "dr-7", target_reduction_kw: 2.5, signal_level: "high" });
  });

  it("refuses what a device must not be told", () => {
    const bad = [
      [{ type: "battery", action: "standby", energyWh: 1n }, 'action: "standby" is not allowed: must be "charge" or "discharge"'],
      [{ type: "battery", action: "discharge", energyWh: 0n }, "energyWh: must be a positive number of Wh"],
      [{ type: "ev_charge_schedule", slots: [] }, "slots: must hold at least one charging slot"],
      [{ type: "ev_charge_schedule", slots: [{ startMs: now, endMs: now + 10, powerW: 1n }, { startMs: now + 5, endMs: now + 20, powerW: 1n }] }, "slots[1]: must not overlap the previous slot"],
      [{ type: "demand_response", eventId: "x", startMs: now, endMs: now, targetReductionW: 1n }, "endMs: must be after startMs"],
    ] as const;
    for (const [command, message] of bad) {
      expect(() => buildCommandPayload(command as never, "c", now, 60)).to.throw(DeviceCommandError, message);
    }
  });
});

for (const broker of brokerTargets()) {
  describe(`device commands and acknowledgements (${broker.name})`, function () {
    let chain: TestChain;
    let handle: { url: string; close(): Promise<void> };
    let database: Awaited<ReturnType<ReturnType<typeof databaseTargets>[number]["open"]>>;
    let bridge: Bridge;
    const settings = testSettings({ commandAckSeconds: 30 });
    let nowMs = Date.parse("2026-02-14T10:00:00Z");

    before(async () => {
      [chain, handle, database] = await Promise.all([startTestChain(), broker.start(), databaseTargets()[0]!.open()]);
      bridge = await startTestBridge({ chain, mqttUrl: handle.url, db: database.db, settings, clock: () => nowMs });
    });
    after(async () => {
      await bridge?.close();
      await dropSession(handle.url, settings.mqttClientId).catch(() => {});
      await Promise.all([chain?.close(), handle?.close(), database?.close()]);
    });

    it("publishes a battery command and follows the device's answers to completed", async () => {
      const battery = await connectDevice(handle.url);
      const base = `${settings.topicRoot}/wbg/battery/BAT-003`;
      await battery.client.subscribeAsync(`${base}/command`, { qos: 1 });
      const received = new Promise<[string, Buffer]>((resolve) => battery.client.once("message", (t, p) => resolve([t, p])));
      const sent = await bridge.sendCommand({ region: "wbg", deviceType: "battery", deviceId: "BAT-003" }, { type: "battery", action: "discharge", energyWh: 50_000n });
      const [topic, payload] = await received;
      expect(topic).to.equal(`${base}/command`);
      const command = JSON.parse(payload.toString());
      expect(command).to.deep.include({ command_id: sent.commandId, type: "battery", action: "discharge", energy_kwh: 50 });

      const accepted = once(bridge.events, "commandAck");
      await battery.publish(`${base}/status`, { command_id: sent.commandId, status: "accepted", timestamp: new Date(nowMs).toISOString() });
      expect((await accepted)[0]).to.deep.equal({ commandId: sent.commandId, state: "accepted", deviceId: "BAT-003" });
      const completed = once(bridge.events, "commandAck");
      await battery.publish(`${base}/status`, { command_id: sent.commandId, status: "completed" });
      await completed;
      expect(await commandState(database.db, sent.commandId)).to.equal("completed");
      expect(bridge.metrics().commands).to.deep.include({ sent: 1, accepted: 1, completed: 1 });
      await battery.close();
    });

    it("acknowledges status messages to the broker: a restarted bridge gets none of them again", async () => {
      const device = await connectDevice(handle.url);
      const statusTopic = `${settings.topicRoot}/wbg/battery/BAT-009/status`;
      let seen = 0;
      const counted = new Promise<void>((resolve) => bridge.events.on("deviceStatus", () => ++seen === 3 && resolve()));
      for (let i = 0; i < 3; i++) await device.publish(statusTopic, { soc_pct: 50 + i });
      await counted;
      await bridge.close();

      // Same session: anything the broker still holds unacknowledged comes first, then the sentinel.
      bridge = await startTestBridge({ chain, mqttUrl: handle.url, db: database.db, settings, clock: () => nowMs });
      const sentinel = new Promise<void>((resolve) => bridge.events.on("committed", (c) => c.deadLetters.length > 0 && resolve()));
      await device.publish(`${settings.topicRoot}/wbg/smart-meter/SENTINEL/export`, "{}");
      await sentinel;
      expect(bridge.metrics().statusMessages).to.equal(0);
      await device.close();
    });

    it("ignores an answer from another device and marks a silent one unacknowledged", async () => {
      const sent = await bridge.sendCommand({ region: "wbg", deviceType: "ev-charger", deviceId: "EV-01" }, {
        type: "ev_charge_schedule", slots: [{ startMs: nowMs, endMs: nowMs + 3_600_000, powerW: 11_000n }],
      });
      const impostor = await connectDevice(handle.url);
      // Another device cannot acknowledge it: the bridge reads the answer and changes nothing.
      const seen = once(bridge.events, "deviceStatus");
      await impostor.publish(`${settings.topicRoot}/wbg/ev-charger/EV-02/status`, { command_id: sent.commandId, status: "completed" });
      expect((await seen)[0]).to.deep.equal({ topic: `${settings.topicRoot}/wbg/ev-charger/EV-02/status`, ack: undefined });
      expect(await commandState(database.db, sent.commandId)).to.equal("sent");
      await impostor.close();
      nowMs += 31_000;
      await bridge.tick();
      expect(await commandState(database.db, sent.commandId)).to.equal("unacknowledged");
      expect(bridge.metrics().commands.unacknowledged).to.equal(1);
    });
  });
}
