// `npm run bench:indexer [-- --json] [-- --quick] [-- --trades N] [-- --fills N] [-- --report-share X]
// [-- --realtime-blocks N] [-- --skip-postgres] [-- --serve]`: how fast the indexer backfills and
// how far behind the head it runs. `--quick` (a CI check): 1,000 trades, 10 realtime blocks,
// PGlite only (each database costs two indexer processes; for PostgreSQL at a small size, set
// DATABASE_URL and pass `--trades 1000 --realtime-blocks 10` instead).
//
// 1. The embedded chain gets N trades through settleBatch (fills against long-lived signed
//    orders, FILLS per transaction) and delivery reports for a share of them (DeliveryConfirmed
//    + TradeSettled, a few short ones DisputeOpened).
// 2. `indexer/main.ts --once` runs as its own process, as deployed, into a fresh PGlite folder
//    and (when DATABASE_URL is set) a fresh PostgreSQL schema: events/s is events written over
//    the time from its first to its last commit (process start-up shown apart).
// 3. The same indexer then follows the head while `--realtime-blocks` settlements arrive at
//    seeded random intervals (50-350 ms apart): lag is the time from a block being mined to
//    its rows being committed.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { sql } from "kysely";
import { createPublicClient, createWalletClient, encodeFunctionData, getAddress, http, keccak256, concat, parseEventLogs, stringToHex, toHex, type Address, type Hex, type PublicClient } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { energyMarketAbi, prosumerRegistryAbi, testEuroAbi } from "../contracts/client/abi.js";
import { deployPlatform, writeDeployment } from "../contracts/client/deploy.js";
import { marketDomain, signOrder, SIDE_BUY, SIDE_SELL, sourceMask, type Order } from "../contracts/client/order.js";
import { tradeLeaf, type Trade } from "../contracts/client/trade.js";
import { openDatabase } from "../lib/database.js";
import { startLocalChain } from "../scripts/localChain.js";
import { mulberry32 } from "../lib/random.js";
import { readBenchArgs, size, toggle } from "./benchArgs.js";

/** Benchmark accounts trade far more in one interval than a household connection carries; the
 *  market enforces connection limits (settleBatch, intake), so bench accounts get 1 GW each way. */
const BENCH_CONNECTION_W = 1_000_000_000n;

const args = readBenchArgs("bench:indexer", {
  trades: size({ help: "trades on the chain before the backfill", default: 100_000, quick: 1_000, integer: true, min: 1 }),
  // Each settlement is sent with 16 M gas; 500 fills take 12.8 M, so about 620 fit.
  fills: size({ help: "fills per settleBatch transaction", default: 500, integer: true, min: 1, max: 600 }),
  "report-share": size({ help: "share of each settlement's trades given a delivery report", default: 0.1, min: 0, max: 1 }),
  "realtime-blocks": size({ help: "settlements mined while the indexer follows the head, per database", default: 120, quick: 10, integer: true, min: 1 }),
  "skip-postgres": toggle("leave out PostgreSQL even when DATABASE_URL is set", { quick: true }),
  serve: toggle("build the chain, print its RPC URL and deployments folder, and keep it up until Ctrl-C (no measurement)"),
});
const json = args.json;
const TRADES = args.trades;
const FILLS = args.fills;
const REPORT_SHARE = args["report-share"];
const REALTIME_BLOCKS = args["realtime-blocks"];
const log = (...parts: unknown[]) => {
  if (!json) console.error(...parts);
};

const MNEMONIC = "test test test test test test test test test test test junk";
const ZONE = stringToHex("ZONE-A", { size: 32 });
const PRICE = 250_000n;

const chain = await startLocalChain({ port: 0 });
const transport = http(chain.url, { timeout: 120_000 });
const client = createPublicClient({ chain: hardhat, transport }) as PublicClient;
const accounts = ((await client.request({ method: "eth_accounts" } as never)) as Address[]).map((a) => getAddress(a));
const [admin, matcher, oracle, arbiter] = accounts as [Address, Address, Address, Address];
const sellers = accounts.slice(5, 12);
const buyers = accounts.slice(12, 20);

async function send(from: Address, address: Address, abi: readonly unknown[], functionName: string, fnArgs: readonly unknown[], gas?: bigint) {
  const data = encodeFunctionData({ abi, functionName, args: fnArgs } as never);
  const hash = (await client.request({ method: "eth_sendTransaction", params: [{ from, to: address, data, ...(gas ? { gas: toHex(gas) } : {}) }] } as never)) as Hex;
  const minedAt = Date.now();
  const receipt = await client.getTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`${functionName} reverted`);
  return { receipt, minedAt };
}

