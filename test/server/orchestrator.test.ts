// The orchestrator against one whole node (embedded chain, PGlite, Aedes): the guide's scenarios
// run through POST /v1/orchestrator/run and island, and each is checked where it lands — the
// commands MQTT devices receive on their command topics, the aggregator's orders in the engine's
// books, the actions on GET /v1/orchestrator/actions and on the WebSocket channel
// `orchestrator.actions`. Resources are household batteries, park EV chargers and flexible loads
// registered through the coordination API; the scenario supply and demand is community-scale, so
// the P2P offer or bid is the residual after the devices.
import { expect } from "chai";
import mqtt, { type MqttClient } from "mqtt";
import WebSocket from "ws";
import { timeOfDayPeriod } from "../../engine/pricing/dynamicPrice.js";
import { localHourAt } from "../../engine/pricing/localHour.js";
import { createLogger } from "../../lib/logger.js";
import { createOrchestrator, type OrchestratorDb } from "../../server/orchestrator/createOrchestrator.js";
import type { RunningNode } from "../../server/startNode.js";
import { deviceLogin, injectClient, intervalAhead, openSocket, signIn, startTestNode, waitFor, type Http, type TestNode } from "./helpers.js";

/** Devices on the node's broker, each subscribed to its command topic; commands kept per device id. */
/** One connection per device, each logged in as itself (the broker takes no anonymous client), subscribed to its command topic. */
async function connectDevices(node: RunningNode, topics: Record<string, string>) {
  const commands: Record<string, Record<string, any>[]> = Object.fromEntries(Object.keys(topics).map((id) => [id, []]));
  const clients = await Promise.all(Object.entries(topics).map(async ([id, topic]) => {
    const [, , deviceType] = topic.split("/");
    const client: MqttClient = await mqtt.connectAsync(node.mqttUrl, { clean: true, reconnectPeriod: 0, ...(await deviceLogin(node, id, deviceType!)) });
    client.on("message", (t, payload) => {
      if (t === topic) commands[id]!.push(JSON.parse(payload.toString()));
    });
    await client.subscribeAsync(topic, { qos: 1 });
    return client;
  }));
  return { client: { endAsync: async () => void (await Promise.all(clients.map((c) => c.endAsync()))) }, commands };
}

const kWh = (x: number) => x * 1000;

