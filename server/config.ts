// The node's configuration, read in one place: environment variables (CHAIN_RPC_URL,
// DATABASE_URL, MQTT_URL, PORT, ...) over an optional JSON config file (CONFIG_FILE, default
// ./energy.config.json when present) over defaults that run everything embedded. A wrong
// value stops start-up with an error naming the variable or the file's field and the rule.
import { readRetentionPolicy, type RetentionPolicy } from "./retention/retentionPolicy.js";
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import type { Hex } from "viem";
import { readComplianceSettings, type ComplianceSettings } from "../engine/compliance/settings.js";
import { toMarket, type MarketConfig } from "../engine/markets.js";
import { BaseError, ValidationError } from "../lib/errors.js";

export class NodeConfigError extends BaseError {
  override name = "NodeConfigError";
  constructor(readonly setting: string, rule: string, value?: string) {
    super(`${setting}${value === undefined ? "" : `=${JSON.stringify(value)}`}: ${rule}`, { field: setting, code: "config_invalid" });
  }
}

export interface NodeConfig {
  host: string;
  port: number;
  /** Each listening port's default moves to the next free one when taken, unless the user set it
   *  (PORT or the file's `port`, CHAIN_PORT, MQTT_PORT): a port asked for is that port or an error. */
  portExplicit: { api: boolean; chain: boolean; mqtt: boolean };
  /** Where PGlite, the chain journal and deployments live when nothing external is configured. */
  dataDir: string;
  chain: {
    /** A running chain; absent = the embedded chain on chainHost:chainPort. */
    rpcUrl?: string;
    host: string;
    port: number;
    deploymentsDir: string;
    /**
     * FINALITY_DEPTH: blocks under the head that may still reorg, for the indexer (undo window)
     * and the bridge (reports only trades this deep). Absent: 0 on the embedded chain, which
     * cannot reorg; on CHAIN_RPC_URL the indexer's default (12 on chain 31337/1337, else 64).
     */
    finalityDepth?: number;
    /** Keys for a configured chain (the embedded chain uses Hardhat's well-known accounts). */
    matcherKey?: Hex;
    meterOracleKey?: Hex;
    registrarKey?: Hex;
  };
  databaseUrl?: string;
  mqtt: { url?: string; host: string; port: number };
  /** The meter bridge's MQTT identity: its topic root and its persistent session's client id
   *  (BRIDGE_TOPIC_ROOT, BRIDGE_MQTT_CLIENT_ID, as for the standalone bridge). Two nodes on one
   *  broker need their own of both. */
  bridge: { topicRoot: string; mqttClientId: string };
  markets: MarketConfig[];
  timeZone: string;
  api: {
    corsOrigins: string[];
    bodyLimit: number;
    rateLimit: { perIpPerMinute: number; perAddressPerMinute: number };
    /**
     * The domains (host[:port]) a SIWE message may name (SIWE_DOMAINS, file `siweDomains`), never
     * the request's Host header, which a phishing site's own message would match. Empty only on
     * the embedded chain: then the node accepts its own listening address, known once it listens
     * (startNode). With CHAIN_RPC_URL it is required.
     */
    siweDomains: string[];
    tokenTtlSeconds: number;
    /** Longest a sign-in lasts, refreshes included (SESSION_MAX_SECONDS): then the wallet signs in again. */
    sessionMaxSeconds: number;
    /** The HTTP server's timeouts, ms (see httpTimeouts). */
    timeouts: HttpTimeouts;
  };
  /**
   * What prosumers can make the community wallet (the aggregator) buy through EV charging plans:
   * open plans and kWh per owner, and the worst-case cost of all plans' orders in any 24 hours.
   */
  aggregatorLimits: {
    /** tEUR (the payment token's whole units) in any 24 hours (AGGREGATOR_MAX_SPEND_PER_DAY). */
    maxSpendPerDay: number;
    /** Plans not yet past departure, per owner (EV_PLAN_MAX_OPEN_PER_OWNER). */
    evPlanMaxOpenPerOwner: number;
    /** kWh asked for by one owner's plans created in any 24 hours (EV_PLAN_MAX_KWH_PER_DAY). */
    evPlanMaxKwhPerOwnerPerDay: number;
  };
  settlement: { maxFills: number; maxLatencyMs: number };
  /** Worker threads recovering order signatures (INTAKE_WORKERS); 0 = on the main thread.
   *  Default 1 with at least 2 CPUs: the main thread keeps one core, recovery shares the other.
   *  `bookHorizonDays` (BOOK_HORIZON_DAYS, file `bookHorizonDays`, 1 to 366, default 7): how far
   *  ahead books take orders; an order for a later interval is refused (beyond_book_horizon). */
  intake: { workers: number; bookHorizonDays: number };
  /**
   * What the engine holds in memory. `retainClosedSeconds` (ENGINE_RETAIN_CLOSED_SECONDS, 0 to
   * 366 days, default 3,600): a book leaves memory this long after its gate closure, once every
   * fill is decided on chain; its orders are then read from the archive. `snapshotEveryOps`
   * (ENGINE_SNAPSHOT_EVERY_OPS, default 200,000): operations between snapshots of the state (a
   * restart replays only what follows the latest). `opLogRetentionDays`
   * (ENGINE_OP_LOG_RETENTION_DAYS, 0 to 3,650, default 7): operations a snapshot covers are
   * deleted from the log once this old.
   */
  engineMemory: { retainClosedSeconds: number; snapshotEveryOps: number; opLogRetentionDays: number };
  /** What the node deletes once its job is done, and when (RETENTION_*, server/retention/retentionPolicy.ts). */
  retention: RetentionPolicy;
  /** "system": wall time; "chain": the chain's latest block time (tests and simulations move it). */
  clock: "system" | "chain";
  /** Hardhat accounts 4.. funded and registered on a fresh embedded chain. */
  testAccounts: number;
  /** Trade-validation thresholds, emission factor, regions (COMPLIANCE_*, file key `compliance`). */
  compliance: ComplianceSettings;
  /** The microgrid orchestrator's community wallet (AGGREGATOR_KEY; on the embedded chain a
   *  fixed Hardhat key when unset) and the zone it is registered in (AGGREGATOR_ZONE). */
  orchestrator: {
    aggregatorKey?: Hex;
    aggregatorZone: string;
    /** Balance every zone at each new interval from its meters (ORCHESTRATOR_AUTO_RUN=1): off
     *  unless asked, since it sends commands to devices and places the community's orders. */
    autoRun: boolean;
  };
  /**
   * The escrow keeper (server/keeper): closes what the market lets anyone close once its deadline
   * passed. KEEPER_ENABLED (1, default; 0 leaves it to someone else), KEEPER_TICK_MS, and
   * KEEPER_PRIVATE_KEY (an account with gas money; default on the embedded chain a Hardhat key
   * the node funds, with CHAIN_RPC_URL the REGISTRAR_PRIVATE_KEY).
   */
  keeper: { enabled: boolean; tickMs: number; key?: Hex };
  /** Per WebSocket: most channels, largest message (bytes; frames over 64 KiB are not read at
   *  all and close the socket with 1009), messages a second (server/realtime/hub.ts). */
  realtime: { maxChannelsPerSocket: number; maxMessageBytes: number; maxMessagesPerSecond: number };
}

