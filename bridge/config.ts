// Every setting of the meter bridge, read from the environment in this one place and passed
// down as a typed object. A bad value stops start-up with BridgeConfigError naming the
// variable and its rule; nothing else in bridge/ reads process.env.
import { getAddress, isAddress, type Address, type Hex } from "viem";
import { settingAliases, settingNames } from "../lib/settingAliases.js";
import { BridgeConfigError } from "./errors.js";

export type AllocationRule = "fifo" | "pro-rata";

export interface BridgeConfig {
  /** External broker (Mosquitto, EMQX); when absent the embedded Aedes broker starts. */
  mqttUrl: string | undefined;
  /** Where the embedded broker listens (MQTT_HOST, MQTT_PORT); a port not set explicitly moves on when taken. */
  embeddedBroker: { host: string; port: number; portExplicit: boolean };
  mqttClientId: string;
  /** First topic level: `energy-cloud` in the spec; tests use their own to stay apart. */
  topicRoot: string;
  mqttReconnectMinMs: number;
  mqttReconnectMaxMs: number;

  chainRpcUrl: string;
  oraclePrivateKey: Hex;
  deploymentsDir: string;
  /** Overrides for what the deployment file says. */
  marketAddress: Address | undefined;
  registryAddress: Address | undefined;
  startBlock: bigint | undefined;

  /**
   * PostgreSQL shared with a running indexer (its tables are where the trades come from);
   * without it, PGlite in `dataDir` and the indexer runs inside the bridge (main.ts).
   */
  databaseUrl: string | undefined;
  dataDir: string;
  /**
   * FINALITY_DEPTH (BRIDGE_FINALITY_DEPTH): a trade is reported only once its block is this many
   * blocks under the indexer's head. Undefined: the indexer's default for the chain
   * (defaultFinalityDepth: 12 on a local chain id, 64 elsewhere). 0 trusts the head: for chains
   * that cannot reorg.
   */
  finalityDepth: number | undefined;

  intervalSeconds: number;
  graceSeconds: number;
  maxClockSkewSeconds: number;
  retentionSeconds: number;
  allocation: AllocationRule;
  plausibilityMarginPct: number;
  maxPayloadBytes: number;

  reportBatchSize: number;
  tickMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  commandAckSeconds: number;
}

type Env = Record<string, string | undefined>;

