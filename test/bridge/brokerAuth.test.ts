// The embedded broker with log-in and topic rights (the node's configuration): nobody
// anonymous, a wrong password refused, a device held to its own topics (publish and subscribe),
// the bridge's session not up for grabs, a revoked credential cut off. And the security
// review's accomplice attack against a running bridge: a meter's credential publishing export
// for a seller's meter never reaches the bridge, and its 0 Wh sent first does not turn the
// seller's real reading into a conflicting duplicate.
import { randomBytes } from "node:crypto";
import { expect } from "chai";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { Hex } from "viem";
import { prosumerRegistryAbi } from "../../contracts/client/abi.js";
import {
  mqttUrlWithCredential, withBridgeCredential, type BrokerCredential, type BrokerIdentity, type CheckBrokerCredential,
} from "../../bridge/brokerAccess.js";
import { startEmbeddedBroker, type BrokerRefusal, type EmbeddedBroker } from "../../bridge/embeddedBroker.js";
import { hashMosquittoPassword, verifyMosquittoPassword } from "../../bridge/mosquittoPassword.js";
import { createMeterKeyPair, signReading } from "../../bridge/readingSignature.js";
import type { Bridge } from "../../bridge/startBridge.js";
import {
  addProsumer, counterReading, databaseTargets, pastWindow, readingTopic, startTestBridge, startTestChain, testSettings,
  waitForMetrics, type TestChain,
} from "./harness.js";

/** Device credentials held in memory: what the node's store does, without the database. */
function memoryCredentials() {
  const rows = new Map<string, { hash: string; identity: BrokerIdentity }>();
  const check: CheckBrokerCredential = async (username, password) => {
    const row = rows.get(username);
    return row && verifyMosquittoPassword(password, row.hash) ? row.identity : undefined;
  };
  return {
    check,
    issue(deviceId: string, deviceType = "smart-meter"): BrokerCredential {
      const password = randomBytes(24).toString("base64url");
      rows.set(deviceId, { hash: hashMosquittoPassword(password), identity: { role: "device", username: deviceId, deviceType, deviceId, region: null } });
      return { username: deviceId, password };
    },
    revoke(deviceId: string) {
      rows.delete(deviceId);
    },
  };
}

const clients = new Set<MqttClient>();
async function connect(url: string, options: IClientOptions): Promise<MqttClient> {
  // No reconnects: a refused or disconnected client must stay so for the assertions.
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5_000, clientId: `c-${randomBytes(4).toString("hex")}`, ...options });
  client.on("error", () => {});
  clients.add(client);
  return client;
}
const as = (c: BrokerCredential): IClientOptions => ({ username: c.username, password: c.password });

async function refusal(url: string, options: IClientOptions): Promise<number | undefined> {
  try {
    await connect(url, options);
  } catch (err) {
    return (err as { code?: number }).code;
  }
  return undefined;
}

/** The SUBACK's return code per filter (mqtt.js rejects a SUBACK with any refusal in it). */
async function granted(client: MqttClient, filters: string[]): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters, { qos: 1 })).map((g) => g.qos);
  } catch (err) {
    const codes = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (!codes) throw err;
    return codes;
  }
}

function closed(client: MqttClient): Promise<void> {
  return client.connected ? new Promise((r) => client.once("close", () => r())) : Promise.resolve();
}