/** The community wallet's limits when nothing is configured: a household's EV day, a small community's budget. */
export const defaultAggregatorLimits: NodeConfig["aggregatorLimits"] = { maxSpendPerDay: 50, evPlanMaxOpenPerOwner: 5, evPlanMaxKwhPerOwnerPerDay: 150 };

export const defaultMarkets: MarketConfig[] = [
  { zone: "ZONE-A", mode: "continuous", feedInTariff: 80_000, retailPrice: 350_000, basePrice: 200_000, gateClosureMinutes: 5 },
  { zone: "ZONE-B", mode: "call", feedInTariff: 80_000, retailPrice: 350_000, basePrice: 200_000, gateClosureMinutes: 5 },
];

type Env = Record<string, string | undefined>;

function int(env: Env, file: Record<string, unknown>, name: string, fileKey: string, fallback: number, min: number, max: number): number {
  const raw = env[name] ?? (file[fileKey] === undefined ? undefined : String(file[fileKey]));
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new NodeConfigError(env[name] !== undefined ? name : `config.${fileKey}`, `must be a whole number from ${min} to ${max}`, raw);
  return value;
}

function key(env: Env, name: string): Hex | undefined {
  const value = env[name];
  if (value === undefined || value === "") return undefined;
  // A key is a secret: never echo it back.
  if (!/^0x[0-9a-fA-F]{64}$/.test(value)) throw new NodeConfigError(name, "must be 0x followed by 64 hex digits");
  return value as Hex;
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const value = env[name];
  if (value === undefined || value === "") return undefined;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new NodeConfigError(name, `must be a URL (${protocols.join(" or ")})`, value);
  }
  if (!protocols.includes(parsed.protocol)) throw new NodeConfigError(name, `must use ${protocols.join(" or ")}`, value.replace(/\/\/[^@/]*@/, "//***@"));
  return value;
}

