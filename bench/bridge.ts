// `npm run bench:bridge [-- --json] [-- --quick] [-- --households 2200 --rate 25000 --seconds 10
// --connections 4 --batch 100] [-- --skip-throughput] [-- --skip-settlement]`
// (`--meters` is the older name of `--households`: one smart meter each.)
//
// The meter bridge under load, end to end on real parts: a Mosquitto (our own process with a
// bench config, or MQTT_URL), the embedded chain over HTTP, PGlite (or DATABASE_URL), and the
// indexer following the chain in this process (the bridge takes its trades from its tables).
//   1. throughput: a separate publisher process sends register readings for every meter over
//      several MQTT connections at a paced rate; we count readings the bridge has committed to
//      its database (accepted, i.e. PUBACK-able) per second, end to end;
//   2. settlement: 2,200 households (half sellers, half buyers, two trades per seller) settle
//      one interval on-chain; their interval readings arrive; then the window's grace period
//      ends and we time the bridge from that instant to every trade's report mined.
// Prints a table, or one JSON object with --json. `--quick` (a CI check): 200 households,
// 2,000 readings/s for 2 s; the same phases on the same parts.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Kysely } from "kysely";
import mqtt from "mqtt";
import pg from "pg";
import { pino } from "pino";
import {
  createPublicClient, createWalletClient, custom, encodeFunctionData, getAddress, http, parseEventLogs, stringToHex,
  type Address, type Hex, type PublicClient,
} from "viem";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { energyMarketAbi, prosumerRegistryAbi, testEuroAbi } from "../contracts/client/abi.js";
import { deployPlatform } from "../contracts/client/deploy.js";
import { EnergySource, marketDomain, signOrder, SIDE_BUY, SIDE_SELL, sourceMask, type Order } from "../contracts/client/order.js";
import { openBridgeDatabase } from "../bridge/database.js";
import { totalDeadLettered } from "../bridge/metrics.js";
import { deriveMeterKeyPair, signReading, type MeterKeyPair } from "../bridge/readingSignature.js";
import { startEmbeddedBroker } from "../bridge/embeddedBroker.js";
import { startBridge, type BridgeSettings } from "../bridge/startBridge.js";
import { runIndexer } from "../indexer/runIndexer.js";
import { getCheckpoint } from "../indexer/store/checkpoints.js";
import { migrateIndexerDatabase } from "../indexer/store/migrate.js";
import type { IndexerDatabase } from "../indexer/store/schema.js";
import { createChainRpc } from "../indexer/sync/rpc.js";
import { startLocalChain } from "../scripts/localChain.js";
import { readBenchArgs, size, toggle } from "./benchArgs.js";
import { freePort } from "../lib/listenOnPort.js";

/** Benchmark accounts trade far more in one interval than a household connection carries; the
 *  market enforces connection limits (settleBatch, intake), so bench accounts get 1 GW each way. */
const BENCH_CONNECTION_W = 1_000_000_000n;

const ORACLE_KEY: Hex = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"; // Hardhat #2
const ZONE = stringToHex("ZONE-WBG", { size: 32 });
const INTERVAL = 900;
const PRICE = 250_000n;
const TOPIC_ROOT = "energy-cloud";

interface Args {
  json: boolean;
  meters: number;
  rate: number;
  seconds: number;
  connections: number;
  skipThroughput: boolean;
  skipSettlement: boolean;
  reportBatchSize: number;
}

function parseArgs(argv: string[]): Args {
  const a = readBenchArgs("bench:bridge", {
    // Even: every seller (even index) sells to the buyer after it and the one after that.
    households: size({ help: "households, one smart meter each, half sellers and half buyers", aliases: ["meters"], default: 2_200, quick: 200, integer: true, min: 2, multipleOf: 2 }),
    rate: size({ help: "register readings offered per second in the live run", default: 25_000, quick: 2_000, integer: true, min: 1 }),
    seconds: size({ help: "seconds the live run offers readings for (the backlog run queues as many)", default: 10, quick: 2, integer: true, min: 1 }),
    connections: size({ help: "MQTT connections of the publisher", default: 4, integer: true, min: 1 }),
    batch: size({ help: "delivery reports per reportDeliveries transaction", default: 100, integer: true, min: 1 }),
    "skip-throughput": toggle("leave out the live and backlog runs"),
    "skip-settlement": toggle("leave out the settlement run"),
  }, argv);
  return {
    json: a.json,
    meters: a.households,
    rate: a.rate,
    seconds: a.seconds,
    connections: a.connections,
    reportBatchSize: a.batch,
    skipThroughput: a["skip-throughput"],
    skipSettlement: a["skip-settlement"],
  };
}

