// Command-line flags of the benchmarks (`npm run bench:X -- ...`). Every flag that sizes a run
// has the default the README's figures come from and a small value for `--quick`, which a CI
// check passes to every bench to run the same code paths in seconds; a flag given explicitly
// wins over `--quick`. A bad value or an unknown flag is a usage error: the flag and its rule
// on stderr, exit code 2 (as the CLI and eval:forecast do), so a typo never starts a long run.

interface FlagBase {
  help: string;
  /** Other spellings accepted for the same flag (names documented elsewhere before this one). */
  aliases?: readonly string[];
}

/** Rules a size must keep; the message for a bad value is built from them. */
interface NumberRule {
  integer?: boolean;
  /** Smallest value allowed. */
  min?: number;
  /** Values must be greater than this (for sizes that may be fractional, like seconds). */
  above?: number;
  max?: number;
  /** Only multiples of this (2: households pair up as sellers and buyers). */
  multipleOf?: number;
}

export interface SizeFlag extends FlagBase, NumberRule {
  kind: "size";
  /** What the README's figures are measured with; absent: the flag is undefined unless given. */
  default?: number;
  /** The value under `--quick`; the default when absent. */
  quick?: number;
}

export interface SizeListFlag extends FlagBase, NumberRule {
  kind: "sizes";
  default: readonly number[];
  quick?: readonly number[];
}

export interface TextFlag extends FlagBase {
  kind: "text";
  default?: string;
  quick?: string;
  /** Accepted values; with `list`, every comma-separated item must be one of them. */
  choices?: readonly string[];
  list?: boolean;
  /** What the value is, in the usage line (`--profile DIR`). */
  placeholder?: string;
}

export interface SwitchFlag extends FlagBase {
  kind: "switch";
  /** On under `--quick` (e.g. to leave out a case that no small size makes fast). */
  quick?: boolean;
}

export type FlagSpec = SizeFlag | SizeListFlag | TextFlag | SwitchFlag;

type FlagValue<F extends FlagSpec> =
  F extends { kind: "size"; default: number } ? number
  : F extends { kind: "size" } ? number | undefined
  : F extends { kind: "sizes" } ? number[]
  : F extends { kind: "text"; default: string } ? string
  : F extends { kind: "text" } ? string | undefined
  : boolean;

export type BenchArgs<S extends Record<string, FlagSpec>> = { [K in keyof S]: FlagValue<S[K]> } & {
  /** `--json`: one JSON object on stdout and nothing else there. */
  json: boolean;
  /** `--quick`: the small sizes. */
  quick: boolean;
  /** Flags given on the command line (by their main name), e.g. to tell a default from a choice. */
  given: ReadonlySet<string>;
};

/** Raised for a bad command line; `readBenchArgs` prints it and exits with code 2. */
export class BenchUsageError extends Error {
  override name = "BenchUsageError";
}

const COMMON: Record<string, SwitchFlag> = {
  json: { kind: "switch", help: "print one JSON object on stdout, and nothing else there" },
  quick: { kind: "switch", help: "small sizes, well under a minute: the same code paths as a full run" },
};

function describeRule(rule: NumberRule): string {
  const what = rule.multipleOf === 2 ? "an even whole number" : rule.multipleOf ? `a whole multiple of ${rule.multipleOf}` : rule.integer ? "a whole number" : "a number";
  const bounds: string[] = [];
  if (rule.min !== undefined && rule.max !== undefined) bounds.push(`from ${rule.min} to ${rule.max}`);
  else if (rule.min !== undefined) bounds.push(`>= ${rule.min}`);
  else if (rule.max !== undefined) bounds.push(`<= ${rule.max}`);
  if (rule.above !== undefined) bounds.push(`> ${rule.above}`);
  return [what, ...bounds].join(" ");
}

function checkNumber(flag: string, text: string, rule: NumberRule): number {
  const value = text.trim() === "" ? NaN : Number(text);
  const ok = Number.isFinite(value)
    && (!rule.integer || Number.isInteger(value))
    && (rule.multipleOf === undefined || (Number.isInteger(value) && value % rule.multipleOf === 0))
    && (rule.min === undefined || value >= rule.min)
    && (rule.max === undefined || value <= rule.max)
    && (rule.above === undefined || value > rule.above);
  if (!ok) throw new BenchUsageError(`--${flag} must be ${describeRule(rule)} (got "${text}")`);
  return value;
}

