// Shared setup for the bridge tests: a real chain (Hardhat's EDR served over HTTP) with the
// platform deployed and prosumers registered, real brokers (embedded Aedes on an ephemeral port,
// plus MQTT_URL when set), real databases (PGlite, plus DATABASE_URL when set, each test in its
// own schema), the real indexer writing into the bridge's database (where the bridge takes its
// trades from), trades settled through signed orders, device clients that publish readings, and
// waits that resolve on the bridge's events instead of sleeping. Every prosumer's meter has an
// Ed25519 key registered on chain, and devices sign the readings they publish with it, as real
// meters must (bridge/readingSignature.ts).
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import type { Kysely } from "kysely";
import mqtt, { type MqttClient } from "mqtt";
import pg from "pg";
import {
  createPublicClient, createWalletClient, getAddress, http, parseEventLogs, stringToHex,
  type Address, type Hex, type PublicClient, type WalletClient,
} from "viem";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { energyMarketAbi, prosumerRegistryAbi, testEuroAbi } from "../../contracts/client/abi.js";
import { deployPlatform, type Deployment } from "../../contracts/client/deploy.js";
import { EnergySource, marketDomain, signOrder, SIDE_BUY, SIDE_SELL, sourceMask, type Order } from "../../contracts/client/order.js";
import type { Trade } from "../../contracts/client/trade.js";
import { createLogger } from "../../lib/logger.js";
import type { BridgeSettings } from "../../bridge/startBridge.js";
import { openBridgeDatabase, type BridgeDatabase } from "../../bridge/database.js";
import { startEmbeddedBroker, type EmbeddedBroker } from "../../bridge/embeddedBroker.js";
import type { BridgeMetrics } from "../../bridge/metrics.js";
import type { Bridge } from "../../bridge/startBridge.js";
import { runIndexer } from "../../indexer/runIndexer.js";
import { migrateIndexerDatabase } from "../../indexer/store/migrate.js";
import type { IndexerDatabase } from "../../indexer/store/schema.js";
import { createChainRpc } from "../../indexer/sync/rpc.js";
import { startLocalChain, type LocalChain } from "../../scripts/localChain.js";
import { createMeterKeyPair, signReading, type MeterPrivateKey, type MeterSigner } from "../../bridge/readingSignature.js";

/** Hardhat's account #2, the meter oracle of `npm start` (a well-known test key). */
export const ORACLE_KEY: Hex = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
export const ZONE = stringToHex("ZONE-WBG", { size: 32 });
export const INTERVAL = 900;
export const PRICE = 250_000n; // 0.25 tEUR per kWh
export const quietLogger = createLogger("bridge-test");

export const testSettings = (overrides: Partial<BridgeSettings> = {}): BridgeSettings => ({
  mqttClientId: `bridge-test-${randomBytes(4).toString("hex")}`,
  topicRoot: `ec-test-${randomBytes(4).toString("hex")}`,
  mqttReconnectMinMs: 50,
  mqttReconnectMaxMs: 400,
  intervalSeconds: INTERVAL,
  graceSeconds: 300,
  maxClockSkewSeconds: 120,
  retentionSeconds: 48 * 3600,
  allocation: "fifo",
  plausibilityMarginPct: 10,
  maxPayloadBytes: 4_096,
  reportBatchSize: 100,
  tickMs: 1_000,
  retryMinMs: 1_000,
  retryMaxMs: 8_000,
  commandAckSeconds: 60,
  ...overrides,
});

// ---------------------------------------------------------------- chain

export interface Prosumer {
  account: PrivateKeyAccount;
  address: Address;
  meterId: string;
  /** The meter's signing key, registered on chain (absent for a prosumer added with `signer: false`). */
  meterKey: MeterPrivateKey | undefined;
  meterSigner: MeterSigner | undefined;
}

/** Every meter key the harness registered, by meter id: what devices sign with. */
const meterKeys = new Map<string, MeterPrivateKey>();