// ------------------------------------------------------------------ publisher process

/** Child mode: publish register readings for `meters` meters at `rate`/s for `seconds`. */
async function runPublisher(argv: string[]) {
  const [url, root, metersRaw, rateRaw, secondsRaw, connectionsRaw, baseRaw, valueBaseRaw] = argv;
  const valueBase = Number(valueBaseRaw);
  const meters = Number(metersRaw);
  const rate = Number(rateRaw);
  const seconds = Number(secondsRaw);
  const connections = Number(connectionsRaw);
  const baseMs = Number(baseRaw);
  const clients = await Promise.all(
    Array.from({ length: connections }, (_, i) => mqtt.connectAsync(url!, { clientId: `bench-pub-${process.pid}-${i}`, clean: true })),
  );
  let disconnects = 0;
  for (const c of clients) c.on("close", () => disconnects++);
  const total = rate * seconds;
  // Every reading signed by its meter's key before the clock starts: meters sign their own, and
  // one process signing for all of them would measure itself rather than the bridge.
  const keys = Array.from({ length: meters }, (_, i) => meterKeyFor(i).privateKey);
  const readings = Array.from({ length: total }, (_, n) => {
    const meter = n % meters;
    const j = Math.floor(n / meters);
    const meterId = meterIdFor(meter);
    const metric = meter % 2 === 0 ? "export" : "import";
    // 50 ms apart per meter; +1 Wh every fourth reading (well inside a 10 kW limit).
    const payload = { timestamp: new Date(baseMs + j * 50).toISOString(), value: valueBase + Math.floor(j / 4), unit: "Wh", quality: "high" };
    return { topic: `${root}/wbg/smart-meter/${meterId}/${metric}`, payload: JSON.stringify(signReading({ meterId, metric, payload, privateKey: keys[meter]! })) };
  });
  let sent = 0;
  let acked = 0;
  // Flow control: at most this many unacknowledged messages per connection (well under the
  // 65,535 MQTT message ids); when the broker falls behind, the offered rate drops with it.
  const maxInFlight = 10_000;
  const inFlight = clients.map(() => 0);
  const startedAtMs = Date.now();
  const started = performance.now();
  // Pace in 10 ms steps: each step publishes what the schedule says is due by now.
  await new Promise<void>((resolve) => {
    const step = () => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
      while (sent < due) {
        const c = (sent % meters) % connections;
        if (inFlight[c]! >= maxInFlight) break;
        const client = clients[c]!;
        inFlight[c]!++;
        const { topic, payload } = readings[sent]!;
        client.publish(topic, payload, { qos: 1 }, () => {
          acked++;
          inFlight[c]!--;
        });
        sent++;
      }
      if (sent >= total) resolve();
      else setTimeout(step, 10);
    };
    step();
  });
  const publishedMs = performance.now() - started;
  const ackDeadline = performance.now() + 120_000;
  while (acked < sent && performance.now() < ackDeadline) await new Promise((r) => setTimeout(r, 20));
  const ackedMs = performance.now() - started;
  await Promise.all(clients.map((c) => c.endAsync()));
  process.stdout.write(`${JSON.stringify({ sent, acked, publishedMs, ackedMs, startedAtMs, disconnects })}\n`);
}

function meterIdFor(i: number): string {
  return `WBG-${String(i).padStart(5, "0")}`;
}

/** Meter i's Ed25519 key (registered on chain at setup), the same in the publisher process. */
function meterKeyFor(i: number): MeterKeyPair {
  return deriveMeterKeyPair(`bench:bridge ${meterIdFor(i)}`);
}

// ------------------------------------------------------------------ broker

