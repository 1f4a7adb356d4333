// Device credentials against one whole node: operators issue, list, rotate and revoke them;
// the password is shown once and stored as a Mosquitto hash; the node's embedded broker takes
// no anonymous client and holds each device to its own topics; the test accounts' meters get
// their credentials at start and GET /v1/chain/test-accounts shows them; a rotated or revoked
// credential's sessions end at once.
import { expect } from "chai";
import type { Kysely } from "kysely";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { openDatabase } from "../../lib/database.js";
import { createDeviceCredentials, issueTestAccountCredentials, testAccountDevicePassword } from "../../server/devices/deviceCredentials.js";
import { migrateDeviceStore, type DevicesDatabase } from "../../server/devices/deviceStore.js";
import { injectClient, signIn, startTestNode, waitFor, type Http, type TestNode } from "./helpers.js";

describe("device credentials", function () {
  this.timeout(120_000);
  let t: TestNode;
  let http: Http;
  let db: Kysely<any>;
  let tokens: { operator: string; prosumer: string };
  let root: string;
  const clients = new Set<MqttClient>();

  const connect = async (options: IClientOptions): Promise<MqttClient> => {
    const c = await mqtt.connectAsync(t.node.mqttUrl, { reconnectPeriod: 0, connectTimeout: 5_000, ...options });
    c.on("error", () => {});
    clients.add(c);
    return c;
  };
  const refusal = (options: IClientOptions) => connect(options).then(() => undefined, (err: { code?: number }) => err.code);
  const issue = (body: Record<string, unknown>, token: string | null = tokens.operator) => http({ method: "POST", url: "/v1/devices", ...(token ? { token } : {}), body });

  before(async () => {
    t = await startTestNode();
    http = injectClient(t.node.app);
    db = t.node.services.indexer.db as unknown as Kysely<any>;
    root = t.node.bridge.topicRoot;
    tokens = { operator: await signIn(http, t.node, t.node.operatorKey!), prosumer: await signIn(http, t.node, t.node.testAccounts[0]!.privateKey) };
  });
  after(async () => {
    await Promise.all([...clients].map((c) => c.endAsync(true).catch(() => {})));
    await t?.close();
  });

  it("POST /v1/devices issues a credential once (201): the password in that answer only, its hash in the table", async () => {
    const res = await issue({ deviceId: "BAT-7", deviceType: "battery", region: "ZONE-A" });
    expect(res.status, res.text).to.equal(201);
    expect(res.json.username).to.equal("BAT-7");
    expect(res.json.password).to.match(/^[A-Za-z0-9_-]{32}$/);
    expect(res.json.device).to.deep.include({ deviceId: "BAT-7", deviceType: "battery", region: "ZONE-A", revokedAt: null });
    expect(res.json.device.issuedBy).to.match(/^0x[0-9a-fA-F]{40}$/);
    expect(res.json.mqtt).to.deep.equal({
      url: t.node.mqttUrl,
      publish: ["export", "import", "interval", "status"].map((m) => `${root}/ZONE-A/battery/BAT-7/${m}`),
      subscribe: [`${root}/+/battery/BAT-7/command`],
    });
    const row = await db.selectFrom("device_credentials").selectAll().where("device_id", "=", "BAT-7").executeTakeFirstOrThrow();
    expect(row.password_hash).to.match(/^\$7\$101\$/);
    expect(Object.values(row).map(String).join(" ")).to.not.include(res.json.password);
    // Listed without secrets.
    const list = await http({ url: "/v1/devices", token: tokens.operator });
    expect(list.status).to.equal(200);
    expect(list.text).to.not.include(res.json.password);
    expect(list.text).to.not.include("$7$");
    expect(list.json.devices.map((d: { deviceId: string }) => d.deviceId)).to.include.members(["BAT-7", "meter-4", "meter-5", "meter-6", "meter-7"]);
    // Issued again while active: 409 naming the way to rotate.
    const again = await issue({ deviceId: "BAT-7", deviceType: "battery" });
    expect(again.json).to.include({ status: 409, code: "device_exists", field: "deviceId" });
    expect(again.json.detail).to.include("/v1/devices/BAT-7/rotate");
  });

  it("only operators manage credentials; bad input is a 400 naming the field; the bridge's name is reserved", async () => {
    expect((await issue({ deviceId: "X-1", deviceType: "battery" }, null)).json).to.include({ status: 401, code: "unauthorized" });
    expect((await issue({ deviceId: "X-1", deviceType: "battery" }, tokens.prosumer)).json).to.include({ status: 403, code: "operator_only" });
    expect((await http({ url: "/v1/devices", token: tokens.prosumer })).json).to.include({ status: 403, code: "operator_only" });
    expect((await http({ method: "DELETE", url: "/v1/devices/BAT-7", token: tokens.prosumer })).json).to.include({ status: 403, code: "operator_only" });
    expect((await http({ method: "POST", url: "/v1/devices/BAT-7/rotate", token: tokens.prosumer })).json).to.include({ status: 403, code: "operator_only" });
    const cases: [Record<string, unknown>, string][] = [
      [{ deviceType: "battery" }, "deviceId"],
      [{ deviceId: "a/b", deviceType: "battery" }, "deviceId"],
      [{ deviceId: "a+", deviceType: "battery" }, "deviceId"],
      [{ deviceId: "X-1" }, "deviceType"],
      [{ deviceId: "X-1", deviceType: "Battery" }, "deviceType"],
      [{ deviceId: "X-1", deviceType: "battery", region: "#" }, "region"],
      [{ deviceId: "X-1", deviceType: "battery", password: "mine" }, "password"],
      [{ deviceId: "M".repeat(32), deviceType: "smart-meter" }, "deviceId"],
    ];
    for (const [body, field] of cases) {
      const res = await issue(body);
      expect(res.status, JSON.stringify(body)).to.equal(400);
      expect(res.json.field, JSON.stringify(body)).to.equal(field);
    }
    expect((await issue({ deviceId: "bridge", deviceType: "smart-meter" })).json).to.include({ status: 409, code: "device_id_reserved", field: "deviceId" });
    expect((await http({ method: "DELETE", url: "/v1/devices/NOPE", token: tokens.operator })).json).to.include({ status: 404, code: "device_not_found", field: "deviceId" });
    expect((await http({ method: "POST", url: "/v1/devices/NOPE/rotate", token: tokens.operator })).json).to.include({ status: 404, code: "device_not_found" });
  });

  it("gives the test accounts' meters their credentials, shown by GET /v1/chain/test-accounts; the broker takes them and no one anonymous", async () => {
    const res = await http({ url: "/v1/chain/test-accounts" });
    expect(res.status).to.equal(200);
    for (const a of res.json.accounts as { meterId: string; privateKey: `0x${string}`; mqtt: { url: string; username: string; password: string } }[]) {
      expect(a.mqtt).to.deep.equal({ url: t.node.mqttUrl, username: a.meterId, password: testAccountDevicePassword(a.privateKey) });
    }
    const [meter4, meter5] = res.json.accounts as { mqtt: { username: string; password: string } }[];
    expect(await refusal({})).to.equal(5);
    expect(await refusal({ username: "meter-4", password: "guess" })).to.equal(4);
    // The node's own bridge receives what meter-4 publishes on its own topic (a power sample
    // needs no signature), and nothing meter-4 publishes for meter-5.
    const forger = await connect({ username: meter4!.mqtt.username, password: meter4!.mqtt.password });
    const gone = new Promise<void>((r) => forger.once("close", () => r()));
    const before = t.node.bridge.metrics().messagesIn;
    void forger.publishAsync(`${root}/ZONE-B/smart-meter/meter-5/export`, JSON.stringify({ timestamp: new Date().toISOString(), value: 9, unit: "kW" }), { qos: 1 }).catch(() => {});
    await gone;
    const meter = await connect({ username: meter5!.mqtt.username, password: meter5!.mqtt.password });
    const at = new Date(Math.floor(Date.now() / 1000) * 1000 - 5_000).toISOString();
    await meter.publishAsync(`${root}/ZONE-B/smart-meter/meter-5/export`, JSON.stringify({ timestamp: at, value: 3, unit: "kW" }), { qos: 1 });
    const row = await waitFor("meter-5's power sample", async () =>
      db.selectFrom("bridge_readings").selectAll().where("meter_id", "=", "meter-5").where("kind", "=", "power").executeTakeFirst(), 10_000, 20);
    expect(row.value).to.equal(3_000n);
    expect(t.node.bridge.metrics().messagesIn).to.equal(before + 1);
  });

  it("rotation ends the sessions of the old password, which stops working; the new one works", async () => {
    const first = await issue({ deviceId: "EV-7", deviceType: "ev-charger" });
    const session = await connect({ username: "EV-7", password: first.json.password });
    expect((await session.subscribeAsync(`${root}/+/ev-charger/EV-7/command`, { qos: 1 }))[0]!.qos).to.equal(1);
    const gone = new Promise<void>((r) => session.once("close", () => r()));
    const rotated = await http({ method: "POST", url: "/v1/devices/EV-7/rotate", token: tokens.operator });
    expect(rotated.status, rotated.text).to.equal(200);
    expect(rotated.json.password).to.not.equal(first.json.password);
    expect(rotated.json.device.passwordSetAt >= first.json.device.passwordSetAt).to.equal(true);
    await gone;
    expect(await refusal({ username: "EV-7", password: first.json.password })).to.equal(4);
    expect(await refusal({ username: "EV-7", password: rotated.json.password })).to.equal(undefined);
  });

  it("revocation disconnects the device at once and keeps it out; the test account's credential disappears from GET /v1/chain/test-accounts", async () => {
    const accounts = (await http({ url: "/v1/chain/test-accounts" })).json.accounts as { meterId: string; mqtt?: { password: string } }[];
    const meter7 = accounts.find((a) => a.meterId === "meter-7")!;
    const session = await connect({ username: "meter-7", password: meter7.mqtt!.password });
    const gone = new Promise<void>((r) => session.once("close", () => r()));
    const res = await http({ method: "DELETE", url: "/v1/devices/meter-7", token: tokens.operator });
    expect(res.status, res.text).to.equal(200);
    expect(res.json.revokedAt).to.be.a("string");
    await gone;
    expect(await refusal({ username: "meter-7", password: meter7.mqtt!.password })).to.equal(4);
    // Revoking again answers the same record.
    expect((await http({ method: "DELETE", url: "/v1/devices/meter-7", token: tokens.operator })).json.revokedAt).to.equal(res.json.revokedAt);
    expect((await http({ method: "POST", url: "/v1/devices/meter-7/rotate", token: tokens.operator })).json).to.include({ status: 409, code: "device_revoked" });
    const after = (await http({ url: "/v1/chain/test-accounts" })).json.accounts as { meterId: string; mqtt?: unknown }[];
    expect(after.find((a) => a.meterId === "meter-7")!.mqtt).to.equal(undefined);
    expect(after.find((a) => a.meterId === "meter-6")!.mqtt).to.not.equal(undefined);
    const active = (await http({ url: "/v1/devices", token: tokens.operator })).json.devices.map((d: { deviceId: string }) => d.deviceId);
    expect(active).to.not.include("meter-7");
    const all = (await http({ url: "/v1/devices?includeRevoked=true", token: tokens.operator })).json.devices as { deviceId: string; revokedBy: string }[];
    expect(all.find((d) => d.deviceId === "meter-7")!.revokedBy).to.match(/^0x/);
    // Issued again by an operator: a new password, the device is back.
    const reissued = await issue({ deviceId: "meter-7", deviceType: "smart-meter" });
    expect(reissued.status).to.equal(201);
    expect(await refusal({ username: "meter-7", password: reissued.json.password })).to.equal(undefined);
  });
});