describe("embedded broker: log-in and topic rights", function () {
  this.timeout(60_000);
  const root = `ec-auth-${randomBytes(3).toString("hex")}`;
  const creds = memoryCredentials();
  const bridgeCredential: BrokerCredential = { username: "bridge", password: randomBytes(24).toString("base64url") };
  const refusals: BrokerRefusal[] = [];
  let broker: EmbeddedBroker;

  before(async () => {
    broker = await startEmbeddedBroker({
      port: 0, access: { topicRoot: root, check: withBridgeCredential(bridgeCredential, creds.check), onRefused: (r) => refusals.push(r) },
    });
  });
  afterEach(async () => {
    await Promise.all([...clients].map((c) => c.endAsync(true).catch(() => {})));
    clients.clear();
  });
  after(async () => broker?.close());

  it("refuses anonymous clients (CONNACK 5) and wrong passwords (CONNACK 4)", async () => {
    const meter = creds.issue("SM-A1");
    expect(await refusal(broker.url, {})).to.equal(5);
    expect(await refusal(broker.url, { username: "SM-A1" })).to.equal(5);
    expect(await refusal(broker.url, { username: "SM-A1", password: `${meter.password}x` })).to.equal(4);
    expect(await refusal(broker.url, { username: "nobody", password: meter.password })).to.equal(4);
    // The bridge's name with a device's password, or a device's name with the bridge's password.
    expect(await refusal(broker.url, { username: "bridge", password: meter.password })).to.equal(4);
    expect(await refusal(broker.url, { username: "SM-A1", password: bridgeCredential.password })).to.equal(4);
    expect(refusals.filter((r) => r.action === "connect").map((r) => r.reason)).to.deep.equal([
      "anonymous", "anonymous", "bad username or password", "bad username or password", "bad username or password", "bad username or password",
    ]);
    const ok = await connect(broker.url, as(meter));
    expect(ok.connected).to.equal(true);
  });

  it("delivers a device's own reading to the bridge; its publish under another meter's topic is dropped and the device cut off", async () => {
    const a = creds.issue("SM-A2");
    creds.issue("SM-B2");
    const bridge = await connect(broker.url, as(bridgeCredential));
    const got: string[] = [];
    bridge.on("message", (topic) => got.push(topic));
    await bridge.subscribeAsync([`${root}/+/smart-meter/+/+`, `${root}/+/+/+/status`], { qos: 1 });
    const device = await connect(broker.url, as(a));
    const disconnected = closed(device);
    // QoS 1 with the PUBACK never coming: the broker drops the connection instead.
    void device.publishAsync(readingTopic(root, "SM-B2", "export"), JSON.stringify(counterReading(Date.now(), 1_000)), { qos: 1 }).catch(() => {});
    await disconnected;
    const own = await connect(broker.url, as(a));
    await own.publishAsync(readingTopic(root, "SM-A2", "export"), JSON.stringify(counterReading(Date.now(), 5)), { qos: 1 });
    await own.publishAsync(`${root}/wbg/smart-meter/SM-A2/status`, "{}", { qos: 1 });
    // Both own messages arrive, in order, and nothing before them: the forged one never did.
    while (got.length < 2) await new Promise((r) => bridge.once("message", r));
    expect(got).to.deep.equal([readingTopic(root, "SM-A2", "export"), `${root}/wbg/smart-meter/SM-A2/status`]);
    expect(refusals.at(-1)).to.include({ action: "publish", username: "SM-A2", topic: readingTopic(root, "SM-B2", "export") });
    // Nor may a meter publish a command, a dead letter, or another device type's topic under its id.
    for (const topic of [`${root}/wbg/smart-meter/SM-A2/command`, `${root}/dead-letter/wbg/smart-meter/SM-B2/export`, `${root}/wbg/battery/SM-A2/status`, "$SYS/x"]) {
      const c = await connect(broker.url, as(a));
      const gone = closed(c);
      void c.publishAsync(topic, "{}", { qos: 1 }).catch(() => {});
      await gone;
      expect(refusals.at(-1), topic).to.include({ action: "publish", topic });
    }
    expect(got).to.have.length(2);
  });

  it("lets a device subscribe to its own commands only (SUBACK 0x80 for another's, or for a wider filter)", async () => {
    const a = creds.issue("BAT-A3", "battery");
    const b = creds.issue("BAT-B3", "battery");
    const deviceA = await connect(broker.url, as(a));
    const grants = await granted(deviceA, [
      `${root}/+/battery/BAT-A3/command`, `${root}/+/battery/BAT-B3/command`, `${root}/+/battery/+/command`, `${root}/#`, `${root}/+/smart-meter/+/export`, `${root}/dead-letter/#`,
    ]);
    expect(grants).to.deep.equal([1, 128, 128, 128, 128, 128]);
    const got: string[] = [];
    deviceA.on("message", (topic) => got.push(topic));
    const bridge = await connect(broker.url, as(bridgeCredential));
    await bridge.publishAsync(`${root}/wbg/battery/BAT-B3/command`, "{}", { qos: 1 });
    await bridge.publishAsync(`${root}/wbg/battery/BAT-A3/command`, "{}", { qos: 1 });
    while (got.length < 1) await new Promise((r) => deviceA.once("message", r));
    expect(got).to.deep.equal([`${root}/wbg/battery/BAT-A3/command`]);
    // B still gets its own.
    const deviceB = await connect(broker.url, as(b));
    expect(await granted(deviceB, [`${root}/wbg/battery/BAT-B3/command`])).to.deep.equal([1]);
  });

  it("ties the session to the credential: a device using the bridge's client id does not take over its session", async () => {
    const a = creds.issue("SM-A4");
    const bridgeClientId = `bridge-${randomBytes(3).toString("hex")}`;
    const bridge = await connect(broker.url, { ...as(bridgeCredential), clientId: bridgeClientId, clean: false });
    await bridge.subscribeAsync(`${root}/+/smart-meter/+/+`, { qos: 1 });
    const intruder = await connect(broker.url, { ...as(a), clientId: bridgeClientId, clean: false });
    // The intruder got its own session (none stored), not the bridge's, which stays connected.
    expect(intruder.connected).to.equal(true);
    await intruder.publishAsync(readingTopic(root, "SM-A4", "export"), "{}", { qos: 1 });
    const got = await new Promise<string>((r) => bridge.once("message", (topic) => r(topic)));
    expect(got).to.equal(readingTopic(root, "SM-A4", "export"));
    expect(bridge.connected).to.equal(true);
  });

  it("never publishes a device's will on another device's topic", async () => {
    const a = creds.issue("SM-A5");
    const bridge = await connect(broker.url, as(bridgeCredential));
    const got: string[] = [];
    bridge.on("message", (topic) => got.push(topic));
    await bridge.subscribeAsync(`${root}/+/smart-meter/+/+`, { qos: 1 });
    const device = await connect(broker.url, { ...as(a), will: { topic: readingTopic(root, "SM-B5", "export"), payload: Buffer.from("{}"), qos: 1, retain: false } });
    const gone = new Promise<void>((r) => device.once("close", () => r()));
    device.stream.destroy();
    await gone;
    const own = await connect(broker.url, as(creds.issue("SM-C5")));
    await own.publishAsync(readingTopic(root, "SM-C5", "export"), "{}", { qos: 1 });
    while (got.length < 1) await new Promise((r) => bridge.once("message", r));
    expect(got).to.deep.equal([readingTopic(root, "SM-C5", "export")]);
    expect(refusals.at(-1)).to.include({ action: "publish", username: "SM-A5", topic: readingTopic(root, "SM-B5", "export") });
  });

  it("disconnects every session of a revoked credential, which then cannot log in again", async () => {
    const a = creds.issue("SM-A6");
    const first = await connect(broker.url, as(a));
    const other = await connect(broker.url, as(creds.issue("SM-B6")));
    const gone = closed(first);
    creds.revoke("SM-A6");
    expect(broker.disconnect("SM-A6")).to.equal(1);
    await gone;
    expect(first.connected).to.equal(false);
    expect(other.connected).to.equal(true);
    expect(await refusal(broker.url, as(a))).to.equal(4);
  });
});

