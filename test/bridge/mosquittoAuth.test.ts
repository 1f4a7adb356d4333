// A real Mosquitto run on the configuration `npm run mqtt:mosquitto-config` generates from the
// node's device credentials (the command itself, reading a PGlite folder as a stopped node
// leaves it): anonymous and wrong passwords refused, the bridge's own client (connectMqtt, its
// login taken from the URL) receives a device's own reading and never one it published for
// another meter, a device never receives another's commands, and a credential revoked, with
// the files generated again and SIGHUP, can no longer log in.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { mqttUrlWithCredential, type BrokerCredential } from "../../bridge/brokerAccess.js";
import { connectMqtt, type MqttLink } from "../../bridge/connectMqtt.js";
import { readingSubscription, statusSubscription } from "../../bridge/topics.js";
import { openDatabase } from "../../lib/database.js";
import { createDeviceCredentials, type DeviceCredentials } from "../../server/devices/deviceCredentials.js";
import { migrateDeviceStore, type DevicesDatabase } from "../../server/devices/deviceStore.js";
import { freePort, mosquittoAvailable } from "./faultInjection.js";
import { quietLogger } from "./harness.js";

const root = `ec-mosq-${randomBytes(3).toString("hex")}`;

/** Runs the command as an operator would, with the node's settings in the environment. */
async function generate(env: Record<string, string>, args: string[]): Promise<string> {
  const child = spawn("sh", ["scripts/with-node.sh", "tsx", "scripts/mosquittoConfig.ts", ...args], {
    cwd: process.cwd(), env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "DATABASE_URL")), ...env }, stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  if (code !== 0) throw new Error(`mqtt:mosquitto-config exited ${code}: ${out}`);
  return out;
}

/** Device credentials in the PGlite folder of a (stopped) node, changed and then closed again. */
async function withDevices<T>(dataDir: string, fn: (devices: DeviceCredentials) => Promise<T>): Promise<T> {
  await mkdir(path.join(dataDir, "pglite"), { recursive: true });
  const database = await openDatabase<DevicesDatabase>({ dataDir: path.join(dataDir, "pglite") });
  try {
    await migrateDeviceStore(database.db);
    return await fn(createDeviceCredentials({ db: database.db, clock: Date.now, reservedUsernames: ["bridge"] }));
  } finally {
    await database.close();
  }
}