export interface TestChain {
  chain: LocalChain;
  url: string;
  client: PublicClient;
  deployment: Deployment;
  market: Address;
  registry: Address;
  token: Address;
  admin: WalletClient;
  matcher: WalletClient;
  startBlock: bigint;
  chainId: number;
  close(): Promise<void>;
}

export async function startTestChain(): Promise<TestChain> {
  const chain = await startLocalChain({ port: 0 });
  try {
    return await deployTestChain(chain);
  } catch (err) {
    // A failed deployment (a loaded machine timing a request out) must not leave the chain's
    // server open: mocha would wait for it forever after the run.
    await chain.close();
    throw err;
  }
}

async function deployTestChain(chain: LocalChain): Promise<TestChain> {
  const transport = http(chain.url, { batch: { batchSize: 200, wait: 0 }, retryCount: 0 });
  const client = createPublicClient({ chain: hardhat, transport, pollingInterval: 50 }) as PublicClient;
  const accounts = ((await client.request({ method: "eth_accounts" } as never)) as Address[]).map((a) => getAddress(a));
  const admin = createWalletClient({ chain: hardhat, account: accounts[0]!, transport });
  const matcher = createWalletClient({ chain: hardhat, account: accounts[1]!, transport });
  const oracle = privateKeyToAccount(ORACLE_KEY);
  const roles = { admin: accounts[0]!, registrar: accounts[0]!, pauser: accounts[0]!, matcher: accounts[1]!, meterOracle: oracle.address, arbiter: accounts[3]! };
  const deployment = await deployPlatform(admin as never, client as never, { roles, maxNetworkFeePerKWh: 1_000_000n });
  return {
    chain, url: chain.url, client, deployment, admin, matcher,
    market: deployment.contracts.EnergyMarket, registry: deployment.contracts.ProsumerRegistry, token: deployment.contracts.PaymentToken,
    startBlock: BigInt(deployment.blockNumber), chainId: deployment.chainId,
    close: () => chain.close(),
  };
}

async function send(c: TestChain, hash: Promise<Hex>) {
  const receipt = await c.client.waitForTransactionReceipt({ hash: await hash, pollingInterval: 20 });
  if (receipt.status !== "success") throw new Error(`transaction ${receipt.transactionHash} reverted`);
  return receipt;
}

/** Registers a fresh key as an active prosumer with `meterId`; buyers also get tEUR and an allowance. */
export async function addProsumer(c: TestChain, meterId: string, { exportLimitW = 10_000n, importLimitW = 10_000n, buyer = true, signer = true } = {}): Promise<Prosumer> {
  const account = privateKeyToAccount(generatePrivateKey());
  await send(c, c.admin.writeContract({
    address: c.registry, abi: prosumerRegistryAbi, functionName: "registerProsumer",
    args: [account.address, stringToHex(meterId, { size: 32 }), ZONE, exportLimitW, importLimitW, sourceMask(["solar", "storage"])],
  } as never));
  const key = signer ? createMeterKeyPair() : undefined;
  if (key) {
    await send(c, c.admin.writeContract({ address: c.registry, abi: prosumerRegistryAbi, functionName: "setMeterSigner", args: [account.address, key.signer] } as never));
    meterKeys.set(meterId, key.privateKey);
  }
  if (buyer) {
    await c.client.request({ method: "hardhat_setBalance", params: [account.address, "0x56BC75E2D63100000"] } as never);
    await send(c, c.admin.writeContract({ address: c.token, abi: testEuroAbi, functionName: "faucet", args: [account.address, 10_000n * 1_000_000n] } as never));
    const wallet = createWalletClient({ chain: hardhat, account, transport: http(c.url) });
    await send(c, wallet.writeContract({ address: c.token, abi: testEuroAbi, functionName: "approve", args: [c.market, 2n ** 255n] } as never));
  }
  return { account, address: account.address, meterId, meterKey: key?.privateKey, meterSigner: key?.signer };
}

