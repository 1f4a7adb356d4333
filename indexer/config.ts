// The indexer's settings, read from the environment in this one place. A wrong value stops
// start-up with IndexerConfigError naming the variable, its value and the rule.
import { getAddress, isAddress, type Address } from "viem";
import { settingAliases, settingNames } from "../lib/settingAliases.js";
import { IndexerConfigError } from "./errors.js";
import type { IndexedContracts } from "./contracts.js";

export interface IndexerConfig {
  rpcUrl: string;
  /** PostgreSQL when set; otherwise PGlite in `dataDir`. */
  databaseUrl?: string;
  dataDir: string;
  deploymentsDir: string;
  /** Overrides the deployment file's addresses. */
  contracts?: IndexedContracts;
  /** Overrides the deployment file's block. */
  startBlock?: bigint;
  /** FINALITY_DEPTH (INDEXER_FINALITY_DEPTH); undefined: 12 on a local chain, 64 elsewhere (see defaultFinalityDepth). */
  finalityDepth?: number;
  pollIntervalMs: number;
  logRange: { initial: number; max: number };
  rpc: { timeoutMs: number; maxRetries: number; batchSize: number };
  api: { enabled: boolean; host: string; port: number };
  /** CO2 avoided per renewable kWh, in micro-kg (0.385 kg → 385000). */
  co2MicroKgPerKWh: bigint;
  /** The community's calendar: report and trade-filter periods are its days (TIME_ZONE). */
  timeZone: string;
}

export const LOCAL_CHAIN_IDS = new Set([31337, 1337]);

/** Local dev chains reorg only when told to; public chains are given Ethereum's two epochs. */
export function defaultFinalityDepth(chainId: number): number {
  return LOCAL_CHAIN_IDS.has(chainId) ? 12 : 64;
}

export function readIndexerConfig(env: NodeJS.ProcessEnv): IndexerConfig {
  const nameOf = settingNames(env, settingAliases.indexer);
  const rpcVariable = nameOf("CHAIN_RPC_URL");
  const rpcUrl = env[rpcVariable] || "http://127.0.0.1:8545";
  if (!/^https?:\/\/\S+$/.test(rpcUrl)) throw new IndexerConfigError(rpcVariable, "must be an http:// or https:// JSON-RPC URL", rpcUrl);

  let databaseUrl: string | undefined;
  if (present(env.DATABASE_URL)) {
    if (!/^postgres(?:ql)?:\/\/\S+$/.test(env.DATABASE_URL!)) throw new IndexerConfigError("DATABASE_URL", "must be a postgres:// or postgresql:// URL", "<hidden>");
    databaseUrl = env.DATABASE_URL;
  }

  const market = env[nameOf("MARKET_ADDRESS")];
  const registry = env[nameOf("REGISTRY_ADDRESS")];
  let contracts: IndexedContracts | undefined;
  if (present(market) || present(registry)) {
    contracts = { EnergyMarket: address(env, nameOf("MARKET_ADDRESS")), ProsumerRegistry: address(env, nameOf("REGISTRY_ADDRESS")) };
  }
  const timeZone = env.TIME_ZONE || "Europe/Berlin";
  try {
    new Intl.DateTimeFormat("en", { timeZone });
  } catch {
    throw new IndexerConfigError("TIME_ZONE", "must be an IANA time zone, e.g. Europe/Berlin", timeZone);
  }

  const initial = integer(env, "INDEXER_BLOCK_RANGE", 1_000, 1, 1_000_000);
  const max = integer(env, "INDEXER_MAX_BLOCK_RANGE", Math.max(10_000, initial), 1, 1_000_000);
  if (max < initial) throw new IndexerConfigError("INDEXER_MAX_BLOCK_RANGE", `must be at least INDEXER_BLOCK_RANGE (${initial})`, env.INDEXER_MAX_BLOCK_RANGE);

  const config: IndexerConfig = {
    rpcUrl,
    dataDir: env[nameOf("DATA_DIR")] || ".data/indexer",
    deploymentsDir: env.DEPLOYMENTS_DIR || "deployments",
    pollIntervalMs: integer(env, "INDEXER_POLL_INTERVAL_MS", 250, 10, 600_000),
    logRange: { initial, max },
    rpc: {
      timeoutMs: integer(env, "INDEXER_RPC_TIMEOUT_MS", 10_000, 100, 600_000),
      maxRetries: integer(env, "INDEXER_RPC_MAX_RETRIES", 8, 0, 1_000),
      batchSize: integer(env, "INDEXER_RPC_BATCH_SIZE", 100, 1, 1_000),
    },
    api: {
      enabled: boolean(env, "INDEXER_API", true),
      host: env.INDEXER_HOST || "127.0.0.1",
      port: integer(env, "INDEXER_PORT", 4100, 0, 65_535),
    },
    co2MicroKgPerKWh: decimalMicro(env, nameOf("COMPLIANCE_EMISSION_FACTOR_KG_PER_KWH"), 385_000n),
    timeZone,
  };
  if (databaseUrl) config.databaseUrl = databaseUrl;
  if (contracts) config.contracts = contracts;
  const startBlockVariable = nameOf("START_BLOCK");
  if (present(env[startBlockVariable])) {
    const raw = env[startBlockVariable]!;
    if (!/^\d+$/.test(raw)) throw new IndexerConfigError(startBlockVariable, "must be a block number (a non-negative integer)", raw);
    config.startBlock = BigInt(raw);
  }
  // One setting with the bridge and the node: the bridge reports a trade only once it is this deep.
  const finalityVariable = nameOf("FINALITY_DEPTH");
  if (present(env[finalityVariable])) config.finalityDepth = integer(env, finalityVariable, 0, 1, 10_000);
  return config;
}

function present(value: string | undefined): boolean {
  return value !== undefined && value !== "";
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (!present(raw)) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw!) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new IndexerConfigError(name, `must be an integer from ${min} to ${max}`, raw);
  }
  return value;
}

function boolean(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (!present(raw)) return fallback;
  if (/^(?:1|true|yes|on)$/i.test(raw!)) return true;
  if (/^(?:0|false|no|off)$/i.test(raw!)) return false;
  throw new IndexerConfigError(name, "must be true or false", raw);
}

function address(env: NodeJS.ProcessEnv, name: string): Address {
  const raw = env[name];
  if (!present(raw)) throw new IndexerConfigError(name, "must be set when either MARKET_ADDRESS or REGISTRY_ADDRESS is (INDEXER_MARKET_ADDRESS, INDEXER_REGISTRY_ADDRESS as before)", raw);
  if (!isAddress(raw!, { strict: false })) throw new IndexerConfigError(name, "must be a 0x-prefixed 20-byte address", raw);
  return getAddress(raw!);
}

function decimalMicro(env: NodeJS.ProcessEnv, name: string, fallback: bigint): bigint {
  const raw = env[name];
  if (!present(raw)) return fallback;
  const m = /^(\d+)(?:\.(\d{1,6}))?$/.exec(raw!);
  if (!m) throw new IndexerConfigError(name, "must be a non-negative decimal with at most 6 decimal places (kg per kWh)", raw);
  return BigInt(m[1]!) * 1_000_000n + BigInt((m[2] ?? "").padEnd(6, "0"));
}
