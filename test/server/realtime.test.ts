// The WebSocket at /v1/energy/real-time: every message is answered (subscribed, unsubscribed,
// or an error naming the field) and a bad one never closes the socket; a crossing order pushes
// "book" and "trade" messages on trading.market.ZONE-A to its subscribers and to no one else.
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
    c.send({ action: "subscribe", channels: ["trading.market.ZONE-A", "consumption.real-time"] });
    expect(await c.next()).to.deep.equal({ type: "subscribed", channels: ["trading.market.ZONE-A", "consumption.real-time"] });

    const bad: [unknown, string][] = [
      ["{not json", "message"],
      [[1, 2], "action"],
      [{ action: "dance", channels: ["generation.solar"] }, "action"],
      [{ action: "subscribe" }, "channels"],
      [{ action: "subscribe", channels: [] }, "channels"],
      [{ action: "subscribe", channels: ["generation.solar", "trading.market.ZONE A"] }, "channels[1]"],
      [{ action: "subscribe", channels: [42] }, "channels[0]"],
    ];
    for (const [message, field] of bad) {
      c.send(message);
      const answer = await c.next();
      expect(answer, JSON.stringify(message)).to.include({ type: "error", code: "invalid_message", field });
      expect(answer.detail).to.match(new RegExp(`^${field.replace(/[[\]]/g, "\\$&")} `));
    }
    expect(c.closed).to.equal(false);
    c.send({ action: "unsubscribe", channels: ["consumption.real-time"] });
    expect(await c.next()).to.deep.equal({ type: "unsubscribed", channels: ["consumption.real-time"] });
    c.send({ action: "subscribe", channels: ["vpp.vpp-1.status", "events.res-7", "generation.solar"] });
    expect(await c.next()).to.include({ type: "subscribed" });
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
      const { before } = await c.until({ action: "subscribe", channels: ["generation.solar"] }, (m) => m.type === "subscribed");
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
    const { before: heard } = await quiet.until({ action: "subscribe", channels: ["generation.solar"] }, (m) => m.type === "subscribed");
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
    const { before } = await c.until({ action: "subscribe", channels: ["generation.solar"] }, (m) => m.type === "subscribed");
    expect(before).to.deep.equal([]);

    // A channel nobody listens to any more is forgotten.
    const channelsBefore = t.node.hub.stats().channels;
    c.send({ action: "subscribe", channels: ["events.only-this-test"] });
    expect((await c.next()).type).to.equal("subscribed");
    expect(t.node.hub.stats().channels).to.equal(channelsBefore + 1);
    c.send({ action: "unsubscribe", channels: ["events.only-this-test"] });
    expect((await c.next()).type).to.equal("unsubscribed");
    expect(t.node.hub.stats().channels).to.equal(channelsBefore);

    const socketsBefore = t.node.hub.stats().sockets;
    c.close();
    await waitUntil(() => t.node.hub.stats().sockets === socketsBefore - 1);
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
