// `npm run indexer`: follows the chain into the database and serves the auditor API until
// SIGINT/SIGTERM. `npm run indexer -- --once` indexes up to the current head and exits (no API).
// Configuration: indexer/config.ts; contracts and start block from deployments/<chainId>.json.
import { mkdir } from "node:fs/promises";
import { decodeFunctionResult, encodeFunctionData, erc20Abi, getAddress, type Hex } from "viem";
import { energyMarketAbi } from "../contracts/client/abi.js";
import { deploymentPath, readDeployment } from "../contracts/client/deploy.js";
import { openDatabase, redact } from "../lib/database.js";
import { BaseError } from "../lib/errors.js";
import { createLogger } from "../lib/logger.js";
import { buildIndexerApp } from "./api/app.js";
import { defaultFinalityDepth, readIndexerConfig } from "./config.js";
import type { IndexedContracts } from "./contracts.js";
import { ChainMismatchError, IndexerConfigError } from "./errors.js";
import { runIndexer } from "./runIndexer.js";
import { migrateIndexerDatabase } from "./store/migrate.js";
import type { IndexerDatabase } from "./store/schema.js";
import { createChainRpc, type ChainRpc } from "./sync/rpc.js";

const logger = createLogger("indexer");

async function main(): Promise<number> {
  const once = process.argv.includes("--once");
  const config = readIndexerConfig(process.env);
  const controller = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      logger.info({ msg: "stopping", signal });
      controller.abort(new Error(`stopped by ${signal}`));
    });
  }

  const rpc = createChainRpc({ url: config.rpcUrl, ...config.rpc, logger, signal: controller.signal });
  const chainId = Number(await rpc.request<Hex>("eth_chainId", []));
  const { contracts, startBlock } = await resolveContracts(config, chainId);
  await assertDeployed(rpc, contracts);
  const finalityDepth = config.finalityDepth ?? defaultFinalityDepth(chainId);

  if (!config.databaseUrl) await mkdir(config.dataDir, { recursive: true });
  const database = await openDatabase<IndexerDatabase>(config.databaseUrl ? { url: config.databaseUrl } : { dataDir: config.dataDir });
  let app: Awaited<ReturnType<typeof buildIndexerApp>> | undefined;
  try {
    await migrateIndexerDatabase(database.db);
    logger.info({
      msg: "indexer configured",
      chain_id: chainId,
      rpc: config.rpcUrl,
      database: config.databaseUrl ? redact(config.databaseUrl) : `pglite:${config.dataDir}`,
      market: contracts.EnergyMarket,
      registry: contracts.ProsumerRegistry,
      start_block: Number(startBlock),
      finality_depth: finalityDepth,
    });

    if (config.api.enabled && !once) {
      // The API's own client fails fast: a status page should not wait out the sync loop's retries.
      const apiRpc = createChainRpc({ url: config.rpcUrl, timeoutMs: 5_000, maxRetries: 1, batchSize: config.rpc.batchSize });
      app = await buildIndexerApp({
        db: database.db,
        timeZone: config.timeZone,
        rpc: apiRpc,
        chainId,
        contracts,
        tokenDecimals: await tokenDecimals(rpc, contracts),
        co2MicroKgPerKWh: config.co2MicroKgPerKWh,
        logger,
      });
      const address = await app.listen({ host: config.api.host, port: config.api.port });
      logger.info({ msg: "auditor API listening", url: `${address}/v1/trades` });
    }

    await runIndexer({
      db: database.db,
      rpc,
      chainId,
      contracts,
      startBlock,
      finalityDepth,
      pollIntervalMs: config.pollIntervalMs,
      logRange: config.logRange,
      mode: once ? "once" : "follow",
      logger,
      signal: controller.signal,
    });
    return 0;
  } finally {
    await app?.close();
    await database.close();
  }
}

async function resolveContracts(config: ReturnType<typeof readIndexerConfig>, chainId: number): Promise<{ contracts: IndexedContracts; startBlock: bigint }> {
  const deployment = await readDeployment(config.deploymentsDir, chainId);
  if (config.contracts) {
    const sameDeployment = deployment && getAddress(deployment.contracts.EnergyMarket) === config.contracts.EnergyMarket;
    return { contracts: config.contracts, startBlock: config.startBlock ?? (sameDeployment ? BigInt(deployment.blockNumber) : 0n) };
  }
  if (!deployment) {
    throw new IndexerConfigError(
      "DEPLOYMENTS_DIR",
      `has no ${deploymentPath(config.deploymentsDir, chainId)} for chain ${chainId}: deploy first (npm start, npm run deploy), point DEPLOYMENTS_DIR at the file's folder, or set MARKET_ADDRESS and REGISTRY_ADDRESS`,
      config.deploymentsDir,
    );
  }
  return {
    contracts: { EnergyMarket: getAddress(deployment.contracts.EnergyMarket), ProsumerRegistry: getAddress(deployment.contracts.ProsumerRegistry) },
    startBlock: config.startBlock ?? BigInt(deployment.blockNumber),
  };
}

async function assertDeployed(rpc: ChainRpc, contracts: IndexedContracts): Promise<void> {
  for (const [name, address] of Object.entries(contracts)) {
    const code = await rpc.request<Hex>("eth_getCode", [address, "latest"]);
    if (!code || code === "0x") throw new ChainMismatchError(`indexer: no contract at ${name} address ${address} on this chain; is the deployment file for another chain or a restarted local chain?`);
  }
}

async function tokenDecimals(rpc: ChainRpc, contracts: IndexedContracts): Promise<number> {
  const tokenData = await rpc.request<Hex>("eth_call", [{ to: contracts.EnergyMarket, data: encodeFunctionData({ abi: energyMarketAbi, functionName: "paymentToken" }) }, "latest"]);
  const token = decodeFunctionResult({ abi: energyMarketAbi, functionName: "paymentToken", data: tokenData });
  const data = await rpc.request<Hex>("eth_call", [{ to: token, data: encodeFunctionData({ abi: erc20Abi, functionName: "decimals" }) }, "latest"]);
  return decodeFunctionResult({ abi: erc20Abi, functionName: "decimals", data });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof BaseError ? err.message : err instanceof Error ? err.message : String(err);
    logger.error({ msg: "indexer stopped", err });
    process.stderr.write(`indexer: ${message}\n`);
    process.exit(err instanceof IndexerConfigError ? 2 : 1);
  },
);
