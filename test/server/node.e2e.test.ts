// The node as a user meets it: started the way `npm start` does (a child process running
// scripts/start.ts), driven only through its printed banner, its HTTP API, its JSON-RPC and
// MQTT, with nothing of this project's code: a viem wallet signs in (SIWE), signs orders from
// GET /v1/chain and approves tEUR; a plain MQTT client publishes the meters' interval readings.
// The trades must come back settled, confirmed on-chain by the bridge, indexed, and delivered in
// GET /v1/trading/history. Then SIGINT must stop the node cleanly (exit code 0).
// Time: NODE_CLOCK=chain makes the node follow block time, which the test moves with
// evm_increaseTime + evm_mine instead of waiting for a real delivery interval.
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import pg from "pg";
import { createPublicClient, createWalletClient, defineChain, erc20Abi, http, maxUint256, type Address, type Hex, type TypedDataDomain } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { createSiweMessage } from "viem/siwe";
import { signReading } from "../../bridge/readingSignature.js";
import { freePort } from "../../lib/listenOnPort.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

interface Banner {
  api: string;
  rpcUrl: string;
  mqttUrl: string;
  chainId: number;
  accounts: { address: Address; zone: string; meterId: string; key: Hex }[];
  /** Printed for the embedded chain only. */
  operatorKey: Hex;
}

interface RunningChild {
  child: ChildProcess;
  banner: Banner;
  output: () => string;
  exited: Promise<number | null>;
}

function parseBanner(text: string): Banner {
  const grab = (re: RegExp) => {
    const m = re.exec(text);
    if (!m) throw new Error(`banner has no ${re}:\n${text}`);
    return m[1]!;
  };
  const accounts = [...text.matchAll(/^\s+(0x[0-9a-fA-F]{40})\s+(\S+)\s+meter (\S+)\s+key (0x[0-9a-f]{64})$/gm)].map((m) => ({
    address: m[1] as Address, zone: m[2]!, meterId: m[3]!, key: m[4] as Hex,
  }));
  return {
    api: grab(/^\s+API\s+(http:\/\/\S+)\/v1\b/m), rpcUrl: grab(/^\s+JSON-RPC\s+(http:\/\/\S+)/m), mqttUrl: grab(/^\s+MQTT\s+(mqtts?:\/\/\S+)/m),
    chainId: Number(grab(/^\s+chain id\s+(\d+)/m)), accounts, operatorKey: grab(/^\s+operator\s+\S+ \(registrar\/admin\)\s+key (0x[0-9a-f]{64})$/m) as Hex,
  };
}

/** `npm start` in a child process; resolves once its banner is printed. Ports are picked free
 *  here (the node is told them, as a user would); a port taken in between is retried. */