/** One line per flag, for `--help` and for the message after a usage error. */
export function benchUsage(bench: string, spec: Record<string, FlagSpec>): string {
  const show = (v: unknown) => (Array.isArray(v) ? v.join(",") : String(v));
  const lines = Object.entries({ ...COMMON, ...spec }).map(([name, s]) => {
    const value = s.kind === "size" ? " N" : s.kind === "sizes" ? " N,N,..." : s.kind === "text" ? (s.choices ? ` ${s.choices.join(s.list ? "," : "|")}` : ` ${s.placeholder ?? "VALUE"}`) : "";
    const aliases = s.aliases?.length ? ` (or ${s.aliases.map((a) => `--${a}`).join(", ")})` : "";
    const notes: string[] = [];
    if (s.kind === "size" || s.kind === "sizes") notes.push(describeRule(s));
    if (s.kind !== "switch" && s.default !== undefined) notes.push(`default ${show(s.default)}`);
    if (s.quick !== undefined && s.quick !== false) notes.push(s.kind === "switch" ? "on with --quick" : `--quick ${show(s.quick)}`);
    return `  --${name}${value}${aliases}  ${s.help}${notes.length ? ` [${notes.join("; ")}]` : ""}`;
  });
  // `bench:engine` is an npm script; a file name (bench/engineIntake.ts) runs under tsx.
  const command = bench.startsWith("bench:") ? `npm run ${bench} --` : `tsx ${bench}`;
  return [`usage: ${command} [flags]`, ...lines].join("\n");
}

/** Parses `argv` against `spec`; throws BenchUsageError for a bad command line. */
export function parseBenchArgs<S extends Record<string, FlagSpec>>(spec: S, argv: readonly string[]): BenchArgs<S> {
  const all: Record<string, FlagSpec> = { ...COMMON, ...spec };
  const byName = new Map<string, string>();
  for (const [name, s] of Object.entries(all)) for (const n of [name, ...(s.aliases ?? [])]) byName.set(n, name);
  const raw = new Map<string, string | true>();
  const spellings = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) throw new BenchUsageError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf("=");
    const spelled = arg.slice(2, eq >= 0 ? eq : undefined);
    const name = byName.get(spelled);
    if (!name) throw new BenchUsageError(`unknown flag --${spelled}`);
    const before = spellings.get(name);
    if (before !== undefined) throw new BenchUsageError(`--${name} given twice${before !== spelled ? ` (as --${before} and --${spelled})` : ""}`);
    spellings.set(name, spelled);
    if (all[name]!.kind === "switch") {
      if (eq >= 0) throw new BenchUsageError(`--${spelled} takes no value`);
      raw.set(name, true);
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || (eq < 0 && value.startsWith("--"))) throw new BenchUsageError(`--${spelled} needs a value`);
    raw.set(name, value);
  }
  const quick = raw.has("quick");
  const out: Record<string, unknown> = { json: raw.has("json"), quick, given: new Set(raw.keys()) };
  for (const [name, s] of Object.entries(spec)) {
    const given = raw.get(name);
    switch (s.kind) {
      case "switch":
        out[name] = given === true || (quick && s.quick === true);
        break;
      case "size":
        out[name] = typeof given === "string" ? checkNumber(name, given, s) : quick && s.quick !== undefined ? s.quick : s.default;
        break;
      case "sizes": {
        if (typeof given !== "string") {
          out[name] = [...(quick && s.quick !== undefined ? s.quick : s.default)];
          break;
        }
        const items = given.split(",");
        out[name] = items.map((item) => {
          try {
            return checkNumber(name, item, s);
          } catch {
            throw new BenchUsageError(`--${name} must be a comma-separated list of sizes, each ${describeRule(s)} (got "${given}")`);
          }
        });
        break;
      }
      case "text": {
        if (typeof given !== "string") {
          out[name] = quick && s.quick !== undefined ? s.quick : s.default;
          break;
        }
        if (s.choices) {
          const items = s.list ? given.split(",") : [given];
          const bad = items.filter((item) => !s.choices!.includes(item));
          if (bad.length > 0) {
            throw new BenchUsageError(`--${name} must be ${s.list ? "a comma-separated list of" : "one of"} ${s.choices.join(", ")} (got "${given}")`);
          }
        } else if (given === "") {
          throw new BenchUsageError(`--${name} needs a value`);
        }
        out[name] = given;
        break;
      }
    }
  }
  return out as BenchArgs<S>;
}

/**
 * The bench's flags from `process.argv`. `--help` prints them and exits 0; a bad command line
 * prints the flag at fault and its rule, then the flags, on stderr and exits 2.
 */
export function readBenchArgs<S extends Record<string, FlagSpec>>(bench: string, spec: S, argv: readonly string[] = process.argv.slice(2)): BenchArgs<S> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(benchUsage(bench, spec));
    process.exit(0);
  }
  try {
    return parseBenchArgs(spec, argv);
  } catch (err) {
    if (!(err instanceof BenchUsageError)) throw err;
    console.error(`${bench}: ${err.message}\n${benchUsage(bench, spec)}`);
    process.exit(2);
  }
}

/** Declaration helpers, so each bench's table of flags reads as a table. */
export const size = <const T extends Omit<SizeFlag, "kind">>(s: T): T & { kind: "size" } => ({ kind: "size", ...s });
export const sizes = (s: Omit<SizeListFlag, "kind">): SizeListFlag => ({ kind: "sizes", ...s });
export const text = <const T extends Omit<TextFlag, "kind">>(s: T): T & { kind: "text" } => ({ kind: "text", ...s });
export const toggle = (help: string, s: Omit<SwitchFlag, "kind" | "help"> = {}): SwitchFlag => ({ kind: "switch", help, ...s });
