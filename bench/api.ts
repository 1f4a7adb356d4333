// `npm run bench:api [-- --json] [-- --quick] [-- --orders N] [-- --seconds S] [-- --connections C]
// [-- --makers M] [-- --cross-pct P] [-- --reads chain,markets,book,history,mixed|none]
// [-- --intake-workers N] [-- --profile DIR] [-- --postgres]`:
// the node's HTTP API under load. A node starts in this process: embedded chain, PGlite (or with
// `--postgres` a fresh database on DATABASE_URL's server), Aedes, ports 0, temp folders, rate
// limits off. `--makers` prosumers are registered through POST /v1/prosumers with the operator's
// token, funded with the faucet, approve the market, and sign in with SIWE. Then autocannon, in
// a worker thread (its own core, not the node's event loop), drives 127.0.0.1:
//   place  POST /v1/trading/orders, every request a different valid order (pre-signed with
//          libsecp256k1, as a wallet would with viem but ~50x faster): resting limits on both
//          sides over 8 intervals, `--cross-pct` % of buys crossing the asks;
//   reads  GET /v1/trading/markets, GET .../book of the busiest interval, GET /v1/trading/history
//          (a buyer with settled trades), each alone for `--seconds`, then the three mixed; and
//          GET /v1/chain, a static body, as the baseline of the HTTP stack on this machine.
// Printed per scenario: requests/s, latency p50/p95/p99 (every response timed), 2xx, non-2xx and
// errors; `--json` prints one JSON object. `--intake-workers N`: the node's signature workers
// (INTAKE_WORKERS; default 1 with 2 or more CPUs, 0 = recovery on the node's main thread).
// `--profile DIR` writes a CPU profile of the node's thread per scenario. Goals: placement
// >= 5,000 req/s with p99 < 50 ms, reads >= 20,000 req/s with p99 < 20 ms. `--quick` (a CI
// check): 2,000 orders from 4 makers and 1 s per read scenario, every scenario still run.
import { createRequire } from "node:module";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { readBenchArgs, size, text, toggle } from "./benchArgs.js";

interface LoadRequest {
  method: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  body?: string;
}

interface LoadJob {
  url: string;
  connections: number;
  /** Stop after this many responses, or after `seconds`. */
  amount?: number;
  seconds?: number;
  /** Sent in order, one each (amount), or cycled (seconds). */
  requests: LoadRequest[];
}

interface LoadResult {
  requests: number;
  seconds: number;
  perSecond: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  statuses: Record<string, number>;
  non2xx: number;
  errors: number;
  timeouts: number;
}

type Autocannon = (opts: Record<string, unknown>, done: (err: Error | null, result: Record<string, any>) => void) => NodeJS.EventEmitter;

/** The load generator: runs in a worker thread so the node keeps its own event loop and core. */
async function runLoad(job: LoadJob): Promise<LoadResult> {
  const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;
  const durations: number[] = [];
  const statuses: Record<string, number> = {};
  let next = 0;
  const take = (): LoadRequest => {
    const r = job.requests[next % job.requests.length]!;
    next++;
    return r;
  };
  const started = process.hrtime.bigint();
  let lastResponse = started;
  const result = await new Promise<Record<string, any>>((resolve, reject) => {
    const instance = autocannon({
      url: job.url,
      connections: job.connections,
      pipelining: 1,
      timeout: 10,
      ...(job.amount !== undefined ? { amount: job.amount } : { duration: job.seconds }),
      requests: [{
        method: job.requests[0]!.method,
        path: job.requests[0]!.path,
        // Each request its own: a shared counter across connections, so no order is sent twice.
        setupRequest: (req: Record<string, unknown>) => {
          const r = take();
          return { ...req, method: r.method, path: r.path, headers: r.headers, ...(r.body !== undefined ? { body: r.body } : {}) };
        },
      }],
    }, (err, res) => (err ? reject(err) : resolve(res)));
    instance.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
      durations.push(ms);
      lastResponse = process.hrtime.bigint();
      statuses[status] = (statuses[status] ?? 0) + 1;
    });
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  durations.sort((a, b) => a - b);
  const pct = (p: number) => (durations.length === 0 ? NaN : durations[Math.min(durations.length - 1, Math.ceil((p / 100) * durations.length) - 1)]!);
  const round = (x: number) => Math.round(x * 100) / 100;
  // autocannon's own window excludes connection setup; our count over its duration.
  // With `amount`, autocannon notices the end only at its next 1-second tick, so its duration is
  // whole seconds (30,000 orders: 3,000/s or 2,727/s, nothing between): up to the last response.
  const window = job.amount !== undefined ? Number(lastResponse - started) / 1e9 : Number(result.duration) || seconds;
  return {
    requests: durations.length, seconds: round(window), perSecond: Math.round(durations.length / window),
    latencyMs: { p50: round(pct(50)), p95: round(pct(95)), p99: round(pct(99)), max: round(durations.at(-1) ?? NaN) },
    statuses, non2xx: Number(result.non2xx), errors: Number(result.errors), timeouts: Number(result.timeouts),
  };
}

