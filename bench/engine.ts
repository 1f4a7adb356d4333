// `npm run bench:engine [-- --json] [-- --quick] [-- --orders N] [-- --auction-orders N,N]
// [-- --e2e-orders N] [-- --e2e-prosumers N] [-- --intake-orders N] [-- --concurrency N]`:
// the matching engine's speed.
// 1. Continuous matching on a mixed stream of `--orders` operations (60% limit, 30% cancel,
//    10% market) against one book with realistic depth, one core: throughput and per-order
//    latency percentiles, and the same stream through the npm package `nodejs-order-book` as
//    the baseline (both warmed up first on up to 100,000 / 50,000 operations).
// 2. Call auction clearing time for each of `--auction-orders` (10,000 and 100,000 orders).
// 3. End to end on the embedded chain, `--e2e-orders` from `--e2e-prosumers` households: sign
//    (libsecp256k1), admit, match, log, batch, receipt; once with one order at a time, once
//    with `--concurrency` orders in flight (default 200, as concurrent HTTP clients would),
//    where log writes are shared (group commit).
// 4. Intake through the log without a chain (admit, match, log), one at a time and with
//    `--concurrency` in flight, `--intake-orders` each: what the HTTP API's throughput rests on.
// `--quick` runs every phase at a small size (well under a minute) for a CI check.
import { OrderBook as BaselineBook, Side as BaselineSide } from "nodejs-order-book";
import { BUY, OrderBook, SELL, type BookOrderInput, type SubmitOptions } from "../engine/book/orderBook.js";
import { clearCallAuction, type AuctionOrder } from "../engine/auction/clearCallAuction.js";
import { runIntakeBench } from "./engineIntake.js";
import { runSettlementBench } from "./engineSettlement.js";
import { mulberry32 } from "../lib/random.js";
import { readBenchArgs, size, sizes } from "./benchArgs.js";

const args = readBenchArgs("bench:engine", {
  orders: size({ help: "operations in the mixed stream, for the engine's book and the baseline alike", default: 1_000_000, quick: 20_000, integer: true, min: 1 }),
  "auction-orders": sizes({ help: "orders per call auction, one auction size each", default: [10_000, 100_000], quick: [1_000, 10_000], integer: true, min: 1 }),
  "e2e-orders": size({ help: "signed orders end to end on the embedded chain, per run (two runs)", default: 2_000, quick: 200, integer: true, min: 1 }),
  // Each one is registered, funded and approves on the chain (4 transactions) before a run.
  "e2e-prosumers": size({ help: "households signing the end-to-end orders, half sellers, half buyers", default: 40, quick: 10, integer: true, min: 2, multipleOf: 2 }),
  "intake-orders": size({ help: "orders through the log without a chain, per run (two runs)", default: 10_000, quick: 1_000, integer: true, min: 1 }),
  concurrency: size({ help: "orders in flight in the concurrent runs", default: 200, integer: true, min: 1 }),
});
const json = args.json;
const STREAM = args.orders;
const AUCTION_ORDERS = args["auction-orders"];
const E2E_ORDERS = args["e2e-orders"];
const E2E_PROSUMERS = args["e2e-prosumers"];
const INTAKE_ORDERS = args["intake-orders"];
const CONCURRENCY = args.concurrency;
const log = (...a: unknown[]) => { if (!json) console.error(...a); };


type Op = { kind: 0; input: BookOrderInput; options: SubmitOptions } | { kind: 1; seq: number } | { kind: 2; input: BookOrderInput; options: SubmitOptions };

const FLOOR = 80_000;
const CEILING = 350_000;
const MID = 200_000;
const TICK = 10;

/** The stream: limits around a mid price 200 ticks deep each side, a few percent crossing;
 *  cancels of earlier limit orders; market orders as IOC at the corridor bound. */
