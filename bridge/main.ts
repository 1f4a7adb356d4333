// `tsx bridge/main.ts`: the meter bridge as a process. Reads the configuration, finds the
// market and registry (deployment file or overrides), checks the oracle key holds
// METER_ORACLE_ROLE, opens and migrates the database, connects to MQTT_URL (required: see
// main()), and runs until SIGINT/SIGTERM.
//
// The trades it reports come from an indexer's tables in the same database. With DATABASE_URL
// that is an indexer running beside it (`npm run indexer`, same DATABASE_URL); without, the
// PGlite folder can only be opened by this process, so the indexer runs here, in-process.
import { mkdir } from "node:fs/promises";
import type { Kysely } from "kysely";
import { createPublicClient, http, type Address, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { energyMarketAbi } from "../contracts/client/abi.js";
import { readDeployment, roleIds } from "../contracts/client/deploy.js";
import { defaultFinalityDepth } from "../indexer/config.js";
import { runIndexer } from "../indexer/runIndexer.js";
import { migrateIndexerDatabase } from "../indexer/store/migrate.js";
import type { IndexerDatabase } from "../indexer/store/schema.js";
import { createChainRpc } from "../indexer/sync/rpc.js";
import { BaseError } from "../lib/errors.js";
import { createLogger } from "../lib/logger.js";
import { readBridgeConfig, type BridgeConfig } from "./config.js";
import { openBridgeDatabase } from "./database.js";
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
  // A broker of its own would have no device credentials to check, so any client could publish
  // any meter's readings: the standalone bridge uses a broker that checks them (npm start's
  // embedded one does, with the node's device table).
  if (!config.mqttUrl) {
    throw new BridgeConfigError({
      variable: "MQTT_URL", value: undefined,
      rule: "is required by the standalone bridge: a broker that checks device credentials (a Mosquitto configured with npm run mqtt:mosquitto-config, with the bridge's login in the URL); npm start runs the bridge with an embedded broker that does",
    });
  }
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
  // One database, two parts' tables: the bridge's and the indexer's it reads trades from.
  // Migrating them here too (idempotent) lets the bridge start before its indexer.
  const indexerDb = database.db as unknown as Kysely<IndexerDatabase>;
  await migrateIndexerDatabase(indexerDb);
  const finalityDepth = config.finalityDepth ?? defaultFinalityDepth(chainId);
  const indexerAbort = new AbortController();
  let stopProcess: ((reason: string, exitCode: number) => Promise<void>) | undefined;
  let indexerRun: Promise<void> | undefined;
  if (!config.databaseUrl) {
    const indexerLogger = createLogger("indexer");
    indexerRun = runIndexer({
      db: indexerDb, rpc: createChainRpc({ url: config.chainRpcUrl, logger: indexerLogger, signal: indexerAbort.signal }), chainId,
      contracts: { EnergyMarket: market, ProsumerRegistry: registry }, startBlock, finalityDepth, pollIntervalMs: 250,
      logRange: { initial: 1_000, max: 10_000 }, mode: "follow", logger: indexerLogger, signal: indexerAbort.signal,
    }).catch((err: unknown) => {
      // A reorg deeper than FINALITY_DEPTH, a provider refusing for good: no new trade would
      // ever be final again, so stop loudly rather than report nothing quietly.
      console.error(`bridge: the in-process indexer stopped: ${err instanceof BaseError ? err.shortMessage : (err as Error).message}`);
      if (stopProcess) void stopProcess("indexer stopped", 1);
      else process.exit(1);
    });
  }
  const mqttUrl = config.mqttUrl;
  const bridge = await startBridge({
    settings: config, mqttUrl, db: database.db, client, oracle, market, registry, startBlock, chainId, logger,
    indexer: { db: indexerDb, finalityDepth },
  });

  console.log([
    "",
    "Meter bridge running",
    `  MQTT            ${redact(mqttUrl)}`,
    `  subscribed      ${config.topicRoot}/+/smart-meter/+/{export,import,interval}, ${config.topicRoot}/+/+/+/status`,
    `  dead letters    ${config.topicRoot}/dead-letter/...`,
    `  chain           ${config.chainRpcUrl} (chain id ${chainId}), market ${market}`,
    `  meter oracle    ${oracle.address}`,
    `  database        ${database.kind === "postgres" ? "PostgreSQL (DATABASE_URL)" : `PGlite in ${config.dataDir}`}`,
    `  trades          ${indexerRun ? "indexed in this process" : "from the indexer writing to DATABASE_URL (npm run indexer, same DATABASE_URL)"}, reported ${finalityDepth} blocks deep (FINALITY_DEPTH)`,
    `  intervals       ${config.intervalSeconds / 60} min, grace ${config.graceSeconds}s, allocation ${config.allocation}`,
    "",
  ].join("\n"));

  let stopping = false;
  const stop = async (signal: string, exitCode = 0) => {
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
    indexerAbort.abort(new Error("bridge stopping"));
    await indexerRun;
    await database.close();
    process.exit(exitCode);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  stopProcess = stop;
}

function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, "//$1:***@");
}

main().catch((err: unknown) => {
  console.error(err instanceof BaseError ? `bridge: ${err.shortMessage}` : err);
  process.exit(1);
});
