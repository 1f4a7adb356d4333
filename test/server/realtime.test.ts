// The WebSocket at /v1/energy/real-time: every message is answered (subscribed, unsubscribed,
// or an error naming the field) and a bad one never closes the socket; a crossing order pushes
// "book" and "trade" messages on trading.market.ZONE-A to its subscribers and to no one else;
// channels with a person's data need a token and follow the REST routes' owner rules (readings
// of one's own meter, one's own resources' events, VPP status for the signed-in).
import { expect } from "chai";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import WebSocket from "ws";
import { approveMarket, fetchClient, intervalAhead, signedOrder, signIn, startTestNode, type ChainDescription, type Http, type TestNode } from "./helpers.js";

/** A socket whose messages queue up until a test takes them, in order. */
class Client {
  private readonly queue: any[] = [];
  private readonly waiting: ((m: any) => void)[] = [];
  closed = false;
  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const msg = JSON.parse(String(data));
      const waiter = this.waiting.shift();
      if (waiter) waiter(msg);
      else this.queue.push(msg);
    });
    ws.on("close", () => (this.closed = true));
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

  next(timeoutMs = 10_000): Promise<any> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no WebSocket message within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  }

  /** Sends a request and collects every message up to its answer (messages on one socket keep their order). */
  async until(request: unknown, isAnswer: (m: any) => boolean): Promise<{ before: any[]; answer: any }> {
    this.send(request);
    const before: any[] = [];
    for (;;) {
      const m = await this.next();
      if (isAnswer(m)) return { before, answer: m };
      before.push(m);
    }
  }

  close(): void {
    this.ws.close();
  }
}

