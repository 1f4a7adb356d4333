// Shared by the SDK and CLI tests: one in-process node per test file (embedded chain, PGlite,
// embedded broker, 4 funded test accounts), a fetch that records what a client asked, and
// polling with a deadline for what happens asynchronously (settlement, indexing).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { readNodeConfig } from "../../server/config.js";
import { nodePlugins } from "../../server/plugins.js";
import { startNode, type RunningNode } from "../../server/startNode.js";
import { createLogger } from "../../lib/logger.js";

export interface TestNode {
  node: RunningNode;
  close(): Promise<void>;
}

/** `env` adds settings, e.g. NODE_CLOCK=chain for a test that moves the chain's time. */
export async function startTestNode(env: Record<string, string> = {}): Promise<TestNode> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "energy-cli-data-"));
  const deploymentsDir = await mkdtemp(path.join(tmpdir(), "energy-cli-deploy-"));
  const node = await startNode({
    config: readNodeConfig({ PORT: "0", CHAIN_PORT: "0", MQTT_PORT: "0", DATA_DIR: dataDir, DEPLOYMENTS_DIR: deploymentsDir, TEST_ACCOUNTS: "4", ...env }, {}),
    plugins: nodePlugins,
    logger: createLogger("test-cli", "silent"),
  });
  return {
    node,
    async close() {
      await node.close();
      await rm(dataDir, { recursive: true, force: true });
      await rm(deploymentsDir, { recursive: true, force: true });
    },
  };
}

/** A fetch that appends "METHOD /path" for every request to `log`. */
export function recordingFetch(log: string[]): typeof fetch {
  return async (input, init) => {
    const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
    log.push(`${init?.method ?? "GET"} ${url.pathname}`);
    return fetch(input, init);
  };
}

/** Calls `read` until `done` holds for its result, or fails after `timeoutMs` naming `what`. */
export async function waitFor<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await read();
    if (done(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

/** Runs `fn` and returns the error it throws; fails if it does not throw. */
export async function rejectionOf(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection, but the call succeeded");
}
