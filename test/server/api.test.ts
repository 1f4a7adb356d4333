// The node's HTTP API, every route's success and error paths, run twice against one node: once
// through app.inject() and once over a real socket to the listening server. Orders are signed by
// viem from what GET /v1/chain says, so the test fails if that description is not enough to sign.
// Settings that change the app (rate limits, CORS, body limit) get an app of their own over the
// same node's services.
import { expect } from "chai";
import type { FastifyInstance } from "fastify";
import { erc20Abi, getAddress, hashDomain, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import { EnergySource, SIDE_BUY, SIDE_SELL } from "../../contracts/client/order.js";
import Fastify from "fastify";
import { EngineFailedError } from "../../engine/createEngine.js";
import { buildApp } from "../../server/app.js";
import { handleApiError } from "../../server/problems.js";
import { readNodeConfig } from "../../server/config.js";
import {
  approveMarket, fetchClient, injectClient, intervalAhead, publicClientOf, randomKey, signedOrder, signIn, startTestNode, waitFor, walletOf,
  type ChainDescription, type Http, type TestNode,
} from "./helpers.js";

describe("HTTP API", function () {
  this.timeout(120_000);
  let t: TestNode;
  let chain: ChainDescription;
  let keys: { seller: Hex; buyer: Hex; outsider: Hex; operator: Hex };

  before(async () => {
    t = await startTestNode({ SETTLEMENT_MAX_LATENCY_MS: "50" });
    const n = t.node;
    // Accounts 0 and 2 are ZONE-A prosumers; account 1 is in ZONE-B.
    keys = { seller: n.testAccounts[0]!.privateKey, buyer: n.testAccounts[2]!.privateKey, outsider: n.testAccounts[1]!.privateKey, operator: n.operatorKey! };
    chain = (await injectClient(n.app)({ url: "/v1/chain" })).json as ChainDescription;
    await approveMarket(n.rpcUrl, chain, keys.buyer);
  });

  after(async () => {
    await t?.close();
  });

  const addressOf = (key: Hex) => privateKeyToAccount(key).address;

  for (const [index, transport] of (["inject", "http"] as const).entries()) {
    describe(`through ${transport === "inject" ? "app.inject()" : "a listening server"}`, () => {
      let http: Http;
      let tokens: { seller: string; buyer: string; outsider: string; operator: string };
      let interval: number;
      let resting: { body: Awaited<ReturnType<typeof signedOrder>>; id: Hex };
      let crossing: { id: Hex; tradeId: string };

      before(async () => {
        http = transport === "inject" ? injectClient(t.node.app) : fetchClient(t.node.url);
        tokens = {
          seller: await signIn(http, t.node, keys.seller), buyer: await signIn(http, t.node, keys.buyer),
          outsider: await signIn(http, t.node, keys.outsider), operator: await signIn(http, t.node, keys.operator),
        };
        const markets = await http({ url: "/v1/trading/markets" });
        // Each transport trades in its own interval, so the two runs never meet in a book.
        interval = intervalAhead(markets.json.now) + index * 1800;
      });

      it("GET /v1/chain: chain id, contracts, token, EIP-712 domain and types, markets", async () => {
        const res = await http({ url: "/v1/chain" });
        expect(res.status).to.equal(200);
        const c = res.json as ChainDescription & { token: { symbol: string; decimals: number; address: string }; intervalSeconds: number };
        expect(c.chainId).to.equal(31337);
        expect(c.contracts).to.deep.equal({
          EnergyMarket: getAddress(t.node.deployment.contracts.EnergyMarket), ProsumerRegistry: getAddress(t.node.deployment.contracts.ProsumerRegistry),
          PaymentToken: getAddress(t.node.deployment.contracts.PaymentToken),
        });
        expect(c.token).to.deep.equal({ address: c.contracts.PaymentToken, symbol: "tEUR", decimals: 6 });
        expect(c.eip712.domain).to.deep.equal({ name: "EnergyMarket", version: "1", chainId: 31337, verifyingContract: c.contracts.EnergyMarket });
        expect(c.eip712.primaryType).to.equal("Order");
        expect(c.eip712.types.Order!.map((f) => f.name)).to.deep.equal([
          "maker", "side", "zone", "deliveryStart", "deliveryEnd", "energyWh", "limitPricePerKWh", "source", "acceptedSources", "minSellerReputationBps", "nonce", "expiry",
        ]);
        expect(c.intervalSeconds).to.equal(900);
        expect(c.markets.map((m) => [m.zone, m.gateClosureMinutes, m.feedInTariff, m.retailPrice])).to.deep.equal([["ZONE-A", 5, 80_000, 350_000], ["ZONE-B", 5, 80_000, 350_000]]);
        // The encodings are the contract client's, and the rules cover every Order field.
        const full = res.json as { sides: unknown; sources: unknown; clock: string; now: number; orderRules: Record<string, string>; markets: { gateClosureSeconds: number; nextDeliveryStart: number; nextClosesAt: number }[] };
        expect(full.sides).to.deep.equal({ buy: SIDE_BUY, sell: SIDE_SELL });
        expect(full.sources).to.deep.equal({ solar: EnergySource.solar, wind: EnergySource.wind, storage: EnergySource.storage, mixed: EnergySource.mixed });
        expect(full.clock).to.equal("system");
        expect(full.now).to.be.closeTo(Math.floor(Date.now() / 1000), 5);
        expect(Object.keys(full.orderRules)).to.include.members(c.eip712.types.Order!.map((f) => f.name));
        for (const m of full.markets) {
          expect(m.gateClosureSeconds).to.equal(300);
          expect(m.nextDeliveryStart % 900).to.equal(0);
          expect(m.nextClosesAt).to.equal(m.nextDeliveryStart - 300).and.to.be.greaterThan(full.now);
          expect(m.nextClosesAt - 900).to.be.at.most(full.now); // the interval before it is closed
        }
        // The on-chain domain separator is the one a wallet computes from this description.
        const separator = await publicClientOf(t.node.rpcUrl).readContract({ address: c.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "domainSeparator" });
        expect(separator).to.equal(hashDomain({ domain: c.eip712.domain as never, types: { EIP712Domain: [
          { name: "name", type: "string" }, { name: "version", type: "string" }, { name: "chainId", type: "uint256" }, { name: "verifyingContract", type: "address" },
        ] } }));
      });

      it("GET /v1/trading/markets: open intervals per zone; zone filter; bad query names the field", async () => {
        const res = await http({ url: "/v1/trading/markets" });
        expect(res.status).to.equal(200);
        const now = res.json.now as number;
        const markets = res.json.markets as { zone: string; intervalStart: number; status: string; closesAt: number; referencePricePerKWh: number }[];
        expect(markets.length).to.be.greaterThan(90);
        for (const m of markets) {
          expect(m.status).to.equal("open");
          expect(m.closesAt).to.equal(m.intervalStart - 300);
          expect(m.closesAt).to.be.greaterThan(now);
          expect(m.referencePricePerKWh).to.be.within(80_000, 350_000);
        }
        expect(markets.some((m) => m.zone === "ZONE-A" && m.intervalStart === interval)).to.equal(true);
        const a = await http({ url: "/v1/trading/markets?zone=ZONE-A" });
        expect(a.json.markets.length).to.be.greaterThan(0);
        expect(a.json.markets.every((m: { zone: string }) => m.zone === "ZONE-A")).to.equal(true);
        const bad = await http({ url: "/v1/trading/markets?status=soon" });
        expect(bad.status).to.equal(400);
        expect(bad.headers["content-type"]).to.match(/^application\/problem\+json/);
        expect(bad.json).to.include({ code: "invalid_request", field: "status", status: 400 });
        const extra = await http({ url: "/v1/trading/markets?colour=green" });
        expect(extra.json).to.include({ code: "invalid_request", field: "colour" });
      });

      it("GET book: depth of an empty interval; unknown zone 404; misaligned interval 400", async () => {
        const res = await http({ url: `/v1/trading/markets/ZONE-A/${interval}/book` });
        expect(res.status).to.equal(200);
        expect(res.json).to.deep.include({ zone: "ZONE-A", intervalStart: interval, status: "open", bids: [], asks: [] });
        const unknown = await http({ url: `/v1/trading/markets/ZONE-Q/${interval}/book` });
        expect(unknown.status).to.equal(404);
        expect(unknown.json).to.include({ code: "not_found", field: "zone" });
        const misaligned = await http({ url: `/v1/trading/markets/ZONE-A/${interval + 1}/book` });
        expect(misaligned.status).to.equal(400);
        expect(misaligned.json).to.include({ code: "invalid_request", field: "intervalStart" });
      });

      it("POST /v1/trading/orders: a viem-signed order rests (201) and shows in the book and the market list", async () => {
        const entry = async () => ((await http({ url: "/v1/trading/markets?zone=ZONE-A" })).json.markets as { intervalStart: number; bestAsk: number | null }[]).find((m) => m.intervalStart === interval);
        expect((await entry())?.bestAsk).to.equal(null);
        const body = await signedOrder(chain, keys.seller, { side: 1, intervalStart: interval, energyWh: 1_000, price: 300_000 });
        const res = await http({ method: "POST", url: "/v1/trading/orders", token: tokens.seller, body });
        expect(res.status, res.text).to.equal(201);
        expect(res.json).to.deep.include({ maker: addressOf(keys.seller), side: "sell", zone: "ZONE-A", intervalStart: interval, status: "open", sizeWh: 1_000, filledWh: 0, limitPricePerKWh: 300_000, fills: [] });
        expect(res.json.orderId).to.match(/^0x[0-9a-f]{64}$/);
        resting = { body, id: res.json.orderId };
        const book = await http({ url: `/v1/trading/markets/ZONE-A/${interval}/book` });
        expect(book.json.asks).to.deep.equal([{ pricePerKWh: 300_000, energyWh: 1_000, orders: 1 }]);
        expect(book.json.bids).to.deep.equal([]);
        // The list is cached per second, but an acknowledged order is never missing from it.
        expect((await entry())?.bestAsk).to.equal(300_000);
      });

      it("POST /v1/trading/orders: a crossing order comes back with its fills, which settle on-chain", async () => {
        const body = await signedOrder(chain, keys.buyer, { side: 0, intervalStart: interval, energyWh: 400, price: 310_000 });
        const res = await http({ method: "POST", url: "/v1/trading/orders", token: tokens.buyer, body });
        expect(res.status, res.text).to.equal(201);
        expect(res.json).to.deep.include({ side: "buy", status: "filled", sizeWh: 400, filledWh: 400 });
        expect(res.json.fills).to.have.length(1);
        expect(res.json.fills[0]).to.deep.include({ side: "buy", energyWh: 400, pricePerKWh: 300_000 });
        expect(res.json.fills[0].counterparty).to.equal(addressOf(keys.seller));
        const id = res.json.orderId as Hex;
        const settled = await waitFor("the fill to settle", async () => {
          const r = await http({ url: `/v1/trading/orders/${id}`, token: tokens.buyer });
          return r.json.fills[0].status === "executed" ? r.json : undefined;
        });
        expect(settled.fills[0].tradeId).to.match(/^[0-9]+$/);
        expect(settled.fills[0].txHash).to.match(/^0x[0-9a-f]{64}$/);
        crossing = { id, tradeId: settled.fills[0].tradeId };
        const book = await http({ url: `/v1/trading/markets/ZONE-A/${interval}/book` });
        expect(book.json.asks).to.deep.equal([{ pricePerKWh: 300_000, energyWh: 600, orders: 1 }]);
        expect(book.json.lastPrice).to.equal(300_000);
        const seller = await http({ url: `/v1/trading/orders/${resting.id}`, token: tokens.seller });
        expect(seller.json).to.deep.include({ status: "open", filledWh: 400 });
      });

      it("GET /v1/trading/history: the settled trade, once indexed, to both parties and nobody else", async () => {
        await t.node.indexedBlock();
        const buyer = await http({ url: "/v1/trading/history", token: tokens.buyer });
        expect(buyer.status).to.equal(200);
        const trade = buyer.json.trades.find((x: { tradeId: string }) => x.tradeId === crossing.tradeId);
        expect(trade).to.deep.include({
          role: "buyer", buyer: addressOf(keys.buyer), seller: addressOf(keys.seller), zone: "ZONE-A", energyWh: "400", pricePerKWh: "300000",
          deliveryStart: interval, deliveryEnd: interval + 900, source: 1, status: "executed", deliveredWh: null,
        });
        const seller = await http({ url: "/v1/trading/history", token: tokens.seller });
        expect(seller.json.trades.find((x: { tradeId: string }) => x.tradeId === crossing.tradeId)).to.deep.include({ role: "seller" });
        const outsider = await http({ url: "/v1/trading/history", token: tokens.outsider });
        expect(outsider.json.trades.map((x: { tradeId: string }) => x.tradeId)).to.not.include(crossing.tradeId);
        const delivered = await http({ url: "/v1/trading/history?status=delivered", token: tokens.buyer });
        expect(delivered.json.trades).to.deep.equal([]);
        const paged = await http({ url: "/v1/trading/history?limit=1", token: tokens.buyer });
        expect(paged.json.trades).to.have.length(1);
        expect(paged.json.next).to.equal(paged.json.trades[0].tradeId);
        const older = await http({ url: `/v1/trading/history?before=${paged.json.next}`, token: tokens.buyer });
        expect(older.json.trades.map((x: { tradeId: string }) => x.tradeId)).to.deep.equal(
          buyer.json.trades.map((x: { tradeId: string }) => x.tradeId).filter((id: string) => BigInt(id) < BigInt(paged.json.next)),
        );
        expect((await http({ url: "/v1/trading/history?limit=0", token: tokens.buyer })).json).to.include({ code: "invalid_request", field: "limit" });
        expect((await http({ url: "/v1/trading/history" })).json).to.include({ status: 401, code: "unauthorized" });
      });

      it("POST /v1/trading/orders refusals: token, maker, signature, corridor, schema, duplicate, closed book, prosumer", async () => {
        const post = (token: string | undefined, body: unknown) => http({ method: "POST", url: "/v1/trading/orders", ...(token ? { token } : {}), body });
        const order = await signedOrder(chain, keys.seller, { side: 1, intervalStart: interval, energyWh: 100, price: 320_000 });

        const noToken = await post(undefined, order);
        expect(noToken.status).to.equal(401);
        expect(noToken.json).to.include({ code: "unauthorized", field: "authorization" });

        const otherMaker = await post(tokens.buyer, order);
        expect(otherMaker.status).to.equal(403);
        expect(otherMaker.json).to.include({ code: "forbidden", field: "order.maker" });

        // Signed by the buyer, claimed for the seller: the signature is not the maker's.
        const forged = await signedOrder(chain, keys.buyer, { side: 1, intervalStart: interval, energyWh: 100, price: 320_000 });
        const badSig = await post(tokens.seller, { ...forged, order: { ...forged.order, maker: addressOf(keys.seller) } });
        expect(badSig.status).to.equal(422);
        expect(badSig.json).to.include({ code: "bad_signature", field: "signature" });

        const dear = await signedOrder(chain, keys.seller, { side: 1, intervalStart: interval, energyWh: 100, price: 350_001 });
        const corridor = await post(tokens.seller, dear);
        expect(corridor.status).to.equal(422);
        expect(corridor.json).to.include({ code: "price_outside_corridor", field: "order.limitPricePerKWh" });
        expect(corridor.json.detail).to.match(/350000/);

        const { energyWh: _omitted, ...withoutEnergy } = order.order;
        const missing = await post(tokens.seller, { ...order, order: withoutEnergy });
        expect(missing.status).to.equal(400);
        expect(missing.json).to.include({ code: "invalid_request", field: "order.energyWh" });
        expect(missing.json.detail).to.match(/energyWh/);
        expect((await post(tokens.seller, { ...order, order: { ...order.order, side: 2 } })).json).to.include({ code: "invalid_request", field: "order.side" });
        expect((await post(tokens.seller, { ...order, order: { ...order.order, colour: "green" } })).json).to.include({ code: "invalid_request", field: "order.colour" });
        expect((await post(tokens.seller, { ...order, signature: "0x1234" })).json).to.include({ code: "invalid_request", field: "signature" });
        const notJson = await http({ method: "POST", url: "/v1/trading/orders", token: tokens.seller, headers: { "content-type": "application/json" }, body: "{not json" });
        expect(notJson.status).to.equal(400);
        expect(notJson.json).to.include({ code: "invalid_request" });

        const duplicate = await post(tokens.seller, resting.body);
        expect(duplicate.status).to.equal(409);
        expect(duplicate.json).to.include({ code: "duplicate_order" });

        const now = (await http({ url: "/v1/trading/markets" })).json.now as number;
        const current = Math.floor(now / 900) * 900;
        const late = await signedOrder(chain, keys.seller, { side: 1, intervalStart: current, energyWh: 100, price: 300_000, expiry: current + 900 });
        const closed = await post(tokens.seller, late);
        expect(closed.status).to.equal(422);
        expect(closed.json).to.include({ code: "book_closed", field: "order.deliveryStart" });

        // A wallet may sign in, but only a registered prosumer of the zone may trade there.
        const stranger = randomKey();
        const strangerOrder = await signedOrder(chain, stranger, { side: 0, intervalStart: interval, energyWh: 100, price: 100_000 });
        const notProsumer = await post(await signIn(http, t.node, stranger), strangerOrder);
        expect(notProsumer.status).to.equal(422);
        expect(notProsumer.json).to.include({ code: "prosumer_not_active", field: "order.maker" });
      });

      it("GET and DELETE /v1/trading/orders/:id: own order, another's (403), unknown (404), bad id (400)", async () => {
        const own = await http({ url: `/v1/trading/orders/${resting.id}`, token: tokens.seller });
        expect(own.status).to.equal(200);
        expect(own.json.orderId).to.equal(resting.id);
        const other = await http({ url: `/v1/trading/orders/${resting.id}`, token: tokens.outsider });
        expect(other.status).to.equal(403);
        expect(other.json).to.include({ code: "not_order_maker", field: "id" });
        const unknownId = `0x${"ab".repeat(32)}`;
        const unknown = await http({ url: `/v1/trading/orders/${unknownId}`, token: tokens.seller });
        expect(unknown.status).to.equal(404);
        expect(unknown.json).to.include({ code: "order_not_found", field: "id" });
        expect((await http({ url: "/v1/trading/orders/0x12", token: tokens.seller })).json).to.include({ status: 400, code: "invalid_request", field: "id" });
        expect((await http({ url: `/v1/trading/orders/${resting.id}` })).status).to.equal(401);

        const del = (id: string, token: string) => http({ method: "DELETE", url: `/v1/trading/orders/${id}`, token });
        const stolen = await del(resting.id, tokens.buyer);
        expect(stolen.status).to.equal(403);
        expect(stolen.json).to.include({ code: "not_order_maker", field: "id" });
        expect((await del(unknownId, tokens.seller)).json).to.include({ status: 404, code: "order_not_found", field: "id" });
        const cancelled = await del(resting.id, tokens.seller);
        expect(cancelled.status).to.equal(200);
        expect(cancelled.json).to.deep.include({ orderId: resting.id, status: "cancelled", filledWh: 400 });
        const again = await del(resting.id, tokens.seller);
        expect(again.status).to.equal(409);
        expect(again.json).to.include({ code: "order_not_open", field: "id" });
        const filled = await del(crossing.id, tokens.buyer);
        expect(filled.json).to.include({ status: 409, code: "order_not_open" });
        const book = await http({ url: `/v1/trading/markets/ZONE-A/${interval}/book` });
        expect(book.json.asks).to.deep.equal([]);
      });

      it("GET /v1/trading/orders: the caller's orders only, newest first, filtered by status", async () => {
        const res = await http({ url: "/v1/trading/orders", token: tokens.seller });
        expect(res.status).to.equal(200);
        const orders = res.json.orders as { orderId: string; maker: string; status: string }[];
        expect(orders.every((o) => o.maker === addressOf(keys.seller))).to.equal(true);
        expect(orders.map((o) => o.orderId)).to.include(resting.id);
        const cancelled = await http({ url: "/v1/trading/orders?status=cancelled", token: tokens.seller });
        expect(cancelled.json.orders.map((o: { orderId: string }) => o.orderId)).to.include(resting.id);
        expect(cancelled.json.orders.every((o: { status: string }) => o.status === "cancelled")).to.equal(true);
        const buyer = await http({ url: "/v1/trading/orders?limit=1", token: tokens.buyer });
        expect(buyer.json.orders.map((o: { orderId: string }) => o.orderId)).to.deep.equal([crossing.id]);
        expect((await http({ url: "/v1/trading/orders?status=lost", token: tokens.seller })).json).to.include({ code: "invalid_request", field: "status" });
        expect((await http({ url: "/v1/trading/orders" })).status).to.equal(401);
      });

      it("GET /v1/trading/listings: a listing created on-chain, once indexed; zone and status filters", async () => {
        const wallet = walletOf(t.node.rpcUrl, keys.seller);
        const zone = chain.markets.find((m) => m.zone === "ZONE-A")!.zoneId;
        const hash = await wallet.writeContract({
          address: chain.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "createListing",
          args: [zone, 700n + BigInt(index), 210_000n, interval, interval + 900, interval, 1],
        });
        expect((await publicClientOf(t.node.rpcUrl).waitForTransactionReceipt({ hash })).status).to.equal("success");
        await t.node.indexedBlock();
        const res = await http({ url: "/v1/trading/listings" });
        expect(res.status).to.equal(200);
        const listing = res.json.listings.find((l: { energyWh: string }) => l.energyWh === String(700 + index));
        expect(listing).to.deep.include({ seller: addressOf(keys.seller), zone: "ZONE-A", remainingWh: String(700 + index), pricePerKWh: "210000", deliveryStart: interval, source: 1, status: "open" });
        const b = await http({ url: "/v1/trading/listings?zone=ZONE-B" });
        expect(b.json.listings).to.deep.equal([]);
        expect((await http({ url: "/v1/trading/listings?status=cancelled" })).json.listings.map((l: { listingId: string }) => l.listingId)).to.not.include(listing.listingId);
        expect((await http({ url: "/v1/trading/listings?status=gone" })).json).to.include({ status: 400, field: "status" });
      });

      it("POST /v1/prosumers (operator) and GET /v1/prosumers/:address", async () => {
        const fresh = privateKeyToAccount(randomKey()).address;
        const body = { address: fresh, meterId: `SM-${transport}-${Date.now() % 100_000}`, zone: "ZONE-A", exportLimitW: 5_000, importLimitW: 7_000, sources: ["solar", "wind"] };
        const res = await http({ method: "POST", url: "/v1/prosumers", token: tokens.operator, body });
        expect(res.status, res.text).to.equal(201);
        expect(res.json).to.deep.include({ address: fresh, registered: true, status: "active", meterId: body.meterId, zone: "ZONE-A", exportLimitW: 5_000, importLimitW: 7_000, sources: ["solar", "wind"], reputationBps: 10_000 });
        expect(res.json.txHash).to.match(/^0x[0-9a-f]{64}$/);
        const read = await http({ url: `/v1/prosumers/${fresh}` });
        expect(read.status).to.equal(200);
        expect(read.json).to.deep.include({ address: fresh, registered: true, status: "active", zone: "ZONE-A", meterId: body.meterId });
        expect(read.json.txHash).to.equal(undefined);

        const duplicate = await http({ method: "POST", url: "/v1/prosumers", token: tokens.operator, body });
        expect(duplicate.status).to.equal(409);
        expect(duplicate.json).to.include({ code: "conflict" });
        expect(duplicate.json.detail).to.match(/ProsumerAlreadyRegistered/);
        const other = { ...body, address: privateKeyToAccount(randomKey()).address, meterId: `${body.meterId}-2` };
        const notOperator = await http({ method: "POST", url: "/v1/prosumers", token: tokens.seller, body: other });
        expect(notOperator.status).to.equal(403);
        expect(notOperator.json).to.include({ code: "operator_only" });
        expect((await http({ method: "POST", url: "/v1/prosumers", body: other })).json).to.include({ status: 401, code: "unauthorized" });
        expect((await http({ method: "POST", url: "/v1/prosumers", token: tokens.operator, body: { ...other, zone: "ZONE-Q" } })).json).to.include({ status: 422, code: "validation_failed", field: "zone" });
        expect((await http({ method: "POST", url: "/v1/prosumers", token: tokens.operator, body: { ...other, address: "0x1234" } })).json).to.include({ status: 400, field: "address" });
        expect((await http({ method: "POST", url: "/v1/prosumers", token: tokens.operator, body: { ...other, sources: ["coal"] } })).json).to.include({ status: 400, field: "sources.0" });

        const unknown = await http({ url: `/v1/prosumers/${privateKeyToAccount(randomKey()).address}` });
        expect(unknown.status).to.equal(404);
        expect(unknown.json).to.include({ code: "not_found", field: "address" });
        expect((await http({ url: "/v1/prosumers/not-an-address" })).json).to.include({ status: 400, field: "address" });
      });

      it("POST /v1/faucet: tEUR and gas money for the signed-in wallet on the local chain", async () => {
        const key = randomKey();
        const address = privateKeyToAccount(key).address;
        const token = await signIn(http, t.node, key);
        const res = await http({ method: "POST", url: "/v1/faucet", token, body: { amount: 5 } });
        expect(res.status, res.text).to.equal(200);
        expect(res.json).to.deep.include({ address, amount: "5000000" });
        const client = publicClientOf(t.node.rpcUrl);
        expect(await client.readContract({ address: chain.contracts.PaymentToken, abi: erc20Abi, functionName: "balanceOf", args: [address] })).to.equal(5_000_000n);
        expect(await client.getBalance({ address })).to.equal(10n ** 18n);
        const noBody = await http({ method: "POST", url: "/v1/faucet", token });
        expect(noBody.status, noBody.text).to.equal(200);
        expect(noBody.json.amount).to.equal("1000000000");
        expect((await http({ method: "POST", url: "/v1/faucet", token, body: { amount: 0 } })).json).to.include({ status: 400, field: "amount" });
        expect((await http({ method: "POST", url: "/v1/faucet", body: {} })).status).to.equal(401);
      });

      it("GET /healthz and GET /metrics", async () => {
        const health = await http({ url: "/healthz" });
        expect(health.status).to.equal(200);
        expect(health.json.status).to.equal("ok");
        expect(Object.keys(health.json.checks).sort()).to.deep.equal(["chain", "database", "engine", "indexer", "mqtt"]);
        for (const c of Object.values(health.json.checks) as { ok: boolean }[]) expect(c.ok).to.equal(true);
        const metrics = await http({ url: "/metrics" });
        expect(metrics.status).to.equal(200);
        expect(metrics.headers["content-type"]).to.match(/^text\/plain/);
        expect(metrics.text).to.include("# TYPE http_requests_total counter");
        expect(metrics.text).to.match(/http_requests_total\{method="POST",route="\/v1\/trading\/orders",status="201"\} [1-9]/);
        expect(metrics.text).to.match(/http_request_duration_seconds_bucket\{method="GET",route="\/healthz",le="\+Inf"\} [1-9]/);
        expect(metrics.text).to.match(/^engine_orders [1-9]/m);
        expect(metrics.text).to.match(/^indexer_head_block [1-9]/m);
      });

      it("GET /docs/json: the OpenAPI document lists the routes; /docs serves the UI", async () => {
        const res = await http({ url: "/docs/json" });
        expect(res.status).to.equal(200);
        expect(res.json.openapi).to.equal("3.1.0");
        const paths = Object.keys(res.json.paths);
        for (const p of ["/v1/auth/nonce", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout", "/v1/chain", "/v1/trading/markets", "/v1/trading/markets/{zone}/{intervalStart}/book",
          "/v1/trading/orders", "/v1/trading/orders/{id}", "/v1/trading/history", "/v1/trading/listings", "/v1/prosumers", "/v1/prosumers/{address}", "/v1/faucet", "/healthz", "/metrics"]) {
          expect(paths, p).to.include(p);
        }
        expect(Object.keys(res.json.paths["/v1/trading/orders/{id}"])).to.include.members(["get", "delete"]);
        expect(res.json.paths["/v1/trading/orders"].post.security).to.deep.equal([{ bearer: [] }]);
        const ui = await http({ url: "/docs" });
        expect([200, 302]).to.include(ui.status);
      });

      it("unknown routes are a 404 problem; a body over the limit is 413; no CORS headers without CORS_ORIGINS", async () => {
        const res = await http({ url: "/v1/nowhere?x=1" });
        expect(res.status).to.equal(404);
        expect(res.headers["content-type"]).to.match(/^application\/problem\+json/);
        expect(res.json).to.deep.equal({ type: "urn:p2p-energy:problem:route_not_found", title: "Not found", status: 404, code: "route_not_found", detail: "no route GET /v1/nowhere" });
        expect((await http({ method: "DELETE", url: "/v1/chain" })).json).to.include({ status: 404, code: "route_not_found" });
        const big = await http({ method: "POST", url: "/v1/auth/login", body: { message: "x".repeat(70_000), signature: "0x00" } });
        expect(big.status).to.equal(413);
        expect(big.json).to.include({ code: "payload_too_large" });
        const cors = await http({ url: "/v1/chain", headers: { origin: "https://app.example" } });
        expect(cors.headers["access-control-allow-origin"]).to.equal(undefined);
      });
    });
  }

  describe("a wallet that knows only GET /v1/chain", () => {
    it("builds, signs and places an order from that answer alone (and its private key): 201", async () => {
      const http = injectClient(t.node.app);
      // What the wallet brings: its key, and the zone it registered in. Everything else is read from the answer.
      const wallet = t.node.testAccounts[3]!;
      const account = privateKeyToAccount(wallet.privateKey);
      const c = (await http({ url: "/v1/chain" })).json as {
        eip712: { domain: Record<string, unknown>; primaryType: string; types: Record<string, { name: string; type: string }[]> };
        intervalSeconds: number; now: number; sides: { buy: number; sell: number };
        markets: { zone: string; zoneId: Hex; feedInTariff: number; gateClosureSeconds: number; nextDeliveryStart: number }[];
      };
      const market = c.markets.find((m) => m.zone === wallet.zone)!;
      // deliveryStart: aligned to the interval and still open by the node's clock (now < start - gate closure).
      const deliveryStart = (Math.floor((c.now + market.gateClosureSeconds) / c.intervalSeconds) + 1) * c.intervalSeconds;
      expect(deliveryStart).to.equal(market.nextDeliveryStart);
      const order = {
        maker: account.address,
        side: c.sides.buy,
        zone: market.zoneId,
        deliveryStart: BigInt(deliveryStart),
        deliveryEnd: BigInt(deliveryStart + c.intervalSeconds),
        energyWh: 250n,
        limitPricePerKWh: BigInt(market.feedInTariff), // the corridor's floor: rests, crosses nothing the other tests offer
        source: 0, // a buy carries no source
        acceptedSources: 0,
        minSellerReputationBps: 0,
        nonce: BigInt(`0x${randomKey().slice(2, 34)}`), // any value at or above the (untouched, 0) nonce floor
        expiry: BigInt(deliveryStart), // after now; the book closes before it anyway
      };
      const signature = await account.signTypedData({ domain: c.eip712.domain, types: c.eip712.types, primaryType: c.eip712.primaryType, message: order } as never);
      // A buy must be payable: the wallet lets the market pull its tEUR (token and market from the same answer).
      await approveMarket(t.node.rpcUrl, chain, wallet.privateKey);
      const token = await signIn(http, t.node, wallet.privateKey);
      const body = { order: Object.fromEntries(Object.entries(order).map(([k, v]) => [k, typeof v === "bigint" ? v.toString() : v])), signature };
      const res = await http({ method: "POST", url: "/v1/trading/orders", token, body });
      expect(res.status, res.text).to.equal(201);
      expect(res.json).to.deep.include({ maker: account.address, side: "buy", zone: wallet.zone, intervalStart: deliveryStart, status: "open", sizeWh: 250 });
      expect((await http({ method: "DELETE", url: `/v1/trading/orders/${res.json.orderId}`, token })).status).to.equal(200);
    });
  });

  describe("node settings for the bridge's MQTT identity", () => {
    it("BRIDGE_TOPIC_ROOT and BRIDGE_MQTT_CLIENT_ID default to the bridge's, and a bad one names the variable", () => {
      expect(readNodeConfig({}, {}).bridge).to.deep.equal({ topicRoot: "energy-cloud", mqttClientId: "meter-bridge" });
      expect(readNodeConfig({ BRIDGE_TOPIC_ROOT: "site-7", BRIDGE_MQTT_CLIENT_ID: "node-7" }, {}).bridge).to.deep.equal({ topicRoot: "site-7", mqttClientId: "node-7" });
      expect(() => readNodeConfig({ BRIDGE_TOPIC_ROOT: "a/b" }, {})).to.throw(/^BRIDGE_TOPIC_ROOT="a\/b": must be 1 to 128 letters/);
      expect(() => readNodeConfig({ BRIDGE_MQTT_CLIENT_ID: "x".repeat(65) }, {})).to.throw(/BRIDGE_MQTT_CLIENT_ID/);
    });
  });

  describe("the root error handler", () => {
    it("a stopped engine is a 503 problem; an unexpected error a 500 that tells nothing internal", async () => {
      const app = Fastify();
      app.setErrorHandler(handleApiError);
      app.get("/engine", async () => {
        throw new EngineFailedError({ reason: "log write failed: disk full at /var/lib/secret" });
      });
      app.get("/bug", async () => {
        throw new Error("password=hunter2 in /etc/secret");
      });
      const engine = await app.inject({ url: "/engine" });
      expect(engine.statusCode).to.equal(503);
      expect(engine.json()).to.include({ code: "engine_failed", status: 503 });
      expect(engine.body).to.not.include("/var/lib/secret");
      const bug = await app.inject({ url: "/bug" });
      expect(bug.statusCode).to.equal(500);
      expect(bug.json()).to.deep.equal({ type: "urn:p2p-energy:problem:internal_error", title: "Internal error", status: 500, code: "internal_error", detail: "the request failed on the server; see its log" });
      await app.close();
    });
  });

  describe("settings: rate limits, CORS, body limit", () => {
    /** An app over the running node's services with other settings; its clock is ours to move. */
    async function appWith(env: Record<string, string>) {
      let now = Date.now();
      const services = { ...t.node.services, clock: () => now };
      // The node's own domain: the wallets here sign in for it (SIWE domains are never the request's Host).
      const app = await buildApp({ services, settings: { ...readNodeConfig(env, {}).api, siweDomains: [new URL(t.node.url).host] }, hub: t.node.hub });
      await app.listen({ host: "127.0.0.1", port: 0 });
      const address = app.server.address() as { port: number };
      return { app, url: `http://127.0.0.1:${address.port}`, advance: (ms: number) => (now += ms) };
    }
    const apps: FastifyInstance[] = [];
    after(async () => {
      for (const app of apps) await app.close();
    });

    for (const transport of ["inject", "http"] as const) {
      it(`rate limits per IP and per address answer 429 with retry-after (${transport})`, async () => {
        const a = await appWith({ RATE_LIMIT_PER_IP: "10", RATE_LIMIT_PER_ADDRESS: "3" });
        apps.push(a.app);
        const http = transport === "inject" ? injectClient(a.app) : fetchClient(a.url);
        const token = await signIn(http, t.node, keys.seller); // 2 requests from this IP
        for (let i = 0; i < 3; i++) expect((await http({ url: "/v1/trading/orders", token })).status).to.equal(200);
        const byAddress = await http({ url: "/v1/trading/orders", token });
        expect(byAddress.status).to.equal(429);
        expect(byAddress.json).to.include({ code: "rate_limited" });
        expect(byAddress.json.detail).to.include(addressOf(keys.seller));
        expect(Number(byAddress.headers["retry-after"])).to.equal(20);
        // Requests without that token still pass: the IP budget (10) has 4 of them left.
        for (let i = 0; i < 4; i++) expect((await http({ url: "/v1/chain" })).status).to.equal(200);
        const byIp = await http({ url: "/v1/chain" });
        expect(byIp.status).to.equal(429);
        expect(byIp.json.detail).to.match(/10 requests a minute from 127\.0\.0\.1/);
        expect(Number(byIp.headers["retry-after"])).to.equal(6);
        a.advance(6_000);
        expect((await http({ url: "/v1/chain" })).status).to.equal(200);
        expect((await http({ url: "/v1/chain" })).status).to.equal(429);
      });

      it(`CORS headers for the configured origins only, and the configured body limit (${transport})`, async () => {
        const a = await appWith({ CORS_ORIGINS: "https://app.example, https://other.example", BODY_LIMIT: "2048" });
        apps.push(a.app);
        const http = transport === "inject" ? injectClient(a.app) : fetchClient(a.url);
        const allowed = await http({ url: "/v1/chain", headers: { origin: "https://app.example" } });
        expect(allowed.status).to.equal(200);
        expect(allowed.headers["access-control-allow-origin"]).to.equal("https://app.example");
        const preflight = await http({ method: "OPTIONS", url: "/v1/trading/orders", headers: { origin: "https://other.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" } });
        expect(preflight.status).to.equal(204);
        expect(preflight.headers["access-control-allow-origin"]).to.equal("https://other.example");
        expect(preflight.headers["access-control-allow-methods"]).to.include("POST");
        const foreign = await http({ url: "/v1/chain", headers: { origin: "https://evil.example" } });
        expect(foreign.status).to.equal(200);
        expect(foreign.headers["access-control-allow-origin"]).to.equal(undefined);
        const big = await http({ method: "POST", url: "/v1/auth/login", body: { message: "x".repeat(3_000), signature: "0x00" } });
        expect(big.status).to.equal(413);
        expect(big.json).to.include({ code: "payload_too_large" });
        const small = await http({ method: "POST", url: "/v1/auth/login", body: { message: "x".repeat(1_000) } });
        expect(small.json).to.include({ status: 400, field: "signature" });
      });
    }
  });
});