export interface TradeSpec {
  seller: Prosumer;
  buyer: Prosumer;
  energyWh: bigint;
  price?: bigint;
}

let nonce = 1n;

/** Settles one batch (one fill per spec, in order) for the window [start, end); returns the trades. */
export async function settleTrades(c: TestChain, specs: TradeSpec[], deliveryStart: bigint, deliveryEnd: bigint): Promise<Trade[]> {
  const domain = marketDomain(c.chainId, c.market);
  const expiry = BigInt(Math.floor(Date.now() / 1000) + 86_400);
  const orders = [];
  const fills = [];
  for (const [i, s] of specs.entries()) {
    const price = s.price ?? PRICE;
    const common = { zone: ZONE, deliveryStart, deliveryEnd, energyWh: s.energyWh, limitPricePerKWh: price, minSellerReputationBps: 0, expiry };
    const buy: Order = { ...common, maker: s.buyer.address, side: SIDE_BUY, source: 0, acceptedSources: 0, nonce: nonce++ };
    const sell: Order = { ...common, maker: s.seller.address, side: SIDE_SELL, source: EnergySource.solar, acceptedSources: 0, nonce: nonce++ };
    orders.push({ order: buy, signature: await signOrder(s.buyer.account, buy, domain) });
    orders.push({ order: sell, signature: await signOrder(s.seller.account, sell, domain) });
    fills.push({ buyIndex: 2 * i, sellIndex: 2 * i + 1, energyWh: s.energyWh, pricePerKWh: price });
  }
  const receipt = await send(c, c.matcher.writeContract({ address: c.market, abi: energyMarketAbi, functionName: "settleBatch", args: [orders, fills] } as never));
  const executed = parseEventLogs({ abi: energyMarketAbi, logs: receipt.logs, eventName: "TradeExecuted" });
  if (executed.length !== specs.length) {
    const rejected = parseEventLogs({ abi: energyMarketAbi, logs: receipt.logs, eventName: "FillRejected" });
    throw new Error(`settleBatch executed ${executed.length} of ${specs.length} fills; rejected: ${rejected.map((r) => r.args.reason).join(",")}`);
  }
  return executed.map((e) => ({ ...e.args, communityFeeBps: 0, networkFeePerKWh: 0n }));
}

/** Every DeliveryConfirmed and DisputeOpened the market emitted, by trade id. */
export async function deliveryEvents(c: TestChain) {
  const confirmed = await c.client.getContractEvents({ address: c.market, abi: energyMarketAbi, eventName: "DeliveryConfirmed", fromBlock: c.startBlock, strict: true });
  const disputes = await c.client.getContractEvents({ address: c.market, abi: energyMarketAbi, eventName: "DisputeOpened", fromBlock: c.startBlock, strict: true });
  const settled = await c.client.getContractEvents({ address: c.market, abi: energyMarketAbi, eventName: "TradeSettled", fromBlock: c.startBlock, strict: true });
  return {
    confirmed: confirmed.map((l) => l.args),
    disputes: disputes.map((l) => l.args),
    settled: settled.map((l) => l.args),
  };
}

/** A delivery window that ended at least `ago` intervals before now (wall clock), on the grid. */
export function pastWindow(intervalsAgo = 2): { start: bigint; end: bigint; startMs: number; endMs: number } {
  const now = Math.floor(Date.now() / 1000);
  const start = Math.floor(now / INTERVAL) * INTERVAL - intervalsAgo * INTERVAL;
  return { start: BigInt(start), end: BigInt(start + INTERVAL), startMs: start * 1000, endMs: (start + INTERVAL) * 1000 };
}

// ---------------------------------------------------------------- brokers

export interface BrokerTarget {
  name: string;
  /** Starts (embedded) or names (MQTT_URL) a broker. */
  start(): Promise<{ url: string; close(): Promise<void> }>;
}

