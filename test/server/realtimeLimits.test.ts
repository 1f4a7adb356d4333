// Per-socket limits of the WebSocket at /v1/energy/real-time (the hub's defaults: 100 channels,
// 16 KiB a message, 50 messages a second), over a real socket: each answered with an `error`
// frame naming the limit and the socket kept open; a frame past the server's maxPayload closes
// it with 1009; a closed socket's subscriptions are freed; a client's violation is a warning
// without a stack.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { expect } from "chai";
import { pino } from "pino";
import WebSocket from "ws";
import { readNodeConfig } from "../../server/config.js";
import { nodePlugins } from "../../server/plugins.js";
import { defaultHubLimits } from "../../server/realtime/hub.js";
import { startNode, type RunningNode } from "../../server/startNode.js";
import { waitFor } from "./helpers.js";

/** A socket that keeps every message; take(n) hands out the next n, in order. */
class Client {
  readonly messages: any[] = [];
  private taken = 0;
  closeCode: number | undefined;
  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => this.messages.push(JSON.parse(String(data))));
    ws.on("close", (code) => (this.closeCode = code));
    ws.on("error", () => {});
  }
  static async open(url: string): Promise<Client> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return new Client(ws);
  }
  send(message: unknown): void {
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }
  /** Waits for the `n`th message from now on and returns the ones that came. */
  async take(n: number): Promise<any[]> {
    await waitFor(`${n} WebSocket messages`, async () => (this.messages.length - this.taken >= n ? true : undefined), 10_000, 5);
    const out = this.messages.slice(this.taken, this.taken + n);
    this.taken += n;
    return out;
  }
  async request(message: unknown): Promise<any> {
    this.send(message);
    return (await this.take(1))[0];
  }
}

const markets = (from: number, n: number) => Array.from({ length: n }, (_, i) => `trading.market.LIM-${from + i}`);