describe("orchestrator routes", function () {
  this.timeout(240_000);
  let t: TestNode;
  let http: Http;
  let operator: string;
  let prosumer: string;
  let neighbour: string;
  let socket: Awaited<ReturnType<typeof openSocket>>;
  let devices: Awaited<ReturnType<typeof connectDevices>>;
  let base: number;

  const batteries = [
    { resourceId: "bat-1", capacityKwh: 13.5, socPct: 82 },
    { resourceId: "bat-2", capacityKwh: 13.5, socPct: 74 },
    { resourceId: "bat-3", capacityKwh: 10, socPct: 91 },
  ];
  const evs = [
    { resourceId: "ev-park-01", needKwh: 25 },
    { resourceId: "ev-park-03", needKwh: 18 },
    { resourceId: "ev-park-07", needKwh: 32 },
  ];
  const loads = [
    { resourceId: "pool-pump", flexibleKw: 3, essential: false },
    { resourceId: "heat-pump", flexibleKw: 2, essential: false },
    { resourceId: "fridge", flexibleKw: 0.5, essential: true },
  ];
  const deviceOf = (id: string, deviceType: string) => ({ region: "wbg", deviceType, deviceId: id });
  const all = [...batteries.map((b) => [b.resourceId, "battery"]), ...evs.map((e) => [e.resourceId, "ev-charger"]), ...loads.map((l) => [l.resourceId, "load"])] as [string, string][];

  const run = async (body: Record<string, unknown>, url = "/v1/orchestrator/run") => {
    const res = await http({ method: "POST", url, token: operator, body });
    expect(res.status, res.text).to.equal(200);
    return res.json;
  };
  const ofKind = (json: any, kind: string) => json.actions.filter((a: any) => a.kind === kind);
  /** Commands a device got since `from` (its list's length before the run). */
  const receivedSince = (id: string, from: number, n: number) => waitFor(`${n} command(s) on ${id}`, async () => {
    const got = devices.commands[id]!.slice(from);
    return got.length >= n ? got : undefined;
  }, 10_000, 20);
  const counts = () => Object.fromEntries(Object.entries(devices.commands).map(([k, v]) => [k, v.length]));

  before(async () => {
    t = await startTestNode();
    http = injectClient(t.node.app);
    operator = await signIn(http, t.node, t.node.operatorKey!);
    // testAccounts[0] and [2] are prosumers of ZONE-A (meters meter-4 and meter-6).
    prosumer = await signIn(http, t.node, t.node.testAccounts[0]!.privateKey);
    neighbour = await signIn(http, t.node, t.node.testAccounts[2]!.privateKey);
    const register = async (body: Record<string, unknown>, state: Record<string, unknown> | undefined) => {
      const res = await http({ method: "POST", url: "/v1/resources", token: prosumer, body: { zone: "ZONE-A", ...body } });
      expect(res.status, res.text).to.equal(201);
      if (state) {
        const rep = await http({ method: "POST", url: "/v1/reports", token: prosumer, body: { resourceId: body.resourceId, state } });
        expect(rep.status, rep.text).to.equal(201);
      }
    };
    for (const b of batteries) {
      await register({ resourceId: b.resourceId, type: "battery", device: deviceOf(b.resourceId, "battery"), capabilities: { capacityKwh: b.capacityKwh, maxChargeKw: 50, maxDischargeKw: 50, reservePct: 10 } }, { socPct: b.socPct });
    }
    const departure = new Date(Date.now() + 10 * 3_600_000).toISOString();
    for (const e of evs) {
      await register({ resourceId: e.resourceId, type: "ev", device: deviceOf(e.resourceId, "ev-charger"), capabilities: { maxChargeKw: 150, capacityKwh: 75 } }, { pluggedIn: true, energyNeededKwh: e.needKwh, departure });
    }
    for (const l of loads) await register({ resourceId: l.resourceId, type: "flexible_load", device: deviceOf(l.resourceId, "load"), capabilities: { flexibleKw: l.flexibleKw, essential: l.essential } }, undefined);
    const root = t.node.bridge.topicRoot;
    devices = await connectDevices(t.node, Object.fromEntries(all.map(([id, type]) => [id, `${root}/wbg/${type}/${id}/command`])));
    socket = await openSocket(t.node.url, ["orchestrator.actions"]);
    // Each scenario plans its own interval so the aggregator's offers and bids never meet.
    base = intervalAhead(Math.floor(Date.now() / 1000), 1_800);
    await t.node.indexedBlock();
  });

  after(async () => {
    socket?.close();
    await devices?.client.endAsync();
    await t?.close();
  });

  /** Every action of a run: stored (GET /v1/orchestrator/actions) and pushed on the WebSocket. */
  async function expectPublished(json: any) {
    const ids = json.actions.map((a: any) => a.id);
    const listed = await http({ url: `/v1/orchestrator/actions?zone=ZONE-A&limit=500` });
    expect(listed.status).to.equal(200);
    const stored = new Map(listed.json.actions.map((a: any) => [a.id, a]));
    for (const a of json.actions) expect(stored.get(a.id)).to.deep.equal(a);
    await waitFor("actions on the WebSocket", async () => (ids.every((id: string) => socket.messages.some((m) => m.channel === "orchestrator.actions" && m.type === "action" && m.data.id === id)) ? true : undefined), 10_000, 20);
    const pushed = socket.messages.find((m) => m.data?.id === ids[0])!;
    expect(pushed.data).to.deep.equal(json.actions[0]);
  }

  /** The aggregator's order in the engine and in the public book. */
  async function expectOrder(orderId: string, side: 0 | 1, energyWh: number, price: number, intervalStart: number) {
    const order = t.node.engine.getOrder(orderId as `0x${string}`)!;
    expect(order, `order ${orderId}`).to.not.equal(undefined);
    expect(order.accepted.order.maker).to.equal(t.node.services.aggregator!.address);
    expect(order.accepted.order.side).to.equal(side);
    expect(Number(order.accepted.order.energyWh)).to.equal(energyWh);
    expect(Number(order.accepted.order.limitPricePerKWh)).to.equal(price);
    expect(Number(order.accepted.order.deliveryStart)).to.equal(intervalStart);
    const book = await http({ url: `/v1/trading/markets/ZONE-A/${intervalStart}/book` });
    const levels = side === 0 ? book.json.bids : book.json.asks;
    expect(levels).to.deep.include({ pricePerKWh: price, energyWh, orders: 1 });
  }

  it("guards: a token and the operator role; bad input named; no readings and no figures is a 422", async () => {
    expect((await http({ method: "POST", url: "/v1/orchestrator/run", body: { zone: "ZONE-A" } })).status).to.equal(401);
    const prosumerRun = await http({ method: "POST", url: "/v1/orchestrator/run", token: prosumer, body: { zone: "ZONE-A" } });
    expect(prosumerRun.status).to.equal(403);
    const halves = await http({ method: "POST", url: "/v1/orchestrator/run", token: operator, body: { zone: "ZONE-A", supplyKwh: 5 } });
    expect(halves.status).to.equal(400);
    expect(halves.json.field).to.equal("demandKwh");
    const zone = await http({ method: "POST", url: "/v1/orchestrator/run", token: operator, body: { zone: "ZONE-Q", supplyKwh: 1, demandKwh: 1 } });
    expect(zone.status).to.equal(422);
    expect(zone.json).to.include({ field: "zone" });
    const negative = await http({ method: "POST", url: "/v1/orchestrator/run", token: operator, body: { zone: "ZONE-A", supplyKwh: -1, demandKwh: 1 } });
    expect(negative.status).to.equal(400);
    expect(negative.json.field).to.equal("supplyKwh");
    const unmeasured = await http({ method: "POST", url: "/v1/orchestrator/run", token: operator, body: { zone: "ZONE-B" } });
    expect(unmeasured.status).to.equal(422);
    expect(unmeasured.json).to.include({ code: "no_balance_data", field: "supplyKwh" });
    expect((await http({ url: "/v1/grid/balance?zone=ZONE-A&from=0&to=900000" })).json.field).to.equal("to");
  });

  it("meters silent for an hour: the interval is forecast as the same interval yesterday", async () => {
    const at = base + 48 * 900;
    const root = t.node.bridge.topicRoot;
    // ZONE-B's two meters (meter-5, meter-7) reported the interval 24 h earlier and nothing since.
    for (const [meter, gen, use] of [["meter-5", 1.4, 2.1], ["meter-7", 2.0, 1.5]] as const) {
      const verdict = await t.node.bridge.submitReading(`${root}/ZONE-B/smart-meter/${meter}/interval`, Buffer.from(JSON.stringify({
        interval_start: new Date((at - 86_400) * 1000).toISOString(), interval_minutes: 15, export_kwh: 0.2, import_kwh: 0.3, generation_kwh: gen, consumption_kwh: use,
      })));
      expect(verdict, JSON.stringify(verdict)).to.deep.include({ accepted: true });
    }
    const res = await http({ method: "POST", url: "/v1/orchestrator/run", token: operator, body: { zone: "ZONE-B", intervalStart: at } });
    expect(res.status, res.text).to.equal(200);
    // 3.4 / 3.6 kWh: balanced at 0.94.
    expect(res.json.balance).to.deep.include({ supplyKwh: 3.4, demandKwh: 3.6, ratio: 0.94, state: "balanced", source: "forecast", measuredIntervalStart: at - 86_400 });
    // A day further back is not a forecast of this interval.
    const older = await http({ method: "POST", url: "/v1/orchestrator/run", token: operator, body: { zone: "ZONE-B", intervalStart: at + 900 } });
    expect(older.status).to.equal(422);
  });

  it("measured: the latest interval that ended in the hour before the planned one, counted by its end", async () => {
    // One ZONE-B meter reports a balanced interval that closed half an hour ago.
    const reported = (Math.floor(Date.now() / 900_000) - 2) * 900;
    const verdict = await t.node.bridge.submitReading(`${t.node.bridge.topicRoot}/ZONE-B/smart-meter/meter-5/interval`, Buffer.from(JSON.stringify({
      interval_start: new Date(reported * 1000).toISOString(), interval_minutes: 15, export_kwh: 0.2, import_kwh: 0.3, generation_kwh: 3.4, consumption_kwh: 3.6,
    })));
    expect(verdict, JSON.stringify(verdict)).to.deep.include({ accepted: true });
    const runAt = (intervalStart: number) => http({ method: "POST", url: "/v1/orchestrator/run", token: operator, body: { zone: "ZONE-B", intervalStart } });
    const ended = reported + 900;
    // Planned right after it, and planned so that it ended 45 minutes before (started an hour
    // before: counted by its start it would be out): measured.
    for (const intervalStart of [ended, ended + 2_700]) {
      const res = await runAt(intervalStart);
      expect(res.status, res.text).to.equal(200);
      expect(res.json.balance).to.deep.include({ supplyKwh: 3.4, demandKwh: 3.6, state: "balanced", source: "measured", measuredIntervalStart: reported });
    }
    // Planned so that it ended a whole hour before: stale, and nothing else is known.
    const stale = await runAt(ended + 3_600);
    expect(stale.status, stale.text).to.equal(422);
    expect(stale.json).to.include({ code: "no_balance_data" });
  });

  it("balanced (3,400 / 3,600 kWh): one maintain action, no commands, no orders", async () => {
    const before = counts();
    const json = await run({ zone: "ZONE-A", intervalStart: base + 900, supplyKwh: 3400, demandKwh: 3600 });
    expect(json.state).to.equal("balanced");
    expect(json.balance).to.include({ ratio: 0.94, source: "forecast" });
    expect(json.actions.map((a: any) => a.kind)).to.deep.equal(["maintain"]);
    await expectPublished(json);
    expect(counts()).to.deep.equal(before);
    expect(t.node.engine.book(t.node.engine.markets[0]!.zoneHex, base + 900)).to.equal(undefined);
  });

  it("midday surplus measured from the meters (4,800 / 3,200 kWh): EVs soak their need, batteries fill, the rest is offered at the floor", async () => {
    // Interval readings of the zone's two meters for the last complete interval: 2 x 2,400 kWh
    // generated, 2 x 1,600 kWh consumed (the meters' own export/import stay within their limits).
    const last = (Math.floor(Date.now() / 900_000) - 1) * 900_000;
    const root = t.node.bridge.topicRoot;
    for (const meter of ["meter-4", "meter-6"]) {
      const verdict = await t.node.bridge.submitReading(`${root}/ZONE-A/smart-meter/${meter}/interval`, Buffer.from(JSON.stringify({
        interval_start: new Date(last).toISOString(), interval_minutes: 15, export_kwh: 1.5, import_kwh: 0.25, generation_kwh: 2400, consumption_kwh: 1600,
      })));
      expect(verdict, JSON.stringify(verdict)).to.deep.include({ accepted: true });
    }
    const before = counts();
    const json = await run({ zone: "ZONE-A" });
    expect(json.state).to.equal("surplus");
    expect(json.balance).to.deep.include({ supplyKwh: 4800, demandKwh: 3200, ratio: 1.5, curtailmentKwh: 1280, source: "measured", measuredIntervalStart: last / 1000 });
    // 150 kW x 15 min = 37.5 kWh covers every need.
    expect(Object.fromEntries(ofKind(json, "ev_charge").map((a: any) => [a.resourceId, a.energyKwh]))).to.deep.equal({ "ev-park-01": 25, "ev-park-03": 18, "ev-park-07": 32 });
    // Headroom: 13.5 x 18% = 2.43, 13.5 x 26% = 3.51, 10 x 9% = 0.9 kWh (50 kW x 15 min = 12.5 is no limit).
    expect(ofKind(json, "battery_charge").map((a: any) => [a.resourceId, a.energyKwh])).to.deep.equal([["bat-1", 2.43], ["bat-2", 3.51], ["bat-3", 0.9]]);
    const [offer] = ofKind(json, "p2p_offer");
    expect(offer.energyKwh).to.equal(1280 - 75 - 6.84);
    expect(offer.outcome).to.equal("done");
    await expectOrder(offer.orderId, 1, kWh(1280) - 75_000 - 6_840, 80_000, json.intervalStart);
    for (const e of evs) {
      const [cmd] = await receivedSince(e.resourceId, before[e.resourceId]!, 1);
      expect(cmd).to.include({ type: "ev_charge_schedule", target_kwh: e.needKwh });
      expect(cmd!.schedule[0]).to.include({ start: new Date(json.intervalStart * 1000).toISOString(), power_kw: 150 });
      expect(ofKind(json, "ev_charge").find((a: any) => a.resourceId === e.resourceId).commandId).to.equal(cmd!.command_id);
    }
    for (const [id, kwh] of [["bat-1", 2.43], ["bat-2", 3.51], ["bat-3", 0.9]] as const) {
      const [cmd] = await receivedSince(id, before[id]!, 1);
      expect(cmd).to.include({ type: "battery", action: "charge", energy_kwh: kwh });
    }
    await expectPublished(json);
    const balance = await http({ url: `/v1/grid/balance?zone=ZONE-A&from=${last / 1000}&to=${json.intervalStart + 900}` });
    expect(balance.status).to.equal(200);
    expect(balance.json.intervals).to.deep.include({ intervalStart: last / 1000, supplyKwh: 4800, demandKwh: 3200, ratio: 1.5, state: "surplus", source: "measured" });
  });

  it("peak shaving (75 / 100 kWh deficit): the 25 kWh split over the three batteries by the energy above their reserve", async () => {
    const before = counts();
    const json = await run({ zone: "ZONE-A", intervalStart: base + 1800, supplyKwh: 75, demandKwh: 100 });
    expect(json.state).to.equal("deficit");
    // Above a 10% reserve: 9.72, 8.64 and 8.1 kWh (26.46 in all). 25,000 Wh x 9,720 / 26,460 =
    // 9,183.7 → 9,183; x 8,640 → 8,163.3 → 8,163; x 8,100 → 7,653.1 → 7,653; the 1 Wh left goes
    // to the battery with the most available (bat-1).
    expect(ofKind(json, "battery_discharge").map((a: any) => [a.resourceId, a.energyKwh])).to.deep.equal([["bat-1", 9.184], ["bat-2", 8.163], ["bat-3", 7.653]]);
    expect(ofKind(json, "p2p_bid")).to.deep.equal([]);
    expect(ofKind(json, "load_defer")).to.deep.equal([]);
    for (const [id, kwh] of [["bat-1", 9.184], ["bat-2", 8.163], ["bat-3", 7.653]] as const) {
      const [cmd] = await receivedSince(id, before[id]!, 1);
      expect(cmd).to.include({ type: "battery", action: "discharge", energy_kwh: kwh, max_power_kw: 50 });
    }
    await expectPublished(json);
  });

  it("evening critical deficit (1,200 / 3,800 kWh): all batteries, loads shed under a demand-response event, EVs halted, the rest bid", async () => {
    const before = counts();
    const json = await run({ zone: "ZONE-A", intervalStart: base + 2700, supplyKwh: 1200, demandKwh: 3800 });
    expect(json.state).to.equal("critical_deficit");
    expect(json.balance).to.include({ ratio: 0.32, importNeededKwh: 2600 });
    expect(ofKind(json, "battery_discharge").map((a: any) => a.energyKwh)).to.deep.equal([9.72, 8.64, 8.1]);
    expect(ofKind(json, "load_shed").map((a: any) => a.resourceId).sort()).to.deep.equal(["heat-pump", "pool-pump"]);
    const [dr] = ofKind(json, "dr_event");
    expect(dr.outcome).to.equal("done");
    expect(dr.eventId).to.be.a("string");
    for (const shed of ofKind(json, "load_shed")) expect(shed.eventId).to.equal(dr.eventId);
    expect(ofKind(json, "ev_defer").map((a: any) => [a.resourceId, a.energyKwh])).to.deep.equal([["ev-park-01", 25], ["ev-park-03", 18], ["ev-park-07", 32]]);
    // 2,600 kWh short - 26.46 from batteries - 1.25 shed (5 kW x 15 min) - 75 of halted charging.
    const [bid] = ofKind(json, "p2p_bid");
    const bidWh = kWh(2600) - 26_460 - 1_250 - 75_000;
    expect(bid.energyKwh).to.equal(bidWh / 1000);
    await expectOrder(bid.orderId, 0, bidWh, 350_000, base + 2700);
    // The shed loads got the event (through coordination), at level high: 100% of their flexible power.
    for (const [id, kw] of [["pool-pump", 3], ["heat-pump", 2]] as const) {
      const [cmd] = await receivedSince(id, before[id]!, 1);
      expect(cmd).to.include({ type: "demand_response", event_id: dr.eventId, target_reduction_kw: kw, signal_level: "high" });
    }
    for (const e of evs) {
      const [cmd] = await receivedSince(e.resourceId, before[e.resourceId]!, 1);
      expect(cmd).to.include({ type: "demand_response", target_reduction_kw: 150, signal_level: "high" });
    }
    for (const b of batteries) expect((await receivedSince(b.resourceId, before[b.resourceId]!, 1))[0]).to.include({ action: "discharge" });
    expect(devices.commands.fridge!.length).to.equal(before.fridge);
    const event = await http({ url: `/v1/events/${dr.eventId}`, token: operator });
    expect(event.status).to.equal(200);
    await expectPublished(json);
  });

  it("island mode: the critical plan at once, every later run islanded until reconnect", async () => {
    const before = counts();
    const json = await run({ zone: "ZONE-A", intervalStart: base + 3600, supplyKwh: 1800, demandKwh: 4200, reason: "main grid lost at the substation" }, "/v1/orchestrator/island");
    expect(json.state).to.equal("island");
    expect(json.actions[0]).to.include({ kind: "island", state: "island" });
    expect(json.actions[0].reason).to.include("main grid lost at the substation");
    expect(ofKind(json, "battery_discharge").map((a: any) => a.energyKwh)).to.deep.equal([9.72, 8.64, 8.1]);
    const [dr] = ofKind(json, "dr_event");
    for (const id of ["pool-pump", "heat-pump"]) {
      const [cmd] = await receivedSince(id, before[id]!, 1);
      expect(cmd).to.include({ type: "demand_response", event_id: dr.eventId, signal_level: "special" });
    }
    await expectPublished(json);
    // Still islanded: a balanced hour runs the island plan too.
    const later = await run({ zone: "ZONE-A", intervalStart: base + 4500, supplyKwh: 3400, demandKwh: 3600 });
    expect(later.state).to.equal("island");
    // A frequency excursion islands as well (ZONE-A is islanded already; the reason is kept).
    const back = await http({ method: "DELETE", url: "/v1/orchestrator/island?zone=ZONE-A", token: operator });
    expect(back.status).to.equal(200);
    expect(back.json).to.include({ zone: "ZONE-A", islanded: false });
    expect(back.json.action).to.include({ kind: "maintain" });
    const normal = await run({ zone: "ZONE-A", intervalStart: base + 5400, supplyKwh: 3400, demandKwh: 3600 });
    expect(normal.state).to.equal("balanced");
    const excursion = await run({ zone: "ZONE-A", intervalStart: base + 6300, supplyKwh: 3400, demandKwh: 3600, frequencyHz: 48.7 });
    expect(excursion.state).to.equal("island");
    expect(excursion.actions[0].reason).to.include("48.7 Hz");
    expect((await http({ method: "DELETE", url: "/v1/orchestrator/island?zone=ZONE-A", token: operator })).json.islandedSince).to.be.a("string");
    expect((await http({ method: "DELETE", url: "/v1/orchestrator/island?zone=ZONE-A", token: operator })).json.islandedSince).to.equal(null);
  });

  it("called directly: without a coordination event the loads get the orchestrator's own commands; without an aggregator the bid is skipped", async () => {
    const real = t.node.services.coordination!;
    const published: { channel: string; type: string; data: any }[] = [];
    const orchestrator = createOrchestrator({
      db: t.node.services.indexer.db as unknown as OrchestratorDb, engine: t.node.engine, bridge: t.node.bridge, signer: undefined,
      hub: { publish: (channel: string, type: string, data: unknown) => void published.push({ channel, type, data }) },
      coordination: { listResources: (f) => real.listResources(f), getResource: (id) => real.getResource(id), createEvent: async () => { throw new Error("coordination store unavailable"); } },
      metersOf: async () => [], clock: Date.now, logger: createLogger("orchestrator-test"),
    });
    const before = counts();
    const result = await orchestrator.run({ zone: "ZONE-A", intervalStart: base + 7200, supplyWh: kWh(1200), demandWh: kWh(3800) });
    expect(result.state).to.equal("critical_deficit");
    const dr = result.actions.find((a) => a.kind === "dr_event")!;
    expect(dr).to.include({ outcome: "skipped", eventId: null });
    expect(dr.detail).to.include("coordination store unavailable");
    const shed = result.actions.filter((a) => a.kind === "load_shed");
    for (const a of shed) {
      expect(a.outcome).to.equal("done");
      const [cmd] = await receivedSince(a.resourceId!, before[a.resourceId!]!, 1);
      expect(cmd).to.include({ type: "demand_response", event_id: `orchestrator-${result.runId}`, command_id: a.commandId, signal_level: "high" });
    }
    const bid = result.actions.find((a) => a.kind === "p2p_bid")!;
    expect(bid).to.include({ outcome: "skipped", orderId: null });
    expect(bid.detail).to.include("AGGREGATOR_KEY");
    expect(published.map((p) => p.data.id)).to.deep.equal(result.actions.map((a) => a.id));
    expect(published.every((p) => p.channel === "orchestrator.actions" && p.type === "action")).to.equal(true);
  });

  describe("EV charging plans", () => {
    const prices = (list: number[]) => list.map((price, i) => ({ intervalStart: base + i * 900, price }));
    // 12 intervals from base; cheapest at 3, 5, 7, 9; one above the cap.
    const curve = [0.25, 0.25, 0.25, 0.1, 0.25, 0.11, 0.4, 0.12, 0.25, 0.13, 0.25, 0.25];
    /** The four intervals of an hour-long charging window from `from`. */
    const hourFrom = (from: number) => [0, 1, 2, 3].map((i) => from + i * 900);
    /** ZONE-A's reference price of an interval now (it follows the hour of day and the last run). */
    const referencePrice = (intervalStart: number) => t.node.engine.referencePrice("ZONE-A", intervalStart, Math.floor(t.node.services.clock() / 1000));
    let planId: string;

    before(async () => {
      // A plan is for an EV resource of its owner: one more each, with no device and no zone (so
      // no run plans them and no charger gets their schedules).
      for (const [token, resourceId] of [[prosumer, "ev-home"], [neighbour, "ev-neighbour"]] as const) {
        const res = await http({ method: "POST", url: "/v1/resources", token, body: { resourceId, type: "ev", capabilities: {} } });
        expect(res.status, res.text).to.equal(201);
      }
    });

    it("plans the cheapest intervals, the aggregator bids for each, the charger gets the schedule", async () => {
      const before = counts();
      const res = await http({
        method: "POST", url: "/v1/ev/plans", token: prosumer,
        body: { resourceId: "ev-park-01", zone: "ZONE-A", arrival: new Date(base * 1000).toISOString(), departure: new Date((base + 12 * 900) * 1000).toISOString(), kwhNeeded: 10, chargerKw: 11, maxPrice: 0.3, prices: prices(curve) },
      });
      expect(res.status, res.text).to.equal(201);
      planId = res.json.id;
      expect(res.json.status).to.equal("feasible");
      // 11 kW x 15 min = 2.75 kWh: 0.10, 0.11 and 0.12 full, 1.75 kWh at 0.13 (0.40 is above the cap).
      expect(res.json.slots.map((s: any) => [(s.intervalStart - base) / 900, s.energyKwh, s.price])).to.deep.equal([[3, 2.75, 0.1], [5, 2.75, 0.11], [7, 2.75, 0.12], [9, 1.75, 0.13]]);
      expect(res.json.totalCost).to.equal(String(275_000 + 302_500 + 330_000 + 227_500));
      expect(res.json.orders).to.have.length(4);
      for (const o of res.json.orders) {
        expect(o.outcome, o.detail).to.equal("done");
        await expectOrder(o.orderId, 0, o.energyKwh * 1000, 300_000, o.intervalStart);
      }
      const [cmd] = await receivedSince("ev-park-01", before["ev-park-01"]!, 1);
      expect(cmd).to.include({ type: "ev_charge_schedule", target_kwh: 10, command_id: res.json.command.commandId });
      expect(cmd!.schedule.map((s: any) => s.start)).to.deep.equal(res.json.slots.map((s: any) => s.start));
      expect((await http({ url: `/v1/ev/plans/${planId}`, token: prosumer })).json).to.deep.equal(res.json);
    });

    it("re-plans on new prices: dropped intervals' orders cancelled, new ones placed", async () => {
      const cheaper = [...curve];
      cheaper[11] = 0.09;
      cheaper[3] = 0.29;
      const res = await http({ method: "POST", url: `/v1/ev/plans/${planId}/replan`, token: prosumer, body: { prices: prices(cheaper) } });
      expect(res.status, res.text).to.equal(200);
      expect(res.json.replans).to.equal(1);
      expect(res.json.slots.map((s: any) => [(s.intervalStart - base) / 900, s.energyKwh])).to.deep.equal([[5, 2.75], [7, 2.75], [9, 1.75], [11, 2.75]]);
      const cancelled = res.json.orders.filter((o: any) => o.outcome === "cancelled");
      expect(cancelled.map((o: any) => (o.intervalStart - base) / 900).sort()).to.deep.equal([3, 5, 7, 9]);
      for (const o of cancelled) expect(t.node.engine.getOrder(o.orderId)!.status).to.equal("cancelled");
      const placed = res.json.orders.filter((o: any) => o.outcome === "done");
      expect(placed.map((o: any) => (o.intervalStart - base) / 900)).to.deep.equal([5, 7, 9, 11]);
    });

    it("infeasible plans say why: time, or the price cap, with the shortfall; no orders", async () => {
      const body = { resourceId: "ev-home", zone: "ZONE-A", arrival: new Date(base * 1000).toISOString(), departure: new Date((base + 12 * 900) * 1000).toISOString(), chargerKw: 11, prices: prices(curve) };
      const time = await http({ method: "POST", url: "/v1/ev/plans", token: prosumer, body: { ...body, kwhNeeded: 40, maxPrice: 0.5 } });
      expect(time.status).to.equal(201);
      expect(time.json).to.include({ status: "infeasible", reason: "time", shortfallKwh: 7 });
      expect(time.json.orders).to.deep.equal([]);
      const cap = await http({ method: "POST", url: "/v1/ev/plans", token: prosumer, body: { ...body, kwhNeeded: 10, maxPrice: 0.12 } });
      expect(cap.json).to.include({ status: "infeasible", reason: "price_cap", shortfallKwh: 1.75 });
    });

    it("only the owner or an operator: someone else's EV or plan is refused; bad input named", async () => {
      const body = { resourceId: "ev-home", zone: "ZONE-A", arrival: new Date(base * 1000).toISOString(), departure: new Date((base + 4 * 900) * 1000).toISOString(), kwhNeeded: 1, chargerKw: 11, maxPrice: 0.3 };
      const theirs = await http({ method: "POST", url: "/v1/ev/plans", token: neighbour, body: { ...body, resourceId: "ev-park-01" } });
      expect(theirs.status).to.equal(403);
      expect((await http({ url: `/v1/ev/plans/${planId}`, token: neighbour })).status).to.equal(403);
      expect((await http({ url: `/v1/ev/plans/${planId}`, token: operator })).status).to.equal(200);
      const backwards = await http({ method: "POST", url: "/v1/ev/plans", token: prosumer, body: { ...body, departure: body.arrival } });
      expect(backwards.status).to.equal(400);
      expect(backwards.json.field).to.equal("departure");
      // Without prices the zone's reference price of each interval is used. Those follow the hour
      // of day (peak, solar surplus) and the last run's balance, so the cap is the dearest of them.
      const dearest = Math.max(...hourFrom(base).map(referencePrice));
      const reference = await http({ method: "POST", url: "/v1/ev/plans", token: neighbour, body: { ...body, resourceId: "ev-neighbour", maxPrice: dearest / 1e6 } });
      expect(reference.status, reference.text).to.equal(201);
      expect(reference.json).to.include({ status: "feasible", priceSource: "reference", resourceId: "ev-neighbour" });
      for (const slot of reference.json.slots) expect(Math.round(slot.price * 1e6)).to.equal(referencePrice(slot.intervalStart));
      expect((await http({ url: "/v1/ev/plans/00000000-0000-0000-0000-000000000000", token: operator })).status).to.equal(404);
    });

    it("re-plans when a run moves the zone's prices: a plan the cap held back becomes feasible and bids", async () => {
      // A window outside peak hours: there the sunny and the dark reference price both sit at the
      // retail ceiling, so a run could not move them (which hours those are depends on when the
      // test runs). Peak spans at most 4 h, so 16 steps always find one.
      const tz = t.node.services.timeZone!;
      const offPeak = (from: number) => hourFrom(from).every((s) => timeOfDayPeriod(localHourAt(s, tz)) !== "peak");
      let from = base + 20 * 900;
      while (!offPeak(from)) from += 900;
      const window = hourFrom(from);
      const before = Math.min(...window.map(referencePrice));
      // One base unit under today's cheapest interval: nothing affordable yet.
      const body = { resourceId: "ev-home", zone: "ZONE-A", arrival: new Date(from * 1000).toISOString(), departure: new Date((from + 4 * 900) * 1000).toISOString(), kwhNeeded: 1, chargerKw: 11, maxPrice: (before - 1) / 1e6 };
      const created = await http({ method: "POST", url: "/v1/ev/plans", token: prosumer, body });
      expect(created.status, created.text).to.equal(201);
      expect(created.json).to.include({ status: "infeasible", reason: "price_cap", priceSource: "reference" });

      // A sunny run: supply well over demand lowers the zone's reference prices.
      const run = await http({ method: "POST", url: "/v1/orchestrator/run", token: operator, body: { zone: "ZONE-A", intervalStart: base + 40 * 900, supplyKwh: 4_800, demandKwh: 3_200 } });
      expect(run.status, run.text).to.equal(200);
      const after = Math.min(...window.map(referencePrice));
      expect(after).to.be.lessThan(before);
      expect(run.json.replannedEvPlans).to.include(created.json.id);

      const plan = (await http({ url: `/v1/ev/plans/${created.json.id}`, token: prosumer })).json;
      expect(plan).to.include({ status: "feasible", replans: 1 });
      expect(plan.slots.reduce((sum: number, x: any) => sum + x.energyKwh, 0)).to.equal(1);
      const done = plan.orders.filter((o: any) => o.outcome === "done");
      expect(done).to.have.length(plan.slots.length);
      for (const o of done) await expectOrder(o.orderId, 0, o.energyKwh * 1000, before - 1, o.intervalStart);
      // A second run with the same figures changes nothing: no re-plan.
      const again = await http({ method: "POST", url: "/v1/orchestrator/run", token: operator, body: { zone: "ZONE-A", intervalStart: base + 41 * 900, supplyKwh: 4_800, demandKwh: 3_200 } });
      expect(again.json.replannedEvPlans).to.not.include(created.json.id);
    });
  });
});

