// `npm run check:readme`: every command the READMEs give a user, run the way a newcomer runs it,
// right after `npm install`, in a fresh copy of this tree with nothing beside it (no compiled
// contracts, no data folder outside, no node settings in the environment), each at a small size.
// CI runs it before `npm test` (.ci/run); test/scripts/readmeCommands.test.ts keeps the table
// below in step with the READMEs, so a command added to a README without a check here fails.
//
// The copy takes the working tree's tracked and untracked-but-not-ignored files (what a clone
// of the next commit holds) and links node_modules and .tools from this checkout: installing is
// CI's own first step, and re-running it here would double CI's time without testing more.
import { spawn, type ChildProcess, execFileSync } from "node:child_process";
import { cp, mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** One README command at a small size. `needsNode`: it talks to the node `npm start` runs. */
export interface ReadmeCommand {
  /** The npm script (`start`, `test`, `demo`, `bench:gas`, ...). */
  script: string;
  /** Arguments after `--`, chosen small. */
  args: string[];
  needsNode?: boolean;
  /** Runs until stopped (SIGINT after `runForMs`, and once `expect` matched); exit 0 expected then. */
  runForMs?: number;
  /** Printed output must match (a sign it did its work, not just exited 0). */
  expect?: RegExp;
  timeoutMs?: number;
}

/** Key of Hardhat's account 4, the first test account `npm start` registers (README's example). */
const TEST_ACCOUNT_KEY = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a";

/**
 * Every npm script the READMEs show a user, with how it is checked. `npm test` and `npm install`
 * are CI's own steps; `start` is the node the `needsNode` commands talk to.
 */
export const readmeCommands: ReadmeCommand[] = [
  { script: "cli", args: ["balance"], needsNode: true, expect: /tEUR/ },
  { script: "cli", args: ["approve", "100"], needsNode: true },
  { script: "cli", args: ["sell", "--kwh", "2", "--price", "0.18", "--interval", "next", "--zone", "ZONE-A"], needsNode: true },
  { script: "cli", args: ["orders"], needsNode: true },
  { script: "simulate", args: ["--households", "4"], needsNode: true, runForMs: 45_000, expect: /order/i },
  { script: "indexer", args: ["--once"], needsNode: true, expect: /index/i },
  { script: "bridge", args: [], needsNode: true, runForMs: 8_000, expect: /Meter bridge running/ },
  { script: "demo", args: ["--households", "20", "--hours", "2"], timeoutMs: 600_000, expect: /cross-check/i },
  { script: "eval:forecast", args: [], timeoutMs: 300_000, expect: /MASE/ },
  { script: "bench:gas", args: ["--quick", "--json"], timeoutMs: 300_000 },
  { script: "bench:engine", args: ["--quick", "--json"], timeoutMs: 300_000 },
  { script: "bench:indexer", args: ["--quick", "--json"], timeoutMs: 300_000 },
  { script: "bench:bridge", args: ["--quick", "--json"], timeoutMs: 300_000 },
  { script: "bench:vpp", args: ["--quick", "--json"], timeoutMs: 300_000 },
  { script: "soak", args: ["--quick", "--json"], timeoutMs: 400_000 },
  { script: "bench:api", args: ["--quick", "--json"], timeoutMs: 300_000 },
  { script: "build:web", args: [] },
  { script: "deploy", args: [], needsNode: true, expect: /deployed|EnergyMarket/i },
];

/** Scripts the READMEs mention that this check does not run itself, and why. */
export const checkedElsewhere: Record<string, string> = {
  start: "runs here as the node every needsNode command talks to",
  test: "CI's next step (npm test)",
  build: "npm test compiles the contracts; build:web is checked here",
  "check:readme": "is this check",
  "mqtt:mosquitto-config": "test/bridge/mosquittoAuth.test.ts runs it and a real Mosquitto with its output",
};

/** Environment a newcomer has: none of the node's, bridge's or indexer's settings. */
function newcomerEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  const settings = /^(DATABASE_URL|MQTT_.*|CHAIN_.*|CONFIG_FILE|DATA_DIR|DEPLOYMENTS_DIR|BRIDGE_.*|INDEXER_.*|PORT|HOST|NODE_CLOCK|ENERGY_.*|.*_PRIVATE_KEY|TIME_ZONE)$/;
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !settings.test(k)) env[k] = v;
  return { ...env, LOG_LEVEL: "warn", ...extra };
}