async function startBroker(): Promise<{ kind: string; url: string; close(): Promise<void> }> {
  if (process.env.MQTT_URL) return { kind: "MQTT_URL", url: process.env.MQTT_URL, close: async () => {} };
  const binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"].find((p) => existsSync(p));
  if (!binary) {
    const b = await startEmbeddedBroker({ port: 0 });
    return { kind: "embedded Aedes", url: b.url, close: () => b.close() };
  }
  const dir = await mkdtemp(path.join(tmpdir(), "bench-mosquitto-"));
  const port = await freePort();
  const conf = path.join(dir, "mosquitto.conf");
  // Queue limits raised: with Mosquitto's default of 1000 queued messages per client, a
  // subscriber that falls behind a burst has QoS 1 messages dropped for it.
  await writeFile(conf, [`listener ${port} 127.0.0.1`, "allow_anonymous true", "max_queued_messages 1000000", "max_inflight_messages 0",
    ...(process.getuid?.() === 0 ? ["user root"] : []), ""].join("\n"));
  const proc = spawn(binary, ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
  await new Promise<void>((resolve, reject) => {
    let log = "";
    const on = (d: Buffer) => {
      log += d.toString();
      if (/running/.test(log)) resolve();
    };
    proc.stdout.on("data", on);
    proc.stderr.on("data", on);
    proc.once("exit", (c) => reject(new Error(`mosquitto exited ${c}: ${log}`)));
  });
  return {
    kind: "Mosquitto (own process, bench config)",
    url: `mqtt://127.0.0.1:${port}`,
    close: async () => {
      const exited = new Promise<void>((r) => proc.once("exit", () => r()));
      proc.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// ------------------------------------------------------------------ chain setup

interface Household {
  account: PrivateKeyAccount;
  meterId: string;
  meterKey: MeterKeyPair;
}

async function checkAll(client: PublicClient, hashes: Hex[]) {
  for (const hash of hashes) {
    const r = await client.getTransactionReceipt({ hash });
    if (r.status !== "success") throw new Error(`setup transaction ${hash} reverted`);
  }
}

async function setupChain(meters: number, log: (s: string) => void) {
  const chain = await startLocalChain({ port: 0 });
  const provider = chain.provider as unknown as { request(a: { method: string; params?: unknown[] }): Promise<unknown> };
  const transport = custom(chain.provider);
  const client = createPublicClient({ chain: hardhat, transport }) as PublicClient;
  const accounts = ((await client.request({ method: "eth_accounts" } as never)) as Address[]).map((a) => getAddress(a));
  const admin = createWalletClient({ chain: hardhat, account: accounts[0]!, transport });
  const matcher = createWalletClient({ chain: hardhat, account: accounts[1]!, transport });
  const oracle = privateKeyToAccount(ORACLE_KEY);
  const deployment = await deployPlatform(admin as never, client as never, {
    roles: { admin: accounts[0]!, registrar: accounts[0]!, pauser: accounts[0]!, matcher: accounts[1]!, meterOracle: oracle.address, arbiter: accounts[3]! },
    maxNetworkFeePerKWh: 1_000_000n,
  });
  const market = deployment.contracts.EnergyMarket;
  const registry = deployment.contracts.ProsumerRegistry;
  const token = deployment.contracts.PaymentToken;

  const households: Household[] = Array.from({ length: meters }, (_, i) => ({ account: privateKeyToAccount(generatePrivateKey()), meterId: meterIdFor(i), meterKey: meterKeyFor(i) }));
  const sellers = households.filter((_, i) => i % 2 === 0);
  const buyers = households.filter((_, i) => i % 2 === 1);

  const hashes: Hex[] = [];
  const sendAdmin = async (data: Hex, to: Address) => {
    hashes.push((await provider.request({ method: "eth_sendTransaction", params: [{ from: accounts[0], to, data, gas: "0x30000" }] })) as Hex);
  };
  for (const h of households) {
    await sendAdmin(encodeFunctionData({
      abi: prosumerRegistryAbi, functionName: "registerProsumer",
      args: [h.account.address, stringToHex(h.meterId, { size: 32 }), ZONE, BENCH_CONNECTION_W, BENCH_CONNECTION_W, sourceMask(["solar"])],
    }), registry);
    // The key the meter signs its readings with: without one, none of them is evidence.
    await sendAdmin(encodeFunctionData({ abi: prosumerRegistryAbi, functionName: "setMeterSigner", args: [h.account.address, h.meterKey.signer] }), registry);
  }
  for (const b of buyers) {
    await sendAdmin(encodeFunctionData({ abi: testEuroAbi, functionName: "faucet", args: [b.account.address, 1_000n * 1_000_000n] }), token);
    await provider.request({ method: "hardhat_setBalance", params: [b.account.address, "0x8AC7230489E80000"] });
  }
  const { chainId } = deployment;
  for (const b of buyers) {
    const block = (await provider.request({ method: "eth_getBlockByNumber", params: ["latest", false] })) as { baseFeePerGas: Hex };
    const maxFeePerGas = BigInt(block.baseFeePerGas) * 2n + 1_000_000_000n;
    const raw = await b.account.signTransaction({
      type: "eip1559", chainId, nonce: 0, to: token, gas: 80_000n, maxFeePerGas, maxPriorityFeePerGas: 1_000_000_000n,
      data: encodeFunctionData({ abi: testEuroAbi, functionName: "approve", args: [market, 2n ** 255n] }),
    });
    hashes.push((await provider.request({ method: "eth_sendRawTransaction", params: [raw] })) as Hex);
  }
  await checkAll(client, hashes);
  log(`  registered ${meters} households, funded ${buyers.length} buyers`);

  // One interval two intervals back; each seller sells 500 Wh to buyer i and 500 Wh to buyer i+1.
  const now = Math.floor(Date.now() / 1000);
  const start = BigInt(Math.floor(now / INTERVAL) * INTERVAL - 2 * INTERVAL);
  const end = start + BigInt(INTERVAL);
  const domain = marketDomain(chainId, market);
  const expiry = BigInt(now + 86_400);
  const order = (maker: Household, side: number, nonce: bigint): Order => ({
    maker: maker.account.address, side, zone: ZONE, deliveryStart: start, deliveryEnd: end, energyWh: 1_000n, limitPricePerKWh: PRICE,
    source: side === SIDE_SELL ? EnergySource.solar : 0, acceptedSources: 0, minSellerReputationBps: 0, nonce, expiry,
  });
  const sells = await Promise.all(sellers.map(async (s, i) => { const o = order(s, SIDE_SELL, BigInt(i + 1)); return { order: o, signature: await signOrder(s.account, o, domain) }; }));
  const buys = await Promise.all(buyers.map(async (b, i) => { const o = order(b, SIDE_BUY, BigInt(i + 1)); return { order: o, signature: await signOrder(b.account, o, domain) }; }));
  const fills: { seller: number; buyer: number }[] = [];
  for (let i = 0; i < sellers.length; i++) fills.push({ seller: i, buyer: i }, { seller: i, buyer: (i + 1) % buyers.length });
  let trades = 0;
  for (let k = 0; k < fills.length; k += 100) {
    const chunk = fills.slice(k, k + 100);
    const orderIndex = new Map<string, number>();
    const orders: typeof sells = [];
    const indexOf = (key: string, o: (typeof sells)[number]) => {
      if (!orderIndex.has(key)) {
        orderIndex.set(key, orders.length);
        orders.push(o);
      }
      return orderIndex.get(key)!;
    };
    const batchFills = chunk.map((f) => ({ buyIndex: indexOf(`b${f.buyer}`, buys[f.buyer]!), sellIndex: indexOf(`s${f.seller}`, sells[f.seller]!), energyWh: 500n, pricePerKWh: PRICE }));
    const hash = await matcher.writeContract({ address: market, abi: energyMarketAbi, functionName: "settleBatch", args: [orders, batchFills] } as never);
    const receipt = await client.waitForTransactionReceipt({ hash });
    trades += parseEventLogs({ abi: energyMarketAbi, logs: receipt.logs, eventName: "TradeExecuted" }).length;
  }
  if (trades !== fills.length) throw new Error(`only ${trades} of ${fills.length} fills executed`);
  log(`  settled ${trades} trades for ${new Date(Number(start) * 1000).toISOString()}`);
  return { chain, market, registry, chainId, startBlock: BigInt(deployment.blockNumber), households, sellers, buyers, start, end, trades };
}

// ------------------------------------------------------------------ main

async function main() {
  if (process.argv[2] === "--publisher") return runPublisher(process.argv.slice(3));
  const args = parseArgs(process.argv.slice(2));
  const log = (s: string) => {
    if (!args.json) console.log(s);
  };
  log(`bridge benchmark: ${args.meters} meters`);
  const setupStarted = performance.now();
  const setup = await setupChain(args.meters, log);
  log(`  chain setup ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`);
  const broker = await startBroker();
  // PGlite in a data folder, as the bridge runs by default (BRIDGE_DATA_DIR), or DATABASE_URL
  // in a schema of its own that is dropped at the end.
  let dropSchema = async () => {};
  const dataDir = await mkdtemp(path.join(tmpdir(), "bench-bridge-db-"));
  let databaseOptions: { url?: string; dataDir?: string } = { dataDir };
  if (process.env.DATABASE_URL) {
    const schema = `bench_bridge_${process.pid}`;
    const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    await admin.end();
    const u = new URL(process.env.DATABASE_URL);
    u.searchParams.set("options", `-c search_path=${schema}`);
    databaseOptions = { url: u.toString() };
    dropSchema = async () => {
      const c = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await c.connect();
      await c.query(`drop schema ${schema} cascade`);
      await c.end();
    };
  }
  const database = await openBridgeDatabase(databaseOptions);
  // Warnings on stderr: stdout carries the results (one JSON object with --json).
  const logger = (name: string) => pino({ name, level: "warn" }, pino.destination(2));
  // The bridge reports the trades an indexer has written into its database (bridge/tradesDue.ts).
  // As in the standalone bridge on PGlite, the indexer runs in this process and follows the
  // chain, with the node's settings on its embedded chain: finality depth 0, polls every 250 ms.
  const indexerDb = database.db as unknown as Kysely<IndexerDatabase>;
  await migrateIndexerDatabase(indexerDb);
  const indexerAbort = new AbortController();
  const indexerRun = runIndexer({
    db: indexerDb, rpc: createChainRpc({ url: setup.chain.url, logger: logger("bench-indexer"), signal: indexerAbort.signal }), chainId: setup.chainId,
    contracts: { EnergyMarket: setup.market, ProsumerRegistry: setup.registry }, startBlock: setup.startBlock, finalityDepth: 0,
    pollIntervalMs: 250, logRange: { initial: 1_000, max: 10_000 }, mode: "follow", logger: logger("bench-indexer"), signal: indexerAbort.signal,
  });
  const rpc = http(setup.chain.url, { batch: { batchSize: 200, wait: 0 }, retryCount: 1, timeout: 60_000 });
  const client = createPublicClient({ chain: hardhat, transport: rpc, pollingInterval: 50 }) as PublicClient;
  const settings: BridgeSettings = {
    mqttClientId: `bench-bridge-${process.pid}`, topicRoot: TOPIC_ROOT, mqttReconnectMinMs: 200, mqttReconnectMaxMs: 5_000,
    intervalSeconds: INTERVAL, graceSeconds: 300, maxClockSkewSeconds: 120, retentionSeconds: 48 * 3600, allocation: "fifo",
    plausibilityMarginPct: 10, maxPayloadBytes: 4_096, reportBatchSize: args.reportBatchSize, tickMs: 1_000, retryMinMs: 500, retryMaxMs: 5_000,
    commandAckSeconds: 60,
  };
  let offsetMs = 0;
  const launch = async () => {
    const b = await startBridge({
      settings, mqttUrl: broker.url, db: database.db, client, oracle: privateKeyToAccount(ORACLE_KEY), market: setup.market,
      registry: setup.registry, startBlock: setup.startBlock, chainId: setup.chainId, logger: logger("bench"),
      clock: () => Date.now() + offsetMs, autoTick: false, indexer: { db: indexerDb, finalityDepth: 0 },
    });
    await b.ready;
    return b;
  };
  let bridge = await launch();

  const result: Record<string, unknown> = {
    meters: args.meters, broker: broker.kind, database: database.kind, cpus: (await import("node:os")).cpus().length,
    goals: { readingsPerSecond: 20_000, closeToAllConfirmedMs: 5_000 },
  };

  /** Runs the publisher process; `rate` 0 publishes everything at once. */
  const publish = async (rate: number, baseMs: number, valueBase: number) => {
    const total = args.rate * args.seconds;
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--publisher", broker.url, TOPIC_ROOT, String(args.meters),
      String(rate || total), String(rate ? args.seconds : 1), String(args.connections), String(baseMs), String(valueBase)], { stdio: ["ignore", "pipe", "inherit"] });
    let report: { sent: number; acked: number; publishedMs: number; ackedMs: number; startedAtMs: number } | undefined;
    createInterface({ input: child.stdout! }).on("line", (l) => (report = JSON.parse(l)));
    await new Promise<void>((r) => child.once("exit", () => r()));
    if (!report) throw new Error("publisher reported nothing");
    return report;
  };
  /** Resolves when the bridge has committed `n` more readings (or stops making progress for 5 s). */
  const committed = async (b: typeof bridge, from: { accepted: number; duplicates: number }, n: number) => {
    let last = -1;
    for (;;) {
      const m = b.metrics();
      const done = m.accepted - from.accepted + m.duplicates - from.duplicates;
      if (done >= n || done === last) return;
      last = done;
      await Promise.race([new Promise((r) => b.events.once("committed", r)), new Promise((r) => setTimeout(r, 5_000))]);
    }
  };

  if (!args.skipThroughput) {
    // 1. Live: publisher, broker and bridge at once, on the same CPUs.
    log(`throughput, live: ${args.rate.toLocaleString()} readings/s offered for ${args.seconds} s over ${args.connections} connections (${broker.kind})`);
    let before = bridge.metrics();
    let lastCommitAt = 0;
    const onCommit = (s: { accepted: number }) => {
      if (s.accepted > 0) lastCommitAt = Date.now();
    };
    bridge.events.on("committed", onCommit);
    const live = await publish(args.rate, Date.now() - 3 * 3_600_000, 1_000_000);
    await committed(bridge, before, live.sent);
    let m = bridge.metrics();
    const accepted = m.accepted - before.accepted;
    // From the publisher's first message to the bridge's last commit.
    const endToEndSeconds = (lastCommitAt - live.startedAtMs) / 1000;
    result.throughput = {
      offeredPerSecond: args.rate, seconds: args.seconds, connections: args.connections, published: live.sent,
      publisherSeconds: +(live.publishedMs / 1000).toFixed(2),
      accepted, duplicates: m.duplicates - before.duplicates, deadLettered: Object.values(m.deadLettered).reduce((a, b) => a + (b ?? 0), 0),
      lost: live.sent - accepted - (m.duplicates - before.duplicates),
      endToEndSeconds: +endToEndSeconds.toFixed(2),
      acceptedPerSecond: Math.round(accepted / endToEndSeconds),
      backlogSecondsAfterPublisher: +((lastCommitAt - live.startedAtMs - live.publishedMs) / 1000).toFixed(2),
    };
    log(`  published ${live.sent.toLocaleString()} in ${(live.publishedMs / 1000).toFixed(2)} s; the bridge committed ${accepted.toLocaleString()} by ${endToEndSeconds.toFixed(2)} s`);

    // 2. Backlog: the bridge is down while the same number of readings is published; its
    //    persistent session keeps them queued in the broker; then the bridge starts and drains
    //    them with the CPUs to itself and the broker.
    log(`throughput, backlog: ${live.sent.toLocaleString()} readings queued while the bridge is down, then drained`);
    await bridge.close();
    // An hour later on the same registers: +5 kWh is within what a 10 kW connection can move.
    const queued = await publish(0, Date.now() - 2 * 3_600_000, 1_005_000);
    const restartAt = Date.now();
    bridge = await launch();
    before = { ...bridge.metrics(), accepted: 0, duplicates: 0 };
    lastCommitAt = 0;
    bridge.events.on("committed", onCommit);
    await committed(bridge, before, queued.sent);
    m = bridge.metrics();
    const drainSeconds = (lastCommitAt - restartAt) / 1000;
    result.backlog = {
      queued: queued.sent, accepted: m.accepted, lost: queued.sent - m.accepted - m.duplicates,
      drainSeconds: +drainSeconds.toFixed(2), acceptedPerSecond: Math.round(m.accepted / drainSeconds),
    };
    log(`  drained ${m.accepted.toLocaleString()} in ${drainSeconds.toFixed(2)} s after the restart`);
  }

  if (!args.skipSettlement) {
    log(`settlement: ${setup.trades} trades of ${args.meters} households in one interval`);
    // Bridge time: just after the window ended, so the readings are on time.
    const endMs = Number(setup.end) * 1000;
    // The bridge's clock moves back to 10 s before the window ends, and the bridge connects
    // then (a window is only closed after a whole grace period connected).
    offsetMs = endMs - 10_000 - Date.now();
    await bridge.close();
    bridge = await launch();
    const before = bridge.metrics();
    const device = await mqtt.connectAsync(broker.url, { clientId: `bench-meters-${process.pid}` });
    const startMs = Number(setup.start) * 1000;
    const interval = (h: Household, exp: number, imp: number) => JSON.stringify(signReading({
      meterId: h.meterId, metric: "interval", privateKey: h.meterKey.privateKey,
      payload: { interval_start: new Date(startMs).toISOString(), interval_minutes: 15, export_kwh: exp / 1000, import_kwh: imp / 1000 },
    }));
    // Every 50th seller delivers 10% short, so disputes are part of the run too.
    await Promise.all([
      ...setup.sellers.map((s, i) => device.publishAsync(`${TOPIC_ROOT}/wbg/smart-meter/${s.meterId}/interval`, interval(s, i % 50 === 0 ? 900 : 1_000, 0), { qos: 1 })),
      ...setup.buyers.map((b) => device.publishAsync(`${TOPIC_ROOT}/wbg/smart-meter/${b.meterId}/interval`, interval(b, 0, 1_000), { qos: 1 })),
    ]);
    await device.endAsync();
    // Every interval reading taken in, or a refusal that would leave its trades undelivered.
    for (;;) {
      const m = bridge.metrics();
      const refused = totalDeadLettered(m) - totalDeadLettered(before);
      if (refused > 0) throw new Error(`the bridge dead-lettered ${refused} interval readings: ${JSON.stringify(m.deadLettered)}`);
      if (m.accepted - before.accepted >= args.meters) break;
      await Promise.race([new Promise((r) => bridge.events.once("committed", r)), new Promise((r) => setTimeout(r, 200))]);
    }
    // In service the indexer has indexed the trades long before their window's grace period
    // ends; here the clock jumps there, so it first catches up with the head.
    const head = await client.getBlockNumber();
    while (((await getCheckpoint(indexerDb, setup.chainId))?.block_number ?? -1n) < head) await new Promise((r) => setTimeout(r, 50));
    // The bridge ticks every second in service, so by the close it has read the trades and the
    // registry; one tick before the close does the same here.
    await bridge.tick();

    offsetMs = endMs + 300_000 + 1 - Date.now();
    let decidedAt = 0;
    bridge.events.once("decided", () => (decidedAt = performance.now()));
    const closed = performance.now();
    await bridge.tick();
    while (bridge.metrics().confirmationsPending > 0) await bridge.tick();
    const allConfirmed = performance.now();
    const m = bridge.metrics();
    const rows = await database.db.selectFrom("bridge_outbox").select(["tx_hash"]).distinct().execute();
    let gas = 0n;
    for (const r of rows) if (r.tx_hash) gas += (await client.getTransactionReceipt({ hash: r.tx_hash as Hex })).gasUsed;
    const events = await client.getContractEvents({ address: setup.market, abi: energyMarketAbi, eventName: "DeliveryConfirmed", fromBlock: setup.startBlock });
    result.settlement = {
      households: args.meters, trades: setup.trades, confirmedOnChain: events.length,
      withinTolerance: m.confirmations.confirmed - before.confirmations.confirmed, disputed: m.confirmations.disputed - before.confirmations.disputed,
      decideMs: Math.round(decidedAt - closed), sendMs: Math.round(allConfirmed - decidedAt),
      closeToAllConfirmedMs: Math.round(allConfirmed - closed),
      transactions: rows.length, reportsPerTransaction: args.reportBatchSize, gasPerReport: Number(gas / BigInt(setup.trades)),
    };
    log(`  grace period over -> all ${events.length} reports mined in ${Math.round(allConfirmed - closed)} ms`);
  }

  await bridge.close();
  // The bridge's session is persistent (clean: false). On a broker of our own it ends with the
  // broker; on MQTT_URL's it would outlive the run and keep queueing readings for nobody.
  if (broker.kind === "MQTT_URL") await (await mqtt.connectAsync(broker.url, { clientId: settings.mqttClientId, clean: true })).endAsync();
  await broker.close();
  indexerAbort.abort(new Error("bench done"));
  await indexerRun;
  await database.close();
  await dropSchema();
  await rm(dataDir, { recursive: true, force: true });
  await setup.chain.close();

  const t = result.throughput as Record<string, number> | undefined;
  const d = result.backlog as Record<string, number> | undefined;
  const s = result.settlement as Record<string, number> | undefined;
  result.met = {
    // Sustained: 20,000/s offered, every reading committed, the bridge never more than 1 s behind.
    liveKeptPaceWith20k: t ? t.offeredPerSecond! >= 20_000 && t.lost === 0 && t.backlogSecondsAfterPublisher! <= 1 : null,
    liveMeasuredAtLeast20k: t ? t.acceptedPerSecond! >= 20_000 && t.lost === 0 : null,
    backlogAtLeast20k: d ? d.acceptedPerSecond! >= 20_000 && d.lost === 0 : null,
    closeToAllConfirmed: s ? s.closeToAllConfirmedMs! <= 5_000 && s.confirmedOnChain === s.trades : null,
  };
  if (args.json) {
    console.log(JSON.stringify(result));
    return;
  }
  const rowsOut: [string, string, string][] = [];
  if (t) {
    rowsOut.push(["readings offered", `${t.offeredPerSecond!.toLocaleString()}/s for ${t.seconds} s`, ""]);
    rowsOut.push(["readings accepted end to end", `${t.acceptedPerSecond!.toLocaleString()}/s`, ">= 20,000/s"]);
    rowsOut.push(["accepted / published / lost", `${t.accepted!.toLocaleString()} / ${t.published!.toLocaleString()} / ${t.lost}`, "lost 0"]);
    rowsOut.push(["backlog after the publisher finished", `${t.backlogSecondsAfterPublisher} s`, ""]);
  }
  if (d) {
    rowsOut.push(["queued backlog drained by the bridge", `${d.acceptedPerSecond!.toLocaleString()}/s (${d.accepted!.toLocaleString()} in ${d.drainSeconds} s, lost ${d.lost})`, ""]);
  }
  if (s) {
    rowsOut.push(["trades settled by the bridge", `${s.confirmedOnChain!.toLocaleString()} of ${s.trades!.toLocaleString()} (${s.disputed} disputed)`, "all"]);
    rowsOut.push(["grace over -> decisions in the outbox", `${s.decideMs} ms`, ""]);
    rowsOut.push(["outbox -> every report mined", `${s.sendMs} ms (${s.transactions} transactions)`, ""]);
    rowsOut.push(["grace over -> all trades confirmed", `${s.closeToAllConfirmedMs} ms`, "<= 5,000 ms"]);
    rowsOut.push(["gas per report", s.gasPerReport!.toLocaleString(), ""]);
  }
  const w0 = Math.max(...rowsOut.map((r) => r[0].length));
  const w1 = Math.max(...rowsOut.map((r) => r[1].length));
  console.log(`\n| ${"measure".padEnd(w0)} | ${"result".padEnd(w1)} | goal |`);
  console.log(`|${"-".repeat(w0 + 2)}|${"-".repeat(w1 + 2)}|---|`);
  for (const [a, b, c] of rowsOut) console.log(`| ${a.padEnd(w0)} | ${b.padEnd(w1)} | ${c} |`);
  console.log(`\n${result.broker}, ${result.database}, ${result.cpus} CPUs`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