export function readBridgeConfig(env: Env = process.env): BridgeConfig {
  const nameOf = settingNames(env, settingAliases.bridge);
  const mqttUrl = optionalUrl(env, "MQTT_URL", ["mqtt:", "mqtts:", "tcp:", "ws:", "wss:"]);
  const intervalMinutes = integer(env, "BRIDGE_INTERVAL_MINUTES", 15, { min: 1, max: 1440 });
  if (1440 % intervalMinutes !== 0) {
    throw new BridgeConfigError({ variable: "BRIDGE_INTERVAL_MINUTES", value: env.BRIDGE_INTERVAL_MINUTES, rule: "must divide a day (1440 minutes), e.g. 5, 15 or 60" });
  }
  const retryMinMs = integer(env, "BRIDGE_RETRY_MIN_MS", 1_000, { min: 1, max: 3_600_000 });
  const retryMaxMs = integer(env, "BRIDGE_RETRY_MAX_MS", 60_000, { min: 1, max: 86_400_000 });
  if (retryMaxMs < retryMinMs) {
    throw new BridgeConfigError({ variable: "BRIDGE_RETRY_MAX_MS", value: env.BRIDGE_RETRY_MAX_MS, rule: `must be >= BRIDGE_RETRY_MIN_MS (${retryMinMs})` });
  }
  const reconnectMin = integer(env, "BRIDGE_MQTT_RECONNECT_MIN_MS", 500, { min: 10, max: 600_000 });
  const reconnectMax = integer(env, "BRIDGE_MQTT_RECONNECT_MAX_MS", 30_000, { min: 10, max: 3_600_000 });
  if (reconnectMax < reconnectMin) {
    throw new BridgeConfigError({ variable: "BRIDGE_MQTT_RECONNECT_MAX_MS", value: env.BRIDGE_MQTT_RECONNECT_MAX_MS, rule: `must be >= BRIDGE_MQTT_RECONNECT_MIN_MS (${reconnectMin})` });
  }
  const key = env.METER_ORACLE_PRIVATE_KEY;
  if (!key) {
    throw new BridgeConfigError({ variable: "METER_ORACLE_PRIVATE_KEY", value: undefined, rule: "required: the private key of the account holding METER_ORACLE_ROLE on the market (0x + 64 hex digits)" });
  }
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) {
    // The value is a secret: never echo it.
    throw new BridgeConfigError({ variable: "METER_ORACLE_PRIVATE_KEY", value: undefined, rule: "must be 0x followed by 64 hex digits" });
  }
  const allocation = env.BRIDGE_ALLOCATION ?? "fifo";
  if (allocation !== "fifo" && allocation !== "pro-rata") {
    throw new BridgeConfigError({ variable: "BRIDGE_ALLOCATION", value: allocation, rule: 'must be "fifo" (first in, first out by execution order) or "pro-rata" (by contracted energy)' });
  }
  const topicRoot = env.BRIDGE_TOPIC_ROOT ?? "energy-cloud";
  if (!/^[A-Za-z0-9._-]+$/.test(topicRoot)) {
    throw new BridgeConfigError({ variable: "BRIDGE_TOPIC_ROOT", value: topicRoot, rule: "must be one topic level: letters, digits, '.', '_' or '-'" });
  }
  const clientId = env.BRIDGE_MQTT_CLIENT_ID ?? "meter-bridge";
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(clientId)) {
    throw new BridgeConfigError({ variable: "BRIDGE_MQTT_CLIENT_ID", value: clientId, rule: "must be 1 to 64 letters, digits, '.', '_' or '-'" });
  }
  const startBlockVariable = nameOf("START_BLOCK");
  const startBlock = env[startBlockVariable] || undefined;
  if (startBlock !== undefined && !/^\d+$/.test(startBlock)) {
    throw new BridgeConfigError({ variable: startBlockVariable, value: startBlock, rule: "must be a block number (a non-negative integer)" });
  }

  return {
    mqttUrl,
    embeddedBroker: {
      host: env[nameOf("MQTT_HOST")] || "127.0.0.1",
      port: integer(env, nameOf("MQTT_PORT"), 1883, { min: 0, max: 65_535 }),
      portExplicit: Boolean(env[nameOf("MQTT_PORT")]),
    },
    mqttClientId: clientId,
    topicRoot,
    mqttReconnectMinMs: reconnectMin,
    mqttReconnectMaxMs: reconnectMax,
    chainRpcUrl: optionalUrl(env, "CHAIN_RPC_URL", ["http:", "https:"]) ?? "http://127.0.0.1:8545",
    oraclePrivateKey: key as Hex,
    deploymentsDir: env.DEPLOYMENTS_DIR ?? "deployments",
    marketAddress: optionalAddress(env, nameOf("MARKET_ADDRESS")),
    registryAddress: optionalAddress(env, nameOf("REGISTRY_ADDRESS")),
    startBlock: startBlock === undefined ? undefined : BigInt(startBlock),
    databaseUrl: optionalUrl(env, "DATABASE_URL", ["postgres:", "postgresql:"]),
    dataDir: env[nameOf("DATA_DIR")] || ".data/bridge",
    finalityDepth: env[nameOf("FINALITY_DEPTH")] ? integer(env, nameOf("FINALITY_DEPTH"), 0, { min: 0, max: 10_000 }) : undefined,
    intervalSeconds: intervalMinutes * 60,
    graceSeconds: integer(env, "BRIDGE_GRACE_SECONDS", 300, { min: 0, max: 86_400 }),
    maxClockSkewSeconds: integer(env, "BRIDGE_MAX_CLOCK_SKEW_SECONDS", 120, { min: 0, max: 3_600 }),
    retentionSeconds: integer(env, "BRIDGE_RETENTION_HOURS", 48, { min: 1, max: 24 * 90 }) * 3600,
    allocation,
    plausibilityMarginPct: integer(env, "BRIDGE_PLAUSIBILITY_MARGIN_PCT", 10, { min: 0, max: 1_000 }),
    maxPayloadBytes: integer(env, "BRIDGE_MAX_PAYLOAD_BYTES", 4_096, { min: 64, max: 1_048_576 }),
    reportBatchSize: integer(env, "BRIDGE_REPORT_BATCH_SIZE", 100, { min: 1, max: 500 }),
    tickMs: integer(env, "BRIDGE_TICK_MS", 1_000, { min: 10, max: 600_000 }),
    retryMinMs,
    retryMaxMs,
    commandAckSeconds: integer(env, "BRIDGE_COMMAND_ACK_SECONDS", 60, { min: 1, max: 86_400 }),
  };
}

function integer(env: Env, variable: string, fallback: number, { min, max }: { min: number; max: number }): number {
  const raw = env[variable];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw)) throw new BridgeConfigError({ variable, value: raw, rule: `must be an integer from ${min} to ${max}` });
  const n = Number(raw);
  if (n < min || n > max) throw new BridgeConfigError({ variable, value: raw, rule: `must be an integer from ${min} to ${max}` });
  return n;
}

function optionalUrl(env: Env, variable: string, protocols: string[]): string | undefined {
  const raw = env[variable];
  if (raw === undefined || raw === "") return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new BridgeConfigError({ variable, value: redactUrl(raw), rule: `must be a URL (${protocols.map((p) => `${p}//`).join(", ")})` });
  }
  if (!protocols.includes(url.protocol)) {
    throw new BridgeConfigError({ variable, value: redactUrl(raw), rule: `must use one of ${protocols.map((p) => `${p}//`).join(", ")}` });
  }
  return raw;
}

function optionalAddress(env: Env, variable: string): Address | undefined {
  const raw = env[variable];
  if (raw === undefined || raw === "") return undefined;
  if (!isAddress(raw, { strict: false })) throw new BridgeConfigError({ variable, value: raw, rule: "must be a 0x-prefixed 20-byte address" });
  return getAddress(raw);
}

function redactUrl(raw: string): string {
  return raw.replace(/\/\/([^:/@]+):[^@/]*@/, "//$1:***@");
}
