// `npm run soak -- --minutes N [--households H] [--rate R] [--cross-pct P] [--drain-seconds S]
// [--json] [--quick]`: the node at a steady load for N minutes, for leaks and stalls. A node in
// this process (embedded chain, PGlite, Aedes, ports 0, a temporary data folder, rate limits
// off); H households registered through the API with meter keys and MQTT device credentials,
// buyers funded; from a worker thread, R signed orders/s (P % of buys crossing the asks) and
// every meter's signed readings once a minute over MQTT (bench/soakLoad.ts). Sampled once a
// minute and at the end (bench/soakRun.ts): RSS and heap, event-loop delay p99/max, the
// minute's order-placement p99 and slowest request, the queues (engine op log, fills to settle,
// bridge outbox, keeper actions), data folder size, orders placed/accepted/refused, trades
// settled. Printed: the table, the slopes of RSS, heap and disk (MB/min, least squares after
// `--warmup` minutes), placements slower than 500 ms, the worst request, and what was still queued up to S seconds after the load.
// `--quick`: 1 minute, 20 households, 20 orders/s (a README check).
import { readBenchArgs, size, text } from "./benchArgs.js";
import { runSoak, type SoakResult } from "./soakRun.js";

const args = readBenchArgs("soak", {
  minutes: size({ help: "minutes of load", above: 0, max: 24 * 60, default: 10, quick: 1 }),
  households: size({ help: "households placing orders, half buyers and half sellers, each with a meter", integer: true, min: 2, max: 2_000, multipleOf: 2, default: 300, quick: 20 }),
  rate: size({ help: "orders per second", above: 0, max: 5_000, default: 200, quick: 20 }),
  "cross-pct": size({ help: "per cent of buy orders priced to cross the asks", integer: true, min: 0, max: 100, default: 50 }),
  chain: text({ help: "embedded: the node's in-process chain; anvil: Anvil in a process of its own (the node's RSS is then its own)", choices: ["embedded", "anvil"], default: "embedded" }),
  database: text({ help: "pglite: the node's embedded database in its data folder; postgres: a new database on the server DATABASE_URL names (dropped after the run), queries then off the node's thread", choices: ["pglite", "postgres"], default: "pglite" }),
  warmup: size({ help: "minutes of load before the slopes are taken (default 15, or half the run if shorter)", min: 0, max: 24 * 60 }),
  "drain-seconds": size({ help: "longest wait for the queues to empty after the load", integer: true, min: 0, max: 600, default: 60 }),
});

const result = await runSoak({
  durationSeconds: Math.round(args.minutes * 60),
  households: args.households,
  rate: args.rate,
  crossPct: args["cross-pct"],
  drainSeconds: args["drain-seconds"],
  ...(args.warmup !== undefined ? { warmupMinutes: args.warmup } : {}),
  chain: args.chain as "embedded" | "anvil",
  database: args.database as "pglite" | "postgres",
  log: (line) => {
    if (!args.json) console.error(line);
  },
});

if (args.json) console.log(JSON.stringify(result));
else console.log(formatSoak(result));

