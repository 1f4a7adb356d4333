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

export interface DeployConfig {
  chainRpcUrl: string;
  deployerPrivateKey: Hex;
  deploymentsDir: string;
  /** Role holders by role; absent ones default to the deployer. */
  roles: Partial<Record<"admin" | "registrar" | "pauser" | "matcher" | "meterOracle" | "arbiter", `0x${string}`>>;
  paymentToken?: `0x${string}`;
  maxNetworkFeePerKWh: bigint;
}

const roleVariables = {
  admin: "ROLE_ADMIN",
  registrar: "ROLE_REGISTRAR",
  pauser: "ROLE_PAUSER",
  matcher: "ROLE_MATCHER",
  meterOracle: "ROLE_METER_ORACLE",
  arbiter: "ROLE_ARBITER",
} as const;

/** `npm run deploy`: a configured chain is required; role holders and token are optional. */
export function readDeployConfig(env: NodeJS.ProcessEnv): DeployConfig {
  const start = readStartConfig(env);
  if (!start.chainRpcUrl) throw new ConfigError("CHAIN_RPC_URL", "is required to deploy (npm start deploys to the embedded chain)", "");
  const roles: DeployConfig["roles"] = {};
  for (const [role, variable] of Object.entries(roleVariables) as [keyof typeof roleVariables, string][]) {
    const value = env[variable];
    if (value) roles[role] = address(variable, value);
  }
  const fee = env.MAX_NETWORK_FEE_PER_KWH ?? "1000000";
  if (!/^\d+$/.test(fee)) throw new ConfigError("MAX_NETWORK_FEE_PER_KWH", "must be a whole number of token base units per kWh", fee);
  return {
    chainRpcUrl: start.chainRpcUrl,
    deployerPrivateKey: start.deployerPrivateKey!,
    deploymentsDir: start.deploymentsDir,
    roles,
    ...(env.PAYMENT_TOKEN ? { paymentToken: address("PAYMENT_TOKEN", env.PAYMENT_TOKEN) } : {}),
    maxNetworkFeePerKWh: BigInt(fee),
  };
}

function address(variable: string, value: string): `0x${string}` {
  if (!/^0x[0-9a-fA-F]{40}$/.test(value)) throw new ConfigError(variable, "must be a 0x-prefixed 20-byte address", value);
  return value as `0x${string}`;
}