/** One MQTT topic level or client id: letters, digits, '.', '_' and '-' (the bridge's rule). */
function topicLevel(env: Env, name: string, fallback: string, maxLength: number): string {
  const value = env[name];
  if (value === undefined || value === "") return fallback;
  if (value.length > maxLength || !/^[A-Za-z0-9._-]+$/.test(value)) throw new NodeConfigError(name, `must be 1 to ${maxLength} letters, digits, '.', '_' or '-'`, value);
  return value;
}

/** A SIWE domain is an EIP-4361 authority: host[:port], no scheme, path or wildcard. */
const SIWE_DOMAIN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function siweDomains(setting: string, domains: string[]): string[] {
  for (const d of domains) {
    if (!SIWE_DOMAIN.test(d)) throw new NodeConfigError(setting, "must list host[:port] entries, e.g. energy.example.org or 127.0.0.1:8080 (no scheme, path or wildcard)", d);
  }
  return domains;
}

/** A non-negative decimal amount of whole token units (tEUR), at most 6 decimals, read exactly. */
function amount(env: Env, file: Record<string, unknown>, name: string, fileKey: string, fallback: number): number {
  const raw = env[name] ?? (file[fileKey] === undefined ? undefined : String(file[fileKey]));
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d{1,9}(\.\d{1,6})?$/.test(raw)) throw new NodeConfigError(env[name] !== undefined ? name : `config.${fileKey}`, "must be an amount of tEUR from 0 to 999999999 with at most 6 decimals", raw);
  return Number(raw);
}

function compliance(env: Env, section: unknown): ComplianceSettings {
  try {
    return readComplianceSettings(env, section);
  } catch (err) {
    if (err instanceof ValidationError) throw new NodeConfigError(err.field!, err.shortMessage.slice(err.field!.length + 2));
    throw err;
  }
}

function orchestratorSettings(env: Env, markets: MarketConfig[]): NodeConfig["orchestrator"] {
  const aggregatorKey = key(env, "AGGREGATOR_KEY");
  const aggregatorZone = env.AGGREGATOR_ZONE || markets[0]!.zone;
  if (!markets.some((m) => m.zone === aggregatorZone)) throw new NodeConfigError("AGGREGATOR_ZONE", `must be a market zone: ${markets.map((m) => m.zone).join(", ")}`, aggregatorZone);
  const auto = env.ORCHESTRATOR_AUTO_RUN ?? "";
  if (!["", "0", "1"].includes(auto)) throw new NodeConfigError("ORCHESTRATOR_AUTO_RUN", "must be 1 (on) or 0 (off)", auto);
  return { ...(aggregatorKey ? { aggregatorKey } : {}), aggregatorZone, autoRun: auto === "1" };
}