function formatSoak(r: SoakResult): string {
  const columns: [string, (s: SoakResult["samples"][number]) => string][] = [
    ["min", (s) => s.minute.toFixed(2)],
    ["row", (s) => s.label],
    ["rss MB", (s) => s.rssMb.toFixed(1)],
    ["chain MB", (s) => s.chainRssMb.toFixed(1)],
    ["heap MB", (s) => s.heapUsedMb.toFixed(1)],
    ["of MB", (s) => s.heapTotalMb.toFixed(1)],
    ["orders held", (s) => String(s.ordersHeld)],
    ["ext MB", (s) => s.externalMb.toFixed(1)],
    ["loop p99", (s) => s.eventLoopP99Ms.toFixed(1)],
    ["loop max", (s) => s.eventLoopMaxMs.toFixed(1)],
    ["api p99", (s) => s.apiP99Ms.toFixed(1)],
    ["api max", (s) => s.apiMaxMs.toFixed(1)],
    [">500ms", (s) => String(s.apiOver500)],
    ["placed", (s) => String(s.placed)],
    ["accepted", (s) => String(s.accepted)],
    ["refused", (s) => String(s.refused + s.errors)],
    ["behind", (s) => String(s.behind)],
    ["op log", (s) => String(s.engineQueuedOps)],
    ["log >250ms", (s) => String(s.slowLogWrites)],
    ["to settle", (s) => String(s.settlerPendingFills + s.settlingFills)],
    ["outbox", (s) => String(s.bridgeOutbox)],
    ["keeper", (s) => String(s.keeperQueued)],
    ["fills", (s) => String(s.fills)],
    ["settled", (s) => String(s.settled)],
    ["readings", (s) => String(s.readingsAccepted)],
    ["disk MB", (s) => s.diskMb.toFixed(1)],
  ];
  const rows = [columns.map(([h]) => h), ...r.samples.map((s) => columns.map(([, f]) => f(s)))];
  const widths = columns.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const table = rows.map((row) => row.map((c, i) => (i === 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")).join("\n");
  const perMin = (x: number | null) => (x === null ? "n/a (needs 2 samples after the warm-up)" : `${x >= 0 ? "+" : ""}${x.toFixed(2)} MB/min`);
  const t = r.totals;
  const left = Object.entries(r.drain.left).filter(([, n]) => n > 0);
  return [
    `${r.node.households} households, ${r.node.rate} orders/s (${r.node.crossPct} % of buys crossing) for ${(r.node.durationSeconds / 60).toFixed(2)} min on ${r.node.database}, chain ${r.node.chain === "anvil" ? "Anvil (own process; chain MB)" : "embedded (in the node's RSS)"}; onboarding ${(r.node.onboardingMs / 1000).toFixed(1)} s; keeper ${r.node.keeper ? "on" : "off"}`,
    "heap: used, of the heap V8 reserved; loop: the node's event-loop delay (ms); api: order placements of the row's minute, timed by the load (ms); to settle: fills not yet mined; RSS includes the load's worker thread",
    table,
    `slopes after ${r.node.warmupMinutes} min of warm-up: rss ${perMin(r.slopes.rssMbPerMin)}, heap ${perMin(r.slopes.heapMbPerMin)}, disk ${perMin(r.slopes.diskMbPerMin)}`,
    r.afterEachBook.samples.length === 0
      ? "after each book left memory: no book left during the run"
      : `after each book left memory: ${r.afterEachBook.samples.map((s) => `minute ${s.minute.toFixed(0)} rss ${s.rssMb} MB, heap ${s.heapUsedMb} of ${s.heapTotalMb} MB, ${s.ordersHeld} orders held`).join("; ")}` +
        (r.afterEachBook.rssMbPerMin === null ? "" : `; between them rss ${perMin(r.afterEachBook.rssMbPerMin)}, heap ${perMin(r.afterEachBook.heapMbPerMin)}`),
    `orders: ${t.placed} placed, ${t.accepted} accepted, ${t.refused} refused, ${t.errors} errors, ${t.behind} not sent (too many waiting); fills ${t.fills}, settled ${t.settled}, failed ${t.failedFills}`,
    ...Object.entries(r.refusals).map(([status, x]) => `refused ${status} x${x.count}, e.g. ${x.example}`),
    `bytes kept: ${r.perUnit.bytesPerOrder} per accepted order (all tables and the chain journal over orders), ${r.perUnit.bytesPerTrade} per settled trade, ${r.perUnit.bytesPerReading} per meter reading in bridge_readings; chain journal ${(r.perUnit.chainJournalBytes / 1e6).toFixed(1)} MB`,
    `largest tables: ${r.tables.slice(0, 8).map((t) => `${t.table} ${(t.bytes / 1e6).toFixed(1)} MB`).join(", ")}`,
    `requests over 500 ms: ${t.over500Ms}; worst request: ${r.worstRequest ? `${r.worstRequest.ms} ms, sent ${r.worstRequest.sentAt} (minute ${r.worstRequest.minute}), status ${r.worstRequest.status}` : "none"}`,
    r.drain.drained
      ? `nothing queued at the end (drained ${(r.drain.waitedMs / 1000).toFixed(1)} s after the load)`
      : `STILL QUEUED ${(r.drain.waitedMs / 1000).toFixed(0)} s after the load: ${left.map(([k, n]) => `${k} ${n}`).join(", ")}`,
  ].join("\n");
}