export function brokerTargets(): BrokerTarget[] {
  const targets: BrokerTarget[] = [
    {
      name: "embedded Aedes",
      start: async () => {
        const b = await startEmbeddedBroker({ port: 0 });
        return { url: b.url, close: () => b.close() };
      },
    },
  ];
  const external = process.env.MQTT_URL;
  if (external) targets.push({ name: `Mosquitto (MQTT_URL=${external})`, start: async () => ({ url: external, close: async () => {} }) });
  return targets;
}

export async function restartableAedes(): Promise<{ url: string; port: number; broker: EmbeddedBroker; restart(during?: () => Promise<void>): Promise<void>; close(): Promise<void> }> {
  let broker = await startEmbeddedBroker({ port: 0 });
  const port = broker.port;
  return {
    url: broker.url, port, get broker() { return broker; },
    async restart(during) {
      const persistence = broker.persistence;
      await broker.close();
      await during?.();
      broker = await startEmbeddedBroker({ port, persistence });
    },
    close: () => broker.close(),
  };
}

// Device and watcher clients reconnect forever; one left open by a failing test would keep the
// test process alive. Every one is closed after the run (a root-level mocha hook).
const openClients = new Set<MqttClient>();
if (typeof after === "function") {
  after(async () => {
    await Promise.all([...openClients].map((c) => c.endAsync(true).catch(() => {})));
    openClients.clear();
  });
}

export interface Device {
  client: MqttClient;
  /**
   * Publishes `payload` (QoS 1). An object on a reading topic of a meter the harness keyed is
   * signed with that meter's key first, as the meter would; `sign: false` sends it as it is (an
   * accomplice without the key), a key signs with that key instead. Strings and buffers go as they are.
   */
  publish(topic: string, payload: unknown, options?: { sign?: false | MeterPrivateKey }): Promise<void>;
  close(): Promise<void>;
}

/** Where a reading topic names its meter and metric: `{root}/{region}/smart-meter/{meterId}/{metric}`. */
function readingTopicParts(topic: string): { meterId: string; metric: string } | undefined {
  const parts = topic.split("/");
  if (parts.length !== 5 || parts[2] !== "smart-meter" || !["interval", "export", "import"].includes(parts[4]!)) return undefined;
  return { meterId: parts[3]!, metric: parts[4]! };
}

/**
 * `payload` as the meter of `topic` would publish it: signed with its registered key (or `key`).
 * A JSON string is signed too (and re-serialised); anything that is not a JSON object, or whose
 * meter has no key here, comes back unchanged.
 */
export function signedPayload(topic: string, payload: unknown, key?: MeterPrivateKey): string | Buffer {
  let body = payload;
  if (typeof payload === "string") {
    try {
      body = JSON.parse(payload);
    } catch {
      return payload;
    }
  }
  const where = readingTopicParts(topic);
  const privateKey = key ?? (where ? meterKeys.get(where.meterId) : undefined);
  if (Buffer.isBuffer(payload) || !where || !privateKey || typeof body !== "object" || body === null || Array.isArray(body)) {
    return typeof payload === "string" || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
  }
  return JSON.stringify(signReading({ meterId: where.meterId, metric: where.metric, payload: body as Record<string, unknown>, privateKey }));
}

export async function connectDevice(url: string, options: mqtt.IClientOptions = {}): Promise<Device> {
  const client = await mqtt.connectAsync(url, { clientId: `device-${randomBytes(4).toString("hex")}`, reconnectPeriod: 50, ...options });
  client.on("error", () => {});
  openClients.add(client);
  return {
    client,
    publish: async (topic, payload, options = {}) => {
      const raw = typeof payload === "string" || Buffer.isBuffer(payload) ? payload : options.sign === false ? JSON.stringify(payload) : signedPayload(topic, payload, options.sign);
      await client.publishAsync(topic, raw, { qos: 1 });
    },
    close: () => client.endAsync(true),
  };
}