describe("WebSocket /v1/energy/real-time", function () {
  this.timeout(120_000);
  let t: TestNode;
  let http: Http;
  let wsUrl: string;
  let chain: ChainDescription;
  let keys: { seller: Hex; buyer: Hex };
  let tokens: { seller: string; buyer: string };
  const clients: Client[] = [];
  const open = async () => {
    const c = await Client.open(wsUrl);
    clients.push(c);
    return c;
  };

  before(async () => {
    t = await startTestNode({ SETTLEMENT_MAX_LATENCY_MS: "50" });
    http = fetchClient(t.node.url);
    wsUrl = `${t.node.url.replace(/^http/, "ws")}/v1/energy/real-time`;
    chain = (await http({ url: "/v1/chain" })).json as ChainDescription;
    keys = { seller: t.node.testAccounts[0]!.privateKey, buyer: t.node.testAccounts[2]!.privateKey };
    tokens = { seller: await signIn(http, t.node, keys.seller), buyer: await signIn(http, t.node, keys.buyer) };
    await approveMarket(t.node.rpcUrl, chain, keys.buyer);
  });

  after(async () => {
    for (const c of clients) c.close();
    await t?.close();
  });

  it("answers subscribe with the channels; a bad message gets an error naming the field and the socket stays open", async () => {
    const c = await open();
    c.send({ action: "subscribe", channels: ["trading.market.ZONE-A", "orchestrator.actions"] });
    expect(await c.next()).to.deep.equal({ type: "subscribed", channels: ["trading.market.ZONE-A", "orchestrator.actions"] });

    const bad: [unknown, string][] = [
      ["{not json", "message"],
      [[1, 2], "action"],
      [{ action: "dance", channels: ["generation.solar"] }, "action"],
      [{ action: "subscribe" }, "channels"],
      [{ action: "subscribe", channels: [] }, "channels"],
      [{ action: "subscribe", channels: ["generation.solar", "trading.market.ZONE A"] }, "channels[1]"],
      [{ action: "subscribe", channels: [42] }, "channels[0]"],
      [{ action: "subscribe", channels: ["generation.solar"], token: 42 }, "token"],
    ];
    for (const [message, field] of bad) {
      c.send(message);
      const answer = await c.next();
      expect(answer, JSON.stringify(message)).to.include({ type: "error", code: "invalid_message", field });
      expect(answer.detail).to.match(new RegExp(`^${field.replace(/[[\]]/g, "\\$&")} `));
    }
    expect(c.closed).to.equal(false);
    c.send({ action: "unsubscribe", channels: ["orchestrator.actions"] });
    expect(await c.next()).to.deep.equal({ type: "unsubscribed", channels: ["orchestrator.actions"] });
    // A token is ignored on public channels, even a dead one: the market view never breaks.
    c.send({ action: "subscribe", channels: ["trading.market.ZONE-B"], token: "A".repeat(43) });
    expect(await c.next()).to.deep.equal({ type: "subscribed", channels: ["trading.market.ZONE-B"] });
  });

  it("a crossing order pushes book and trade messages on trading.market.ZONE-A, to its subscribers only", async () => {
    const a = await open();
    const b = await open();
    const quiet = await open();
    a.send({ action: "subscribe", channels: ["trading.market.ZONE-A"] });
    b.send({ action: "subscribe", channels: ["trading.market.ZONE-A"] });
    quiet.send({ action: "subscribe", channels: ["trading.market.ZONE-B"] });
    for (const c of [a, b, quiet]) expect((await c.next()).type).to.equal("subscribed");

    const now = (await http({ url: "/v1/trading/markets" })).json.now as number;
    const interval = intervalAhead(now);
    const sell = await http({ method: "POST", url: "/v1/trading/orders", token: tokens.seller, body: await signedOrder(chain, keys.seller, { side: 1, intervalStart: interval, energyWh: 800, price: 220_000 }) });
    expect(sell.status, sell.text).to.equal(201);
    const buy = await http({ method: "POST", url: "/v1/trading/orders", token: tokens.buyer, body: await signedOrder(chain, keys.buyer, { side: 0, intervalStart: interval, energyWh: 500, price: 240_000 }) });
    expect(buy.status, buy.text).to.equal(201);
    expect(buy.json.status).to.equal("filled");

    // Events go out before the order is acknowledged, so everything they caused arrives before
    // the answer to a request sent now.
    for (const c of [a, b]) {
      const { before } = await c.until({ action: "subscribe", channels: ["orchestrator.actions"] }, (m) => m.type === "subscribed");
      expect(before.every((m) => m.channel === "trading.market.ZONE-A")).to.equal(true);
      const books = before.filter((m) => m.type === "book").map((m) => m.data);
      expect(books.length).to.be.at.least(2);
      expect(books[0]).to.deep.include({ zone: "ZONE-A", intervalStart: interval, status: "open", bestAsk: 220_000, bestBid: null });
      expect(books.at(-1)).to.deep.include({ zone: "ZONE-A", intervalStart: interval, bestAsk: 220_000, lastPrice: 220_000 });
      const trades = before.filter((m) => m.type === "trade").map((m) => m.data);
      expect(trades).to.have.length(1);
      expect(trades[0]).to.deep.include({ intervalStart: interval, energyWh: 500, pricePerKWh: 220_000, amount: "110000", status: "pending" });
      expect(trades[0].buyer.toLowerCase()).to.equal(privateKeyToAccount(keys.buyer).address.toLowerCase());
      expect(trades[0].seller.toLowerCase()).to.equal(privateKeyToAccount(keys.seller).address.toLowerCase());
      // The trade came after the book that showed the ask it took.
      expect(before.findIndex((m) => m.type === "trade")).to.be.greaterThan(before.findIndex((m) => m.type === "book"));
    }
    const { before: heard } = await quiet.until({ action: "subscribe", channels: ["orchestrator.actions"] }, (m) => m.type === "subscribed");
    expect(heard).to.deep.equal([]);

    // Settlement follows on the same channel as a tradeUpdate with the trade id.
    const update = await waitForMessage(a, (m) => m.type === "tradeUpdate" && m.data.status === "executed");
    expect(update.data.tradeId).to.match(/^[0-9]+$/);
    expect(update.data.txHash).to.match(/^0x[0-9a-f]{64}$/);
  });

  it("stops sending a channel after unsubscribe; closing a socket forgets it", async () => {
    const c = await open();
    c.send({ action: "subscribe", channels: ["trading.market.ZONE-A"] });
    expect((await c.next()).type).to.equal("subscribed");
    c.send({ action: "unsubscribe", channels: ["trading.market.ZONE-A"] });
    expect((await c.next()).type).to.equal("unsubscribed");
    const now = (await http({ url: "/v1/trading/markets" })).json.now as number;
    const placed = await http({ method: "POST", url: "/v1/trading/orders", token: tokens.seller, body: await signedOrder(chain, keys.seller, { side: 1, intervalStart: intervalAhead(now) + 900, energyWh: 100, price: 330_000 }) });
    expect(placed.status).to.equal(201);
    const { before } = await c.until({ action: "subscribe", channels: ["orchestrator.actions"] }, (m) => m.type === "subscribed");
    expect(before).to.deep.equal([]);

    // A channel nobody listens to any more is forgotten.
    const channelsBefore = t.node.hub.stats().channels;
    c.send({ action: "subscribe", channels: ["trading.market.ONLY-THIS-TEST"] });
    expect((await c.next()).type).to.equal("subscribed");
    expect(t.node.hub.stats().channels).to.equal(channelsBefore + 1);
    c.send({ action: "unsubscribe", channels: ["trading.market.ONLY-THIS-TEST"] });
    expect((await c.next()).type).to.equal("unsubscribed");
    expect(t.node.hub.stats().channels).to.equal(channelsBefore);

    const socketsBefore = t.node.hub.stats().sockets;
    c.close();
    await waitUntil(() => t.node.hub.stats().sockets === socketsBefore - 1);
  });

  describe("channels with a person's data: a token and the REST routes' owner rules", () => {
    // testAccounts[0] owns meter-4 (ZONE-A), testAccounts[1] meter-5 (ZONE-B).
    let owner: { a: string; b: string; operator: string };
    let last = 0;
    /** A distinct interval reading of `meter` (one of the last few hours' intervals), as the meter's MQTT would carry it. */
    const reading = async (meter: "meter-4" | "meter-5") => {
      last++;
      const start = (Math.floor(Date.now() / 900_000) - last) * 900_000;
      const verdict = await t.node.bridge.submitReading(`${t.node.bridge.topicRoot}/${meter === "meter-4" ? "ZONE-A" : "ZONE-B"}/smart-meter/${meter}/interval`,
        Buffer.from(JSON.stringify({ interval_start: new Date(start).toISOString(), interval_minutes: 15, import_kwh: 0.4, export_kwh: 0.1 })));
      expect(verdict, JSON.stringify(verdict)).to.deep.include({ accepted: true });
      return new Date(start).toISOString();
    };
    /** Everything a client got up to now (a public subscribe's answer marks the point). */
    const drain = async (c: Client) => (await c.until({ action: "subscribe", channels: ["orchestrator.actions"] }, (m) => m.type === "subscribed")).before;

    before(async () => {
      owner = {
        a: await signIn(http, t.node, t.node.testAccounts[0]!.privateKey),
        b: await signIn(http, t.node, t.node.testAccounts[1]!.privateKey),
        operator: await signIn(http, t.node, t.node.operatorKey!),
      };
      for (const [token, resourceId] of [[owner.a, "ws-ev-a"], [owner.b, "ws-ev-b"]] as const) {
        const res = await http({ method: "POST", url: "/v1/resources", token, body: { resourceId, type: "ev", capabilities: { capacityKwh: 60 } } });
        expect(res.status, res.text).to.equal(201);
      }
    });

    it("without a token: readings, events and VPP status are refused, each with an error frame naming the channel and the rule; public channels still work", async () => {
      const anonymous = await open();
      const channels = ["consumption.real-time", "generation.solar", "events.ws-ev-a", "vpp.vpp-1.status", "trading.market.ZONE-A"];
      anonymous.send({ action: "subscribe", channels });
      for (let i = 0; i < 4; i++) {
        const refusal = await anonymous.next();
        expect(refusal).to.include({ type: "error", code: "unauthorized", field: `channels[${i}]`, channel: channels[i] });
        expect(refusal.detail).to.match(new RegExp(`^${channels[i]!.replace(/\./g, "\\.")} .*needs a token`));
      }
      expect(await anonymous.next()).to.deep.equal({ type: "subscribed", channels: ["trading.market.ZONE-A"] });
      // A reading now reaches nobody on this socket.
      await reading("meter-4");
      expect((await drain(anonymous)).filter((m) => m.channel !== "trading.market.ZONE-A")).to.deep.equal([]);
    });

    it("readings: an owner gets only its own meter's, an operator every meter's; a token that is logged out ends the subscription", async () => {
      const [a, b, operator] = [await open(), await open(), await open()];
      for (const [c, token] of [[a, owner.a], [b, owner.b], [operator, owner.operator]] as const) {
        c.send({ action: "subscribe", channels: ["consumption.real-time", "generation.solar"], token });
        expect(await c.next()).to.deep.equal({ type: "subscribed", channels: ["consumption.real-time", "generation.solar"] });
      }
      const at4 = await reading("meter-4");
      const at5 = await reading("meter-5");
      const seen = async (c: Client) => (await drain(c)).filter((m) => m.type === "reading").map((m) => [m.channel, m.data.meterId, m.data.timestamp]);
      // Published after the bridge's commit: wait until the operator, who hears everything, has both.
      const heard: any[] = [];
      for (const deadline = Date.now() + 10_000; heard.length < 4 && Date.now() < deadline;) {
        heard.push(...(await seen(operator)));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(heard).to.have.deep.members([
        ["consumption.real-time", "meter-4", at4], ["generation.solar", "meter-4", at4], ["consumption.real-time", "meter-5", at5], ["generation.solar", "meter-5", at5],
      ]);
      expect(await seen(a)).to.deep.equal([["consumption.real-time", "meter-4", at4], ["generation.solar", "meter-4", at4]]);
      expect(await seen(b)).to.deep.equal([["consumption.real-time", "meter-5", at5], ["generation.solar", "meter-5", at5]]);

      // Logged out: the next reading ends A's subscriptions, each with one error frame, and sends nothing.
      const logout = await http({ method: "POST", url: "/v1/auth/logout", token: owner.a });
      expect(logout.status).to.equal(204);
      await reading("meter-4");
      await waitForMessage(operator, (m) => m.type === "reading" && m.channel === "generation.solar");
      const after = await drain(a);
      expect(after.map((m) => [m.type, m.code, m.field, m.channel])).to.deep.equal([["error", "unauthorized", "token", "consumption.real-time"], ["error", "unauthorized", "token", "generation.solar"]]);
      expect(after[0].detail).to.match(/^subscription ended: .*subscribe with a live one/);
      owner.a = await signIn(http, t.node, t.node.testAccounts[0]!.privateKey);
      // A wallet with no registered meter is told so (REST: 403 not_meter_owner).
      const stranger = await open();
      const strangerToken = await signIn(http, t.node, `0x${"7".repeat(64)}`);
      stranger.send({ action: "subscribe", channels: ["consumption.real-time"], token: strangerToken });
      expect(await stranger.next()).to.include({ type: "error", code: "not_meter_owner", field: "channels[0]", channel: "consumption.real-time" });
    });

    it("events.{resourceId}: its owner or an operator only; vpp.{id}.status: any signed-in wallet, as on REST", async () => {
      const [a, operator] = [await open(), await open()];
      a.send({ action: "subscribe", channels: ["events.ws-ev-a", "events.ws-ev-b", "events.no-such-resource", "vpp.vpp-1.status"], token: owner.a });
      // Someone else's resource and an unknown one are refused alike: ids of others are not confirmed.
      for (const [i, channel] of [[1, "events.ws-ev-b"], [2, "events.no-such-resource"]] as const) {
        const refusal = await a.next();
        expect(refusal).to.include({ type: "error", code: "not_resource_owner", field: `channels[${i}]`, channel });
        expect(refusal.detail).to.include("only the resource's owner or an operator");
      }
      expect(await a.next()).to.deep.equal({ type: "subscribed", channels: ["events.ws-ev-a", "vpp.vpp-1.status"] });
      operator.send({ action: "subscribe", channels: ["events.ws-ev-a", "events.ws-ev-b"], token: owner.operator });
      expect(await operator.next()).to.deep.equal({ type: "subscribed", channels: ["events.ws-ev-a", "events.ws-ev-b"] });
      // The token may come on the upgrade request too (clients that can set headers).
      const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${owner.b}` } });
      const got: any[] = [];
      ws.on("message", (raw) => got.push(JSON.parse(String(raw))));
      await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
      ws.send(JSON.stringify({ action: "subscribe", channels: ["events.ws-ev-b"] }));
      await waitUntil(() => got.length > 0);
      expect(got[0]).to.deep.equal({ type: "subscribed", channels: ["events.ws-ev-b"] });
      ws.close();
    });
  });
});

async function waitForMessage(c: Client, match: (m: any) => boolean, timeoutMs = 20_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = await c.next(Math.max(1, deadline - Date.now()));
    if (match(m)) return m;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