async function startChild(env: Record<string, string>): Promise<RunningChild> {
  for (let attempt = 1; ; attempt++) {
    const ports = { PORT: String(await freePort()), CHAIN_PORT: String(await freePort()), MQTT_PORT: String(await freePort()) };
    const childEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      // The node reads these; only what this test says may reach it.
      if (v !== undefined && !/^(DATABASE_URL|MQTT_URL|CHAIN_RPC_URL|CONFIG_FILE|BRIDGE_.*|RATE_LIMIT_.*|PORT|HOST|.*_PRIVATE_KEY)$/.test(k)) childEnv[k] = v;
    }
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
      cwd: root, env: { ...childEnv, ...ports, NODE_CLOCK: "chain", LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? "warn", TEST_ACCOUNTS: "4", ...env }, stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const started = await new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner within 90 s; output:\n${out}`)), 90_000);
      const check = () => {
        if (out.includes("Ctrl-C stops everything.")) {
          clearTimeout(timer);
          child.stdout!.off("data", check);
          resolve(true);
        }
      };
      child.stdout!.on("data", check);
      void exited.then((code) => {
        clearTimeout(timer);
        resolve(false);
        void code;
      });
    });
    if (started) {
      const banner = parseBanner(out);
      expect(new URL(banner.api).port).to.equal(ports.PORT);
      expect(new URL(banner.rpcUrl).port).to.equal(ports.CHAIN_PORT);
      if (!env.MQTT_URL) expect(new URL(banner.mqttUrl).port).to.equal(ports.MQTT_PORT);
      return { child, banner, output: () => out, exited };
    }
    if (attempt < 3 && /already in use/.test(out)) continue;
    throw new Error(`the node exited before printing its banner:\n${out}`);
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = `: ${(err as Error).message}`;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** One end-to-end run against a started child; `topicRoot` is the bridge's MQTT topic root. */
async function tradeDeliverAndStop(node: RunningChild, topicRoot: string): Promise<void> {
  const { banner } = node;
  const api = async (pathname: string, init: { method?: string; token?: string; body?: unknown } = {}) => {
    const res = await fetch(`${banner.api}${pathname}`, {
      method: init.method ?? "GET",
      headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...(init.body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined, text };
  };
  const rpc = async (method: string, params: unknown[] = []) => {
    const res = await fetch(banner.rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
    const body = (await res.json()) as { result?: unknown; error?: { message: string } };
    if (body.error) throw new Error(`${method}: ${body.error.message}`);
    return body.result;
  };
  const chainNow = async () => Number(BigInt(((await rpc("eth_getBlockByNumber", ["latest", false])) as { timestamp: Hex }).timestamp));
  /** Moves block time to at least `target` (unix seconds) and waits for the node's clock to follow. */
  const moveChainTimeTo = async (target: number) => {
    const delta = target - (await chainNow());
    if (delta > 0) await rpc("evm_increaseTime", [delta]);
    await rpc("evm_mine");
    await waitFor(`the node's clock to reach ${target}`, async () => ((await api("/v1/trading/markets?zone=ZONE-A")).json.now >= target ? true : undefined), 10_000, 100);
  };

  // What a wallet needs, from the node itself.
  const chainInfo = (await api("/v1/chain")).json as {
    chainId: number; contracts: { EnergyMarket: Address; PaymentToken: Address };
    eip712: { domain: TypedDataDomain; types: Record<string, { name: string; type: string }[]> }; markets: { zone: string; zoneId: Hex }[];
  };
  expect(chainInfo.chainId).to.equal(banner.chainId);
  const chain = defineChain({ id: banner.chainId, name: "node under test", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [banner.rpcUrl] } } });
  const publicClient = createPublicClient({ chain, transport: http(banner.rpcUrl), pollingInterval: 100 });
  const zoneA = banner.accounts.filter((a) => a.zone === "ZONE-A");
  expect(zoneA.length).to.be.at.least(2);
  const [seller, buyer] = [zoneA[0]!, zoneA[1]!];

  const signIn = async (key: Hex) => {
    const account = privateKeyToAccount(key);
    const { nonce } = (await api("/v1/auth/nonce")).json as { nonce: string };
    const domain = new URL(banner.api).host;
    const message = createSiweMessage({ address: account.address, chainId: banner.chainId, domain, nonce, uri: banner.api, version: "1" });
    const res = await api("/v1/auth/login", { method: "POST", body: { message, signature: await account.signMessage({ message }) } });
    expect(res.status, res.text).to.equal(200);
    return res.json.token as string;
  };
  const tokens = { seller: await signIn(seller.key), buyer: await signIn(buyer.key) };

  // The buyer lets the market take the trades' price into escrow.
  const buyerWallet = createWalletClient({ chain, transport: http(banner.rpcUrl), account: privateKeyToAccount(buyer.key) });
  const approval = await buyerWallet.writeContract({ address: chainInfo.contracts.PaymentToken, abi: erc20Abi, functionName: "approve", args: [chainInfo.contracts.EnergyMarket, maxUint256] });
  expect((await publicClient.waitForTransactionReceipt({ hash: approval })).status).to.equal("success");
  const balanceBefore = await publicClient.readContract({ address: chainInfo.contracts.PaymentToken, abi: erc20Abi, functionName: "balanceOf", args: [buyer.address] });
  const sellerBalanceBefore = await publicClient.readContract({ address: chainInfo.contracts.PaymentToken, abi: erc20Abi, functionName: "balanceOf", args: [seller.address] });

  const now = (await api("/v1/trading/markets")).json.now as number;
  expect(Math.abs(now - (await chainNow()))).to.be.below(30);
  // The first interval whose gate (5 minutes before it) is still well ahead.
  const interval = (Math.floor((now + 600) / 900) + 1) * 900;
  const zoneId = chainInfo.markets.find((m) => m.zone === "ZONE-A")!.zoneId;
  const order = async (key: Hex, side: 0 | 1, energyWh: number, price: number) => {
    const account = privateKeyToAccount(key);
    const nonce = BigInt(`0x${randomBytes(8).toString("hex")}`);
    const message = {
      maker: account.address, side, zone: zoneId, deliveryStart: BigInt(interval), deliveryEnd: BigInt(interval + 900), energyWh: BigInt(energyWh),
      limitPricePerKWh: BigInt(price), source: side === 1 ? 1 : 0, acceptedSources: 0, minSellerReputationBps: 0, nonce, expiry: BigInt(interval),
    };
    const signature = await account.signTypedData({ domain: chainInfo.eip712.domain, types: chainInfo.eip712.types, primaryType: "Order", message } as never);
    const body = { order: { ...message, zone: "ZONE-A", deliveryStart: interval, deliveryEnd: interval + 900, energyWh, limitPricePerKWh: price, nonce: nonce.toString(), expiry: interval }, signature };
    const res = await api("/v1/trading/orders", { method: "POST", token: side === 1 ? tokens.seller : tokens.buyer, body });
    expect(res.status, res.text).to.equal(201);
    return res.json as { orderId: Hex; status: string; fills: { energyWh: number; pricePerKWh: number }[] };
  };
  expect((await order(seller.key, 1, 600, 200_000)).status).to.equal("open");
  expect((await order(seller.key, 1, 400, 205_000)).status).to.equal("open");
  const bought = await order(buyer.key, 0, 1_000, 210_000);
  expect(bought.status).to.equal("filled");
  expect(bought.fills.map((f) => [f.energyWh, f.pricePerKWh])).to.deep.equal([[600, 200_000], [400, 205_000]]);

  // Settled on-chain by the node's matcher...
  const settled = await waitFor("both fills to settle on-chain", async () => {
    const r = await api(`/v1/trading/orders/${bought.orderId}`, { token: tokens.buyer });
    const fills = r.json.fills as { status: string; tradeId?: string }[];
    if (fills.some((f) => f.status === "failed")) throw new Error(`a fill failed: ${r.text}`);
    return fills.every((f) => f.status === "executed") ? fills.map((f) => f.tradeId!) : undefined;
  }, 30_000);
  const paid = balanceBefore - (await publicClient.readContract({ address: chainInfo.contracts.PaymentToken, abi: erc20Abi, functionName: "balanceOf", args: [buyer.address] }));
  expect(paid).to.equal(600n * 200_000n / 1000n + 400n * 205_000n / 1000n);
  // ...and indexed.
  const history = async (token: string) => ((await api("/v1/trading/history", { token })).json.trades as { tradeId: string; status: string; role: string; energyWh: string; deliveredWh: string | null }[])
    .filter((x) => settled.includes(x.tradeId));
  await waitFor("the trades in the buyer's history", async () => ((await history(tokens.buyer)).length === 2 ? true : undefined), 30_000);
  expect((await history(tokens.buyer)).map((x) => [x.status, x.role])).to.deep.equal([["executed", "buyer"], ["executed", "buyer"]]);

  // The delivery interval passes (block time jumps to its end); the meters report it.
  await moveChainTimeTo(interval + 900 + 1);
  // Each meter logs in with the credential GET /v1/chain/test-accounts shows for it and signs its
  // readings with its key; dead letters are watched with a monitor credential an operator issues.
  const testAccounts = (await api("/v1/chain/test-accounts")).json.accounts as { meterId: string; meterKey: Hex; mqtt: { username: string; password: string } }[];
  const meterOf = (meterId: string) => testAccounts.find((a) => a.meterId === meterId)!;
  const operatorToken = await signIn(banner.operatorKey);
  const monitor = await api("/v1/devices", { method: "POST", token: operatorToken, body: { deviceId: `e2e-monitor-${randomBytes(3).toString("hex")}`, deviceType: "monitor" } });
  expect(monitor.status, monitor.text).to.equal(201);
  const login = (c: { username: string; password: string }) => ({ username: c.username, password: c.password });
  const watcher = await mqtt.connectAsync(banner.mqttUrl, { clean: true, reconnectPeriod: 0, ...login(monitor.json) });
  const [sellerMeter, buyerMeter] = await Promise.all([seller, buyer].map((p) =>
    mqtt.connectAsync(banner.mqttUrl, { clientId: `e2e-${p.meterId}-${randomBytes(4).toString("hex")}`, clean: true, reconnectPeriod: 0, ...login(meterOf(p.meterId).mqtt) })));
  const meters = { endAsync: () => Promise.all([watcher, sellerMeter!, buyerMeter!].map((c) => c.endAsync())) };
  try {
    const deadLetters: string[] = [];
    await watcher.subscribeAsync(`${topicRoot}/dead-letter/#`, { qos: 1 });
    watcher.on("message", (topic, payload) => deadLetters.push(`${topic}: ${payload.toString()}`));
    const reading = (meterId: string, exportKWh: number, importKWh: number) => JSON.stringify(signReading({
      meterId, metric: "interval", privateKey: meterOf(meterId).meterKey,
      payload: {
        interval_start: new Date(interval * 1000).toISOString(), interval_minutes: 15, export_kwh: exportKWh, import_kwh: importKWh,
        generation_kwh: exportKWh + 0.3, consumption_kwh: importKWh + 0.3,
      },
    }));
    await sellerMeter!.publishAsync(`${topicRoot}/e2e/smart-meter/${seller.meterId}/interval`, reading(seller.meterId, 1.25, 0), { qos: 1 });
    await buyerMeter!.publishAsync(`${topicRoot}/e2e/smart-meter/${buyer.meterId}/interval`, reading(buyer.meterId, 0, 1.1), { qos: 1 });
    // Both readings stored before the window may close (the bridge decides at end + grace).
    await waitFor("the bridge to accept both readings", async () => {
      if (deadLetters.length > 0) throw new Error(`dead-lettered: ${deadLetters.join("; ")}`);
      const metrics = (await fetch(`${banner.api}/metrics`).then((r) => r.text()));
      return Number(/^bridge_accepted (\d+)/m.exec(metrics)?.[1] ?? 0) >= 2 ? true : undefined;
    }, 15_000);
    expect(deadLetters).to.deep.equal([]);
  } finally {
    await meters.endAsync();
  }

  // Past the bridge's grace period (300 s): it decides, reports on-chain, the indexer sees it.
  await moveChainTimeTo(interval + 900 + 300 + 2);
  // Tokens live 15 minutes of the wall clock, not of the node's clock (block time here), which
  // just moved 25: nobody was signed out.
  const still = await api("/v1/trading/history", { token: tokens.buyer });
  expect(still.status, still.text).to.equal(200);
  // A report within the market's tolerance confirms the delivery and releases the escrow in the
  // same transaction (DeliveryConfirmed, then TradeSettled): history shows the trade delivered
  // in full and its status past "delivered", at "settled".
  let seen: unknown;
  const delivered = await waitFor("the trades' delivery in history", async () => {
    const trades = await history(tokens.buyer);
    seen = trades;
    return trades.length === 2 && trades.every((x) => x.deliveredWh !== null && (x.status === "delivered" || x.status === "settled")) ? trades : undefined;
  }, 60_000, 250).catch((err: Error) => {
    throw new Error(`${err.message}; last seen: ${JSON.stringify(seen)}`);
  });
  expect(delivered.map((x) => [x.energyWh, x.deliveredWh, x.status]).sort()).to.deep.equal([["400", "400", "settled"], ["600", "600", "settled"]]);
  expect((await history(tokens.seller)).map((x) => [x.status, x.role])).to.deep.equal([["settled", "seller"], ["settled", "seller"]]);
  const sellerGot = (await publicClient.readContract({ address: chainInfo.contracts.PaymentToken, abi: erc20Abi, functionName: "balanceOf", args: [seller.address] })) - sellerBalanceBefore;
  expect(sellerGot > 0n && sellerGot <= paid, `seller received ${sellerGot} of ${paid}`).to.equal(true);
  const health = await api("/healthz");
  expect(health.status, health.text).to.equal(200);

  // Ctrl-C: a clean stop.
  node.child.kill("SIGINT");
  const code = await Promise.race([node.exited, new Promise<string>((r) => setTimeout(() => r("still running after 30 s"), 30_000).unref())]);
  expect(code, node.output()).to.equal(0);
}