/** Drops a persistent session from a shared broker, so test runs leave nothing queued behind. */
export async function dropSession(url: string, clientId: string): Promise<void> {
  const c = await mqtt.connectAsync(url, { clientId, clean: true, reconnectPeriod: 0 });
  await c.endAsync(true);
}

export function readingTopic(root: string, meterId: string, metric: string, region = "wbg"): string {
  return `${root}/${region}/smart-meter/${meterId}/${metric}`;
}

export function intervalReading(startMs: number, exportWh: number, importWh: number, extra: Record<string, unknown> = {}) {
  return {
    interval_start: new Date(startMs).toISOString(), interval_minutes: INTERVAL / 60,
    export_kwh: exportWh / 1000, import_kwh: importWh / 1000, generation_kwh: exportWh / 1000, consumption_kwh: importWh / 1000,
    battery_soc_pct: 50, ...extra,
  };
}

export function counterReading(atMs: number, wh: number, unit: "Wh" | "kWh" = "Wh") {
  return { timestamp: new Date(atMs).toISOString(), value: unit === "Wh" ? wh : wh / 1000, unit, quality: "high" };
}

// ---------------------------------------------------------------- databases

export interface DatabaseTarget {
  name: string;
  open(): Promise<{ db: Awaited<ReturnType<typeof openBridgeDatabase>>["db"]; url?: string; close(): Promise<void> }>;
}

/** A PostgreSQL URL whose connections use `schema`: every test gets its own tables. */
export function urlWithSchema(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set("options", `-c search_path=${schema}`);
  return u.toString();
}

export async function createSchema(url: string): Promise<{ schema: string; drop(): Promise<void> }> {
  const schema = `bridge_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  return {
    schema,
    drop: async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`drop schema if exists ${schema} cascade`);
      await c.end();
    },
  };
}

export function databaseTargets(): DatabaseTarget[] {
  const targets: DatabaseTarget[] = [
    {
      name: "PGlite",
      open: async () => {
        const d = await openBridgeDatabase({});
        return { db: d.db, close: d.close };
      },
    },
  ];
  const url = process.env.DATABASE_URL;
  if (url) {
    targets.push({
      name: "PostgreSQL (DATABASE_URL)",
      open: async () => {
        const s = await createSchema(url);
        const scoped = urlWithSchema(url, s.schema);
        const d = await openBridgeDatabase({ url: scoped });
        return { db: d.db, url: scoped, close: async () => { await d.close(); await s.drop(); } };
      },
    });
  }
  return targets;
}

// ---------------------------------------------------------------- waiting on the bridge

/**
 * Resolves once `predicate(metrics)` holds, checked now and after every commit, decision and
 * report the bridge announces. The timeout only turns a hang into a readable failure.
 */
export async function waitForMetrics(bridge: Bridge, predicate: (m: BridgeMetrics) => boolean, what: string, timeoutMs = 30_000): Promise<BridgeMetrics> {
  if (predicate(bridge.metrics())) return bridge.metrics();
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = bridge.metrics();
      if (predicate(m)) {
        cleanup();
        resolve(m);
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${what}; metrics: ${JSON.stringify(bridge.metrics())}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      for (const e of ["committed", "decided", "reported", "mqttConnected"] as const) bridge.events.off(e, check);
    };
    for (const e of ["committed", "decided", "reported", "mqttConnected"] as const) bridge.events.on(e, check);
  });
}

/** Collects messages on `filter` (e.g. dead letters) with a way to wait for the n-th one. */
export async function collectMessages(url: string, filter: string) {
  const client = await mqtt.connectAsync(url, { clientId: `watcher-${randomBytes(4).toString("hex")}`, reconnectPeriod: 50 });
  openClients.add(client);
  const messages: { topic: string; payload: Record<string, unknown> }[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  client.on("message", (topic, payload) => {
    messages.push({ topic, payload: JSON.parse(payload.toString()) as Record<string, unknown> });
    for (const w of waiters.filter((w) => messages.length >= w.n)) w.resolve();
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return {
    messages,
    async waitForCount(n: number, timeoutMs = 20_000) {
      if (messages.length >= n) return;
      await Promise.race([
        new Promise<void>((resolve) => waiters.push({ n, resolve })),
        new Promise<void>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${n} messages on ${filter}; have ${messages.length}`)), timeoutMs).unref()),
      ]);
    },
    close: () => client.endAsync(true),
  };
}