interface Run {
  child: ChildProcess;
  /** stdout and stderr as they came. */
  output(): string;
  stdout(): string;
  exited: Promise<number | null>;
}

function npm(cwd: string, script: string, args: string[], env: Record<string, string>): Run {
  const argv = script === "start" || script === "test" ? [script] : ["run", script];
  if (args.length > 0) argv.push("--", ...args);
  // A process group of its own, so a timeout stops npm, sh and the program under them together.
  const child = spawn("npm", argv, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let out = "";
  let stdout = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  // Stopped by Ctrl-C (SIGINT reaching the whole group) counts as the shell's 130.
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code, signal) => resolve(code ?? (signal === "SIGINT" ? 130 : signal ? 128 : null))));
  return { child, output: () => out, stdout: () => stdout, exited };
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

async function runToEnd(run: Run, timeoutMs: number): Promise<number | null> {
  const timer = setTimeout(() => signalGroup(run.child, "SIGKILL"), timeoutMs);
  const code = await run.exited;
  clearTimeout(timer);
  return code;
}

async function waitForText(run: Run, text: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (run.output().includes(text)) return true;
    if (run.child.exitCode !== null) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

/** The working tree as a fresh clone of the next commit would hold it, node_modules linked. */
async function freshCopy(): Promise<string> {
  const dir = path.join(await mkdtemp(path.join(tmpdir(), "readme-check-")), "p2p-energy-market");
  await mkdir(dir);
  const files = execFileSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: root }).toString().split("\0").filter(Boolean);
  for (const f of files) if (existsSync(path.join(root, f))) await cp(path.join(root, f), path.join(dir, f), { recursive: true });
  for (const linked of ["node_modules", ".tools"]) if (existsSync(path.join(root, linked))) await symlink(path.join(root, linked), path.join(dir, linked));
  return dir;
}

export interface CheckResult {
  command: string;
  ok: boolean;
  seconds: number;
  detail?: string;
}