describe("test accounts' credentials at start", () => {
  it("are issued once: a credential an operator revoked or rotated is never restored by the node", async () => {
    const database = await openDatabase<DevicesDatabase>({});
    try {
      await migrateDeviceStore(database.db);
      await migrateDeviceStore(database.db);
      const devices = createDeviceCredentials({ db: database.db, clock: Date.now, reservedUsernames: ["bridge"] });
      const accounts = [{ meterId: "meter-4", privateKey: `0x${"11".repeat(32)}` as const }, { meterId: "meter-5", privateKey: `0x${"22".repeat(32)}` as const }];
      await issueTestAccountCredentials(devices, accounts);
      const password = testAccountDevicePassword(accounts[0]!.privateKey);
      expect(await devices.check("meter-4", password)).to.deep.equal({ role: "device", username: "meter-4", deviceType: "smart-meter", deviceId: "meter-4", region: null });
      await devices.revoke("meter-4", "0xoperator");
      const rotated = await devices.rotate("meter-5");
      await issueTestAccountCredentials(devices, accounts);
      expect(await devices.check("meter-4", password)).to.equal(undefined);
      expect(await devices.check("meter-5", testAccountDevicePassword(accounts[1]!.privateKey))).to.equal(undefined);
      expect(await devices.check("meter-5", rotated.password)).to.not.equal(undefined);
      // The bridge's username is never a device's, whatever is stored.
      expect(await devices.check("bridge", password)).to.equal(undefined);
    } finally {
      await database.close();
    }
  });
});