describe("Mosquitto with the generated password and ACL files", function () {
  this.timeout(120_000);
  let dir: string;
  let port: number;
  let mosquitto: ChildProcess | undefined;
  let configPath: string;
  const bridgeCredential: BrokerCredential = { username: "bridge", password: randomBytes(24).toString("base64url") };
  const issued: Record<string, BrokerCredential> = {};
  const clients = new Set<MqttClient>();
  let bridge: MqttLink | undefined;
  let env: Record<string, string>;

  const connect = async (options: IClientOptions): Promise<MqttClient> => {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 5_000, ...options });
    c.on("error", () => {});
    clients.add(c);
    return c;
  };
  const refusal = async (options: IClientOptions) => connect(options).then(() => undefined, (err: { code?: number }) => err.code);
  const as = (c: BrokerCredential): IClientOptions => ({ username: c.username, password: c.password });

  before(async function () {
    if (!mosquittoAvailable()) this.skip();
    dir = await mkdtemp(path.join(tmpdir(), "mosquitto-auth-"));
    port = await freePort();
    const dataDir = path.join(dir, "node");
    await withDevices(dataDir, async (devices) => {
      for (const [id, type] of [["SM-A", "smart-meter"], ["SM-B", "smart-meter"], ["BAT-A", "battery"], ["BAT-B", "battery"], ["ops", "monitor"]] as const) {
        const c = await devices.issue({ deviceId: id, deviceType: type, issuedBy: "test" });
        issued[id] = { username: c.username, password: c.password };
      }
    });
    env = { DATA_DIR: dataDir, MQTT_URL: mqttUrlWithCredential(`mqtt://127.0.0.1:${port}`, bridgeCredential), BRIDGE_TOPIC_ROOT: root };
    const out = await generate(env, ["--out", path.join(dir, "mosquitto"), "--listen", `127.0.0.1:${port}`, ...(process.getuid?.() === 0 ? ["--run-as", "root"] : [])]);
    expect(out).to.include("6 credentials, the bridge's included");
    configPath = path.join(dir, "mosquitto", "mosquitto.conf");
    mosquitto = spawn("mosquitto", ["-c", configPath], { stdio: ["ignore", "pipe", "pipe"] });
    await new Promise<void>((resolve, reject) => {
      let log = "";
      const on = (d: Buffer) => {
        log += d.toString();
        if (/mosquitto version [\d.]+ running/.test(log)) resolve();
      };
      mosquitto!.stdout!.on("data", on);
      mosquitto!.stderr!.on("data", on);
      mosquitto!.once("exit", (code) => reject(new Error(`mosquitto exited (${code}): ${log}`)));
    });
  });

  after(async () => {
    await bridge?.close();
    await Promise.all([...clients].map((c) => c.endAsync(true).catch(() => {})));
    if (mosquitto && mosquitto.exitCode === null) {
      const exited = new Promise<void>((r) => mosquitto!.once("exit", () => r()));
      mosquitto.kill("SIGTERM");
      await exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("writes per-credential ACL blocks, the stored hashes and a conf with anonymous access off", async () => {
    const acl = await readFile(path.join(dir, "mosquitto", "acl"), "utf8");
    expect(acl).to.include(`user SM-A\ntopic write ${root}/+/smart-meter/SM-A/export\n`);
    expect(acl).to.include(`topic read ${root}/+/smart-meter/SM-A/command\n`);
    expect(acl).to.include(`user bridge\ntopic write ${root}/+/+/+/command\ntopic write ${root}/dead-letter/#\ntopic write ${root}/bridge/+/metrics\ntopic read ${root}/+/smart-meter/+/+\ntopic read ${root}/+/+/+/status\n`);
    expect(acl).to.include(`user ops\ntopic read ${root}/dead-letter/#\ntopic read ${root}/bridge/+/metrics\n`);
    const passwd = await readFile(path.join(dir, "mosquitto", "passwd"), "utf8");
    expect(passwd.trim().split("\n").map((l) => l.split(":")[0])).to.deep.equal(["BAT-A", "BAT-B", "SM-A", "SM-B", "bridge", "ops"]);
    expect(passwd).to.match(/^SM-A:\$7\$101\$[^$]+\$[^$]+$/m);
    const conf = await readFile(configPath, "utf8");
    expect(conf).to.match(new RegExp(`^listener ${port} 127\\.0\\.0\\.1$`, "m"));
    expect(conf).to.match(/^allow_anonymous false$/m);
    expect(conf).to.match(/^use_username_as_clientid true$/m);
  });

  it("refuses anonymous clients and wrong passwords", async () => {
    expect(await refusal({})).to.be.oneOf([4, 5]);
    expect(await refusal({ username: "SM-A", password: `${issued["SM-A"]!.password}x` })).to.be.oneOf([4, 5]);
    expect(await refusal({ username: "bridge", password: issued["SM-A"]!.password })).to.be.oneOf([4, 5]);
  });

  it("the bridge's client gets a device's own reading, never one it published under another meter's topic", async () => {
    const got: string[] = [];
    bridge = connectMqtt({
      url: mqttUrlWithCredential(`mqtt://127.0.0.1:${port}`, bridgeCredential), clientId: `bridge-${randomBytes(3).toString("hex")}`,
      subscriptions: [readingSubscription(root), statusSubscription(root)], reconnectMinMs: 50, reconnectMaxMs: 200, logger: quietLogger,
      onMessage: (topic) => {
        got.push(topic);
        return { ackAfter: Promise.resolve() };
      },
    });
    await bridge.ready;
    const meterA = await connect(as(issued["SM-A"]!));
    // Mosquitto acknowledges and drops what the ACL denies (MQTT 3.1.1 has no refusal to send).
    await meterA.publishAsync(`${root}/wbg/smart-meter/SM-B/export`, JSON.stringify({ timestamp: new Date().toISOString(), value: 1000, unit: "Wh" }), { qos: 1 });
    await meterA.publishAsync(`${root}/wbg/smart-meter/SM-A/command`, "{}", { qos: 1 });
    await meterA.publishAsync(`${root}/wbg/smart-meter/SM-A/export`, JSON.stringify({ timestamp: new Date().toISOString(), value: 5, unit: "Wh" }), { qos: 1 });
    await meterA.publishAsync(`${root}/wbg/smart-meter/SM-A/status`, "{}", { qos: 1 });
    // Messages of one connection arrive in order: anything forged would have come first.
    const deadline = Date.now() + 10_000;
    while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(got).to.deep.equal([`${root}/wbg/smart-meter/SM-A/export`, `${root}/wbg/smart-meter/SM-A/status`]);
  });

  it("a device receives its own commands, never another's, whatever it subscribes to", async () => {
    const batteryA = await connect(as(issued["BAT-A"]!));
    const got: string[] = [];
    batteryA.on("message", (topic) => got.push(topic));
    // Mosquitto 2.0 may grant a wide filter; what it delivers is still held to the ACL.
    await batteryA.subscribeAsync([`${root}/+/battery/BAT-A/command`], { qos: 1 });
    await batteryA.subscribeAsync([`${root}/+/battery/BAT-B/command`, `${root}/#`], { qos: 1 }).catch(() => {});
    const link = bridge!;
    await link.publish(`${root}/wbg/battery/BAT-B/command`, "{}");
    await link.publish(`${root}/wbg/battery/BAT-A/command`, "{}");
    const deadline = Date.now() + 10_000;
    while (got.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    expect(got).to.deep.equal([`${root}/wbg/battery/BAT-A/command`]);
  });

  it("a revoked credential is disconnected and cannot log in once the files are generated again and Mosquitto has SIGHUP", async () => {
    const session = await connect(as(issued["SM-B"]!));
    const gone = new Promise<void>((r) => session.once("close", () => r()));
    await withDevices(env.DATA_DIR!, (devices) => devices.revoke("SM-B", "test"));
    await generate(env, ["--out", path.join(dir, "mosquitto"), "--listen", `127.0.0.1:${port}`, ...(process.getuid?.() === 0 ? ["--run-as", "root"] : [])]);
    expect(session.connected).to.equal(true);
    mosquitto!.kill("SIGHUP");
    // Mosquitto 2.0 re-checks connected clients on reload and drops those no longer allowed.
    await gone;
    const deadline = Date.now() + 10_000;
    let code: number | undefined;
    while (Date.now() < deadline) {
      code = await refusal(as(issued["SM-B"]!));
      if (code !== undefined) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(code).to.be.oneOf([4, 5]);
    // Everyone else is unaffected.
    expect(await refusal(as(issued["SM-A"]!))).to.equal(undefined);
  });
});
