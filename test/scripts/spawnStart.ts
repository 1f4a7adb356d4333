// `npm start` as a user runs it: scripts/start.ts in a child process, with only the environment a
// test gives it (none of the developer's or CI's node settings leak in). Resolves once the banner
// is printed or the process exits, whichever comes first.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface StartedChild {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
  /** True when the banner was printed; false when it exited first. */
  started: boolean;
  exited: Promise<number | null>;
  /** SIGINT, then the exit code. */
  stop(): Promise<number | null>;
}

/** Variables the node reads: only what the test passes may reach the child. */
const NODE_SETTINGS = /^(DATABASE_URL|MQTT_URL|MQTT_PORT|MQTT_HOST|CHAIN_RPC_URL|CHAIN_PORT|CHAIN_HOST|CONFIG_FILE|DATA_DIR|BRIDGE_.*|RATE_LIMIT_.*|PORT|HOST|NODE_CLOCK|.*_PRIVATE_KEY|ENERGY_FAULT_.*)$/;

export async function spawnStart(env: Record<string, string>, { timeoutMs = 120_000 } = {}): Promise<StartedChild> {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !NODE_SETTINGS.test(k)) childEnv[k] = v;
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    cwd: projectRoot, env: { ...childEnv, LOG_LEVEL: "warn", ...env }, stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const started = await new Promise<boolean>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within ${timeoutMs} ms; output:\n${out}`)), timeoutMs);
    const check = () => {
      if (out.includes("Ctrl-C stops everything.")) {
        clearTimeout(timer);
        child.stdout!.off("data", check);
        resolve(true);
      }
    };
    child.stdout!.on("data", check);
    void exited.then(() => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  return {
    child, started, exited, output: () => out,
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGINT");
      return exited;
    },
  };
}
