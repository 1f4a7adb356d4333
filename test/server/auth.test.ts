// Sign-In With Ethereum and the tokens it hands out, through app.inject() and a real socket: the
// nonce, every reason a login is refused (replay, domain, chain, expiry, signature, unknown or
// stale nonce), refresh and logout ending the old token, expiry on the wall clock (which this
// test moves instead of sleeping), the market clock moving days ahead without signing anyone
// out, and the guards: no token, another wallet's order, operator only. The security review's
// cases: a phishing site's domain refused whatever the Host header says, a sign-in's maximum
// lifetime that refreshes cannot extend, and roles re-read from the chain at refresh and at use.
//
// Two clocks: the node's market clock (engine, gates; NODE_CLOCK=chain makes it block time) and
// the sessions' wall clock. The node runs on a market clock of ours; the routes under test run
// in an app over the node's services whose sessions run on a wall clock of ours.
import { expect } from "chai";
import type { FastifyInstance } from "fastify";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { prosumerRegistryAbi } from "../../contracts/client/abi.js";
import { roleIds } from "../../contracts/client/deploy.js";
import { buildApp } from "../../server/app.js";
import { createSessions } from "../../server/auth/sessions.js";
import { readNodeConfig } from "../../server/config.js";
import {
  approveMarket, fetchClient, injectClient, intervalAhead, publicClientOf, randomKey, siweLogin, signedOrder, signIn, startTestNode, walletOf, type ChainDescription, type Http, type TestNode,
} from "./helpers.js";

const TWO_DAYS_MS = 2 * 86_400_000;
/** The wall-clock app's SESSION_MAX_SECONDS: an hour, so a test reaches it in a few refreshes. */
const SESSION_MAX_MS = 3_600_000;