// ------------------------------------------------------------------ the chain's history
const started = Date.now();
const wallet = createWalletClient({ chain: hardhat, account: admin, transport });
const deployment = await deployPlatform(wallet, client, { roles: { admin, registrar: admin, pauser: admin, matcher, meterOracle: oracle, arbiter }, maxNetworkFeePerKWh: 1_000_000n });
const market = deployment.contracts.EnergyMarket;
let meter = 1;
for (const s of sellers) await send(admin, deployment.contracts.ProsumerRegistry, prosumerRegistryAbi, "registerProsumer", [s, stringToHex(`SM-${meter++}`, { size: 32 }), ZONE, BENCH_CONNECTION_W, BENCH_CONNECTION_W, sourceMask(["solar", "wind"])]);
for (const b of buyers) {
  await send(admin, deployment.contracts.ProsumerRegistry, prosumerRegistryAbi, "registerProsumer", [b, stringToHex(`SM-${meter++}`, { size: 32 }), ZONE, BENCH_CONNECTION_W, BENCH_CONNECTION_W, 0]);
  for (let i = 0; i < 3; i++) await send(admin, deployment.contracts.PaymentToken, testEuroAbi, "faucet", [b, 10_000n * 1_000_000n]);
  await send(b, deployment.contracts.PaymentToken, testEuroAbi, "approve", [market, 2n ** 256n - 1n]);
}

// Long-lived orders, one per household, large enough for every fill of the run.
const now = (await client.getBlock()).timestamp;
const deliveryStart = ((now + 3_600n) / 900n + 1n) * 900n;
const deliveryEnd = deliveryStart + 900n;
const domain = marketDomain(deployment.chainId, market);
const keyOf = new Map(accounts.map((a, i) => [a, mnemonicToAccount(MNEMONIC, { addressIndex: i })]));
let nonce = 1n;
const orderOf = async (maker: Address, side: number) => {
  const order: Order = {
    maker, side, zone: ZONE, deliveryStart, deliveryEnd, energyWh: 10n ** 15n, limitPricePerKWh: PRICE, source: side === SIDE_SELL ? 1 : 0,
    acceptedSources: 0, minSellerReputationBps: 0, nonce: nonce++, expiry: deliveryStart,
  };
  return { order, signature: await signOrder(keyOf.get(maker)!, order, domain) };
};
const orders = [...(await Promise.all(buyers.map((b) => orderOf(b, SIDE_BUY)))), ...(await Promise.all(sellers.map((s) => orderOf(s, SIDE_SELL))))];
let fillCounter = 0;
const fillsOf = (n: number) =>
  Array.from({ length: n }, () => {
    const i = fillCounter++;
    return { buyIndex: i % buyers.length, sellIndex: buyers.length + ((i * 3) % sellers.length), energyWh: BigInt(1 + (i % 9)), pricePerKWh: PRICE };
  });

const batches: Trade[][] = [];
function tradesOf(receipt: Awaited<ReturnType<typeof send>>["receipt"]): Trade[] {
  const logs = parseEventLogs({ abi: energyMarketAbi, logs: receipt.logs });
  const fees = logs.find((l) => l.eventName === "BatchSettled")!.args as { communityFeeBps: number; networkFeePerKWh: bigint };
  return logs.flatMap((l) => {
    if (l.eventName !== "TradeExecuted") return [];
    const a = l.args;
    return [{ tradeId: a.tradeId, batchId: a.batchId, seller: a.seller, buyer: a.buyer, zone: a.zone, energyWh: a.energyWh, pricePerKWh: a.pricePerKWh, amount: a.amount, deliveryStart: a.deliveryStart, deliveryEnd: a.deliveryEnd, source: a.source, communityFeeBps: fees.communityFeeBps, networkFeePerKWh: fees.networkFeePerKWh }];
  });
}

log(`generating ${TRADES.toLocaleString("en-US")} trades, ${FILLS} fills per settlement...`);
for (let made = 0; made < TRADES; ) {
  const n = Math.min(FILLS, TRADES - made);
  const { receipt } = await send(matcher, market, energyMarketAbi, "settleBatch", [orders, fillsOf(n)], 16_000_000n);
  batches.push(tradesOf(receipt));
  if (batches.length === 1) log(`  gas per settlement of ${n} fills: ${receipt.gasUsed.toLocaleString("en-US")}`);
  made += n;
  if (batches.length % 20 === 0) log(`  ${made.toLocaleString("en-US")} trades`);
}