function makeStream(n: number): Op[] {
  const rnd = mulberry32(42);
  const ops: Op[] = [];
  const limits: number[] = [];
  const gtc: SubmitOptions = { timeInForce: "gtc", postOnly: false, now: 0 };
  const ioc: SubmitOptions = { timeInForce: "ioc", postOnly: false, now: 0 };
  for (let i = 0; i < n; i++) {
    const r = rnd();
    const seq = i + 1;
    const side = rnd() < 0.5 ? BUY : SELL;
    const sizeWh = 100 * (1 + Math.floor(rnd() * 20));
    const base = { seq, id: String(seq), maker: `m${Math.floor(rnd() * 2_000)}`, side, sizeWh, expiry: 1e12, source: side === SELL ? 1 : 0, acceptedSources: 0, minSellerReputationBps: 0, sellerReputationBps: 10_000 } as const;
    if (r < 0.3 && limits.length > 0) {
      ops.push({ kind: 1, seq: limits[Math.floor(rnd() * limits.length)]! });
    } else if (r < 0.4) {
      ops.push({ kind: 2, input: { ...base, price: side === BUY ? CEILING : FLOOR }, options: ioc });
    } else {
      // Depth 1..200 ticks away from mid on the passive side; ~3% land across the spread.
      const away = rnd() < 0.03 ? -Math.floor(rnd() * 5) : 1 + Math.floor(rnd() * 200);
      const price = side === BUY ? MID - away * TICK : MID + away * TICK;
      ops.push({ kind: 0, input: { ...base, price }, options: gtc });
      limits.push(seq);
    }
  }
  return ops;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function runOurs(ops: Op[]) {
  const book = new OrderBook();
  const lat = new Float64Array(ops.length);
  let fills = 0;
  const t0 = performance.now();
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const s = performance.now();
    if (op.kind === 1) book.cancel(op.seq);
    else fills += book.submit(op.input, op.options).fills.length;
    lat[i] = performance.now() - s;
  }
  const ms = performance.now() - t0;
  return { ms, lat, fills, resting: book.orders.size };
}

function runBaseline(ops: Op[]) {
  const book = new BaselineBook();
  const lat = new Float64Array(ops.length);
  let fills = 0;
  const t0 = performance.now();
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const s = performance.now();
    if (op.kind === 1) book.cancel(String(op.seq));
    else if (op.kind === 2) fills += book.market({ side: op.input.side === BUY ? BaselineSide.BUY : BaselineSide.SELL, size: op.input.sizeWh }).done.length;
    else fills += book.limit({ id: op.input.id, side: op.input.side === BUY ? BaselineSide.BUY : BaselineSide.SELL, size: op.input.sizeWh, price: op.input.price }).done.length;
    lat[i] = performance.now() - s;
  }
  const ms = performance.now() - t0;
  return { ms, lat, fills };
}

function summarize(r: { ms: number; lat: Float64Array }, n: number) {
  const sorted = r.lat.slice().sort();
  return {
    ordersPerSecond: Math.round(n / (r.ms / 1000)),
    p50us: +(percentile(sorted, 50) * 1000).toFixed(3),
    p99us: +(percentile(sorted, 99) * 1000).toFixed(3),
    p999us: +(percentile(sorted, 99.9) * 1000).toFixed(3),
  };
}

function auctionOrders(n: number): AuctionOrder[] {
  const rnd = mulberry32(7);
  return Array.from({ length: n }, (_, i) => {
    const side = rnd() < 0.5 ? 0 : 1;
    return {
      seq: i + 1, side: side as 0 | 1, price: MID + (side === 0 ? 1 : -1) * TICK * Math.floor(rnd() * 300 - 100), remainingWh: 100 * (1 + Math.floor(rnd() * 20)),
      maker: `m${i % 5_000}`, source: side === 1 ? 1 : 0, acceptedSources: 0, minSellerReputationBps: 0, sellerReputationBps: side === 1 ? 10_000 : 0,
    };
  });
}

function timeAuction(n: number): { ms: number; matchedWh: number; fills: number } {
  const orders = auctionOrders(n);
  clearCallAuction(orders, { referencePrice: MID }); // warm-up
  const times: number[] = [];
  let last = clearCallAuction(orders, { referencePrice: MID });
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    last = clearCallAuction(orders, { referencePrice: MID });
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { ms: +times[3]!.toFixed(2), matchedWh: last.matchedWh, fills: last.fills.length };
}

