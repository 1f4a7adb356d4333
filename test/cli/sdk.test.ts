// The SDK against a real node in this process: SIWE sign-in and token refresh, balances and
// approval over the chain's JSON-RPC, crossing signed orders that fill and settle, cancel,
// listings taken from the wallet, disputes and early release with the auditor API's proofs,
// and every client-side rule refused with its code before the request it would have spoiled.
import { expect } from "chai";
import { createWalletClient, defineChain, http, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import { createEnergyClient, type EnergyClient } from "../../sdk/createEnergyClient.js";
import { EnergyClientError } from "../../sdk/errors.js";
import { isoMinute, nextOpenInterval, resolveInterval } from "../../sdk/markets.js";
import type { ChainInfo, MarketInfo } from "../../sdk/types.js";
import { amountFor, formatDecimal, kWhToWh, parseDecimal } from "../../sdk/units.js";
import { recordingFetch, rejectionOf, startTestNode, waitFor, type TestNode } from "./helpers.js";

const TEUR = 1_000_000n;

function expectClientError(err: unknown, code: string, field?: string): EnergyClientError {
  expect(err, String(err)).to.be.instanceOf(EnergyClientError);
  const e = err as EnergyClientError;
  expect(e.code, e.message).to.equal(code);
  if (field !== undefined) expect(e.field, e.message).to.equal(field);
  return e;
}

describe("sdk: units and intervals (no node)", () => {
  it("converts decimal kWh and prices exactly, refusing what would round", () => {
    expect(kWhToWh("1.5")).to.equal(1500n);
    expect(kWhToWh("0.001")).to.equal(1n);
    expect(kWhToWh("12")).to.equal(12_000n);
    expect(kWhToWh("2.500")).to.equal(2500n);
    expect(parseDecimal("0.25", 6, "pricePerKWh", "tEUR")).to.equal(250_000n);
    expect(parseDecimal("0.1234560", 6, "pricePerKWh", "tEUR")).to.equal(123_456n);
    // 0.1 + 0.2 as a float would be 0.30000000000000004: strings keep it exact.
    expect(parseDecimal("0.3", 6, "p", "tEUR")).to.equal(300_000n);
    for (const bad of ["1.2345", "-1", "1e3", "abc", "", ".", "1,5", "0x10", " 1 2"]) {
      expectClientError(rejectionOfSync(() => kWhToWh(bad)), "invalid_argument", "kWh");
    }
    expectClientError(rejectionOfSync(() => parseDecimal("0.1234567", 6, "pricePerKWh", "tEUR")), "invalid_argument", "pricePerKWh");
    expectClientError(rejectionOfSync(() => kWhToWh(1.5 as unknown as string)), "invalid_argument", "kWh");
    expect(formatDecimal(1_500_000n, 6, 2)).to.equal("1.50");
    expect(formatDecimal(123_456n, 6, 2)).to.equal("0.123456");
    expect(amountFor(1500n, 200_000n)).to.equal(300_000n);
    expect(amountFor(1n, 999n)).to.equal(0n);
  });

  it("finds the next open interval and refuses closed or misaligned ones", () => {
    const market: MarketInfo = { zone: "ZONE-A", zoneId: "0x00", mode: "continuous", feedInTariff: 1, retailPrice: 2, basePrice: 1, gateClosureMinutes: 5, capacityKWh: null };
    const t = 1_800_000_000 - (1_800_000_000 % 900); // an interval start
    expect(nextOpenInterval(market, 900, t)).to.equal(t + 900);
    expect(nextOpenInterval(market, 900, t + 599)).to.equal(t + 900); // gate of t+900 closes at t+600
    expect(nextOpenInterval(market, 900, t + 600)).to.equal(t + 1800);
    expect(resolveInterval("next", market, 900, t + 600)).to.equal(t + 1800);
    expect(resolveInterval(new Date((t + 1800) * 1000).toISOString(), market, 900, t)).to.equal(t + 1800);
    expect(resolveInterval(String(t + 900), market, 900, t)).to.equal(t + 900);
    expectClientError(rejectionOfSync(() => resolveInterval(t + 900, market, 900, t + 600)), "book_closed", "interval");
    expectClientError(rejectionOfSync(() => resolveInterval(t + 60, market, 900, t)), "invalid_argument", "interval");
    expectClientError(rejectionOfSync(() => resolveInterval("tomorrow-ish", market, 900, t)), "invalid_argument", "interval");
  });
});

function rejectionOfSync(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected a throw");
}

describe("sdk: createEnergyClient against a node", function () {
  let t: TestNode;
  let info: ChainInfo;
  let zoneA: MarketInfo;
  const logs = { seller: [] as string[], buyer: [] as string[] };
  let seller: EnergyClient; // test account 0, ZONE-A
  let buyer: EnergyClient; // test account 2, ZONE-A
  let keys: Hex[];

  /** An interval whose gate closes at least 15 minutes from now: no test races gate closure. */
  function safeInterval(): number {
    return nextOpenInterval(zoneA, info.intervalSeconds, Math.floor(Date.now() / 1000)) + info.intervalSeconds;
  }

  before(async function () {
    this.timeout(180_000);
    t = await startTestNode();
    keys = t.node.testAccounts.map((a) => a.privateKey);
    seller = createEnergyClient({ apiUrl: t.node.url, privateKey: keys[0], fetch: recordingFetch(logs.seller) });
    buyer = createEnergyClient({ apiUrl: t.node.url, privateKey: keys[2], fetch: recordingFetch(logs.buyer) });
    info = await seller.chainInfo();
    zoneA = info.markets.find((m) => m.zone === "ZONE-A")!;
  });

  after(async function () {
    this.timeout(60_000);
    await t?.close();
  });

  it("describes the chain and the wallet's money", async () => {
    expect(info.chainId).to.equal(t.node.chainId);
    expect(info.token).to.include({ symbol: "tEUR", decimals: 6 });
    expect(info.markets.map((m) => m.zone)).to.deep.equal(["ZONE-A", "ZONE-B"]);
    const b = await buyer.balance();
    expect(b.address).to.equal(t.node.testAccounts[2]!.address);
    expect(b.tokenBalance).to.equal(1_000n * TEUR);
    expect(b.allowance).to.equal(0n);
    expect(b.spender).to.equal(info.contracts.EnergyMarket);
    expect(b.eth > 10n ** 18n).to.equal(true);
  });

  it("signs in with SIWE once and reuses the token", async () => {
    const session = await buyer.login();
    expect(session.address).to.equal(t.node.testAccounts[2]!.address);
    expect(session.operator).to.equal(false);
    expect(session.expiresAt.getTime()).to.be.greaterThan(Date.now() + 60_000);
    const before = logs.buyer.filter((l) => l === "POST /v1/auth/login").length;
    await buyer.listOrders();
    await buyer.trades();
    expect(logs.buyer.filter((l) => l === "POST /v1/auth/login").length).to.equal(before);
  });

  it("refuses to sign in for a domain other than the one it talks to", async () => {
    const c = createEnergyClient({ apiUrl: t.node.url, privateKey: keys[1], siweDomain: "energy.example.org" });
    expectClientError(await rejectionOf(() => c.login()), "untrusted_domain", "siweDomain");
  });

  it("refreshes a token near its expiry and signs in again when the node forgot it", async () => {
    const log: string[] = [];
    let now = Date.now();
    const c = createEnergyClient({ apiUrl: t.node.url, privateKey: keys[3], fetch: recordingFetch(log), now: () => now });
    const first = await c.login();
    await c.listOrders();
    expect(log.filter((l) => l === "POST /v1/auth/refresh")).to.have.length(0);
    now = first.expiresAt.getTime() - 30_000; // 30 s of a 900 s token left
    await c.listOrders();
    expect(log.filter((l) => l === "POST /v1/auth/refresh")).to.have.length(1);
    // The refresh revoked the first token on the node.
    const stale = await fetch(`${t.node.url}/v1/trading/orders`, { headers: { authorization: `Bearer ${first.token}` } });
    expect(stale.status).to.equal(401);
    // The node forgets the current token (logout elsewhere): the next call signs in again.
    const current = c.context.state.session!.token;
    expect(current).to.not.equal(first.token);
    const out = await fetch(`${t.node.url}/v1/auth/logout`, { method: "POST", headers: { authorization: `Bearer ${current}` } });
    expect(out.status).to.equal(204);
    await c.listOrders();
    expect(log.filter((l) => l === "POST /v1/auth/login")).to.have.length(2);
  });

  it("refuses orders by client-side rules, with codes, before sending them", async () => {
    const interval = safeInterval();
    await seller.login();
    await buyer.login();
    const sellerLogLength = logs.seller.length;
    const sell = { side: "sell" as const, kWh: "1", pricePerKWh: "0.20", zone: "ZONE-A", interval };

    // Rules judged from GET /v1/chain alone: not one request.
    expectClientError(await rejectionOf(() => seller.placeOrder({ ...sell, zone: "ZONE-Z" })), "unknown_zone", "zone");
    expectClientError(await rejectionOf(() => seller.placeOrder({ ...sell, zone: "zone-a" })), "unknown_zone", "zone");
    const high = expectClientError(await rejectionOf(() => seller.placeOrder({ ...sell, pricePerKWh: "0.36" })), "price_outside_corridor", "pricePerKWh");
    expect(high.detail).to.contain("0.36 tEUR/kWh").and.contain("0.35 tEUR/kWh");
    expectClientError(await rejectionOf(() => seller.placeOrder({ ...sell, pricePerKWh: "0.079999" })), "price_outside_corridor", "pricePerKWh");
    expectClientError(await rejectionOf(() => seller.placeOrder({ ...sell, pricePerKWh: "0.2000001" })), "invalid_argument", "pricePerKWh");
    expectClientError(await rejectionOf(() => seller.placeOrder({ ...sell, pricePerKWh: "abc" })), "invalid_argument", "pricePerKWh");
    expectClientError(await rejectionOf(() => seller.placeOrder({ ...sell, kWh: "1.0005" })), "invalid_argument", "kWh");
    expectClientError(await rejectionOf(() => seller.placeOrder({ ...sell, kWh: "0" })), "invalid_argument", "kWh");
    expectClientError(await rejectionOf(() => seller.placeOrder({ ...sell, kWh: "-2" })), "invalid_argument", "kWh");
    const currentInterval = Math.floor(Date.now() / 1000 / info.intervalSeconds) * info.intervalSeconds;
    const closed = expectClientError(await rejectionOf(() => seller.placeOrder({ ...sell, interval: new Date(currentInterval * 1000).toISOString() })), "book_closed", "interval");
    expect(closed.detail).to.contain(isoMinute(currentInterval));
    expectClientError(await rejectionOf(() => seller.placeOrder({ ...sell, interval: interval + 60 })), "invalid_argument", "interval");
    expectClientError(await rejectionOf(() => seller.placeOrder({ ...sell, zone: "ZONE-B", pricePerKWh: undefined, market: true })), "invalid_argument", "market");
    expect(logs.seller.slice(sellerLogLength), "no request for rules the client can judge alone").to.deep.equal([]);

    // Rules that need the wallet's registration and allowance: read, but never the order endpoint.
    expectClientError(await rejectionOf(() => seller.placeOrder({ ...sell, source: "wind" })), "source_not_registered", "source");
    expectClientError(await rejectionOf(() => seller.placeOrder({ ...sell, zone: "ZONE-B" })), "prosumer_not_active", "zone");
    const buy = { side: "buy" as const, kWh: "1.5", pricePerKWh: "0.25", zone: "ZONE-A", interval };
    expect((await buyer.balance()).allowance).to.equal(0n);
    const noAllowance = expectClientError(await rejectionOf(() => buyer.placeOrder(buy)), "insufficient_allowance", "allowance");
    expect(noAllowance.source).to.equal("client");
    expect(noAllowance.detail).to.contain("0.375 tEUR"); // 1500 Wh x 250000 / 1000 = 375000 base units
    expect([...logs.seller, ...logs.buyer].filter((l) => l === "POST /v1/trading/orders"), "no order was sent").to.deep.equal([]);
  });

  it("maps the API's problems to EnergyClientError with code, field and status", async () => {
    const missing = expectClientError(await rejectionOf(() => seller.cancelOrder({ orderId: `0x${"ab".repeat(32)}` })), "order_not_found", "id");
    expect(missing.source).to.equal("api");
    expect(missing.status).to.equal(404);
    const tooMuch = expectClientError(await rejectionOf(() => buyer.faucet({ amount: 20_000 })), "invalid_request", "amount");
    expect(tooMuch.status).to.equal(400);
    expectClientError(await rejectionOf(() => seller.cancelOrder({ orderId: "0x1234" })), "invalid_argument", "orderId");
    const unreachable = createEnergyClient({ apiUrl: "http://127.0.0.1:9", privateKey: keys[0] });
    const down = expectClientError(await rejectionOf(() => unreachable.chainInfo()), "network_error");
    expect(down.retryable).to.equal(true);
  });

  it("pays tokens from the local faucet", async () => {
    const before = (await buyer.balance()).tokenBalance;
    const r = await buyer.faucet({ amount: 5 });
    expect(r.amount).to.equal(5n * TEUR);
    expect((await buyer.balance()).tokenBalance).to.equal(before + 5n * TEUR);
  });

  let tradeId: string;
  let sellOrderId: Hex;

  it("approves, crosses a sell and a buy, and sees the fill settle on-chain", async function () {
    this.timeout(60_000);
    const approval = await buyer.approve({ amount: "100" });
    expect(approval.allowance).to.equal(100n * TEUR);
    expect((await buyer.balance()).allowance).to.equal(100n * TEUR);
    const buyerBefore = (await buyer.balance()).tokenBalance;

    const interval = safeInterval();
    const sell = await seller.placeOrder({ side: "sell", kWh: "2", pricePerKWh: "0.20", zone: "ZONE-A", interval: new Date(interval * 1000).toISOString() });
    expect(sell).to.include({ side: "sell", zone: "ZONE-A", intervalStart: interval, status: "open", sizeWh: 2000, filledWh: 0, limitPricePerKWh: 200_000 });
    sellOrderId = sell.orderId;

    const buy = await buyer.placeOrder({ side: "buy", kWh: "1.5", pricePerKWh: "0.25", interval }); // zone: the buyer's own
    expect(buy).to.include({ side: "buy", zone: "ZONE-A", status: "filled", sizeWh: 1500, filledWh: 1500, limitPricePerKWh: 250_000 });
    expect(buy.fills).to.have.length(1);
    expect(buy.fills[0]).to.include({ energyWh: 1500, pricePerKWh: 200_000, amount: "300000" });
    expect(buy.fills[0]!.counterparty?.toLowerCase()).to.equal(t.node.testAccounts[0]!.address.toLowerCase());

    const settled = await waitFor("the seller's fill to settle", () => seller.listOrders(), (orders) => orders.find((o) => o.orderId === sellOrderId)?.fills[0]?.status === "executed");
    const sellNow = settled.find((o) => o.orderId === sellOrderId)!;
    expect(sellNow).to.include({ status: "open", filledWh: 1500 });
    expect(sellNow.fills[0]!.tradeId).to.match(/^\d+$/);
    expect(sellNow.fills[0]!.txHash).to.match(/^0x[0-9a-f]{64}$/);
    tradeId = sellNow.fills[0]!.tradeId!;
    const buyNow = (await buyer.listOrders({ status: "filled" })).find((o) => o.orderId === buy.orderId)!;
    expect(buyNow.fills[0]!.tradeId).to.equal(tradeId);
    // The payment left the buyer's wallet for escrow.
    expect((await buyer.balance()).tokenBalance).to.equal(buyerBefore - 300_000n);
  });

  it("cancels the rest of an open order; a second cancel is the API's order_not_open", async () => {
    const cancelled = await seller.cancelOrder({ orderId: sellOrderId });
    expect(cancelled).to.include({ orderId: sellOrderId, status: "cancelled", filledWh: 1500 });
    expect((await seller.listOrders({ status: "cancelled" })).map((o) => o.orderId)).to.include(sellOrderId);
    const again = expectClientError(await rejectionOf(() => seller.cancelOrder({ orderId: sellOrderId })), "order_not_open");
    expect(again.status).to.equal(409);
  });

  it("lists the trade with its delivery status and releases the payment early", async function () {
    this.timeout(60_000);
    const listed = await waitFor("the trade in the buyer's history", () => buyer.trades(), (r) => r.trades.some((x) => x.tradeId === tradeId));
    const trade = listed.trades.find((x) => x.tradeId === tradeId)!;
    expect(trade).to.include({ role: "buyer", zone: "ZONE-A", energyWh: "1500", pricePerKWh: "200000", amount: "300000", status: "executed", deliveredWh: null });
    expect((await seller.trades()).trades.find((x) => x.tradeId === tradeId)?.role).to.equal("seller");

    expectClientError(await rejectionOf(() => seller.releaseEarly({ tradeId })), "not_buyer", "tradeId");
    const sellerBefore = (await seller.balance()).tokenBalance;
    const released = await buyer.releaseEarly({ tradeId });
    expect(released.amount).to.equal(300_000n);
    expect((await seller.balance()).tokenBalance > sellerBefore).to.equal(true);
    await waitFor("the trade to read as settled", () => buyer.trades({ status: "settled" }), (r) => r.trades.some((x) => x.tradeId === tradeId));
    expectClientError(await rejectionOf(() => buyer.releaseEarly({ tradeId })), "invalid_trade_status", "tradeId");
  });

  it("takes part of a listing from the wallet, then disputes the trade once delivery has ended", async function () {
    this.timeout(90_000);
    const interval = safeInterval();
    const sellerAccount = privateKeyToAccount(keys[0]!);
    const chain = defineChain({ id: info.chainId, name: "test", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [info.rpcUrl] } } });
    const wallet = createWalletClient({ account: sellerAccount, chain, transport: http(info.rpcUrl) });
    await wallet.writeContract({
      address: info.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "createListing",
      args: [zoneA.zoneId, 1000n, 210_000n, interval, interval + info.intervalSeconds, interval, 1],
    });
    const listings = await waitFor("the listing to be indexed", () => buyer.listings({ zone: "ZONE-A" }), (ls) => ls.some((l) => l.seller.toLowerCase() === sellerAccount.address.toLowerCase()));
    const listing = listings.find((l) => l.seller.toLowerCase() === sellerAccount.address.toLowerCase())!;
    expect(listing).to.include({ zone: "ZONE-A", remainingWh: "1000", status: "open" });

    expectClientError(await rejectionOf(() => buyer.takeListing({ listingId: listing.listingId, kWh: "1.001" })), "insufficient_listing_energy", "kWh");
    expectClientError(await rejectionOf(() => seller.takeListing({ listingId: listing.listingId, kWh: "0.1" })), "cannot_trade_with_self", "listingId");
    expectClientError(await rejectionOf(() => buyer.takeListing({ listingId: "999999", kWh: "0.1" })), "listing_not_found", "listingId");
    const taken = await buyer.takeListing({ listingId: listing.listingId, kWh: "0.4" });
    expect(taken).to.include({ energyWh: 400n, pricePerKWh: 210_000n, amount: 84_000n });
    const takenId = taken.tradeId.toString();
    await waitFor("the listing trade in the history", () => buyer.trades(), (r) => r.trades.some((x) => x.tradeId === takenId));
    expect((await buyer.listings({ zone: "ZONE-A" })).find((l) => l.listingId === listing.listingId)?.remainingWh).to.equal("600");

    // Before the delivery window has ended, the contract would refuse: the client says so first.
    const early = expectClientError(await rejectionOf(() => buyer.openDispute({ tradeId: takenId, reason: "meter shows nothing" })), "delivery_not_ended", "tradeId");
    expect(early.source).to.equal("client");
    const outsider = createEnergyClient({ apiUrl: t.node.url, privateKey: keys[1] });
    expectClientError(await rejectionOf(() => outsider.openDispute({ tradeId: takenId, reason: "x" })), "not_trade_party", "tradeId");

    // Move the chain's clock past the delivery window (last test: later orders would be judged by it).
    const rpc = (method: string, params: unknown[]) => fetch(info.rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
    // Absolute, not relative to this process's clock: the chain's time may run ahead of it.
    const latest = (await (await rpc("eth_getBlockByNumber", ["latest", false])).json()) as { result: { timestamp: string } };
    const target = Math.max(interval + info.intervalSeconds + 60, Number(latest.result.timestamp) + 1);
    await rpc("evm_setNextBlockTimestamp", [target]);
    await rpc("evm_mine", []);
    const disputed = await buyer.openDispute({ tradeId: takenId, reason: "meter shows nothing" });
    expect(disputed.tradeId).to.equal(taken.tradeId);
    await waitFor("the trade to read as disputed", () => buyer.trades({ status: "disputed" }), (r) => r.trades.some((x) => x.tradeId === takenId));
    const again = expectClientError(await rejectionOf(() => buyer.openDispute({ tradeId: takenId, reason: "again" })), "invalid_trade_status", "tradeId");
    expect(again.detail).to.contain("contested");
  });
});
