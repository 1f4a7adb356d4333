// Security issue "Trust II" through the HTTP API: POST /v1/trading/orders refuses, with a 422
// naming the field and the rule, every order the market contract would refuse at settlement and
// that used to be taken (201) and fail seconds later: a signature in a form OpenZeppelin's ECDSA
// rejects, an order past the maker's connection limit for the interval, a buy the maker's
// allowance or balance cannot pay, and an interval beyond the book horizon.
import { expect } from "chai";
import { erc20Abi, maxUint256, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { amountFor } from "../../contracts/client/amount.js";
import { readNodeConfig } from "../../server/config.js";
import {
  approveMarket, injectClient, intervalAhead, publicClientOf, randomKey, signedOrder, signIn, startTestNode, walletOf, type ChainDescription, type Http, type TestNode,
} from "./helpers.js";

/** secp256k1's group order. */
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** r‖(n − s)‖v': the same signature's high-s twin, which ecrecover accepts and OpenZeppelin refuses. */
function highS(signature: Hex): Hex {
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = parseInt(signature.slice(130), 16);
  return `${signature.slice(0, 66)}${(N - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}` as Hex;
}

/** v as a raw recovery id (0 or 1) instead of 27 or 28. */
function rawV(signature: Hex): Hex {
  return `${signature.slice(0, 130)}${(parseInt(signature.slice(130), 16) - 27).toString(16).padStart(2, "0")}` as Hex;
}

describe("trust II: order intake refuses what the chain would refuse (HTTP)", function () {
  this.timeout(180_000);
  let t: TestNode;
  let http: Http;
  let chain: ChainDescription;
  let keys: { seller: Hex; buyer: Hex; operator: Hex };
  let tokens: { seller: string; buyer: string; operator: string };
  let now: number;
  /** Each test its own interval, so none meets another's orders or connection use. */
  let nextInterval: number;
  const interval = () => {
    const start = nextInterval;
    nextInterval += 900;
    return start;
  };
  const post = (token: string, body: unknown) => http({ method: "POST", url: "/v1/trading/orders", token, body });

  before(async () => {
    t = await startTestNode({ SETTLEMENT_MAX_LATENCY_MS: "50" });
    http = injectClient(t.node.app);
    // Accounts 0 and 2 are ZONE-A prosumers: 10 kW export (2,500 Wh a quarter hour), 20 kW import (5,000 Wh),
    // 1,000 tEUR each and, until a test approves, no allowance to the market.
    keys = { seller: t.node.testAccounts[0]!.privateKey, buyer: t.node.testAccounts[2]!.privateKey, operator: t.node.operatorKey! };
    chain = (await http({ url: "/v1/chain" })).json as ChainDescription;
    tokens = { seller: await signIn(http, t.node, keys.seller), buyer: await signIn(http, t.node, keys.buyer), operator: await signIn(http, t.node, keys.operator) };
    now = (await http({ url: "/v1/trading/markets" })).json.now as number;
    nextInterval = intervalAhead(now, 1_800);
  });

  after(async () => {
    await t?.close();
  });

  describe("row 4: signatures the market's ECDSA check refuses", () => {
    it("a high-s signature: 422 non_canonical_signature naming the signature and the low-s rule; the canonical one is taken", async () => {
      const body = await signedOrder(chain, keys.seller, { side: 1, intervalStart: interval(), energyWh: 100, price: 300_000 });
      const res = await post(tokens.seller, { ...body, signature: highS(body.signature) });
      expect(res.status, res.text).to.equal(422);
      expect(res.json).to.include({ code: "non_canonical_signature", field: "signature", status: 422 });
      expect(res.json.detail).to.match(/s must be at most secp256k1n\/2 \(low-s, EIP-2\)/);
      const good = await post(tokens.seller, body);
      expect(good.status, good.text).to.equal(201);
    });

    it("v as 0 or 1: 422 non_canonical_signature naming the v rule", async () => {
      const body = await signedOrder(chain, keys.seller, { side: 1, intervalStart: interval(), energyWh: 100, price: 300_000 });
      const res = await post(tokens.seller, { ...body, signature: rawV(body.signature) });
      expect(res.status, res.text).to.equal(422);
      expect(res.json).to.include({ code: "non_canonical_signature", field: "signature" });
      expect(res.json.detail).to.match(/v must be 27 or 28/);
    });
  });

  describe("row 5: the maker's connection limit per interval", () => {
    it("a 100 kWh sell from a 10 kW connection: 422 connection_limit_exceeded with the limit, the use and what remains", async () => {
      const res = await post(tokens.seller, await signedOrder(chain, keys.seller, { side: 1, intervalStart: interval(), energyWh: 100_000, price: 300_000 }));
      expect(res.status, res.text).to.equal(422);
      expect(res.json).to.include({ code: "connection_limit_exceeded", field: "order.energyWh", limitW: 10_000, limitWh: 2_500, usedWh: 0, remainingWh: 2_500, orderWh: 100_000 });
      expect(res.json.detail).to.match(/export limit for this interval: 10000 W for 15 min is 2500 Wh/);
    });

    it("the same energy cannot be sold again in several orders: the sum of open and filled orders stays within the limit", async () => {
      const at = interval();
      const first = await post(tokens.seller, await signedOrder(chain, keys.seller, { side: 1, intervalStart: at, energyWh: 2_000, price: 300_000 }));
      expect(first.status, first.text).to.equal(201);
      const second = await post(tokens.seller, await signedOrder(chain, keys.seller, { side: 1, intervalStart: at, energyWh: 2_000, price: 310_000 }));
      expect(second.status, second.text).to.equal(422);
      expect(second.json).to.include({ code: "connection_limit_exceeded", limitWh: 2_500, usedWh: 2_000, remainingWh: 500, orderWh: 2_000 });
      expect((await post(tokens.seller, await signedOrder(chain, keys.seller, { side: 1, intervalStart: at, energyWh: 500, price: 310_000 }))).status).to.equal(201);
      // Cancelling frees what was not sold.
      expect((await http({ method: "DELETE", url: `/v1/trading/orders/${first.json.orderId}`, token: tokens.seller })).status).to.equal(200);
      expect((await post(tokens.seller, await signedOrder(chain, keys.seller, { side: 1, intervalStart: at, energyWh: 2_000, price: 320_000 }))).status).to.equal(201);
    });
  });

  describe("row 6: a buy its maker cannot pay", () => {
    it("no allowance: 422 insufficient_allowance naming needed and available, not 201 and a failed settlement; once approved, taken", async () => {
      const at = interval();
      const ask = await post(tokens.seller, await signedOrder(chain, keys.seller, { side: 1, intervalStart: at, energyWh: 1_000, price: 300_000 }));
      expect(ask.status, ask.text).to.equal(201);
      const buy = await signedOrder(chain, keys.buyer, { side: 0, intervalStart: at, energyWh: 400, price: 310_000 });
      const refused = await post(tokens.buyer, buy);
      expect(refused.status, refused.text).to.equal(422);
      expect(refused.json).to.include({ code: "insufficient_allowance", field: "order.maker", needed: amountFor(400n, 310_000n).toString(), available: "0", allowance: "0" });
      expect(refused.json.detail).to.match(/approved the market for 0.*approve at least 124000/);
      // The ask kept its volume: nothing matched it.
      const book = await http({ url: `/v1/trading/markets/ZONE-A/${at}/book` });
      expect(book.json.asks).to.deep.equal([{ pricePerKWh: 300_000, energyWh: 1_000, orders: 1 }]);

      await approveMarket(t.node.rpcUrl, chain, keys.buyer);
      const taken = await post(tokens.buyer, buy);
      expect(taken.status, taken.text).to.equal(201);
      expect(taken.json.status).to.equal("filled");
    });

    it("a balance too small for its open buys and this one: 422 insufficient_balance", async () => {
      // A fresh prosumer with 1 tEUR and an unlimited allowance.
      const key = randomKey();
      const address = privateKeyToAccount(key).address;
      const registered = await http({ method: "POST", url: "/v1/prosumers", token: tokens.operator, body: { address, meterId: `SM-TRUST-${address.slice(2, 10)}`, zone: "ZONE-A" } });
      expect(registered.status, registered.text).to.equal(201);
      const token = await signIn(http, t.node, key);
      expect((await http({ method: "POST", url: "/v1/faucet", token, body: { amount: 1 } })).status).to.equal(200);
      const hash = await walletOf(t.node.rpcUrl, key).writeContract({ address: chain.contracts.PaymentToken, abi: erc20Abi, functionName: "approve", args: [chain.contracts.EnergyMarket, maxUint256] });
      await publicClientOf(t.node.rpcUrl).waitForTransactionReceipt({ hash });

      const at = interval();
      // 3 kWh at 0.30: 0.90 tEUR, within the 1 tEUR; a second one would need 1.80.
      expect((await post(token, await signedOrder(chain, key, { side: 0, intervalStart: at, energyWh: 3_000, price: 300_000 }))).status).to.equal(201);
      const res = await post(token, await signedOrder(chain, key, { side: 0, intervalStart: at + 900, energyWh: 3_000, price: 300_000 }));
      expect(res.status, res.text).to.equal(422);
      expect(res.json).to.include({ code: "insufficient_balance", field: "order.maker", needed: "1800000", available: "1000000", balance: "1000000" });
    });
  });

  describe("the book horizon", () => {
    it("an interval more than BOOK_HORIZON_DAYS (default 7) ahead: 422 beyond_book_horizon naming order.deliveryStart and the horizon", async () => {
      const far = intervalAhead(now + 7 * 86_400, 900);
      const res = await post(tokens.seller, await signedOrder(chain, keys.seller, { side: 1, intervalStart: far, energyWh: 100, price: 300_000 }));
      expect(res.status, res.text).to.equal(422);
      expect(res.json).to.include({ code: "beyond_book_horizon", field: "order.deliveryStart" });
      expect(res.json.detail).to.match(/beyond the book horizon: .*at most 7 days ahead/);
    });

    it("BOOK_HORIZON_DAYS is read and checked with the config", () => {
      expect(readNodeConfig({}, {}).intake.bookHorizonDays).to.equal(7);
      expect(readNodeConfig({ BOOK_HORIZON_DAYS: "2" }, {}).intake.bookHorizonDays).to.equal(2);
      expect(readNodeConfig({}, { bookHorizonDays: 30 }).intake.bookHorizonDays).to.equal(30);
      for (const bad of ["0", "367", "1.5", "soon"]) expect(() => readNodeConfig({ BOOK_HORIZON_DAYS: bad }, {}), bad).to.throw(/BOOK_HORIZON_DAYS.*must be a whole number from 1 to 366/);
    });
  });
});