async function main(): Promise<void> {
  const keep = process.argv.includes("--keep");
  const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",");
  const dir = await freshCopy();
  console.error(`check:readme: fresh copy in ${dir}`);
  const results: CheckResult[] = [];
  const record = (command: string, started: number, ok: boolean, detail?: string) => {
    const r: CheckResult = { command, ok, seconds: Math.round((Date.now() - started) / 100) / 10, ...(detail ? { detail } : {}) };
    results.push(r);
    console.error(`check:readme: ${ok ? "ok  " : "FAIL"} ${command} (${r.seconds} s)${ok ? "" : `\n${detail}`}`);
  };
  const describe = (c: ReadmeCommand) => `npm run ${c.script}${c.args.length ? ` -- ${c.args.join(" ")}` : ""}`;
  const selected = readmeCommands.filter((c) => !only || only.includes(c.script));

  // The install's own last step (scripts/postinstall.sh) builds the dashboard into web/dist.
  {
    const started = Date.now();
    try {
      execFileSync("sh", ["scripts/postinstall.sh"], { cwd: dir, env: newcomerEnv(), stdio: "pipe" });
      record("npm install (postinstall)", started, true);
    } catch (err) {
      record("npm install (postinstall)", started, false, String((err as { stderr?: Buffer }).stderr ?? err));
    }
  }

  const run = async (c: ReadmeCommand, env: Record<string, string>) => {
    const started = Date.now();
    const r = npm(dir, c.script, c.args, env);
    let code: number | null;
    if (c.runForMs !== undefined) {
      // At least runForMs, and until the expected words are out: a cold start (a fresh copy has
      // no tsx cache) on a busy machine may take longer than the run it is given.
      const runFor = c.runForMs;
      const settled = async (): Promise<false> => {
        const deadline = Date.now() + Math.max(runFor, 120_000);
        await new Promise((res) => setTimeout(res, runFor));
        while (c.expect && !c.expect.test(r.output()) && Date.now() < deadline && r.child.exitCode === null) await new Promise((res) => setTimeout(res, 250));
        return false;
      };
      const early = await Promise.race([r.exited.then(() => true), settled()]);
      if (early) code = await r.exited;
      else {
        signalGroup(r.child, "SIGINT");
        code = await runToEnd(r, 30_000);
        // A long-running command stopped by Ctrl-C is a success when it exits 0 (or by the signal).
        if (code === 130) code = 0;
      }
    } else code = await runToEnd(r, c.timeoutMs ?? 120_000);
    const out = r.output();
    const ok = code === 0 && (!c.expect || c.expect.test(out)) && (!c.args.includes("--json") || isOneJsonObject(stdoutOf(r.stdout())));
    record(describe(c), started, ok, ok ? undefined : `exit ${code}; last output:\n${out.slice(-3000)}`);
  };

  // Commands that need nothing running, before the node takes its ports.
  for (const c of selected.filter((x) => !x.needsNode)) await run(c, newcomerEnv());

  const withNode = selected.filter((x) => x.needsNode);
  if (withNode.length > 0) {
    const started = Date.now();
    const node = npm(dir, "start", [], newcomerEnv());
    const up = await waitForText(node, "Ctrl-C stops everything.", 180_000);
    record("npm start", started, up, up ? undefined : node.output().slice(-3000));
    if (up) {
      const out = node.output();
      const api = /^\s+API\s+(http:\/\/\S+)\/v1\b/m.exec(out)?.[1] ?? "http://127.0.0.1:8080";
      const rpc = /^\s+JSON-RPC\s+(http:\/\/\S+)/m.exec(out)?.[1] ?? "http://127.0.0.1:8545";
      // What the banner and the READMEs tell a user to set for these commands.
      const env = newcomerEnv({ ENERGY_API_URL: api, ENERGY_PRIVATE_KEY: TEST_ACCOUNT_KEY, CHAIN_RPC_URL: rpc });
      const own: Record<string, Record<string, string>> = {
        // The standalone bridge needs a broker: the README's example points it at the machine's
        // Mosquitto, with its own MQTT identity and data beside the node's.
        bridge: {
          MQTT_URL: process.env.CHECK_MQTT_URL ?? "mqtt://127.0.0.1:1883", METER_ORACLE_PRIVATE_KEY: "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
          BRIDGE_MQTT_CLIENT_ID: "readme-check-bridge", BRIDGE_TOPIC_ROOT: "readme-check",
        },
        indexer: { INDEXER_PORT: "0" },
        // `npm run deploy` writes a deployment record of its own; the node's stays.
        deploy: { DEPLOYER_PRIVATE_KEY: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", DEPLOYMENTS_DIR: ".data/readme-check-deployments" },
      };
      for (const c of withNode) await run(c, { ...env, ...(own[c.script] ?? {}) });
    }
    const stopStarted = Date.now();
    signalGroup(node.child, "SIGINT");
    const code = await runToEnd(node, 60_000);
    record("npm start: Ctrl-C", stopStarted, code === 0 || code === 130, `exit ${code}\n${node.output().slice(-2000)}`);
  }

  if (!keep) await rm(path.dirname(dir), { recursive: true, force: true });
  const failed = results.filter((r) => !r.ok);
  console.log(JSON.stringify({ ok: failed.length === 0, results }, null, 2));
  process.exit(failed.length === 0 ? 0 : 1);
}

/** npm prints its own "> script" header lines on stdout; the program's JSON follows them. */
function stdoutOf(out: string): string {
  return out.split("\n").filter((l) => !/^> /.test(l)).join("\n");
}

function isOneJsonObject(text: string): boolean {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