describe("the review's accomplice attack, against a running bridge on the embedded broker", function () {
  this.timeout(120_000);
  const settings = testSettings();
  const creds = memoryCredentials();
  const bridgeCredential: BrokerCredential = { username: "bridge", password: randomBytes(24).toString("base64url") };
  let chain: TestChain;
  let broker: EmbeddedBroker;
  let database: Awaited<ReturnType<ReturnType<typeof databaseTargets>[number]["open"]>>;
  let bridge: Bridge | undefined;

  before(async () => {
    // One after the other: deploying on a busy machine while PGlite compiles can exceed the RPC timeout.
    chain = await startTestChain();
    broker = await startEmbeddedBroker({ port: 0, access: { topicRoot: settings.topicRoot, check: withBridgeCredential(bridgeCredential, creds.check) } });
    database = await databaseTargets()[0]!.open();
  });
  after(async () => {
    await bridge?.close();
    await Promise.all([...clients].map((c) => c.endAsync(true).catch(() => {})));
    await Promise.all([chain?.close(), broker?.close(), database?.close()]);
  });

  it("an accomplice's export for the seller's meter never reaches ingest; its 0 Wh first does not block the seller's real reading", async () => {
    const suffix = settings.topicRoot.slice(-4);
    const [seller, accomplice] = await Promise.all([addProsumer(chain, `SELL-${suffix}`, { buyer: false }), addProsumer(chain, `ACC-${suffix}`, { buyer: false })]);
    // The seller's meter signs its readings with the key the registry holds for it.
    const sellerKey = createMeterKeyPair();
    const hash = await chain.admin.writeContract({
      address: chain.registry, abi: prosumerRegistryAbi, functionName: "setMeterSigner", args: [seller.address, sellerKey.signer as Hex],
    } as never);
    await chain.client.waitForTransactionReceipt({ hash });
    const w = pastWindow(2);
    const nowMs = w.endMs + 1_000;
    bridge = await startTestBridge({ chain, mqttUrl: mqttUrlWithCredential(broker.url, bridgeCredential), db: database.db, settings, clock: () => nowMs });

    // The accomplice logs in with its own meter's credential: a legitimate device.
    const accompliceCredential = creds.issue(accomplice.meterId);
    const sellerTopic = readingTopic(settings.topicRoot, seller.meterId, "export");
    for (const forgedWh of [0, 1_000]) {
      const device = await connect(broker.url, as(accompliceCredential));
      const gone = closed(device);
      void device.publishAsync(sellerTopic, JSON.stringify(counterReading(w.endMs, forgedWh)), { qos: 1 }).catch(() => {});
      await gone;
    }

    // The seller's meter sends its real, signed register at the same instant.
    const meter = await connect(broker.url, as(creds.issue(seller.meterId)));
    const real = signReading({ meterId: seller.meterId, metric: "export", payload: counterReading(w.endMs, 400), privateKey: sellerKey.privateKey });
    await meter.publishAsync(sellerTopic, JSON.stringify(real), { qos: 1 });
    const m = await waitForMetrics(bridge, (x) => x.accepted === 1, "the seller's reading stored");
    // Only the real reading ever reached the bridge: nothing forged, nothing dead-lettered.
    expect(m.messagesIn).to.equal(1);
    expect(m.deadLettered).to.deep.equal({});
    const rows = await database.db.selectFrom("bridge_readings").selectAll().where("meter_id", "=", seller.meterId).execute();
    expect(rows.map((r) => ({ value: r.value, evidence: r.evidence, source: r.source }))).to.deep.equal([{ value: 400n, evidence: true, source: "mqtt" }]);
    expect(await database.db.selectFrom("bridge_dead_letters").selectAll().execute()).to.deep.equal([]);
  });
});
