// Start-up settings, read from the environment in one place. A wrong value stops start-up
// with a message that names the variable and the rule it broke.
import type { Hex } from "viem";

export interface StartConfig {
  /** A running chain to deploy to; absent means the embedded local chain. */
  chainRpcUrl?: string;
  chainHost: string;
  chainPort: number;
  deployerPrivateKey?: Hex;
  deploymentsDir: string;
}

export class ConfigError extends Error {
  constructor(readonly variable: string, rule: string, value: string) {
    super(`${variable}=${JSON.stringify(value)}: ${rule}`);
    this.name = "ConfigError";
  }
}

export function readStartConfig(env: NodeJS.ProcessEnv): StartConfig {
  const config: StartConfig = {
    chainHost: env.CHAIN_HOST ?? "127.0.0.1",
    chainPort: port(env, "CHAIN_PORT", 8545),
    deploymentsDir: env.DEPLOYMENTS_DIR ?? "deployments",
  };
  if (env.CHAIN_RPC_URL !== undefined && env.CHAIN_RPC_URL !== "") {
    const url = env.CHAIN_RPC_URL;
    if (!/^https?:\/\/[^\s]+$/.test(url)) throw new ConfigError("CHAIN_RPC_URL", "must be an http:// or https:// JSON-RPC URL", url);
    const key = env.DEPLOYER_PRIVATE_KEY ?? "";
    if (!/^0x[0-9a-fA-F]{64}$/.test(key)) {
      throw new ConfigError("DEPLOYER_PRIVATE_KEY", "must be a 0x-prefixed 32-byte hex key when CHAIN_RPC_URL is set", key ? "<hidden>" : "");
    }
    config.chainRpcUrl = url;
    config.deployerPrivateKey = key as Hex;
  }
  return config;
}

function port(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65_535) throw new ConfigError(name, "must be an integer port from 0 to 65535", raw);
  return value;
}
