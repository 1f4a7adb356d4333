// `npm run demo -- [options]`: a simulated community day through the real node (see runDemo.ts).
// Progress goes to stderr; the report, the cross-check and (with --bench) the phase timings to
// stdout, or with --json a single JSON object. Exits 1 when a cross-check fails, 2 on bad options.
import { cpus } from "node:os";
import { BaseError } from "../lib/errors.js";
import { formatUnits } from "./report.js";
import { runDemo, type RunDemoOptions, type RunDemoResult } from "./runDemo.js";

const USAGE = `usage: npm run demo -- [options]
  --households N   homes in the community (default 200; 2200 for Wilhelmsburg's size)
  --hours H        hours of trading (default 24)
  --start HH:MM    local time trading starts (default 00:00)
  --date YYYY-MM-DD  the simulated day (default 2026-06-21)
  --seed N         community and agents' seed (default 1)
  --out DIR        report folder (default .data/demo/<timestamp>)
  --data DIR       keep the node's data (chain journal, database) in DIR (default: a temp folder, removed)
  --bench          print the wall time of the run, phase by phase
  --json           print one JSON object on stdout instead of text`;

class UsageError extends BaseError {
  override name = "UsageError";
}

function parseArgs(argv: string[]): { options: RunDemoOptions; bench: boolean; json: boolean } {
  const options: RunDemoOptions = {};
  let bench = false;
  let json = false;
  const int = (flag: string, v: string | undefined) => {
    if (v === undefined || !/^-?\d+$/.test(v)) throw new UsageError(`${flag} needs a whole number, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--households": options.households = int(flag, value()); break;
      case "--hours": {
        const v = Number(value());
        if (!Number.isFinite(v)) throw new UsageError("--hours needs a number");
        options.hours = v;
        break;
      }
      case "--start": options.start = value(); break;
      case "--date": options.date = value(); break;
      case "--seed": options.seed = int(flag, value()); break;
      case "--out": options.outDir = value(); break;
      case "--data": options.dataDir = value(); break;
      case "--bench": bench = true; break;
      case "--json": json = true; break;
      case "--help": case "-h":
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
      default:
        throw new UsageError(`unknown option ${flag}`);
    }
  }
  return { options, bench, json };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function printText(result: RunDemoResult, bench: boolean): void {
  const lines: string[] = ["", result.reportText, "", "Cross-check of the books (chain, indexer, engine, bridge):"];
  for (const c of result.checks) lines.push(`  ${c.ok ? "PASS" : "FAIL"}  ${c.name}\n        ${c.detail}`);
  const c = result.counts;
  lines.push(
    "",
    `Orders ${c.ordersPlaced} placed (${c.ordersRefused} refused; ${c.ordersHeldBack} not placed, no counterpart in the zone), ${c.fills} fills (${c.fillsFailed} refused on-chain), ${c.trades} trades, ` +
      `${c.readingsPublished} meter readings over MQTT, ${c.blocks} blocks; fees claimed ${formatUnits(c.feesClaimed)} tEUR ` +
      `(community ${result.options.communityFeeBps / 100} %, network ${formatUnits(BigInt(result.options.networkFeePerKWh))} tEUR/kWh)`,
    `Files: ${result.files.csv}\n       ${result.files.html}\n       ${result.files.json}\n       ${result.files.demo}`,
  );
  if (bench) {
    const b = result.bench;
    lines.push("", `Wall time: ${seconds(b.totalMs)} for ${c.households} households x ${c.intervals} intervals (Node ${process.version}, ${cpus().length} CPUs)`);
    // Phases run one after another; their groups add up to the run (start-up of the process aside).
    const groups = new Map<string, [string, number][]>();
    for (const [name, ms] of Object.entries(b.phases)) {
      const group = name.split(":")[0]!;
      groups.set(group, [...(groups.get(group) ?? []), [name, ms]]);
    }
    const titles: Record<string, string> = { setup: "setup", day: "trading day", close: "closing the books", check: "cross-check and report" };
    for (const [group, phases] of groups) {
      const total = phases.reduce((t, [, ms]) => t + ms, 0);
      lines.push(`  ${(titles[group] ?? group).padEnd(44)} ${seconds(total).padStart(9)}  ${((100 * total) / b.totalMs).toFixed(1).padStart(5)} %`);
      for (const [name, ms] of phases.sort(([, x], [, y]) => y - x)) {
        if (ms >= 50) lines.push(`    ${name.slice(group.length + 2).padEnd(42)} ${seconds(ms).padStart(9)}  ${((100 * ms) / b.totalMs).toFixed(1).padStart(5)} %`);
      }
    }
    const st = b.settlement;
    lines.push(`  settlement: ${st.transactions} transactions, ${st.tradesPerTransaction.toFixed(1)} trades each, ${Math.round(st.gasPerTrade)} gas per trade, largest ${st.maxGas} gas`);
    lines.push(`  chain time ahead of the simulated clock at most ${b.maxChainLeadSeconds} s`);
  }
  lines.push("", result.ok ? "All checks passed." : "CROSS-CHECK FAILED.");
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function main(): Promise<void> {
  // The node's parts log at info by default; the demo prints its own progress.
  process.env.LOG_LEVEL ??= "warn";
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`demo: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  const { options, bench, json } = parsed;
  const result = await runDemo({ ...options, progress: (line) => process.stderr.write(`demo: ${line}\n`) });
  if (json) process.stdout.write(`${JSON.stringify(result, (_k, v) => (typeof v === "bigint" ? v.toString() : v))}\n`);
  else printText(result, bench);
  process.exit(result.ok ? 0 : 1);
}

main().catch((err: unknown) => {
  const message = err instanceof BaseError ? err.shortMessage : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`demo: ${message}\n`);
  process.exit(err instanceof BaseError && err.code === "validation_failed" ? 2 : 1);
});
