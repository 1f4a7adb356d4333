// The soak's core (bench/soak.ts prints it, test/scripts/soak.test.ts checks it): a node in
// this process on a temporary data folder, households registered through the API (meter key in
// the registry, MQTT device credential, buyers funded and approved), then a steady load from a
// worker thread (bench/soakLoad.ts) while this thread samples the node once a period: RSS and
// heap, event-loop delay, the load's API latency, the queues (engine op log, fills not yet
// settled, bridge outbox, keeper actions), the data folder on disk. After the load, the queues
// get up to `drainSeconds` to empty; what is left is reported.
//
// In-process rather than a child process: the queues and the event loop are read directly
// (the node's /metrics has neither the op log queue nor event-loop delay), and the load runs in
// a worker so heap and event-loop figures are the node's alone. RSS is the process's: it
// includes the worker's isolate (flat after its start-up; its own heap is reported apart).
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { promisify } from "node:util";
import { stat } from "node:fs/promises";
import { sql } from "kysely";
import { Worker } from "node:worker_threads";
import pino from "pino";
import { createSiweMessage } from "viem/siwe";
import { privateKeyToAccount } from "viem/accounts";
import { createPublicClient, createWalletClient, erc20Abi, http, keccak256, maxUint256, toHex, type Hex } from "viem";
import { deriveMeterKeyPair } from "../bridge/readingSignature.js";
import { readNodeConfig } from "../server/config.js";
import { nodePlugins } from "../server/plugins.js";
import { startNode, type RunningNode } from "../server/startNode.js";
import { testEuroAbi } from "../contracts/client/abi.js";
import { createScratchDatabase } from "./scratchDatabase.js";
import { startSoakChain } from "./soakChain.js";
import type { FromWorker, SlowRequest, SoakHousehold, SoakLoadJob, SoakLoadWindow } from "./soakLoad.js";