export { once };

// ---------------------------------------------------------------- the indexer the bridge reads

/** The bridge's database seen as the indexer's: one database holds both parts' tables, as in the node. */
export function asIndexerDatabase(db: Kysely<BridgeDatabase>): Kysely<IndexerDatabase> {
  return db as unknown as Kysely<IndexerDatabase>;
}

const indexerMigrated = new WeakSet<object>();

/**
 * Indexes the chain into `db` up to its current head, as the node's indexer does while it
 * follows, but as one call ("once" mode): what a test does next sees every block mined so far,
 * without polling. Rejects as the indexer stops (DeepReorgError on a reorg deeper than the depth).
 */
export async function indexTestChain(chain: TestChain, db: Kysely<BridgeDatabase>, finalityDepth: number): Promise<void> {
  const indexerDb = asIndexerDatabase(db);
  if (!indexerMigrated.has(db)) {
    await migrateIndexerDatabase(indexerDb);
    indexerMigrated.add(db);
  }
  await runIndexer({
    db: indexerDb, rpc: createChainRpc({ url: chain.url, maxRetries: 2, backoffMs: 20 }), chainId: chain.chainId,
    contracts: { EnergyMarket: chain.market, ProsumerRegistry: chain.registry }, startBlock: chain.startBlock, finalityDepth,
    pollIntervalMs: 20, logRange: { initial: 1_000, max: 10_000 }, mode: "once", logger: quietLogger,
  });
}

// ---------------------------------------------------------------- the bridge under test

export async function startTestBridge(p: {
  chain: TestChain;
  mqttUrl: string;
  db: Parameters<typeof import("../../bridge/startBridge.js").startBridge>[0]["db"];
  settings: BridgeSettings;
  clock: () => number;
  /** A different way to the chain (a fault-injecting proxy); the indexer keeps the direct one. */
  rpcUrl?: string;
  /** FINALITY_DEPTH; 0 (the node's on its embedded chain) unless a test is about finality. */
  finalityDepth?: number;
  /** Let the indexer catch up before each tick (default); false: the test calls indexTestChain itself. */
  indexBeforeTick?: boolean;
}): Promise<Bridge> {
  const finalityDepth = p.finalityDepth ?? 0;
  const { startBridge } = await import("../../bridge/startBridge.js");
  const client = p.rpcUrl
    ? (createPublicClient({ chain: hardhat, transport: http(p.rpcUrl, { batch: { batchSize: 200, wait: 0 }, retryCount: 0, timeout: 5_000 }), pollingInterval: 50 }) as PublicClient)
    : p.chain.client;
  const bridge = await startBridge({
    settings: p.settings, mqttUrl: p.mqttUrl, db: p.db, client, oracle: privateKeyToAccount(ORACLE_KEY),
    market: p.chain.market, registry: p.chain.registry, startBlock: p.chain.startBlock, chainId: p.chain.chainId,
    logger: quietLogger, clock: p.clock, autoTick: false, indexer: { db: asIndexerDatabase(p.db), finalityDepth },
  });
  await bridge.ready;
  if (p.indexBeforeTick === false) return bridge;
  // Each tick first lets the indexer catch up with the chain, as the node's would have by then.
  return {
    ...bridge,
    tick: async () => {
      await indexTestChain(p.chain, p.db, finalityDepth);
      await bridge.tick();
    },
  };
}