/**
 * How long the HTTP server waits, ms: for a request's headers (HTTP_HEADERS_TIMEOUT_MS, default
 * 10 s), for the whole request, body included (HTTP_REQUEST_TIMEOUT_MS, default 30 s; a slow
 * body is answered 408 and its socket closed), and on an idle kept-alive socket
 * (HTTP_KEEP_ALIVE_TIMEOUT_MS, default 72 s, longer than the idle timeouts of common proxies).
 */
export interface HttpTimeouts { headersMs: number; requestMs: number; keepAliveMs: number }

export const defaultHttpTimeouts: HttpTimeouts = { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 72_000 };

function httpTimeouts(env: Env): HttpTimeouts {
  const requestMs = int(env, {}, "HTTP_REQUEST_TIMEOUT_MS", "", defaultHttpTimeouts.requestMs, 100, 600_000);
  const headersMs = int(env, {}, "HTTP_HEADERS_TIMEOUT_MS", "", Math.min(defaultHttpTimeouts.headersMs, requestMs), 100, 600_000);
  // Node refuses a headers timeout longer than the request's, which covers the headers too.
  if (headersMs > requestMs) throw new NodeConfigError("HTTP_HEADERS_TIMEOUT_MS", `must be at most HTTP_REQUEST_TIMEOUT_MS (${requestMs})`, String(headersMs));
  return { headersMs, requestMs, keepAliveMs: int(env, {}, "HTTP_KEEP_ALIVE_TIMEOUT_MS", "", defaultHttpTimeouts.keepAliveMs, 100, 600_000) };
}

function keeperSettings(env: Env): NodeConfig["keeper"] {
  const enabled = env.KEEPER_ENABLED ?? "";
  if (!["", "0", "1"].includes(enabled)) throw new NodeConfigError("KEEPER_ENABLED", "must be 1 (on) or 0 (off)", enabled);
  const keeperKey = key(env, "KEEPER_PRIVATE_KEY");
  return { enabled: enabled !== "0", tickMs: int(env, {}, "KEEPER_TICK_MS", "", 1_000, 50, 600_000), ...(keeperKey ? { key: keeperKey } : {}) };
}