/** All proofs of a batch at once: the tree is built one time, not once per leaf. */
function proofsOf(leaves: Hex[]): Hex[][] {
  const levels: Hex[][] = [leaves];
  while (levels.at(-1)!.length > 1) {
    const level = levels.at(-1)!;
    const next: Hex[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(BigInt(level[i]!) < BigInt(level[i + 1]!) ? keccak256(concat([level[i]!, level[i + 1]!])) : keccak256(concat([level[i + 1]!, level[i]!])));
    if (level.length % 2 === 1) next.push(level.at(-1)!);
    levels.push(next);
  }
  return leaves.map((_, index) => {
    const proof: Hex[] = [];
    let i = index;
    for (const level of levels.slice(0, -1)) {
      if ((i ^ 1) < level.length) proof.push(level[i ^ 1]!);
      i = Math.floor(i / 2);
    }
    return proof;
  });
}

await client.request({ method: "evm_increaseTime", params: [Number(deliveryEnd - now) + 60] } as never);
const reportsPerBatch = Math.floor(FILLS * REPORT_SHARE);
log(`reporting ${reportsPerBatch} deliveries per settlement...`);
const evidence = stringToHex("meter readings", { size: 32 });
for (const trades of batches) {
  if (reportsPerBatch === 0) break;
  const proofs = proofsOf(trades.map(tradeLeaf));
  const reports = trades.slice(0, reportsPerBatch).map((trade, i) => ({
    trade, proof: proofs[i]!, evidenceHash: evidence,
    // One report in ten falls short of the tolerance and opens a dispute.
    deliveredWh: i % 10 === 9 ? 0n : trade.energyWh,
  }));
  await send(oracle, market, energyMarketAbi, "reportDeliveries", [reports], 16_000_000n);
}
const head = await client.getBlockNumber();
const generateSeconds = (Date.now() - started) / 1000;
log(`chain ready: block ${head} after ${generateSeconds.toFixed(0)} s`);

// ------------------------------------------------------------------ the indexer, as deployed
const deploymentsDir = await mkdtemp(path.join(tmpdir(), "bench-indexer-"));
await writeDeployment(deploymentsDir, deployment);
if (args.serve) {
  // For experiments by hand: keep the generated chain up, e.g. to run `npm run indexer` against it.
  console.log(JSON.stringify({ rpcUrl: chain.url, deploymentsDir, head: Number(head) }));
  await new Promise<void>((resolve) => process.once("SIGINT", resolve));
  await chain.close();
  process.exit(0);
}

interface LogLine { msg?: string; time?: number; events?: number; block_number?: number; wait_ms?: number; write_ms?: number }

function runIndexer(env: Record<string, string>, extra: string[], onLine?: (line: LogLine, child: ReturnType<typeof spawn>) => void) {
  const child = spawn(process.execPath, ["--import", "tsx", "indexer/main.ts", ...extra], {
    env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "info", INDEXER_RPC_URL: chain.url, DEPLOYMENTS_DIR: deploymentsDir, INDEXER_API: "false", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: LogLine[] = [];
  let buffered = "";
  let stderr = "";
  child.stdout!.on("data", (c: Buffer) => {
    buffered += c.toString("utf8");
    let n: number;
    while ((n = buffered.indexOf("\n")) >= 0) {
      const text = buffered.slice(0, n);
      buffered = buffered.slice(n + 1);
      try {
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        onLine?.(line, child);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  const done = new Promise<LogLine[]>((resolve, reject) =>
    child.on("exit", (code, signal) => (code === 0 || signal === "SIGTERM" ? resolve(lines) : reject(new Error(`indexer exited with ${code ?? signal}: ${stderr.slice(-2000)}`)))),
  );
  return { child, done, lines };
}

interface Target {
  name: string;
  env: Record<string, string>;
  cleanup: () => Promise<void>;
}

const targets: Target[] = [];
{
  const dir = await mkdtemp(path.join(tmpdir(), "bench-indexer-pglite-"));
  targets.push({ name: "PGlite", env: { INDEXER_DATA_DIR: dir }, cleanup: () => rm(dir, { recursive: true, force: true }) });
}
if (process.env.DATABASE_URL && !args["skip-postgres"]) {
  const schema = `bench_indexer_${process.pid}`;
  const admin = await openDatabase<unknown>({ url: process.env.DATABASE_URL });
  await sql`create schema ${sql.id(schema)}`.execute(admin.db);
  await admin.close();
  const u = new URL(process.env.DATABASE_URL);
  u.searchParams.set("options", `-c search_path=${schema}`);
  targets.push({
    name: "PostgreSQL",
    env: { DATABASE_URL: u.toString() },
    cleanup: async () => {
      const c = await openDatabase<unknown>({ url: process.env.DATABASE_URL! });
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(c.db);
      await c.close();
    },
  });
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const random = mulberry32;

const results: Record<string, unknown>[] = [];
try {
  // Every database gets the same chain to backfill; the realtime runs come after all of them.
  for (const target of targets) {
    log(`${target.name}: cold backfill...`);
    const spawnedAt = Date.now();
    const lines = await runIndexer(target.env, ["--once"]).done;
    const exitedAt = Date.now();
    const startLine = lines.find((l) => l.msg === "indexer starting")!;
    const commits = lines.filter((l) => l.msg === "indexed range" || l.msg === "indexed block");
    const events = commits.reduce((a, l) => a + (l.events ?? 0), 0);
    const seconds = (commits.at(-1)!.time! - startLine.time!) / 1000;
    results.push({
      database: target.name,
      events,
      backfillSeconds: Number(seconds.toFixed(2)),
      eventsPerSecond: Math.round(events / seconds),
      processSeconds: Number(((exitedAt - spawnedAt) / 1000).toFixed(2)),
      commits: commits.length,
      waitingForChainSeconds: Number((commits.reduce((a, l) => a + (l.wait_ms ?? 0), 0) / 1000).toFixed(2)),
      writingSeconds: Number((commits.reduce((a, l) => a + (l.write_ms ?? 0), 0) / 1000).toFixed(2)),
    });
  }

  for (const [i, target] of targets.entries()) {
    log(`${target.name}: following the head while ${REALTIME_BLOCKS} settlements arrive...`);
    const minedAt = new Map<number, number>();
    const indexedAt = new Map<number, number>();
    const waiting: { block: number; resolve: () => void }[] = [];
    const reached = (block: number) => new Promise<void>((resolve) => (indexedAt.has(block) ? resolve() : waiting.push({ block, resolve })));
    const follow = runIndexer(target.env, [], (line) => {
      if ((line.msg === "indexed block" || line.msg === "indexed range") && line.block_number !== undefined) {
        indexedAt.set(line.block_number, line.time!);
        for (const w of waiting.filter((w) => line.block_number! >= w.block)) w.resolve();
      }
    });
    // Blocks mined by an earlier database's run are caught up on before the clock starts.
    const head = Number(await client.getBlockNumber());
    if (i > 0) await reached(head);
    else await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (follow.lines.some((l) => l.msg === "indexer starting")) {
          clearInterval(check);
          resolve();
        }
      }, 20);
    });
    const rand = random(7);
    for (let n = 0; n < REALTIME_BLOCKS; n++) {
      await new Promise((r) => setTimeout(r, 50 + Math.floor(rand() * 300)));
      const { receipt, minedAt: at } = await send(matcher, market, energyMarketAbi, "settleBatch", [orders, fillsOf(10)], 5_000_000n);
      minedAt.set(Number(receipt.blockNumber), at);
    }
    await reached(Math.max(...minedAt.keys()));
    follow.child.kill("SIGTERM");
    await follow.done;
    const lags = [...minedAt].map(([block, at]) => indexedAt.get(block)! - at).sort((a, b) => a - b);
    Object.assign(results[i]!, { realtimeBlocks: lags.length, lagP50Ms: percentile(lags, 50), lagP99Ms: percentile(lags, 99), lagMaxMs: lags.at(-1)! });
  }
} finally {
  for (const t of targets) await t.cleanup();
  await rm(deploymentsDir, { recursive: true, force: true });
  await chain.close();
}

const summary = {
  trades: TRADES,
  fillsPerSettlement: FILLS,
  reportShare: REPORT_SHARE,
  blocks: Number(head),
  chainGenerationSeconds: Number(generateSeconds.toFixed(0)),
  pollIntervalMs: 250,
  results,
};
if (json) {
  console.log(JSON.stringify(summary));
} else {
  const row = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  console.log(
    [
      "",
      `${TRADES.toLocaleString("en-US")} trades in ${Number(head)} blocks (${FILLS} fills per settlement, ${Math.round(REPORT_SHARE * 100)}% reported)`,
      "",
      row(["database", "events", "cold backfill", "events/s", "of which waiting for the chain", "writing", "process (with start-up)", "realtime lag p50", "p99", "max"]),
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
      ...results.map((r) =>
        row([
          String(r.database), Number(r.events).toLocaleString("en-US"), `${r.backfillSeconds} s`, Number(r.eventsPerSecond).toLocaleString("en-US"),
          `${r.waitingForChainSeconds} s`, `${r.writingSeconds} s`, `${r.processSeconds} s`, `${r.lagP50Ms} ms`, `${r.lagP99Ms} ms`, `${r.lagMaxMs} ms`,
        ]),
      ),
    ].join("\n"),
  );
}