export interface RunSoakParameters {
  /** Seconds of load. */
  durationSeconds: number;
  /** Seconds between samples (60 in a soak; less in a test). */
  sampleSeconds?: number;
  /** Even: half buyers, half sellers. */
  households: number;
  /** Orders per second. */
  rate: number;
  crossPct?: number;
  /** Minutes of load before the slopes are taken (the engine's memory follows 15-minute books:
   *  the first full one is forgotten ~16 min in). Default: 15, or half the run if shorter. */
  warmupMinutes?: number;
  /** Longest wait for the queues to empty after the load. Default 60. */
  drainSeconds?: number;
  /** Seconds between one meter's readings. Default 60 (a test: less, so every meter reports in its run). */
  readingEverySeconds?: number;
  /** "embedded" (default): the node's in-process EDR chain; "anvil": Anvil in its own process
   *  (bench/soakChain.ts), so the node's RSS is its own. */
  chain?: "embedded" | "anvil";
  /** "pglite" (default): the embedded database, in the node's process; "postgres": a database of
   *  its own on the server `DATABASE_URL` names, created for the run and dropped after it. */
  database?: "pglite" | "postgres";
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

/** The node at one moment. Memory in MB, times in ms; counters cumulative unless said. */
export interface SoakSample {
  /** Minutes since the load started (0: before it; the drained row after it stopped). */
  minute: number;
  label: "start" | "load" | "end" | "drained";
  rssMb: number;
  /** The external chain process's RSS (--chain anvil); 0 with the embedded chain (inside rssMb). */
  chainRssMb: number;
  heapUsedMb: number;
  /** The heap V8 has reserved (used, free and fragmented): what of the heap counts in RSS. */
  heapTotalMb: number;
  /** Orders the engine holds in memory: a book's orders until it has closed and left. */
  ordersHeld: number;
  /** Memory outside the JS heap that V8 knows of: ArrayBuffers (PGlite's WebAssembly memory among them) and other external. */
  externalMb: number;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  /** This window's order placements, as the load timed them. */
  apiP50Ms: number;
  apiP99Ms: number;
  apiMaxMs: number;
  /** This window's placements answered after more than 500 ms. */
  apiOver500: number;
  /** Counted when sent; accepted, refused and errors when answered (a window may answer a few sent in the one before). */
  placed: number;
  accepted: number;
  refused: number;
  errors: number;
  /** Orders the pacer skipped because too many requests were waiting. */
  behind: number;
  readingsPublished: number;
  /** Engine op log: operations applied in memory, not yet durable. */
  engineQueuedOps: number;
  /** This window's op log writes slower than 250 ms (each placement in one waited that long). */
  slowLogWrites: number;
  /** Fills the settler has still to send (engine.settleableFills) and fills sent, not yet mined. */
  settlerPendingFills: number;
  settlingFills: number;
  /** Delivery reports decided, not yet on chain (the bridge's outbox). */
  bridgeOutbox: number;
  /** Keeper actions pending or in flight; absent keeper: 0. */
  keeperQueued: number;
  diskMb: number;
  /** Cumulative. */
  fills: number;
  settled: number;
  failedFills: number;
  readingsAccepted: number;
  readingsDeadLettered: number;
}

export interface SoakResult {
  node: { chain: "embedded" | "anvil"; database: string; households: number; rate: number; crossPct: number; durationSeconds: number; sampleSeconds: number; onboardingMs: number; keeper: boolean; warmupMinutes: number };
  samples: SoakSample[];
  /** Least squares per minute over the load samples from warmupMinutes on; null with fewer than two. */
  slopes: { rssMbPerMin: number | null; heapMbPerMin: number | null; diskMbPerMin: number | null };
  /**
   * The samples right after a full book left memory (orders held fell by more than a third): the
   * same point of each book's life, so memory compared between them is not a book's own growth
   * and fall. `perMin`: the change between the first and the last of them (null with fewer than two).
   */
  afterEachBook: { samples: { minute: number; rssMb: number; heapUsedMb: number; heapTotalMb: number; ordersHeld: number }[]; rssMbPerMin: number | null; heapMbPerMin: number | null };
  worstRequest: (SlowRequest & { minute: number }) | null;
  refusals: Record<string, { count: number; example: string }>;
  totals: { placed: number; accepted: number; refused: number; errors: number; behind: number; over500Ms: number; fills: number; settled: number; failedFills: number };
  /** Bytes each table takes at the end (indexes and TOAST included), largest first; and per unit
   *  of load: per accepted order, per settled trade, per accepted meter reading. */
  tables: { table: string; bytes: number; rows: number }[];
  perUnit: { bytesPerOrder: number; bytesPerTrade: number; bytesPerReading: number; chainJournalBytes: number };
  drain: { drained: boolean; waitedMs: number; left: { engineQueuedOps: number; settlerPendingFills: number; settlingFills: number; bridgeOutbox: number; keeperQueued: number } };
}

const MB = 1024 * 1024;
const run = promisify(execFile);

/** Bytes the folder takes on disk (du), in MB. */
async function diskMb(dir: string): Promise<number> {
  const { stdout } = await run("du", ["-sk", dir]);
  return Math.round((Number(stdout.split(/\s/)[0]) / 1024) * 100) / 100;
}

async function fileBytes(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** The load samples right after a full book left memory, and memory's change between the first and the last. */
export function afterEachBook(samples: readonly SoakSample[]): SoakResult["afterEachBook"] {
  const troughs = samples.filter((s, i) => i > 0 && s.label === "load" && s.ordersHeld < samples[i - 1]!.ordersHeld * (2 / 3));
  const [a, b] = [troughs[0], troughs[troughs.length - 1]];
  const perMin = (f: (s: SoakSample) => number) => (a && b && b.minute > a.minute ? Math.round(((f(b) - f(a)) / (b.minute - a.minute)) * 100) / 100 : null);
  return {
    samples: troughs.map((s) => ({ minute: s.minute, rssMb: s.rssMb, heapUsedMb: s.heapUsedMb, heapTotalMb: s.heapTotalMb, ordersHeld: s.ordersHeld })),
    rssMbPerMin: perMin((s) => s.rssMb),
    heapMbPerMin: perMin((s) => s.heapUsedMb),
  };
}

/** Least-squares slope of y over x; null with fewer than two distinct x. */
export function leastSquaresSlope(points: readonly { x: number; y: number }[]): number | null {
  if (points.length < 2) return null;
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    sxx += (p.x - mx) ** 2;
    sxy += (p.x - mx) * (p.y - my);
  }
  return sxx === 0 ? null : Math.round((sxy / sxx) * 1000) / 1000;
}

async function onboardHouseholds(node: RunningNode, count: number, region: string, log: (l: string) => void, adminKey?: Hex): Promise<{ households: SoakHousehold[]; chain: any }> {
  const api = async (pathname: string, init: { method?: string; token?: string; body?: unknown } = {}) => {
    const res = await fetch(`${node.url}${pathname}`, {
      method: init.method ?? "GET",
      headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...(init.body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${init.method ?? "GET"} ${pathname}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  const signIn = async (key: Hex) => {
    const account = privateKeyToAccount(key);
    const { nonce } = await api("/v1/auth/nonce");
    const message = createSiweMessage({ address: account.address, chainId: node.chainId, domain: new URL(node.url).host, nonce, uri: node.url, version: "1" });
    return (await api("/v1/auth/login", { method: "POST", body: { message, signature: await account.signMessage({ message }) } })).token as string;
  };
  const inBatches = async <T, R>(items: readonly T[], size: number, f: (t: T, i: number) => Promise<R>): Promise<R[]> => {
    const out: R[] = [];
    for (let i = 0; i < items.length; i += size) out.push(...await Promise.all(items.slice(i, i + size).map((t, j) => f(t, i + j))));
    return out;
  };

  const chain = await api("/v1/chain");
  const operator = await signIn(adminKey ?? node.operatorKey!);
  const homes = Array.from({ length: count }, (_, i) => {
    const key = keccak256(toHex(`soak household ${i}`));
    return { i, key, address: privateKeyToAccount(key).address, side: (i % 2) as 0 | 1, meterId: `soak-${i}`, meter: deriveMeterKeyPair(`soak meter ${i}`) };
  });
  // The node's admin key sends registrations and faucet payments, its nonces one at a time.
  const t0 = Date.now();
  // A few at a time: the registrar key's one nonce queue orders them, and on a chain with a block
  // time they share blocks instead of waiting one block each.
  await inBatches(homes, 16, (h) =>
    api("/v1/prosumers", {
      method: "POST", token: operator,
      body: { address: h.address, meterId: h.meterId, zone: "ZONE-A", sources: ["solar"], exportLimitW: 10_000_000, importLimitW: 10_000_000, meterSigner: h.meter.signer },
    }));
  log(`${count} households registered with meter keys (${Date.now() - t0} ms)`);
  const credentials = await inBatches(homes, 8, (h) =>
    api("/v1/devices", { method: "POST", token: operator, body: { deviceId: h.meterId, deviceType: "smart-meter", region } }) as Promise<{ username: string; password: string }>);
  const tokens = await inBatches(homes, 8, (h) => signIn(h.key));
  const buyers = homes.filter((h) => h.side === 0);
  const chainDef = { id: node.chainId, name: "soak", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [node.rpcUrl] } } } as const;
  const publicClient = createPublicClient({ transport: http(node.rpcUrl), pollingInterval: 50 });
  if (adminKey) {
    // An external chain has no faucet route: the token's admin mints to each buyer (and gas).
    const admin = createWalletClient({ chain: chainDef, account: privateKeyToAccount(adminKey), transport: http(node.rpcUrl) });
    const hashes: Hex[] = [];
    for (const h of buyers) {
      hashes.push(await admin.writeContract({ address: chain.contracts.PaymentToken, abi: testEuroAbi, functionName: "faucet", args: [h.address, 10_000n * 10n ** BigInt(chain.token.decimals)] }));
      hashes.push(await admin.sendTransaction({ to: h.address, value: 10n ** 18n }));
    }
    for (const hash of hashes) await publicClient.waitForTransactionReceipt({ hash });
  } else {
    for (const h of buyers) await api("/v1/faucet", { method: "POST", token: tokens[h.i]!, body: { amount: 10_000 } });
  }
  await inBatches(buyers, 16, async (h) => {
    const wallet = createWalletClient({ chain: chainDef, account: privateKeyToAccount(h.key), transport: http(node.rpcUrl) });
    const hash = await wallet.writeContract({ address: chain.contracts.PaymentToken, abi: erc20Abi, functionName: "approve", args: [chain.contracts.EnergyMarket, maxUint256] });
    await publicClient.waitForTransactionReceipt({ hash });
  });
  log(`credentials issued, ${buyers.length} buyers funded and approved (${Date.now() - t0} ms in all)`);
  return {
    chain,
    households: homes.map((h) => ({
      address: h.address, key: h.key, side: h.side, token: tokens[h.i]!, meterId: h.meterId, meterKey: h.meter.privateKey,
      mqttUsername: credentials[h.i]!.username, mqttPassword: credentials[h.i]!.password,
    })),
  };
}

export async function runSoak(p: RunSoakParameters): Promise<SoakResult> {
  const log = p.log ?? (() => undefined);
  const sampleSeconds = p.sampleSeconds ?? 60;
  const crossPct = p.crossPct ?? 50;
  const drainSeconds = p.drainSeconds ?? 60;
  const dir = await mkdtemp(path.join(tmpdir(), "soak-"));
  const dataDir = path.join(dir, "data");
  // Made here: on PostgreSQL the node may keep nothing in it, and its size is still sampled.
  await mkdir(dataDir, { recursive: true });
  const chainKind = p.chain ?? "embedded";
  const server = p.database === "postgres" ? await createScratchDatabase("soak", "soak --database postgres") : undefined;
  const external = chainKind === "anvil" ? await startSoakChain(path.join(dir, "deployments")) : undefined;
  const node = await startNode({
    config: readNodeConfig({
      PORT: "0", CHAIN_PORT: "0", MQTT_PORT: "0", DATA_DIR: dataDir, DEPLOYMENTS_DIR: path.join(dir, "deployments"), TEST_ACCOUNTS: "0",
      RATE_LIMIT_PER_IP: "0", RATE_LIMIT_PER_ADDRESS: "0", ...external?.env, ...(server ? { DATABASE_URL: server.url } : {}),
      // The load signs in once: its tokens must outlive the run (the default is 15 minutes).
      TOKEN_TTL_SECONDS: String(Math.min(86_400, Math.max(900, p.durationSeconds + (p.drainSeconds ?? 60) + 600))),
      // The node's tuning from the environment (KEEPER_ENABLED=0, ENGINE_*, RETENTION_*...), to compare runs.
      ...Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && /^(KEEPER|ENGINE|RETENTION|BRIDGE|SETTLEMENT|INTAKE)_/.test(k))) as Record<string, string>,
    }, {}),
    plugins: nodePlugins,
    logger: pino({ name: "soak", level: process.env.LOG_LEVEL ?? "warn" }, pino.destination(2)),
  }).catch(async (err: unknown) => {
    await external?.close();
    await server?.drop();
    throw err;
  });
  let worker: Worker | undefined;
  try {
    log(`node up at ${node.url} (${node.database}), data in ${dataDir}`);
    const region = "soak";
    const onboardStarted = Date.now();
    const { households, chain } = await onboardHouseholds(node, p.households, region, log, external?.adminKey);
    const onboardingMs = Date.now() - onboardStarted;
    const market = (chain.markets as { zone: string; zoneId: Hex; gateClosureSeconds: number }[]).find((m) => m.zone === "ZONE-A")!;
    const job: SoakLoadJob = {
      url: node.url, mqttUrl: node.mqttUrl, topicRoot: node.bridge.topicRoot, region, domain: chain.eip712.domain, zone: "ZONE-A", zoneId: market.zoneId,
      gateClosureSeconds: market.gateClosureSeconds, households, rate: p.rate, crossPct, readingEverySeconds: p.readingEverySeconds ?? 60,
    };

    // ---- the load's worker and its windows
    // A TypeScript worker needs tsx's loader, and only that: a worker refuses process-wide
    // flags the node may run with (--trace-gc, --cpu-prof).
    worker = new Worker(new URL("./soakLoad.ts", import.meta.url), { workerData: { soakLoad: job }, execArgv: ["--import", import.meta.resolve("tsx/esm")] });
    const waiting: ((m: FromWorker) => void)[] = [];
    let workerFailure: Error | undefined;
    worker.on("message", (m: FromWorker) => {
      if (m.type === "error") workerFailure = new Error(`soak load: ${m.message}`);
      waiting.shift()?.(m);
    });
    worker.on("error", (err) => {
      workerFailure = err;
      for (const w of waiting.splice(0)) w({ type: "error", message: err.message });
    });
    const next = () => new Promise<FromWorker>((resolve) => waiting.push(resolve));
    const ready = await next();
    if (ready.type !== "ready") throw workerFailure ?? new Error(`soak load did not start: ${JSON.stringify(ready)}`);
    const askWindow = async (type: "sample" | "stop"): Promise<SoakLoadWindow> => {
      const answer = next();
      worker!.postMessage({ type });
      const m = await answer;
      if (m.type !== "window") throw workerFailure ?? new Error(`soak load: ${JSON.stringify(m)}`);
      return m.window;
    };

    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const ms = (ns: number) => Math.round((ns / 1e6) * 10) / 10;
    const samples: SoakSample[] = [];
    const refusals: SoakResult["refusals"] = {};
    let worst: SoakResult["worstRequest"] = null;
    const loadStarted = Date.now();
    const minuteNow = () => Math.round(((Date.now() - loadStarted) / 60_000) * 100) / 100;
    const emptyWindow: SoakLoadWindow = { placed: 0, accepted: 0, refused: 0, errors: 0, refusals: {}, latencyMs: { p50: 0, p99: 0, max: 0 }, over500Ms: 0, slowest: null, behind: 0, readingsPublished: 0, readingErrors: 0 };

    const queues = () => {
      let settling = 0;
      let settled = 0;
      let failed = 0;
      for (const f of node.engine.state.fills) {
        if (f.status === "settling") settling++;
        else if (f.status === "executed") settled++;
        else if (f.status === "failed") failed++;
      }
      const keeper = node.keeper?.metrics();
      return {
        engineQueuedOps: node.engine.stats().queuedOps,
        settlerPendingFills: node.engine.settleableFills().length,
        settlingFills: settling,
        bridgeOutbox: node.bridge.metrics().confirmationsPending,
        keeperQueued: keeper ? keeper.pending + keeper.inFlight : 0,
        fills: node.engine.state.fills.length, settled, failedFills: failed,
      };
    };
    let slowLogWritesBefore = node.engine.stats().slowWrites;
    const takeSample = async (label: SoakSample["label"], w: SoakLoadWindow, minute = minuteNow()): Promise<SoakSample> => {
      const mem = process.memoryUsage();
      const slowLogWrites = node.engine.stats().slowWrites;
      const bridge = node.bridge.metrics();
      const q = queues();
      const sample: SoakSample = {
        minute, label,
        rssMb: Math.round((mem.rss / MB) * 10) / 10, chainRssMb: external ? await external.rssMb() : 0, heapUsedMb: Math.round((mem.heapUsed / MB) * 10) / 10,
        heapTotalMb: Math.round((mem.heapTotal / MB) * 10) / 10, ordersHeld: node.engine.state.orders.size, externalMb: Math.round((mem.external / MB) * 10) / 10,
        eventLoopP99Ms: ms(loop.percentile(99)), eventLoopMaxMs: ms(loop.max),
        apiP50Ms: w.latencyMs.p50, apiP99Ms: w.latencyMs.p99, apiMaxMs: w.latencyMs.max, apiOver500: w.over500Ms,
        placed: w.placed, accepted: w.accepted, refused: w.refused, errors: w.errors, behind: w.behind, readingsPublished: w.readingsPublished,
        ...q, slowLogWrites: slowLogWrites - slowLogWritesBefore, diskMb: await diskMb(dataDir) + (server ? await server.sizeMb() : 0),
        readingsAccepted: bridge.accepted, readingsDeadLettered: Object.values(bridge.deadLettered).reduce((a, b) => a + (b ?? 0), 0),
      };
      loop.reset();
      slowLogWritesBefore = slowLogWrites;
      for (const [status, r] of Object.entries(w.refusals)) {
        const t = (refusals[status] ??= { count: 0, example: r.example });
        t.count += r.count;
      }
      if (w.slowest && (!worst || w.slowest.ms > worst.ms)) worst = { ...w.slowest, minute };
      samples.push(sample);
      log(`${label} ${minute.toFixed(2)} min: rss ${sample.rssMb} MB, heap ${sample.heapUsedMb} MB, external ${sample.externalMb} MB, loop p99 ${sample.eventLoopP99Ms} ms, api p99 ${sample.apiP99Ms} ms, ` +
        `${sample.accepted}/${sample.placed} accepted, settled ${sample.settled}/${sample.fills}, queues ${sample.engineQueuedOps}/${sample.settlerPendingFills}/${sample.bridgeOutbox}/${sample.keeperQueued}, disk ${sample.diskMb} MB`);
      return sample;
    };

    await takeSample("start", emptyWindow, 0);
    const periods = Math.max(1, Math.round(p.durationSeconds / sampleSeconds));
    for (let i = 1; i <= periods; i++) {
      const until = loadStarted + Math.min(i * sampleSeconds, p.durationSeconds) * 1000;
      await new Promise((r) => setTimeout(r, Math.max(0, until - Date.now())));
      if (workerFailure) throw workerFailure;
      if (i < periods) await takeSample("load", await askWindow("sample"));
      else await takeSample("end", await askWindow("stop"), Math.round((p.durationSeconds / 60) * 100) / 100);
    }

    // ---- drain: nothing should stay queued once the load stops
    const drainStarted = Date.now();
    let left = queues();
    const busy = (q: typeof left) => q.engineQueuedOps + q.settlerPendingFills + q.settlingFills + q.bridgeOutbox + q.keeperQueued > 0;
    while (busy(left) && Date.now() - drainStarted < drainSeconds * 1000) {
      await new Promise((r) => setTimeout(r, 500));
      left = queues();
    }
    const waitedMs = Date.now() - drainStarted;
    await takeSample("drained", emptyWindow);

    // ---- where the bytes are: each table, and the chain journal
    const sizes = await sql<{ table: string; bytes: string | bigint; rows: string | bigint }>`
      select c.relname as table, pg_total_relation_size(c.oid) as bytes, c.reltuples::bigint as rows
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind = 'r' and n.nspname = 'public' order by 2 desc`.execute(node.services.indexer.db);
    const tables = sizes.rows.map((r) => ({ table: r.table, bytes: Number(r.bytes), rows: Math.max(0, Number(r.rows)) }));
    const chainJournalBytes = await fileBytes(path.join(dataDir, "chain", "chain-journal.ndjson"));
    const totalDb = tables.reduce((a, t) => a + t.bytes, 0);
    const lastSample = samples[samples.length - 1]!;
    const accepted = samples.reduce((a, s) => a + s.accepted, 0);
    const warmupMinutes = p.warmupMinutes ?? Math.min(15, p.durationSeconds / 120);
    const afterWarmUp = samples.filter((s) => (s.label === "load" || s.label === "end") && s.minute >= warmupMinutes);
    const slope = (f: (s: SoakSample) => number) => leastSquaresSlope(afterWarmUp.map((s) => ({ x: s.minute, y: f(s) })));
    const sum = (f: (s: SoakSample) => number) => samples.reduce((a, s) => a + f(s), 0);
    const last = samples[samples.length - 1]!;
    return {
      node: { chain: chainKind, database: node.database, households: p.households, rate: p.rate, crossPct, durationSeconds: p.durationSeconds, sampleSeconds, onboardingMs, keeper: node.keeper !== undefined, warmupMinutes },
      samples,
      slopes: { rssMbPerMin: slope((s) => s.rssMb), heapMbPerMin: slope((s) => s.heapUsedMb), diskMbPerMin: slope((s) => s.diskMb) },
      afterEachBook: afterEachBook(samples),
      worstRequest: worst,
      refusals,
      tables,
      perUnit: {
        bytesPerOrder: Math.round((totalDb + chainJournalBytes) / Math.max(1, accepted)),
        bytesPerTrade: Math.round((totalDb + chainJournalBytes) / Math.max(1, lastSample.settled)),
        bytesPerReading: Math.round(tables.filter((t) => t.table.startsWith("bridge_readings")).reduce((a, t) => a + t.bytes, 0) / Math.max(1, lastSample.readingsAccepted)),
        chainJournalBytes,
      },
      totals: {
        placed: sum((s) => s.placed), accepted: sum((s) => s.accepted), refused: sum((s) => s.refused), errors: sum((s) => s.errors), behind: sum((s) => s.behind), over500Ms: sum((s) => s.apiOver500),
        fills: last.fills, settled: last.settled, failedFills: last.failedFills,
      },
      drain: {
        drained: !busy(left), waitedMs,
        left: { engineQueuedOps: left.engineQueuedOps, settlerPendingFills: left.settlerPendingFills, settlingFills: left.settlingFills, bridgeOutbox: left.bridgeOutbox, keeperQueued: left.keeperQueued },
      },
    };
  } finally {
    await worker?.terminate();
    await node.close();
    await external?.close();
    await server?.drop();
    await rm(dir, { recursive: true, force: true });
  }
}