describe("auth: Sign-In With Ethereum and tokens", function () {
  this.timeout(120_000);
  let t: TestNode;
  let app: FastifyInstance;
  let appUrl: string;
  let marketOffsetMs = 0;
  let wallOffsetMs = 0;
  /** While set, both clocks stand still there (plus their offsets): boundaries are exact. */
  let frozenAt: number | undefined;
  const marketNow = () => (frozenAt ?? Date.now()) + marketOffsetMs;
  const wallNow = () => (frozenAt ?? Date.now()) + wallOffsetMs;
  let chain: ChainDescription;
  let keys: { seller: Hex; buyer: Hex; operator: Hex };
  /** The one domain the wall-clock app accepts: its own address, known once it listens. */
  let appHost = "";

  before(async () => {
    // The market clock is ours: the engine's gates follow it, as they follow block time with NODE_CLOCK=chain.
    t = await startTestNode({}, { clock: marketNow });
    keys = { seller: t.node.testAccounts[0]!.privateKey, buyer: t.node.testAccounts[2]!.privateKey, operator: t.node.operatorKey! };
    // The same node's services, with sessions on a wall clock of ours: tokens and nonces expire when we move it, not after a sleep.
    const sessions = createSessions({ tokenTtlSeconds: 900, nonceTtlSeconds: 600, sessionMaxSeconds: SESSION_MAX_MS / 1000, wallClock: wallNow });
    app = await buildApp({ services: { ...t.node.services, sessions }, settings: { ...readNodeConfig({}, {}).api, siweDomains: () => [appHost] }, hub: t.node.hub });
    await app.listen({ host: "127.0.0.1", port: 0 });
    appHost = `127.0.0.1:${(app.server.address() as { port: number }).port}`;
    appUrl = `http://${appHost}`;
    chain = (await injectClient(app)({ url: "/v1/chain" })).json as ChainDescription;
    // The buyer's orders must be payable: intake refuses a buy without an allowance to the market.
    await approveMarket(t.node.rpcUrl, chain, keys.buyer);
  });

  after(async () => {
    await app?.close();
    await t?.close();
  });

  for (const transport of ["inject", "http"] as const) {
    describe(`through ${transport === "inject" ? "app.inject()" : "a listening server"}`, () => {
      let http: Http;
      const login = (body: unknown) => http({ method: "POST", url: "/v1/auth/login", body });
      const expectRefused = (res: Awaited<ReturnType<Http>>, field: string) => {
        expect(res.status, res.text).to.equal(401);
        expect(res.headers["content-type"]).to.match(/^application\/problem\+json/);
        expect(res.json).to.include({ code: "login_refused", field });
      };

      before(() => {
        http = transport === "inject" ? injectClient(app) : fetchClient(appUrl);
      });

      it("GET /v1/auth/nonce: a fresh single-use nonce, with the domain and chain to sign for", async () => {
        const a = await http({ url: "/v1/auth/nonce" });
        const b = await http({ url: "/v1/auth/nonce" });
        expect(a.status).to.equal(200);
        expect(a.json.nonce).to.match(/^[0-9a-f]{32}$/);
        expect(b.json.nonce).to.not.equal(a.json.nonce);
        // The configured domain, whatever Host the request came with (inject sends localhost:80).
        expect(a.json).to.include({ chainId: 31337, domain: appHost, uri: `http://${appHost}` });
        expect(Date.parse(a.json.expiresAt) - wallNow()).to.be.within(595_000, 600_000);
      });

      it("POST /v1/auth/login: a signed message gives a token for its address; operators are told apart", async () => {
        const res = await login(await siweLogin(http, t.node, keys.seller));
        expect(res.status, res.text).to.equal(200);
        expect(res.json).to.include({ expiresIn: 900, address: privateKeyToAccount(keys.seller).address, operator: false });
        expect(res.json.token).to.match(/^[A-Za-z0-9_-]{43}$/);
        expect((await http({ url: "/v1/trading/orders", token: res.json.token })).status).to.equal(200);
        const operator = await login(await siweLogin(http, t.node, keys.operator));
        expect(operator.json).to.include({ operator: true, address: privateKeyToAccount(keys.operator).address });
        // A wallet that is not even a prosumer may sign in (and then gets 422s where it trades).
        const stranger = await login(await siweLogin(http, t.node, randomKey()));
        expect(stranger.json).to.include({ operator: false });
      });

      it("refuses a replayed message: the nonce is spent by the first login", async () => {
        const signed = await siweLogin(http, t.node, keys.seller);
        expect((await login(signed)).status).to.equal(200);
        expectRefused(await login(signed), "message.nonce");
      });

      it("refuses a nonce the node never issued", async () => {
        expectRefused(await login(await siweLogin(http, t.node, keys.seller, { nonce: "notissued12345678" })), "message.nonce");
      });

      it("refuses another domain, and the refused attempt spends the nonce", async () => {
        const nonce = (await http({ url: "/v1/auth/nonce" })).json.nonce as string;
        const res = await login(await siweLogin(http, t.node, keys.seller, { nonce, domain: "evil.example" }));
        expectRefused(res, "message.domain");
        expect(res.json.detail).to.include("evil.example").and.include(appHost);
        expectRefused(await login(await siweLogin(http, t.node, keys.seller, { nonce })), "message.nonce");
      });

      it("refuses another chain id", async () => {
        const res = await login(await siweLogin(http, t.node, keys.seller, { chainId: 1 }));
        expectRefused(res, "message.chainId");
        expect(res.json.detail).to.match(/chain ID 1 is not this node's chain 31337/);
      });

      it("refuses an expired message and one not valid yet (on the wall clock)", async () => {
        expectRefused(await login(await siweLogin(http, t.node, keys.seller, { expirationTime: new Date(wallNow() - 60_000) })), "message.expirationTime");
        expectRefused(await login(await siweLogin(http, t.node, keys.seller, { notBefore: new Date(wallNow() + 60_000) })), "message.notBefore");
        const valid = await login(await siweLogin(http, t.node, keys.seller, { expirationTime: new Date(wallNow() + 60_000), notBefore: new Date(wallNow() - 60_000) }));
        expect(valid.status, valid.text).to.equal(200);
      });

      it("refuses a signature by another key, and one that is no signature at all", async () => {
        const forged = await siweLogin(http, t.node, keys.seller, { signWith: keys.buyer });
        const res = await login(forged);
        expectRefused(res, "signature");
        expect(res.json.detail).to.include(privateKeyToAccount(keys.seller).address);
        const garbage = await siweLogin(http, t.node, keys.seller);
        expectRefused(await login({ ...garbage, signature: "0xdeadbeef" }), "signature");
      });

      it("a malformed login names the field", async () => {
        const notSiwe = await login({ message: "let me in", signature: "0x00" });
        expect(notSiwe.status).to.equal(400);
        expect(notSiwe.json).to.include({ code: "invalid_request", field: "message" });
        const { message } = await siweLogin(http, t.node, keys.seller);
        expect((await login({ message })).json).to.include({ status: 400, code: "invalid_request", field: "signature" });
        expect((await login({ message, signature: "signed" })).json).to.include({ status: 400, field: "signature" });
        expect((await login({ message, signature: "0x00", remember: true })).json).to.include({ status: 400, field: "remember" });
      });

      it("a nonce is good for 10 minutes of the wall clock", async () => {
        const nonce = (await http({ url: "/v1/auth/nonce" })).json.nonce as string;
        wallOffsetMs += 601_000;
        expectRefused(await login(await siweLogin(http, t.node, keys.seller, { nonce })), "message.nonce");
      });

      it("POST /v1/auth/refresh: a new token; the old one stops working", async () => {
        const old = await signIn(http, t.node, keys.seller);
        const res = await http({ method: "POST", url: "/v1/auth/refresh", token: old });
        expect(res.status, res.text).to.equal(200);
        expect(res.json).to.include({ expiresIn: 900, address: privateKeyToAccount(keys.seller).address, operator: false });
        expect(res.json.token).to.not.equal(old);
        expect((await http({ url: "/v1/trading/orders", token: res.json.token })).status).to.equal(200);
        const dead = await http({ url: "/v1/trading/orders", token: old });
        expect(dead.status).to.equal(401);
        expect(dead.json).to.include({ code: "unauthorized", field: "authorization" });
        expect((await http({ method: "POST", url: "/v1/auth/refresh", token: old })).json).to.include({ status: 401, code: "unauthorized" });
        expect((await http({ method: "POST", url: "/v1/auth/refresh" })).json).to.include({ status: 401, code: "unauthorized" });
      });

      it("POST /v1/auth/logout: 204, then the token is dead", async () => {
        const token = await signIn(http, t.node, keys.seller);
        const res = await http({ method: "POST", url: "/v1/auth/logout", token });
        expect(res.status).to.equal(204);
        expect(res.text).to.equal("");
        expect((await http({ url: "/v1/trading/orders", token })).json).to.include({ status: 401, code: "unauthorized" });
        expect((await http({ method: "POST", url: "/v1/auth/logout", token })).status).to.equal(401);
      });

      it("a token expires after TOKEN_TTL_SECONDS of the wall clock: 401 token_expired, also for refresh", async () => {
        frozenAt = Date.now();
        try {
          const token = await signIn(http, t.node, keys.seller);
          const other = await signIn(http, t.node, keys.buyer);
          wallOffsetMs += 899_999;
          expect((await http({ url: "/v1/trading/orders", token })).status).to.equal(200);
          const refreshed = (await http({ method: "POST", url: "/v1/auth/refresh", token: other })).json.token as string;
          wallOffsetMs += 1;
          const expired = await http({ url: "/v1/trading/orders", token });
          expect(expired.status).to.equal(401);
          expect(expired.json).to.include({ code: "token_expired", field: "authorization" });
          expect(expired.json.detail).to.match(/expired/);
          expect((await http({ method: "POST", url: "/v1/auth/refresh", token })).json).to.include({ status: 401 });
          // A refreshed token's lifetime starts at the refresh.
          expect((await http({ url: "/v1/trading/orders", token: refreshed })).status).to.equal(200);
          wallOffsetMs += 899_999;
          expect((await http({ url: "/v1/trading/orders", token: refreshed })).json).to.include({ status: 401, code: "token_expired" });
        } finally {
          frozenAt = undefined;
        }
      });

      it("a sign-in lasts SESSION_MAX_SECONDS at most: refreshes never extend it, then 401 session_expired", async () => {
        frozenAt = Date.now();
        try {
          let token = await signIn(http, t.node, keys.seller);
          // Refreshing every 14 minutes: each new token lives 15, until the hour is nearly up.
          for (let elapsed = 14; elapsed < 60; elapsed += 14) {
            wallOffsetMs += 14 * 60_000;
            const res = await http({ method: "POST", url: "/v1/auth/refresh", token });
            expect(res.status, `refresh at ${elapsed} min: ${res.text}`).to.equal(200);
            // At 56 minutes only 4 are left of the sign-in's hour: the token says so.
            expect(res.json.expiresIn, `at ${elapsed} min`).to.equal(Math.min(900, (SESSION_MAX_MS - elapsed * 60_000) / 1000));
            token = res.json.token;
          }
          wallOffsetMs += 4 * 60_000 - 1;
          expect((await http({ url: "/v1/trading/orders", token })).status).to.equal(200);
          wallOffsetMs += 1;
          const over = await http({ method: "POST", url: "/v1/auth/refresh", token });
          expect(over.status).to.equal(401);
          expect(over.json).to.include({ code: "session_expired", field: "authorization" });
          expect(over.json.detail).to.match(/maximum lifetime of 1 h \(SESSION_MAX_SECONDS\).*sign in again/);
          expect((await http({ url: "/v1/trading/orders", token })).json).to.include({ status: 401, code: "session_expired" });
          // Signing in again starts a new hour.
          expect((await http({ url: "/v1/trading/orders", token: await signIn(http, t.node, keys.seller) })).status).to.equal(200);
        } finally {
          frozenAt = undefined;
        }
      });

      it("the market clock moving 2 days ahead signs nobody out: a token lives its wall-clock TTL, a nonce and a message their wall-clock times", async () => {
        frozenAt = Date.now();
        try {
          const token = await signIn(http, t.node, keys.seller);
          const nonce = (await http({ url: "/v1/auth/nonce" })).json.nonce as string;
          const signed = await siweLogin(http, t.node, keys.buyer, { expirationTime: new Date(wallNow() + 60_000) });
          const before = (await http({ url: "/v1/trading/markets" })).json.now as number;
          marketOffsetMs += TWO_DAYS_MS;
          expect((await http({ url: "/v1/trading/markets" })).json.now - before).to.equal(TWO_DAYS_MS / 1000);
          expect((await http({ url: "/v1/trading/orders", token })).status).to.equal(200);
          expect((await login(await siweLogin(http, t.node, keys.seller, { nonce }))).status).to.equal(200);
          expect((await login(signed)).status).to.equal(200);
          wallOffsetMs += 899_999;
          expect((await http({ url: "/v1/trading/orders", token })).status).to.equal(200);
          wallOffsetMs += 1;
          expect((await http({ url: "/v1/trading/orders", token })).json).to.include({ status: 401, code: "token_expired" });
        } finally {
          frozenAt = undefined;
        }
      });

      it("guards: no token, a malformed header, an unknown token; public routes ignore a bad token", async () => {
        const none = await http({ url: "/v1/trading/orders" });
        expect(none.status).to.equal(401);
        expect(none.json).to.include({ code: "unauthorized", field: "authorization" });
        expect(none.json.detail).to.match(/\/v1\/auth\/login/);
        expect((await http({ url: "/v1/trading/orders", headers: { authorization: "Basic dXNlcjpwYXNz" } })).json).to.include({ status: 401, code: "unauthorized", field: "authorization" });
        expect((await http({ url: "/v1/trading/orders", token: "A".repeat(43) })).json).to.include({ status: 401, code: "unauthorized" });
        expect((await http({ url: "/v1/chain", token: "A".repeat(43) })).status).to.equal(200);
      });

      it("another wallet's order: 403 not_order_maker to read or cancel it; operator routes: 403 operator_only", async () => {
        const buyer = await signIn(http, t.node, keys.buyer);
        const seller = await signIn(http, t.node, keys.seller);
        const now = (await http({ url: "/v1/trading/markets" })).json.now as number;
        const placed = await http({ method: "POST", url: "/v1/trading/orders", token: buyer, body: await signedOrder(chain, keys.buyer, { side: 0, intervalStart: intervalAhead(now), energyWh: 100, price: 90_000 }) });
        expect(placed.status, placed.text).to.equal(201);
        const id = placed.json.orderId as string;
        for (const method of ["GET", "DELETE"] as const) {
          const res = await http({ method, url: `/v1/trading/orders/${id}`, token: seller });
          expect(res.status).to.equal(403);
          expect(res.json).to.include({ code: "not_order_maker", field: "id" });
        }
        expect((await http({ url: `/v1/trading/orders/${id}`, token: buyer })).json.status).to.equal("open");
        const register = await http({ method: "POST", url: "/v1/prosumers", token: seller, body: { address: privateKeyToAccount(randomKey()).address, meterId: "SM-X", zone: "ZONE-A" } });
        expect(register.status).to.equal(403);
        expect(register.json).to.include({ code: "operator_only" });
        expect(register.json.detail).to.include(privateKeyToAccount(keys.seller).address);
      });
    });
  }

  it("the node as started (embedded chain, SIWE_DOMAINS unset): a message naming the phishing site's domain is refused even when the request's Host header names it too", async () => {
    const http = injectClient(t.node.app);
    const phishing = { host: "evil.example" };
    // The nonce route never suggests the Host it was asked under.
    const nonce = await http({ url: "/v1/auth/nonce", headers: phishing });
    expect(nonce.status).to.equal(200);
    expect(nonce.json.domain).to.equal(new URL(t.node.url).host);
    // The victim signs a message on evil.example; the site replays it to the node with its own Host.
    const signed = await siweLogin(http, t.node, keys.seller, { nonce: nonce.json.nonce, domain: "evil.example" });
    const res = await http({ method: "POST", url: "/v1/auth/login", headers: phishing, body: signed });
    expect(res.status, res.text).to.equal(401);
    expect(res.json).to.include({ code: "login_refused", field: "message.domain" });
    expect(res.json.detail).to.include("evil.example").and.include(new URL(t.node.url).host);
    // The node's own address, as it listens (the port was chosen at start-up), is accepted, by
    // either name a browser on this machine uses.
    const port = new URL(t.node.url).port;
    for (const domain of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      const ok = await http({ method: "POST", url: "/v1/auth/login", body: await siweLogin(http, t.node, keys.seller, { domain }) });
      expect(ok.status, `${domain}: ${ok.text}`).to.equal(200);
    }
  });

  it("refresh re-reads the roles from the chain: a registrar whose REGISTRAR_ROLE was revoked gets a token without operator rights, and POST /v1/prosumers refuses even its old token", async () => {
    const http = injectClient(t.node.app);
    const registrar = t.node.testAccounts[3]!;
    const admin = walletOf(t.node.rpcUrl, keys.operator);
    const client = publicClientOf(t.node.rpcUrl);
    const setRole = async (functionName: "grantRole" | "revokeRole") => {
      const hash = await admin.writeContract({ address: chain.contracts.ProsumerRegistry, abi: prosumerRegistryAbi, functionName, args: [roleIds.REGISTRAR_ROLE, registrar.address] });
      expect((await client.waitForTransactionReceipt({ hash })).status).to.equal("success");
    };
    const register = (token: string) => http({
      method: "POST", url: "/v1/prosumers", token, body: { address: privateKeyToAccount(randomKey()).address, meterId: `SM-${Date.now() % 1e9}-${Math.floor(Math.random() * 1e6)}`, zone: "ZONE-A" },
    });
    await setRole("grantRole");
    try {
      const login = await http({ method: "POST", url: "/v1/auth/login", body: await siweLogin(http, t.node, registrar.privateKey) });
      expect(login.json).to.include({ operator: true });
      const token = login.json.token as string;
      const registered = await register(token);
      expect(registered.status, registered.text).to.equal(201);
      await setRole("revokeRole");
      // Its session still says operator, but the route spends the node's registrar key: the role is read on chain.
      const stale = await register(token);
      expect(stale.status, stale.text).to.equal(403);
      expect(stale.json).to.include({ code: "operator_only" });
      expect(stale.json.detail).to.include("no longer holds an operator role");
      const refreshed = await http({ method: "POST", url: "/v1/auth/refresh", token });
      expect(refreshed.status, refreshed.text).to.equal(200);
      expect(refreshed.json).to.include({ operator: false, address: registrar.address });
      const refused = await register(refreshed.json.token);
      expect(refused.status).to.equal(403);
      expect(refused.json).to.include({ code: "operator_only" });
      // Granted again: the next refresh gives operator rights back.
      await setRole("grantRole");
      expect((await http({ method: "POST", url: "/v1/auth/refresh", token: refreshed.json.token })).json).to.include({ operator: true });
    } finally {
      await setRole("revokeRole").catch(() => undefined);
    }
  });

  it("the node as started: sessions run on the wall clock, so moving the market clock 2 days ahead keeps a token", async () => {
    const http = injectClient(t.node.app);
    const token = await signIn(http, t.node, keys.seller);
    marketOffsetMs += TWO_DAYS_MS;
    const res = await http({ url: "/v1/trading/orders", token });
    expect(res.status, res.text).to.equal(200);
  });
});
