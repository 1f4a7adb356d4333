// `tsx bridge/main.ts`: the meter bridge as a process. Reads the configuration, finds the
// market and registry (deployment file or overrides), checks the oracle key holds
// METER_ORACLE_ROLE, opens and migrates the database, connects to MQTT_URL or starts the
// embedded broker, and runs until SIGINT/SIGTERM.
import { mkdir } from "node:fs/promises";
import { createPublicClient, http, type Address, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { energyMarketAbi } from "../contracts/client/abi.js";
import { readDeployment, roleIds } from "../contracts/client/deploy.js";
import { BaseError } from "../lib/errors.js";
import { createLogger } from "../lib/logger.js";
import { readBridgeConfig, type BridgeConfig } from "./config.js";
import { openBridgeDatabase } from "./database.js";
import { startEmbeddedBroker, type EmbeddedBroker } from "./embeddedBroker.js";
import { BridgeConfigError } from "./errors.js";
import { startBridge } from "./startBridge.js";

async function resolveContracts(config: BridgeConfig, client: PublicClient, chainId: number): Promise<{ market: Address; registry: Address; startBlock: bigint }> {
  const deployment = await readDeployment(config.deploymentsDir, chainId);
  const market = config.marketAddress ?? deployment?.contracts.EnergyMarket;
  if (!market) {
    throw new BridgeConfigError({
      variable: "DEPLOYMENTS_DIR", value: config.deploymentsDir,
      rule: `holds no ${chainId}.json for the chain at CHAIN_RPC_URL; run \`npm start\` (it writes one) or set MARKET_ADDRESS and REGISTRY_ADDRESS`,
    });
  }
  const registry = config.registryAddress ?? deployment?.contracts.ProsumerRegistry
    ?? ((await client.readContract({ address: market, abi: energyMarketAbi, functionName: "registry" })) as Address);
  const startBlock = config.startBlock ?? (deployment ? BigInt(deployment.blockNumber) : 0n);
  return { market, registry, startBlock };
}

async function main() {
  const config = readBridgeConfig(process.env);
  const logger = createLogger("bridge");
  const client = createPublicClient({ transport: http(config.chainRpcUrl, { batch: { batchSize: 200, wait: 0 }, retryCount: 1, timeout: 15_000 }) });
  let chainId: number;
  try {
    chainId = await client.getChainId();
  } catch (err) {
    throw new BridgeConfigError({ variable: "CHAIN_RPC_URL", value: config.chainRpcUrl, rule: `is not answering JSON-RPC (${(err as Error).message.split("\n")[0]}); start the chain (npm start) or point CHAIN_RPC_URL at one` });
  }
  const { market, registry, startBlock } = await resolveContracts(config, client, chainId);
  const oracle = privateKeyToAccount(config.oraclePrivateKey);
  const isOracle = await client.readContract({ address: market, abi: energyMarketAbi, functionName: "hasRole", args: [roleIds.METER_ORACLE_ROLE, oracle.address] });
  if (!isOracle) {
    throw new BridgeConfigError({ variable: "METER_ORACLE_PRIVATE_KEY", value: undefined, rule: `its account ${oracle.address} lacks METER_ORACLE_ROLE on the market ${market}` });
  }

  if (!config.databaseUrl) await mkdir(config.dataDir, { recursive: true });
  const database = await openBridgeDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  let broker: EmbeddedBroker | undefined;
  let mqttUrl = config.mqttUrl;
  if (!mqttUrl) {
    broker = await startEmbeddedBroker(config.embeddedBroker);
    mqttUrl = broker.url;
  }
  const bridge = await startBridge({
    settings: config, mqttUrl, db: database.db, client, oracle, market, registry, startBlock, chainId, logger,
  });

  console.log([
    "",
    "Meter bridge running",
    `  MQTT            ${broker ? `${broker.url}  (embedded Aedes broker${broker.movedFrom !== undefined ? `; ${broker.movedFrom} was taken, MQTT_PORT picks one` : ""})` : redact(mqttUrl)}`,
    `  subscribed      ${config.topicRoot}/+/smart-meter/+/{export,import,interval}, ${config.topicRoot}/+/+/+/status`,
    `  dead letters    ${config.topicRoot}/dead-letter/...`,
    `  chain           ${config.chainRpcUrl} (chain id ${chainId}), market ${market}`,
    `  meter oracle    ${oracle.address}`,
    `  database        ${database.kind === "postgres" ? "PostgreSQL (DATABASE_URL)" : `PGlite in ${config.dataDir}`}`,
    `  intervals       ${config.intervalSeconds / 60} min, grace ${config.graceSeconds}s, allocation ${config.allocation}`,
    "",
  ].join("\n"));

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      // A second signal: leave now. Nothing is lost; unacknowledged messages are redelivered
      // and the outbox resumes where it stood.
      process.exit(1);
    }
    stopping = true;
    logger.info({ msg: "stopping", signal });
    // A broker or database that does not answer must not keep the process alive forever.
    setTimeout(() => {
      logger.error({ msg: "graceful stop took longer than 15 s; exiting" });
      process.exit(1);
    }, 15_000).unref();
    await bridge.close();
    await broker?.close();
    await database.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, "//$1:***@");
}

main().catch((err: unknown) => {
  console.error(err instanceof BaseError ? `bridge: ${err.shortMessage}` : err);
  process.exit(1);
});