log(`generating a stream of ${STREAM.toLocaleString("en-US")} operations...`);
const ops = makeStream(STREAM);
log("warming up...");
runOurs(makeStream(Math.min(100_000, STREAM)));
runBaseline(makeStream(Math.min(50_000, STREAM)));
log("engine book...");
const ours = runOurs(ops);
log("nodejs-order-book...");
const baseline = runBaseline(ops);
const oursSummary = summarize(ours, ops.length);
const baseSummary = summarize(baseline, ops.length);
log("call auctions...");
const auctions = AUCTION_ORDERS.map((n) => ({ orders: n, ...timeAuction(n) }));
log("end to end on the embedded chain...");
const e2e = await runSettlementBench({ orders: E2E_ORDERS, prosumers: E2E_PROSUMERS });
log(`end to end, ${CONCURRENCY} orders in flight...`);
const e2eConcurrent = await runSettlementBench({ orders: E2E_ORDERS, prosumers: E2E_PROSUMERS, concurrency: CONCURRENCY });
log("intake through the log, no chain...");
const intake = await runIntakeBench({ orders: INTAKE_ORDERS });
const intakeConcurrent = await runIntakeBench({ orders: INTAKE_ORDERS, concurrency: CONCURRENCY });

const figures = {
  stream: { orders: ops.length, mix: "60% limit, 30% cancel, 10% market", fills: ours.fills, restingAtEnd: ours.resting },
  engine: oursSummary,
  baseline: { package: "nodejs-order-book@10.1.1", ...baseSummary, fills: baseline.fills },
  throughputRatio: +(oursSummary.ordersPerSecond / baseSummary.ordersPerSecond).toFixed(2),
  callAuctionMs: Object.fromEntries(auctions.map((a) => [String(a.orders), a.ms])),
  endToEnd: e2e,
  endToEndConcurrent: e2eConcurrent,
  intake,
  intakeConcurrent,
};

if (json) console.log(JSON.stringify(figures));
else {
  const row = (a: string, b: string) => `| ${a.padEnd(58)} | ${b.padStart(22)} |`;
  console.log([
    "",
    row("figure", "value"),
    "|---|---:|",
    row(`engine book, ${ops.length.toLocaleString("en-US")} mixed orders, one core`, `${oursSummary.ordersPerSecond.toLocaleString("en-US")} orders/s`),
    row("engine latency p50 / p99 / p99.9", `${oursSummary.p50us} / ${oursSummary.p99us} / ${oursSummary.p999us} µs`),
    row("nodejs-order-book, same stream", `${baseSummary.ordersPerSecond.toLocaleString("en-US")} orders/s`),
    row("nodejs-order-book latency p50 / p99 / p99.9", `${baseSummary.p50us} / ${baseSummary.p99us} / ${baseSummary.p999us} µs`),
    row("throughput ratio (engine / baseline)", `${figures.throughputRatio}x`),
    ...auctions.map((a) => row(`call auction, ${a.orders.toLocaleString("en-US")} orders`, `${a.ms} ms`)),
    row(`end to end: ${e2e.orders} signed orders -> ${e2e.trades} settled trades`, `${e2e.tradesPerSecond} trades/s`),
    row("  of which: sign + admit + match + log, one at a time", `${e2e.intakeOrdersPerSecond} orders/s`),
    row(`end to end, ${CONCURRENCY} orders in flight`, `${e2eConcurrent.tradesPerSecond} trades/s`),
    row("  of which: sign + admit + match + log", `${e2eConcurrent.intakeOrdersPerSecond} orders/s`),
    row("  placeOrder latency p50 / p99", `${e2eConcurrent.intakeP50Ms} / ${e2eConcurrent.intakeP99Ms} ms`),
    row("  log writes / orders", `${e2eConcurrent.logWrites} / ${e2eConcurrent.orders}`),
    row("intake through the log, no chain, one at a time", `${intake.ordersPerSecond} orders/s`),
    row("  placeOrder latency p50 / p99", `${intake.p50Ms} / ${intake.p99Ms} ms`),
    row(`intake through the log, no chain, ${CONCURRENCY} in flight`, `${intakeConcurrent.ordersPerSecond} orders/s`),
    row("  placeOrder latency p50 / p99", `${intakeConcurrent.p50Ms} / ${intakeConcurrent.p99Ms} ms`),
    row("  log writes / orders", `${intakeConcurrent.logWrites} / ${intakeConcurrent.orders}`),
  ].join("\n"));
}
process.exit(0);