if (!isMainThread) {
  runLoad(workerData as LoadJob).then((r) => parentPort!.postMessage({ ok: r }), (err: Error) => parentPort!.postMessage({ error: err.stack ?? err.message }));
} else {
  await main();
}

async function main(): Promise<void> {
  // Flags first: a bad command line stops before the node's modules load.
  const args = readBenchArgs("bench:api", {
    orders: size({ help: "signed orders placed, each a different valid order", default: 30_000, quick: 2_000, integer: true, min: 1 }),
    seconds: size({ help: "seconds per read scenario", default: 10, quick: 1, above: 0 }),
    connections: size({ help: "autocannon connections", default: 32, integer: true, min: 1 }),
    // Even indexes buy, odd ones sell: two makers at least, one of each.
    makers: size({ help: "prosumers registered, funded and signed in, half buyers and half sellers", default: 16, quick: 4, integer: true, min: 2 }),
    // Buys are half the orders, so 50 makes every buy cross.
    "cross-pct": size({ help: "percent of all orders that are buys crossing the asks", default: 5, min: 0, max: 50 }),
    reads: text({ help: "read scenarios to run, all by default (none: placement alone)", choices: ["chain", "markets", "book", "history", "mixed", "none"], list: true }),
    "intake-workers": size({ help: "the node's signature workers (INTAKE_WORKERS; the node's default is 1 with 2 or more CPUs, 0 = recovery on its main thread)", integer: true, min: 0 }),
    profile: text({ help: "write a CPU profile of the node's thread per scenario into this folder", placeholder: "DIR" }),
    postgres: toggle("the node's database in a fresh PostgreSQL database on DATABASE_URL's server (dropped afterwards)"),
  });
  const json = args.json;
  const ORDERS = args.orders;
  const SECONDS = args.seconds;
  const CONNECTIONS = args.connections;
  const MAKERS = args.makers;
  const CROSS_PCT = args["cross-pct"];
  // `--reads markets,book`: only these read scenarios ("none" for placement alone, e.g. to profile it).
  const READS = args.reads !== undefined ? args.reads.split(",") : ["chain", "markets", "book", "history", "mixed"];
  // `--profile DIR`: a CPU profile of the node's thread per scenario, DIR/<scenario>.cpuprofile.
  const PROFILE_DIR = args.profile;
  const INTAKE_WORKERS = args["intake-workers"];

  // The node's modules load only here, never in the load generator's thread.
  const { mkdtemp, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const path = await import("node:path");
  const viem = await import("viem");
  const { privateKeyToAccount } = await import("viem/accounts");
  const { createSiweMessage } = await import("viem/siwe");
  const { pino } = await import("pino");
  const { readNodeConfig } = await import("../server/config.js");
  const { nodePlugins } = await import("../server/plugins.js");
  const { startNode } = await import("../server/startNode.js");
  const { createOrderHasher, hexToBytes, signDigest } = await import("../engine/intake/orderSignature.js");
  type Hex = `0x${string}`;

  const log = (...a: unknown[]) => {
    if (!json) console.error(...a);
  };

  // `--postgres`: the node's database in PostgreSQL (a fresh database in DATABASE_URL's server,
  // dropped afterwards) instead of the embedded PGlite.
  const { createScratchDatabase, ScratchDatabaseError } = await import("./scratchDatabase.js");
  let scratch: Awaited<ReturnType<typeof createScratchDatabase>> | undefined;
  if (args.postgres) {
    try {
      scratch = await createScratchDatabase("bench_api", "bench:api --postgres");
    } catch (err) {
      if (!(err instanceof ScratchDatabaseError)) throw err;
      console.error(err.message);
      process.exit(2);
    }
  }
  const databaseUrl = scratch?.url;
  const dropDatabase = async () => scratch?.drop();

  const dir = await mkdtemp(path.join(tmpdir(), "bench-api-"));
  const t0 = Date.now();
  const node = await startNode({
    config: readNodeConfig({
      PORT: "0", CHAIN_PORT: "0", MQTT_PORT: "0", DATA_DIR: path.join(dir, "data"), DEPLOYMENTS_DIR: path.join(dir, "deployments"), TEST_ACCOUNTS: "0",
      RATE_LIMIT_PER_IP: "0", RATE_LIMIT_PER_ADDRESS: "0", ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
      ...(INTAKE_WORKERS !== undefined ? { INTAKE_WORKERS: String(INTAKE_WORKERS) } : {}),
    }, {}),
    plugins: nodePlugins,
    // On stderr: stdout carries the results (one JSON object with --json).
    logger: pino({ name: "bench-api", level: process.env.LOG_LEVEL ?? "warn" }, pino.destination(2)),
  });
  log(`node up in ${Date.now() - t0} ms at ${node.url}`);

  try {
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
      const domain = new URL(node.url).host;
      const message = createSiweMessage({ address: account.address, chainId: node.chainId, domain, nonce, uri: node.url, version: "1" });
      return (await api("/v1/auth/login", { method: "POST", body: { message, signature: await account.signMessage({ message }) } })).token as string;
    };

    // ---- makers: registered by the operator, funded, approving the market, signed in
    const setupStarted = Date.now();
    const chainInfo = await api("/v1/chain");
    const operator = await signIn(node.operatorKey!);
    const makers: { key: Hex; keyBytes: Uint8Array; address: `0x${string}`; side: 0 | 1; token: string }[] = [];
    const publicClient = viem.createPublicClient({ transport: viem.http(node.rpcUrl), pollingInterval: 50 });
    // Intake holds each maker to its connection's limit per interval: a bench maker's connection
    // carries the whole load, as if every order (at most 2,000 Wh) landed on it in one interval
    // (W = Wh per 15 minutes x 4).
    const connectionW = ORDERS * 2_000 * 4;
    for (let i = 0; i < MAKERS; i++) {
      const key = viem.keccak256(viem.toHex(`bench api maker ${i}`));
      const address = privateKeyToAccount(key).address;
      const side = (i % 2) as 0 | 1; // even: buyers, odd: sellers
      await api("/v1/prosumers", { method: "POST", token: operator, body: { address, meterId: `bench-${i}`, zone: "ZONE-A", sources: ["solar"], exportLimitW: connectionW, importLimitW: connectionW } });
      const token = await signIn(key);
      if (side === 0) {
        await api("/v1/faucet", { method: "POST", token, body: { amount: 10_000 } });
        const wallet = viem.createWalletClient({ chain: { id: node.chainId, name: "bench", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [node.rpcUrl] } } }, account: privateKeyToAccount(key), transport: viem.http(node.rpcUrl) });
        const hash = await wallet.writeContract({ address: chainInfo.contracts.PaymentToken, abi: viem.erc20Abi, functionName: "approve", args: [chainInfo.contracts.EnergyMarket, viem.maxUint256] });
        await publicClient.waitForTransactionReceipt({ hash });
      }
      makers.push({ key, keyBytes: hexToBytes(key), address, side, token });
    }
    const buyers = makers.filter((m) => m.side === 0);
    const sellers = makers.filter((m) => m.side === 1);
    log(`${MAKERS} makers registered, funded and signed in (${Date.now() - setupStarted} ms)`);

    // ---- orders, signed before the run
    const now = (await api("/v1/trading/markets?zone=ZONE-A")).now as number;
    const firstInterval = (Math.floor((now + 1_200) / 900) + 1) * 900;
    const intervals = Array.from({ length: 8 }, (_, i) => firstInterval + i * 900);
    const zoneId = (chainInfo.markets as { zone: string; zoneId: Hex }[]).find((m) => m.zone === "ZONE-A")!.zoneId;
    const hash = createOrderHasher(chainInfo.eip712.domain);
    let seed = 42;
    const rnd = () => {
      // mulberry32: the same orders on every run.
      seed = (seed + 0x6d2b79f5) | 0;
      let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
    };
    const signStarted = performance.now();
    const requests: LoadRequest[] = [];
    let crossing = 0;
    for (let i = 0; i < ORDERS; i++) {
      const side = rnd() < 0.5 ? 0 : 1;
      const maker = side === 0 ? buyers[Math.floor(rnd() * buyers.length)]! : sellers[Math.floor(rnd() * sellers.length)]!;
      const interval = intervals[Math.floor(rnd() * intervals.length)]!;
      const crosses = side === 0 && rnd() * 100 < CROSS_PCT * 2; // half the orders are buys
      if (crosses) crossing++;
      // Resting: bids 90,000-180,000, asks 250,000-340,000 (tick 10); crossing bids at 345,000.
      const price = crosses ? 345_000 : side === 0 ? 90_000 + 10 * Math.floor(rnd() * 9_000) : 250_000 + 10 * Math.floor(rnd() * 9_000);
      const energyWh = 100 * (1 + Math.floor(rnd() * 20));
      const order = {
        maker: maker.address, side, zone: zoneId, deliveryStart: BigInt(interval), deliveryEnd: BigInt(interval + 900), energyWh: BigInt(energyWh),
        limitPricePerKWh: BigInt(price), source: side === 1 ? 1 : 0, acceptedSources: 0, minSellerReputationBps: 0, nonce: BigInt(i + 1), expiry: BigInt(interval),
      };
      const signature = signDigest(maker.keyBytes, hash(order));
      const body = JSON.stringify({
        order: { maker: maker.address, side, zone: "ZONE-A", deliveryStart: interval, deliveryEnd: interval + 900, energyWh, limitPricePerKWh: price, source: order.source, nonce: i + 1, expiry: interval },
        signature,
      });
      requests.push({ method: "POST", path: "/v1/trading/orders", headers: { authorization: `Bearer ${maker.token}`, "content-type": "application/json" }, body });
    }
    log(`${ORDERS} orders signed in ${Math.round(performance.now() - signStarted)} ms (${crossing} crossing)`);

    const { Session } = await import("node:inspector/promises");
    const { mkdir, writeFile } = await import("node:fs/promises");
    const runInWorker = async (job: LoadJob, scenario: string) => {
      const session = PROFILE_DIR ? new Session() : undefined;
      if (session) {
        session.connect();
        await session.post("Profiler.enable");
        await session.post("Profiler.start");
      }
      try {
        return await new Promise<LoadResult>((resolve, reject) => {
          const worker = new Worker(new URL(import.meta.url), { workerData: job });
          worker.once("message", (m: { ok?: LoadResult; error?: string }) => {
            void worker.terminate();
            if (m.ok) resolve(m.ok);
            else reject(new Error(m.error));
          });
          worker.once("error", reject);
        });
      } finally {
        if (session) {
          const { profile } = await session.post("Profiler.stop");
          await mkdir(PROFILE_DIR!, { recursive: true });
          await writeFile(path.join(PROFILE_DIR!, `${scenario}.cpuprofile`), JSON.stringify(profile));
          session.disconnect();
        }
      }
    };

    const results: Record<string, LoadResult & { goal?: string; met?: boolean }> = {};
    const ordersBefore = node.engine.state.orders.size;
    const fillsBefore = node.engine.state.fills.length;
    log(`place: ${ORDERS} orders over ${CONNECTIONS} connections...`);
    results.place = await runInWorker({ url: node.url, connections: CONNECTIONS, amount: ORDERS, requests }, "place");
    const accepted = node.engine.state.orders.size - ordersBefore;
    const fills = node.engine.state.fills.length - fillsBefore;
    if (accepted !== (results.place.statuses["201"] ?? 0)) throw new Error(`the engine holds ${accepted} new orders but ${results.place.statuses["201"] ?? 0} were acknowledged`);

    // Settlement of the crossing fills, then indexing: history has something to read.
    const settleStarted = Date.now();
    const settled = await (async () => {
      for (;;) {
        const waiting = node.engine.state.fills.filter((f) => f.status === "pending" || f.status === "settling").length;
        if (waiting === 0 || Date.now() - settleStarted > 120_000) return waiting === 0;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const settleMs = Date.now() - settleStarted;
    await node.indexedBlock();
    const executed = node.engine.state.fills.filter((f) => f.status === "executed").length;
    log(`${accepted} orders accepted, ${fills} fills; all settled: ${settled} (${executed} executed) ${settleMs} ms after the run; indexed`);

    // ---- reads
    const busiest = intervals
      .map((start) => ({ start, depth: node.engine.book(zoneId.toLowerCase() as Hex, start)?.book.depth(1_000) }))
      .sort((a, b) => (b.depth?.bids.length ?? 0) + (b.depth?.asks.length ?? 0) - ((a.depth?.bids.length ?? 0) + (a.depth?.asks.length ?? 0)))[0]!.start;
    const reader = buyers[0]!;
    const historyProbe = await api("/v1/trading/history", { token: reader.token });
    const reads: Record<string, LoadRequest> = {
      // Not a goal: a static body, what the HTTP stack alone (fastify, hooks, sockets) manages here.
      chain: { method: "GET", path: "/v1/chain", headers: {} },
      markets: { method: "GET", path: "/v1/trading/markets", headers: {} },
      book: { method: "GET", path: `/v1/trading/markets/ZONE-A/${busiest}/book`, headers: {} },
      history: { method: "GET", path: "/v1/trading/history", headers: { authorization: `Bearer ${reader.token}` } },
    };
    const marketsBody = await api("/v1/trading/markets");
    log(`reads: markets lists ${marketsBody.markets.length} books; the book of ${busiest}; history of ${reader.address} has ${historyProbe.trades.length} trades`);
    for (const [name, request] of Object.entries(reads)) {
      if (!READS.includes(name)) continue;
      log(`${name}: ${SECONDS} s over ${CONNECTIONS} connections...`);
      results[name] = await runInWorker({ url: node.url, connections: CONNECTIONS, seconds: SECONDS, requests: [request] }, name);
    }
    if (READS.includes("mixed")) {
      log(`reads (mixed): ${SECONDS} s...`);
      results.readsMixed = await runInWorker({ url: node.url, connections: CONNECTIONS, seconds: SECONDS, requests: [reads.markets!, reads.book!, reads.history!] }, "readsMixed");
    }

    // ---- goals
    const goal = (name: string, minPerSecond: number, maxP99: number) => {
      const r = results[name]!;
      r.goal = `>= ${minPerSecond.toLocaleString("en")} req/s, p99 < ${maxP99} ms`;
      r.met = r.perSecond >= minPerSecond && r.latencyMs.p99 < maxP99 && r.non2xx === 0 && r.errors === 0;
    };
    goal("place", 5_000, 50);
    for (const name of ["markets", "book", "history", "readsMixed"]) if (results[name]) goal(name, 20_000, 20);

    const summary = {
      node: {
        url: node.url, database: node.database, makers: MAKERS, connections: CONNECTIONS, cpus: (await import("node:os")).cpus().length,
        intakeWorkers: node.engine.signaturePool?.stats() ?? 0,
      },
      place: { orders: ORDERS, crossing, accepted, fills, settledAfterRunMs: settleMs, allSettled: settled, executed },
      reads: { marketsListed: marketsBody.markets.length, bookInterval: busiest, historyTrades: historyProbe.trades.length },
      engineLog: node.engine.stats(),
      scenarios: results,
    };
    if (json) {
      console.log(JSON.stringify(summary));
    } else {
      const rows = [["scenario", "req/s", "p50 ms", "p95 ms", "p99 ms", "2xx", "non-2xx", "errors", "goal", "met"]];
      for (const [name, r] of Object.entries(results)) {
        const ok = Object.entries(r.statuses).filter(([s]) => s.startsWith("2")).reduce((a, [, n]) => a + n, 0);
        rows.push([name, String(r.perSecond), String(r.latencyMs.p50), String(r.latencyMs.p95), String(r.latencyMs.p99), String(ok), String(r.non2xx), String(r.errors + r.timeouts), r.goal ?? "(baseline)", r.goal ? (r.met ? "yes" : "NO") : ""]);
      }
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
      console.log(rows.map((row) => row.map((c, i) => (i === 0 || i >= 8 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")).join("\n"));
      for (const [name, r] of Object.entries(results)) {
        const bad = Object.entries(r.statuses).filter(([s]) => !s.startsWith("2"));
        if (bad.length > 0) console.log(`${name}: non-2xx statuses ${bad.map(([s, n]) => `${s}×${n}`).join(", ")}`);
      }
      console.log(`place: ${accepted} accepted, ${fills} fills, settled ${settled ? "all" : "NOT all"} ${settleMs} ms after the run; engine log: ${JSON.stringify(summary.engineLog)}`);
      console.log(`intake workers: ${JSON.stringify(summary.node.intakeWorkers)}`);
    }
  } finally {
    await node.close();
    await rm(dir, { recursive: true, force: true });
    await dropDatabase();
  }
}