describe("WebSocket limits per socket", function () {
  this.timeout(120_000);
  let node: RunningNode;
  let dir: string;
  let wsUrl: string;
  const logs: any[] = [];
  const clients: Client[] = [];
  const open = async () => {
    const c = await Client.open(wsUrl);
    clients.push(c);
    return c;
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "node-test-"));
    const config = readNodeConfig({ PORT: "0", CHAIN_PORT: "0", MQTT_PORT: "0", DATA_DIR: path.join(dir, "data"), DEPLOYMENTS_DIR: path.join(dir, "deployments"), TEST_ACCOUNTS: "1" }, {});
    const sink = new Writable({ write(chunk, _enc, done) { logs.push(JSON.parse(String(chunk))); done(); } });
    node = await startNode({ config, plugins: nodePlugins, logger: pino({ name: "limits-test", level: "info" }, sink) });
    wsUrl = `${node.url.replace(/^http/, "ws")}/v1/energy/real-time`;
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await node?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("has the documented defaults", () => {
    expect(defaultHubLimits).to.deep.equal({ maxChannelsPerSocket: 100, maxMessageBytes: 16_384, maxMessagesPerSecond: 50 });
    expect(node.hub.limits).to.deep.equal(defaultHubLimits);
  });

  it("refuses a subscribe that would pass 100 channels, whole, and keeps the socket open", async () => {
    const c = await open();
    const before = node.hub.stats().subscriptions;
    expect(await c.request({ action: "subscribe", channels: markets(0, 64) })).to.include({ type: "subscribed" });
    const refused = await c.request({ action: "subscribe", channels: markets(64, 40) });
    expect(refused).to.include({ type: "error", code: "too_many_channels", field: "channels", limit: 100 });
    expect(refused.detail).to.match(/104 .* at most 100/);
    expect(node.hub.stats().subscriptions).to.equal(before + 64);
    // Channels already held do not count again; up to the limit is fine.
    expect((await c.request({ action: "subscribe", channels: [...markets(0, 10), ...markets(64, 36)] })).channels).to.have.length(46);
    expect(node.hub.stats().subscriptions).to.equal(before + 100);
    expect(await c.request({ action: "subscribe", channels: markets(100, 1) })).to.include({ code: "too_many_channels" });
    // Room again after an unsubscribe.
    expect(await c.request({ action: "unsubscribe", channels: markets(0, 1) })).to.include({ type: "unsubscribed" });
    expect(await c.request({ action: "subscribe", channels: markets(100, 1) })).to.deep.equal({ type: "subscribed", channels: markets(100, 1) });
    expect(c.closeCode).to.equal(undefined);
  });

  it("answers a message over 16 KiB with message_too_large and keeps the socket; one past 64 KiB (unreadable) closes it with 1009", async () => {
    const c = await open();
    const big = JSON.stringify({ action: "subscribe", channels: ["orchestrator.actions"], pad: "x".repeat(20_000) });
    const answer = await c.request(big);
    expect(answer).to.include({ type: "error", code: "message_too_large", field: "message", limit: 16_384 });
    expect(await c.request({ action: "subscribe", channels: ["orchestrator.actions"] })).to.deep.equal({ type: "subscribed", channels: ["orchestrator.actions"] });
    expect(c.closeCode).to.equal(undefined);

    const before = node.hub.stats();
    c.send("x".repeat(70_000));
    await waitFor("the close", async () => c.closeCode, 10_000, 10);
    expect(c.closeCode).to.equal(1009);
    await waitFor("the hub to forget the socket", async () => (node.hub.stats().sockets === before.sockets - 1 ? true : undefined), 10_000, 10);
    // A warning without a stack, not an error.
    const line = await waitFor("the warning", async () => logs.find((l) => l.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH"), 5_000, 10);
    expect(line.level).to.equal(40);
    expect(JSON.stringify(line)).to.not.match(/\bat .*\.(js|ts):\d+/);
    expect(logs.filter((l) => l.level >= 50 && /websocket|Max payload/i.test(JSON.stringify(l)))).to.deep.equal([]);
  });

  it("answers messages past 50 a second with rate_limited, in order, keeps the socket, and takes messages again after a pause", async () => {
    const c = await open();
    const n = 150;
    for (let i = 0; i < n; i++) c.send({ action: "unsubscribe", channels: ["orchestrator.actions"] });
    const answers = await c.take(n);
    // The first 50 (a full bucket) are always handled; the rest come faster than it refills.
    expect(answers.slice(0, 50).every((a) => a.type === "unsubscribed")).to.equal(true);
    const limited = answers.filter((a) => a.code === "rate_limited");
    expect(limited.length).to.be.greaterThan(0);
    expect(limited[0]).to.include({ type: "error", code: "rate_limited", limit: 50 });
    expect(limited[0].retryAfterMs).to.be.a("number");
    expect(answers.every((a) => a.type === "unsubscribed" || a.code === "rate_limited")).to.equal(true);
    expect(c.closeCode).to.equal(undefined);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await c.request({ action: "subscribe", channels: ["orchestrator.actions"] })).to.deep.equal({ type: "subscribed", channels: ["orchestrator.actions"] });
    // Logged once for the socket, at warn.
    const lines = logs.filter((l) => l.code === "rate_limited");
    expect(lines).to.have.length(1);
    expect(lines[0].level).to.equal(40);
  });

  it("frees a closed socket's subscriptions: 5 sockets at the limit, then closed, leave the hub as it was", async () => {
    const before = node.hub.stats();
    const sockets = await Promise.all(Array.from({ length: 5 }, () => Client.open(wsUrl)));
    for (const [k, c] of sockets.entries()) {
      expect(await c.request({ action: "subscribe", channels: markets(1000 * (k + 1), 64) })).to.include({ type: "subscribed" });
      expect(await c.request({ action: "subscribe", channels: markets(1000 * (k + 1) + 64, 36) })).to.include({ type: "subscribed" });
      // Past the cap: refused, so 100 is all a socket ever holds.
      expect(await c.request({ action: "subscribe", channels: markets(1000 * (k + 1) + 100, 64) })).to.include({ code: "too_many_channels" });
    }
    expect(node.hub.stats().subscriptions).to.equal(before.subscriptions + 500);
    expect(node.hub.stats().channels).to.equal(before.channels + 500);
    // Some close cleanly, some drop the connection.
    for (const [k, c] of sockets.entries()) (k % 2 === 0 ? c.ws.close() : c.ws.terminate());
    await waitFor("the hub to free the closed sockets", async () => (node.hub.stats().sockets === before.sockets ? true : undefined), 10_000, 10);
    expect(node.hub.stats()).to.include({ sockets: before.sockets, channels: before.channels, subscriptions: before.subscriptions });
  });
});

describe("WebSocket limits: settings", () => {
  it("reads REALTIME_* into the hub's limits, defaults otherwise, and names a bad value", () => {
    expect(readNodeConfig({}, {}).realtime).to.deep.equal(defaultHubLimits);
    expect(readNodeConfig({ REALTIME_MAX_CHANNELS_PER_SOCKET: "7", REALTIME_MAX_MESSAGE_BYTES: "1024", REALTIME_MAX_MESSAGES_PER_SECOND: "3" }, {}).realtime)
      .to.deep.equal({ maxChannelsPerSocket: 7, maxMessageBytes: 1024, maxMessagesPerSecond: 3 });
    expect(() => readNodeConfig({ REALTIME_MAX_MESSAGE_BYTES: "100000" }, {})).to.throw(/^REALTIME_MAX_MESSAGE_BYTES="100000": must be a whole number from 256 to 65536/);
    expect(() => readNodeConfig({ REALTIME_MAX_CHANNELS_PER_SOCKET: "0" }, {})).to.throw(/REALTIME_MAX_CHANNELS_PER_SOCKET/);
  });
});