export function readConfigFile(env: Env, cwd = process.cwd()): Record<string, unknown> {
  const path = env.CONFIG_FILE ?? (existsSync(`${cwd}/energy.config.json`) ? `${cwd}/energy.config.json` : undefined);
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new NodeConfigError("CONFIG_FILE", `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, path);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new NodeConfigError("CONFIG_FILE", `must hold one JSON object (${(err as Error).message})`, path);
  }
}

const knownFileKeys = new Set([
  "markets", "timeZone", "corsOrigins", "bodyLimit", "rateLimitPerIpPerMinute", "rateLimitPerAddressPerMinute", "siweDomains", "tokenTtlSeconds", "sessionMaxSeconds",
  "settlementMaxFills", "settlementMaxLatencyMs", "testAccounts", "dataDir", "port", "compliance", "aggregatorMaxSpendPerDay", "evPlanMaxOpenPerOwner", "evPlanMaxKwhPerDay",
  "bookHorizonDays",
]);

export function readNodeConfig(env: Env = process.env, file: Record<string, unknown> = readConfigFile(env)): NodeConfig {
  for (const k of Object.keys(file)) if (!knownFileKeys.has(k)) throw new NodeConfigError(`config.${k}`, `is not a setting; known: ${[...knownFileKeys].join(", ")}`);
  const rpcUrl = url(env, "CHAIN_RPC_URL", ["http:", "https:"]);
  const databaseUrl = url(env, "DATABASE_URL", ["postgres:", "postgresql:"]);
  const mqttUrl = url(env, "MQTT_URL", ["mqtt:", "mqtts:", "ws:", "wss:"]);

  let markets = defaultMarkets;
  if (file.markets !== undefined) {
    if (!Array.isArray(file.markets) || file.markets.length === 0) throw new NodeConfigError("config.markets", "must be a non-empty array of markets");
    markets = file.markets as MarketConfig[];
  }
  markets.forEach((m, i) => {
    try {
      toMarket(m, i);
    } catch (err) {
      if (err instanceof ValidationError) throw new NodeConfigError(`config.${err.field}`, err.shortMessage.slice(err.field!.length + 2));
      throw err;
    }
  });
  const timeZone = env.TIME_ZONE ?? (file.timeZone as string | undefined) ?? "Europe/Berlin";
  try {
    new Intl.DateTimeFormat("en", { timeZone });
  } catch {
    throw new NodeConfigError(env.TIME_ZONE ? "TIME_ZONE" : "config.timeZone", "must be an IANA time zone, e.g. Europe/Berlin", timeZone);
  }
  const list = (name: string, fileKey: string, fallback: string[]): string[] => {
    if (env[name] !== undefined) return env[name]!.split(",").map((s) => s.trim()).filter(Boolean);
    const v = file[fileKey];
    if (v === undefined) return fallback;
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new NodeConfigError(`config.${fileKey}`, "must be an array of strings");
    return v as string[];
  };

  const config: NodeConfig = {
    host: env.HOST ?? "127.0.0.1",
    port: int(env, file, "PORT", "port", 8080, 0, 65_535),
    portExplicit: {
      api: Boolean(env.PORT) || file.port !== undefined,
      chain: Boolean(env.CHAIN_PORT),
      mqtt: Boolean(env.MQTT_PORT),
    },
    dataDir: env.DATA_DIR ?? (file.dataDir as string | undefined) ?? ".data/node",
    chain: {
      ...(rpcUrl ? { rpcUrl } : {}),
      host: env.CHAIN_HOST ?? "127.0.0.1",
      port: int(env, {}, "CHAIN_PORT", "", 8545, 0, 65_535),
      deploymentsDir: env.DEPLOYMENTS_DIR ?? "deployments",
      ...(env.FINALITY_DEPTH ? { finalityDepth: int(env, {}, "FINALITY_DEPTH", "", 0, 0, 10_000) } : {}),
    },
    ...(databaseUrl ? { databaseUrl } : {}),
    mqtt: { ...(mqttUrl ? { url: mqttUrl } : {}), host: env.MQTT_HOST ?? "127.0.0.1", port: int(env, {}, "MQTT_PORT", "", 1883, 0, 65_535) },
    bridge: { topicRoot: topicLevel(env, "BRIDGE_TOPIC_ROOT", "energy-cloud", 128), mqttClientId: topicLevel(env, "BRIDGE_MQTT_CLIENT_ID", "meter-bridge", 64) },
    markets,
    timeZone,
    api: {
      corsOrigins: list("CORS_ORIGINS", "corsOrigins", []),
      bodyLimit: int(env, file, "BODY_LIMIT", "bodyLimit", 65_536, 1_024, 10_485_760),
      rateLimit: {
        perIpPerMinute: int(env, file, "RATE_LIMIT_PER_IP", "rateLimitPerIpPerMinute", 6_000, 0, 100_000_000),
        perAddressPerMinute: int(env, file, "RATE_LIMIT_PER_ADDRESS", "rateLimitPerAddressPerMinute", 1_200, 0, 100_000_000),
      },
      siweDomains: siweDomains(env.SIWE_DOMAINS !== undefined ? "SIWE_DOMAINS" : "config.siweDomains", list("SIWE_DOMAINS", "siweDomains", [])),
      tokenTtlSeconds: int(env, file, "TOKEN_TTL_SECONDS", "tokenTtlSeconds", 900, 10, 86_400),
      sessionMaxSeconds: int(env, file, "SESSION_MAX_SECONDS", "sessionMaxSeconds", 43_200, 60, 2_592_000),
      timeouts: httpTimeouts(env),
    },
    aggregatorLimits: {
      maxSpendPerDay: amount(env, file, "AGGREGATOR_MAX_SPEND_PER_DAY", "aggregatorMaxSpendPerDay", defaultAggregatorLimits.maxSpendPerDay),
      evPlanMaxOpenPerOwner: int(env, file, "EV_PLAN_MAX_OPEN_PER_OWNER", "evPlanMaxOpenPerOwner", defaultAggregatorLimits.evPlanMaxOpenPerOwner, 0, 1_000),
      evPlanMaxKwhPerOwnerPerDay: int(env, file, "EV_PLAN_MAX_KWH_PER_DAY", "evPlanMaxKwhPerDay", defaultAggregatorLimits.evPlanMaxKwhPerOwnerPerDay, 0, 1_000_000),
    },
    settlement: {
      // At ~73k gas a fill, 150 fills (x1.2 estimate margin) stay under the 2^24 gas a
      // transaction may use on current chains; a larger batch could never be mined.
      maxFills: int(env, file, "SETTLEMENT_MAX_FILLS", "settlementMaxFills", 100, 1, 150),
      maxLatencyMs: int(env, file, "SETTLEMENT_MAX_LATENCY_MS", "settlementMaxLatencyMs", 2_000, 10, 600_000),
    },
    intake: {
      workers: int(env, {}, "INTAKE_WORKERS", "", availableParallelism() >= 2 ? 1 : 0, 0, 64),
      bookHorizonDays: int(env, file, "BOOK_HORIZON_DAYS", "bookHorizonDays", 7, 1, 366),
    },
    engineMemory: {
      retainClosedSeconds: int(env, {}, "ENGINE_RETAIN_CLOSED_SECONDS", "", 3_600, 0, 366 * 86_400),
      snapshotEveryOps: int(env, {}, "ENGINE_SNAPSHOT_EVERY_OPS", "", 200_000, 1_000, 1_000_000_000),
      opLogRetentionDays: int(env, {}, "ENGINE_OP_LOG_RETENTION_DAYS", "", 7, 0, 3_650),
    },
    retention: readRetentionPolicy(env),
    testAccounts: int(env, file, "TEST_ACCOUNTS", "testAccounts", 6, 0, 16),
    compliance: compliance(env, file.compliance),
    orchestrator: orchestratorSettings(env, markets),
    keeper: keeperSettings(env),
    realtime: {
      maxChannelsPerSocket: int(env, file, "REALTIME_MAX_CHANNELS_PER_SOCKET", "realtimeMaxChannelsPerSocket", 100, 1, 10_000),
      maxMessageBytes: int(env, file, "REALTIME_MAX_MESSAGE_BYTES", "realtimeMaxMessageBytes", 16_384, 256, 65_536),
      maxMessagesPerSecond: int(env, file, "REALTIME_MAX_MESSAGES_PER_SECOND", "realtimeMaxMessagesPerSecond", 50, 1, 10_000),
    },
    clock: "system",
  };
  const clockSetting = env.NODE_CLOCK ?? "system";
  if (clockSetting !== "system" && clockSetting !== "chain") throw new NodeConfigError("NODE_CLOCK", 'must be "system" (wall time) or "chain" (follow the chain\'s block time)', clockSetting);
  config.clock = clockSetting;
  if (rpcUrl) {
    const matcherKey = key(env, "MATCHER_PRIVATE_KEY");
    const meterOracleKey = key(env, "METER_ORACLE_PRIVATE_KEY");
    if (!matcherKey) throw new NodeConfigError("MATCHER_PRIVATE_KEY", "is required with CHAIN_RPC_URL: the key of the account holding MATCHER_ROLE (0x + 64 hex digits)");
    if (!meterOracleKey) throw new NodeConfigError("METER_ORACLE_PRIVATE_KEY", "is required with CHAIN_RPC_URL: the key of the account holding METER_ORACLE_ROLE (0x + 64 hex digits)");
    config.chain.matcherKey = matcherKey;
    config.chain.meterOracleKey = meterOracleKey;
    const registrarKey = key(env, "REGISTRAR_PRIVATE_KEY");
    if (registrarKey) config.chain.registrarKey = registrarKey;
    // A node on a real chain is reached under a name only its operator knows; guessing it from
    // the request would let a phishing site's message (naming its own Host) sign in as anyone.
    if (config.api.siweDomains.length === 0) {
      throw new NodeConfigError("SIWE_DOMAINS", "is required with CHAIN_RPC_URL: the comma-separated host[:port] names wallets sign in to (e.g. energy.example.org), never taken from requests");
    }
  }
  return config;
}