describe("orchestrator: automatic interval runs (ORCHESTRATOR_AUTO_RUN=1)", function () {
  this.timeout(120_000);
  let t: TestNode;
  let http: Http;
  let shiftMs = 0;

  before(async () => {
    // The node's clock starts 700 s into an interval, whatever the wall clock says: from 600 s on
    // (5 min gate closure) the next tradable interval is two ahead, so after the shift below the
    // only reading's interval ended 45 minutes before the planned one, the case that must still
    // count as measured; the test must not depend on when it runs.
    const startMs = Date.now();
    shiftMs = (Math.floor(startMs / 900_000) + 1) * 900_000 + 700_000 - startMs;
    t = await startTestNode({ ORCHESTRATOR_AUTO_RUN: "1" }, { clock: () => Date.now() + shiftMs });
    http = injectClient(t.node.app);
  });

  after(async () => {
    await t?.close();
  });

  const actions = async () => (await http({ url: "/v1/orchestrator/actions?zone=ZONE-A&limit=500" })).json.actions as any[];
  const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it("waits for the meters, runs once per interval from their readings, and again in the next interval", async () => {
    await wait(2_500);
    expect(await actions()).to.deep.equal([]);
    const last = (Math.floor(t.node.services.clock() / 900_000) - 1) * 900_000;
    const verdict = await t.node.bridge.submitReading(`${t.node.bridge.topicRoot}/ZONE-A/smart-meter/meter-4/interval`, Buffer.from(JSON.stringify({
      interval_start: new Date(last).toISOString(), interval_minutes: 15, export_kwh: 0.5, import_kwh: 0.5, generation_kwh: 3.4, consumption_kwh: 3.6,
    })));
    expect(verdict).to.deep.include({ accepted: true });
    const first = await waitFor("the interval's automatic run", async () => ((await actions()).length > 0 ? await actions() : undefined), 10_000, 100);
    expect(first.map((a) => [a.kind, a.state])).to.deep.equal([["maintain", "balanced"]]);
    const balance = (await http({ url: `/v1/grid/balance?zone=ZONE-A&from=${first[0].intervalStart}&to=${first[0].intervalStart + 900}` })).json;
    expect(balance.intervals[0]).to.deep.include({ supplyKwh: 3.4, demandKwh: 3.6, state: "balanced" });
    // Once per interval.
    await wait(2_500);
    expect(await actions()).to.have.length(1);
    // The clock enters the next interval: one more run.
    shiftMs += 900_000;
    const second = await waitFor("the next interval's run", async () => {
      const all = await actions();
      return all.length > 1 ? all : undefined;
    }, 10_000, 100);
    expect(second).to.have.length(2);
    expect(second[0].intervalStart).to.be.greaterThan(first[0].intervalStart);
  });
});
