// Readings over REST against one whole node: posted readings take the bridge's MQTT path (the
// same checks, the same per-meter history, the same dead letters). A meter posts its own
// readings with its device credential (HTTP Basic), an operator posts corrections (with a
// reason, never evidence); the account that trades on a meter may not (the security review's
// "seller vouches for itself"), nor any other wallet. The owner or an operator reads them, and
// committed readings (REST and MQTT) are published on `consumption.real-time` and
// `generation.solar` (to the operator's socket here: every meter's).
import { expect } from "chai";
import type { Kysely } from "kysely";
import mqtt, { type MqttClient } from "mqtt";
import WebSocket from "ws";
import { signReading } from "../../bridge/readingSignature.js";
import { injectClient, signIn, startTestNode, waitFor, type Http, type TestNode } from "./helpers.js";

interface MeterCredential {
  username: string;
  password: string;
}
const basic = (c: MeterCredential) => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;

describe("readings over REST", function () {
  this.timeout(120_000);
  let t: TestNode;
  let http: Http;
  let db: Kysely<any>;
  let meter4: MqttClient;
  let meter5: MqttClient;
  let ws: WebSocket;
  /** The test accounts' meters' device credentials, from GET /v1/chain/test-accounts. */
  const devices: Record<string, MeterCredential> = {};
  const messages: { channel: string; type: string; data: any }[] = [];
  let tokens: { owner: string; other: string; operator: string };
  let root: string;
  /** A minute grid well inside the bridge's retention and clock-skew window. */
  let t0: number;
  const at = (seconds: number) => new Date(t0 + seconds * 1000).toISOString();

  before(async () => {
    t = await startTestNode();
    http = injectClient(t.node.app);
    db = t.node.services.indexer.db as unknown as Kysely<any>;
    root = t.node.bridge.topicRoot;
    t0 = Math.floor(Date.now() / 60_000) * 60_000 - 30 * 60_000;
    // Accounts 0 and 1: meter-4 in ZONE-A and meter-5 in ZONE-B, 20 kW import and 10 kW export limits.
    tokens = {
      owner: await signIn(http, t.node, t.node.testAccounts[0]!.privateKey),
      other: await signIn(http, t.node, t.node.testAccounts[1]!.privateKey),
      operator: await signIn(http, t.node, t.node.operatorKey!),
    };
    for (const a of (await http({ url: "/v1/chain/test-accounts" })).json.accounts as { meterId: string; mqtt: MeterCredential }[]) devices[a.meterId] = a.mqtt;
    // Each meter on MQTT with its own credential: the broker takes no anonymous client.
    meter4 = await mqtt.connectAsync(t.node.mqttUrl, { clean: true, reconnectPeriod: 0, ...devices["meter-4"] });
    meter5 = await mqtt.connectAsync(t.node.mqttUrl, { clean: true, reconnectPeriod: 0, ...devices["meter-5"] });
    ws = new WebSocket(`${t.node.url.replace(/^http/, "ws")}/v1/energy/real-time`);
    ws.on("message", (raw) => messages.push(JSON.parse(raw.toString())));
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    ws.send(JSON.stringify({ action: "subscribe", channels: ["consumption.real-time", "generation.solar"], token: tokens.operator }));
    await waitFor("subscribed", async () => messages.find((m) => m.type === "subscribed"), 5_000, 10);
  });

  after(async () => {
    ws?.close();
    await meter4?.endAsync();
    await meter5?.endAsync();
    await t?.close();
  });

  /** Posts as the meter's device credential by default, or with a bearer token, or with no credential (null). */
  const post = (direction: "consumption" | "generation", body: Record<string, unknown>, as: { token: string } | { device: string } | null = { device: "meter-4" }) =>
    http({
      method: "POST", url: `/v1/energy/${direction}`, body,
      ...(as && "token" in as ? { token: as.token } : {}),
      ...(as && "device" in as ? { headers: { authorization: basic(devices[as.device]!) } } : {}),
    });
  /** A reading signed with the meter's key (the test accounts' keys are registered at start). */
  const signed = (account: 0 | 1, metric: string, payload: Record<string, unknown>) =>
    signReading({ meterId: t.node.testAccounts[account]!.meterId, metric, payload, privateKey: t.node.testAccounts[account]!.meterKey });
  const deadLetters = (meterId: string) =>
    db.selectFrom("bridge_dead_letters").select(["topic", "reason", "field"]).where("topic", "like", `%/${meterId}/%`).orderBy("id").execute();
  const onChannel = (channel: string, predicate: (data: any) => boolean) =>
    waitFor(`a message on ${channel}`, async () => messages.find((m) => m.channel === channel && predicate(m.data)), 10_000, 10);

  it("POST /v1/energy/consumption stores the meter's register reading sent with its device credential (201) as its import, once", async () => {
    const res = await post("consumption", { meterId: "meter-4", timestamp: at(0), consumption: 1000.5, unit: "kWh", quality: "high" });
    expect(res.status, res.text).to.equal(201);
    expect(res.json).to.deep.equal({
      meterId: "meter-4", timestamp: at(0), kind: "register", value: 1000.5, unit: "kWh", duplicate: false, topic: `${root}/ZONE-A/smart-meter/meter-4/import`,
      // Unsigned: stored from the meter's credential, but no delivery evidence.
      source: "device", evidence: false,
    });
    const row = await db.selectFrom("bridge_readings").selectAll().where("meter_id", "=", "meter-4").where("reading_at", "=", BigInt(t0)).executeTakeFirstOrThrow();
    expect(row).to.deep.include({ metric: "import", kind: "counter", value: 1_000_500n, source: "device", evidence: false, correction_reason: null });
    expect(JSON.parse(row.payload)).to.deep.equal({ timestamp: at(0), value: 1000.5, unit: "kWh", quality: "high" });
    // Sent again (a client retry): a duplicate, nothing new stored.
    const again = await post("consumption", { meterId: "meter-4", timestamp: at(0), consumption: 1000.5, unit: "kWh", quality: "high" });
    expect(again.status).to.equal(200);
    expect(again.json.duplicate).to.equal(true);
    const count = await db.selectFrom("bridge_readings").select((eb) => eb.fn.countAll<bigint>().as("n")).where("meter_id", "=", "meter-4").executeTakeFirstOrThrow();
    expect(count.n).to.equal(1n);
    // Published after the commit on consumption.real-time.
    const message = await onChannel("consumption.real-time", (d) => d.meterId === "meter-4" && d.timestamp === at(0));
    expect(message).to.deep.include({ type: "reading", data: { meterId: "meter-4", timestamp: at(0), kind: "register", value: 1000.5, unit: "kWh" } });
  });

  it("a reading the bridge refuses is a 422 naming the field, the reason and the rule, and is dead-lettered like an MQTT one", async () => {
    const cases: [Record<string, unknown>, string, string, string][] = [
      [{ timestamp: at(60), consumption: 999 }, "consumption", "counter_decreased", "counters never run backwards"],
      [{ timestamp: at(60), consumption: 1100 }, "consumption", "implausible_value", "more than the import limit of 20000 W allows"],
      [{ timestamp: at(60), consumption: 50, unit: "kW" }, "consumption", "implausible_value", "exceeds the connection's import limit of 20000 W"],
      [{ timestamp: new Date(Date.now() + 3_600_000).toISOString(), consumption: 1001 }, "timestamp", "timestamp_in_future", "must not be later than now"],
      [{ timestamp: new Date(Date.now() - 72 * 3_600_000).toISOString(), consumption: 900 }, "timestamp", "timestamp_too_old", "must be within the last 48h"],
    ];
    for (const [body, field, reason, rule] of cases) {
      const res = await post("consumption", { meterId: "meter-4", ...body });
      expect(res.status, `${JSON.stringify(body)} → ${res.text}`).to.equal(422);
      expect(res.json).to.include({ code: "reading_rejected", field });
      expect(res.json.detail).to.match(new RegExp(`^${reason}: ${field} `));
      expect(res.json.detail).to.include(rule);
    }
    const letters = await deadLetters("meter-4");
    expect(letters.map((l) => l.reason)).to.deep.equal(["counter_decreased", "implausible_value", "implausible_value", "timestamp_in_future", "timestamp_too_old"]);
    expect(letters.every((l) => l.topic === `${root}/ZONE-A/smart-meter/meter-4/import`)).to.equal(true);
    // None of them was stored or published.
    expect((await db.selectFrom("bridge_readings").select("reading_at").where("meter_id", "=", "meter-4").execute()).length).to.equal(1);
    expect(messages.filter((m) => m.data?.meterId === "meter-4")).to.have.length(1);
  });

  it("signed readings share one history over MQTT and REST: a signed posted register above a later signed MQTT one is refused", async () => {
    await meter4.publishAsync(`${root}/ZONE-A/smart-meter/meter-4/import`, JSON.stringify(signed(0, "import", { timestamp: at(300), value: 1000.9, unit: "kWh" })), { qos: 1 });
    await onChannel("consumption.real-time", (d) => d.meterId === "meter-4" && d.timestamp === at(300));
    // What the REST body becomes is what the meter signs: {timestamp, value, unit}.
    const res = await post("consumption", { meterId: "meter-4", timestamp: at(240), consumption: 1001, unit: "kWh", signature: signed(0, "import", { timestamp: at(240), value: 1001, unit: "kWh" }).signature });
    expect(res.status).to.equal(422);
    expect(res.json.detail).to.match(/^counter_decreased: consumption register 1001000 Wh is above the later reading 1000900 Wh/);
    // In between the two, and plausible on both sides: stored, and evidence.
    const ok = await post("consumption", { meterId: "meter-4", timestamp: at(240), consumption: 1000.8, unit: "kWh", signature: signed(0, "import", { timestamp: at(240), value: 1000.8, unit: "kWh" }).signature });
    expect(ok.status, ok.text).to.equal(201);
    expect(ok.json).to.include({ source: "device", evidence: true });
  });

  it("the account that trades on the meter may not post its readings (403 self_reported_reading): the seller cannot vouch for its own sale", async () => {
    // The review's row 2: meter-4's owner posting the export that would settle its own sales.
    for (const [direction, field] of [["generation", "generation"], ["consumption", "consumption"]] as const) {
      const res = await post(direction, { meterId: "meter-4", timestamp: at(330), [field]: 1001 }, { token: tokens.owner });
      expect(res.status, res.text).to.equal(403);
      expect(res.json).to.include({ code: "self_reported_reading", field: "meterId" });
      expect(res.json.detail).to.include(t.node.testAccounts[0]!.address);
    }
    // Not even as a "correction" with a reason.
    expect((await post("generation", { meterId: "meter-4", timestamp: at(330), generation: 1001, reason: "trust me" }, { token: tokens.owner })).json)
      .to.include({ status: 403, code: "self_reported_reading" });
    expect(await db.selectFrom("bridge_readings").select("reading_at").where("meter_id", "=", "meter-4").where("reading_at", "=", BigInt(t0 + 330_000)).execute()).to.deep.equal([]);
  });

  it("nobody else may post either: 401 without a credential, 403 for another wallet or another meter's credential, 401 for a wrong password", async () => {
    const body = { meterId: "meter-4", timestamp: at(360), consumption: 1001 };
    expect((await post("consumption", body, null)).json).to.include({ status: 401, code: "unauthorized" });
    const other = await post("consumption", body, { token: tokens.other });
    expect(other.json).to.include({ status: 403, code: "device_credential_required", field: "authorization" });
    expect(other.json.detail).to.include(t.node.testAccounts[1]!.address);
    expect((await post("consumption", { ...body, meterId: "meter-99" }, { token: tokens.other })).json).to.include({ status: 403, code: "device_credential_required" });
    const wrongMeter = await post("consumption", body, { device: "meter-5" });
    expect(wrongMeter.json).to.include({ status: 403, code: "device_not_this_meter", field: "meterId" });
    const badPassword = await http({ method: "POST", url: "/v1/energy/consumption", body, headers: { authorization: basic({ username: "meter-4", password: "guess" }) } });
    expect(badPassword.json).to.include({ status: 401, code: "device_credential_refused", field: "authorization" });
    const malformed = await http({ method: "POST", url: "/v1/energy/consumption", body, headers: { authorization: "Basic !!" } });
    expect(malformed.json).to.include({ status: 401, code: "device_credential_refused", field: "authorization" });
    // A meter sends its reading as it is: a reason is an operator's.
    expect((await post("consumption", { ...body, reason: "because" })).json).to.include({ status: 400, code: "invalid_request", field: "reason" });
    expect(await db.selectFrom("bridge_readings").select("reading_at").where("meter_id", "=", "meter-4").where("reading_at", "=", BigInt(t0 + 360_000)).execute()).to.deep.equal([]);
  });

  it("an operator posts a correction: a reason is required (400 naming it); stored flagged as a correction, never evidence", async () => {
    const body = { meterId: "meter-4", timestamp: at(360), consumption: 1001 };
    const noReason = await post("consumption", body, { token: tokens.operator });
    expect(noReason.json).to.include({ status: 400, code: "invalid_request", field: "reason" });
    expect((await post("consumption", { ...body, reason: "   " }, { token: tokens.operator })).json).to.include({ status: 400, field: "reason" });
    expect((await post("consumption", { ...body, reason: "x".repeat(501) }, { token: tokens.operator })).json).to.include({ status: 400, field: "reason" });
    // Even signed with the meter's key, a correction is no evidence.
    const res = await post("consumption", { ...body, unit: "kWh", reason: "meter-4 display read on site; the meter's modem was down", signature: signed(0, "import", { timestamp: at(360), value: 1001, unit: "kWh" }).signature }, { token: tokens.operator });
    expect(res.status, res.text).to.equal(201);
    expect(res.json).to.include({ source: "operator_correction", evidence: false });
    const row = await db.selectFrom("bridge_readings").selectAll().where("meter_id", "=", "meter-4").where("reading_at", "=", BigInt(t0 + 360_000)).executeTakeFirstOrThrow();
    expect(row).to.deep.include({ source: "operator_correction", evidence: false, correction_reason: "meter-4 display read on site; the meter's modem was down" });
    // A meter the registry does not know is the bridge's unknown_meter.
    const unknown = await post("consumption", { ...body, meterId: "meter-99", reason: "typo check" }, { token: tokens.operator });
    expect(unknown.status).to.equal(422);
    expect(unknown.json).to.include({ code: "reading_rejected", field: "meterId" });
    expect(unknown.json.detail).to.match(/^unknown_meter: meterId meter "meter-99" is not in the prosumer registry/);
  });

  it("a body that breaks the schema is a 400 naming the field", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ timestamp: at(400), consumption: 1 }, "meterId"],
      [{ meterId: "meter-4", consumption: 1 }, "timestamp"],
      [{ meterId: "meter-4", timestamp: "yesterday", consumption: 1 }, "timestamp"],
      [{ meterId: "meter-4", timestamp: "2026-02-14T10:15:00", consumption: 1 }, "timestamp"],
      [{ meterId: "meter-4", timestamp: at(400) }, "consumption"],
      [{ meterId: "meter-4", timestamp: at(400), consumption: -1 }, "consumption"],
      [{ meterId: "meter-4", timestamp: at(400), consumption: 1, unit: "MWh" }, "unit"],
      [{ meterId: "meter/4", timestamp: at(400), consumption: 1 }, "meterId"],
      [{ meterId: "meter-4", timestamp: at(400), consumption: 1, voltage: 230 }, "voltage"],
      [{ meterId: "meter-4", timestamp: at(400), generation: 1 }, "consumption"],
    ];
    for (const [body, field] of cases) {
      const res = await post("consumption", body);
      expect(res.status, `${JSON.stringify(body)} → ${res.text}`).to.equal(400);
      expect(res.json.field, JSON.stringify(body)).to.equal(field);
    }
  });

  it("POST /v1/energy/generation is the meter's export; power in W shows as kW on generation.solar", async () => {
    const res = await post("generation", { meterId: "meter-4", timestamp: at(420), generation: 3200, unit: "W" });
    expect(res.status, res.text).to.equal(201);
    expect(res.json).to.deep.include({ kind: "power", value: 3.2, unit: "kW", topic: `${root}/ZONE-A/smart-meter/meter-4/export` });
    const message = await onChannel("generation.solar", (d) => d.meterId === "meter-4" && d.timestamp === at(420));
    expect(message.data).to.deep.equal({ meterId: "meter-4", timestamp: at(420), kind: "power", value: 3.2, unit: "kW" });
    const tooMuch = await post("generation", { meterId: "meter-4", timestamp: at(480), generation: 12, unit: "kW" });
    expect(tooMuch.json).to.include({ status: 422, field: "generation" });
    expect(tooMuch.json.detail).to.include("export limit of 10000 W");
  });

  it("an MQTT interval reading goes out on both channels: import as consumption, export as generation", async () => {
    const start = Math.floor(Date.now() / 900_000) * 900_000 - 900_000;
    await meter5.publishAsync(`${root}/ZONE-B/smart-meter/meter-5/interval`,
      JSON.stringify(signed(1, "interval", { interval_start: new Date(start).toISOString(), interval_minutes: 15, import_kwh: 0.4, export_kwh: 1.25 })), { qos: 1 });
    const timestamp = new Date(start).toISOString();
    const consumption = await onChannel("consumption.real-time", (d) => d.meterId === "meter-5");
    const generation = await onChannel("generation.solar", (d) => d.meterId === "meter-5");
    expect(consumption.data).to.deep.equal({ meterId: "meter-5", timestamp, kind: "interval", value: 0.4, unit: "kWh" });
    expect(generation.data).to.deep.equal({ meterId: "meter-5", timestamp, kind: "interval", value: 1.25, unit: "kWh" });
  });

  describe("GET /v1/energy/consumption and /generation", () => {
    const get = (path: string, token: string | null = tokens.owner) => http({ url: path, ...(token ? { token } : {}) });

    it("lists a meter's stored readings in a period, oldest first, each direction its own", async () => {
      const res = await get(`/v1/energy/consumption?meterId=meter-4&from=${encodeURIComponent(at(0))}&to=${encodeURIComponent(at(3600))}`);
      expect(res.status).to.equal(200);
      expect(res.json).to.deep.include({ meterId: "meter-4", from: at(0), to: at(3600), truncated: false });
      expect(res.json.readings.map((r: { timestamp: string; kind: string; value: number }) => [r.timestamp, r.kind, r.value])).to.deep.equal([
        [at(0), "register", 1000.5], [at(240), "register", 1000.8], [at(300), "register", 1000.9], [at(360), "register", 1001],
      ]);
      const generation = await get(`/v1/energy/generation?meterId=meter-4&from=${encodeURIComponent(at(0))}&to=${encodeURIComponent(at(3600))}`);
      expect(generation.json.readings.map((r: { timestamp: string; kind: string; value: number; unit: string }) => [r.timestamp, r.kind, r.value, r.unit])).to.deep.equal([[at(420), "power", 3.2, "kW"]]);
      const narrow = await get(`/v1/energy/consumption?meterId=meter-4&from=${encodeURIComponent(at(240))}&to=${encodeURIComponent(at(360))}`);
      expect(narrow.json.readings.map((r: { timestamp: string }) => r.timestamp)).to.deep.equal([at(240), at(300)]);
      const limited = await get(`/v1/energy/consumption?meterId=meter-4&from=${encodeURIComponent(at(0))}&to=${encodeURIComponent(at(3600))}&limit=2`);
      expect(limited.json.readings).to.have.length(2);
      expect(limited.json.truncated).to.equal(true);
    });

    it("defaults to the caller's own meter; another's is 403; an operator sees every meter", async () => {
      const own = await get("/v1/energy/consumption");
      expect(own.json.meterId).to.equal("meter-4");
      expect(own.json.readings.length).to.equal(4);
      expect((await get("/v1/energy/consumption?meterId=meter-4", tokens.other)).json).to.include({ status: 403, code: "not_meter_owner" });
      const all = await get("/v1/energy/generation", tokens.operator);
      expect(all.json.meterId).to.equal(undefined);
      expect(new Set(all.json.readings.map((r: { meterId: string }) => r.meterId))).to.deep.equal(new Set(["meter-4", "meter-5"]));
      const interval = all.json.readings.find((r: { meterId: string }) => r.meterId === "meter-5");
      expect(interval).to.deep.include({ kind: "interval", value: 1.25, unit: "kWh", intervalMinutes: 15 });
    });

    it("bad filters are a 400 naming the field; no token a 401", async () => {
      expect((await get("/v1/energy/consumption?from=yesterday")).json).to.include({ status: 400, field: "from" });
      expect((await get(`/v1/energy/consumption?from=${encodeURIComponent(at(60))}&to=${encodeURIComponent(at(0))}`)).json).to.include({ status: 400, field: "from" });
      expect((await get("/v1/energy/consumption?limit=0")).json).to.include({ status: 400, field: "limit" });
      expect((await get("/v1/energy/consumption?meter=meter-4")).json).to.include({ status: 400, field: "meter" });
      expect((await get("/v1/energy/consumption", null)).status).to.equal(401);
    });
  });
});
