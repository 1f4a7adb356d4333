// The soak's external chain (`--chain anvil`): Anvil (npm @foundry-rs/anvil, its binary ships in
// the package) as a process of its own, the platform deployed to it with the Hardhat development
// keys (Anvil's accounts use the same mnemonic), and the node settings that point a node at it.
// With the chain in another process, the node's RSS is the node's own: the embedded chain (EDR,
// in-process) keeps every block, receipt and state of its history in memory by design.
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { createPublicClient, createWalletClient, defineChain, http, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { deployPlatform, writeDeployment } from "../contracts/client/deploy.js";
import { hardhatKey } from "../scripts/localChain.js";
import { freePort } from "../lib/listenOnPort.js";

export interface SoakChain {
  url: string;
  /** Settings for readNodeConfig: CHAIN_RPC_URL, role keys, SIWE domain, the node's port. */
  env: Record<string, string>;
  /** Signs in as operator (registrar) and funds buyers from the token (no faucet route remotely). */
  adminKey: Hex;
  /** The chain process's resident memory, MB (from /proc). */
  rssMb(): Promise<number>;
  close(): Promise<void>;
}

function anvilBinary(): string {
  const require = createRequire(import.meta.url);
  const pkg = path.dirname(require.resolve(`@foundry-rs/anvil-${process.platform}-${process.arch === "x64" ? "amd64" : process.arch}/package.json`));
  return path.join(pkg, "bin", "anvil");
}

export async function startSoakChain(deploymentsDir: string): Promise<SoakChain> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // One block a second, like a real chain (automine would mine a block per transaction); history
  // pruned in memory, and only the last 10 minutes of blocks' transactions kept (without it Anvil
  // grew ~0.6 GB a minute under the node's load), so the chain process stays small on long runs.
  const child: ChildProcess = spawn(anvilBinary(), ["--host", "127.0.0.1", "--port", String(port), "--block-time", "1", "--prune-history", "256", "--transaction-block-keeper", "600", "--silent", "--gas-limit", "60000000"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d) => (stderr += String(d)));
  const client = createPublicClient({ transport: http(url), pollingInterval: 100 });
  const started = Date.now();
  for (;;) {
    try {
      await client.getChainId();
      break;
    } catch {
      if (child.exitCode !== null || Date.now() - started > 20_000) throw new Error(`anvil did not start on ${url}: ${stderr.trim() || `exit ${child.exitCode}`}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const chainId = await client.getChainId();
  const chain = defineChain({ id: chainId, name: "anvil", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [url] } } });
  const keys = { admin: hardhatKey(0), matcher: hardhatKey(1), meterOracle: hardhatKey(2), arbiter: hardhatKey(3) };
  const address = (k: Hex) => privateKeyToAccount(k).address;
  const admin = address(keys.admin);
  const deployment = await deployPlatform(createWalletClient({ chain, transport: http(url), account: privateKeyToAccount(keys.admin) }) as never, client as never, {
    roles: { admin, registrar: admin, pauser: admin, matcher: address(keys.matcher), meterOracle: address(keys.meterOracle), arbiter: address(keys.arbiter) },
    maxNetworkFeePerKWh: 1_000_000n,
  });
  await writeDeployment(deploymentsDir, deployment);
  const nodePort = await freePort();
  return {
    url,
    adminKey: keys.admin,
    env: {
      CHAIN_RPC_URL: url, MATCHER_PRIVATE_KEY: keys.matcher, METER_ORACLE_PRIVATE_KEY: keys.meterOracle, REGISTRAR_PRIVATE_KEY: keys.admin,
      SIWE_DOMAINS: `127.0.0.1:${nodePort}`, PORT: String(nodePort), FINALITY_DEPTH: "0",
    },
    async rssMb() {
      try {
        const { readFile } = await import("node:fs/promises");
        const status = await readFile(`/proc/${child.pid}/status`, "utf8");
        const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
        return Math.round((kb / 1024) * 10) / 10;
      } catch {
        return 0;
      }
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