describe("node end to end: npm start as a child process, driven by viem, fetch and MQTT", function () {
  this.timeout(240_000);
  const cleanups: (() => Promise<unknown>)[] = [];
  let running: RunningChild | undefined;

  afterEach(async function () {
    if (this.currentTest?.state === "failed" && running) console.log(`--- the node's output:\n${running.output().slice(-20_000)}`);
    if (running && running.child.exitCode === null && running.child.signalCode === null) {
      running.child.kill("SIGKILL");
      await running.exited;
    }
    running = undefined;
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function tempDirs() {
    const dir = await mkdtemp(path.join(tmpdir(), "node-e2e-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return { DATA_DIR: path.join(dir, "data"), DEPLOYMENTS_DIR: path.join(dir, "deployments") };
  }

  it("embedded chain, PGlite and Aedes: orders settle, the meters' readings confirm delivery, history shows the trades delivered and paid out", async () => {
    running = await startChild(await tempDirs());
    await tradeDeliverAndStop(running, "energy-cloud");
  });

  it("with PostgreSQL (DATABASE_URL, a fresh database) and Mosquitto (MQTT_URL, its own topic root)", async function () {
    const databaseUrl = process.env.DATABASE_URL;
    const mqttUrl = process.env.MQTT_URL;
    if (!databaseUrl || !mqttUrl) {
      console.log("      (skipped: set DATABASE_URL and MQTT_URL to run the node against PostgreSQL and an MQTT broker)");
      this.skip();
    }
    // A shared database keeps tables between runs: each run gets a database of its own.
    const suffix = randomBytes(6).toString("hex");
    const name = `node_e2e_${suffix}`;
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    cleanups.push(async () => {
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    });
    const url = new URL(databaseUrl);
    url.pathname = `/${name}`;
    // Its own topic root and session: other users of the broker neither see nor feed this node.
    const topicRoot = `e2e-${suffix}`;
    const clientId = `node-e2e-${suffix}`;
    cleanups.push(async () => {
      // The bridge's session is persistent (clean: false); end it on the broker.
      const c = await mqtt.connectAsync(mqttUrl, { clientId, clean: true, reconnectPeriod: 0 });
      await c.endAsync();
    });
    running = await startChild({ ...(await tempDirs()), DATABASE_URL: url.toString(), MQTT_URL: mqttUrl, BRIDGE_TOPIC_ROOT: topicRoot, BRIDGE_MQTT_CLIENT_ID: clientId });
    expect(running.output()).to.match(/database\s+postgres/);
    expect(running.banner.mqttUrl).to.equal(mqttUrl);
    await tradeDeliverAndStop(running, topicRoot);
  });
});
