// The whole platform in one process: chain (embedded or CHAIN_RPC_URL), contracts (deployed
// once, reused on restart), database (PGlite in the data folder or DATABASE_URL), matching
// engine and settler, indexer, meter bridge with its broker (embedded Aedes or MQTT_URL), and
// the HTTP/WebSocket API. close() takes them down in the order that loses nothing: stop taking
// requests, let the engine's writes and the settler's batches finish, then the rest.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { FastifyInstance, FastifyPluginAsync } from "fastify";
import { sql } from "kysely";
import {
  createPublicClient, createWalletClient, custom, defineChain, erc20Abi, getAddress, http, type Account, type Address, type Chain,
  type EIP1193Provider, type Hex, type PublicClient, type Transport, type WalletClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { energyMarketAbi, prosumerRegistryAbi, testEuroAbi } from "../contracts/client/abi.js";
import { deployPlatform, readDeployment, roleIds, writeDeployment, type Deployment } from "../contracts/client/deploy.js";
import { marketDomain, sourceMask } from "../contracts/client/order.js";
import { readBridgeConfig } from "../bridge/config.js";
import { migrateBridgeDatabase, type BridgeDatabase } from "../bridge/database.js";
import { mqttUrlCredential, mqttUrlWithCredential, mqttUrlWithoutCredential, newBridgeCredential, withBridgeCredential } from "../bridge/brokerAccess.js";
import { startEmbeddedBroker, type EmbeddedBroker } from "../bridge/embeddedBroker.js";
import { meterIdToBytes32 } from "../bridge/meterDirectory.js";
import { testAccountMeterKey } from "../bridge/readingSignature.js";
import { startBridge, type Bridge } from "../bridge/startBridge.js";
import { createRegistryDirectory } from "../engine/registryDirectory.js";
import { createFundsDirectory } from "../engine/fundsDirectory.js";
import { toUnits } from "../engine/compliance/decimal.js";
import { createEngine, type Engine } from "../engine/createEngine.js";
import { zoneToHex } from "../engine/markets.js";
import { createSettler } from "../engine/settlement/createSettler.js";
import { settlementFaultsFromEnv } from "../engine/settlement/settlementFaults.js";
import type { EngineDatabase } from "../engine/store/engineStore.js";
import { defaultFinalityDepth } from "../indexer/config.js";
import { runIndexer } from "../indexer/runIndexer.js";
import { migrateIndexerDatabase } from "../indexer/store/migrate.js";
import type { IndexerDatabase } from "../indexer/store/schema.js";
import { createChainRpc } from "../indexer/sync/rpc.js";
import { openDatabase, redact, type OpenedDatabase } from "../lib/database.js";
import { listenOnPort, PortInUseError } from "../lib/listenOnPort.js";
import { createLogger, type Logger } from "../lib/logger.js";
import { pruneOpLog } from "../engine/store/engineArchive.js";
import { startRetention } from "./retention/startRetention.js";
import { hardhatKey, startLocalChain, type LocalChain } from "../scripts/localChain.js";
import { buildApp } from "./app.js";
import { engineProbe } from "./routes/health.js";
import { createSessions } from "./auth/sessions.js";
import { localSiweDomains } from "./auth/siweDomains.js";
import type { NodeConfig } from "./config.js";
import { NodeConfigError } from "./config.js";
import type { ChainInfo, NodeServices } from "./context.js";
import { createDeviceCredentials, issueTestAccountCredentials } from "./devices/deviceCredentials.js";
import { migrateDeviceStore } from "./devices/deviceStore.js";
import { wireRealtime } from "./realtime/wireRealtime.js";
import { createHub, type Hub } from "./realtime/hub.js";
import { aggregatorSigner, EMBEDDED_AGGREGATOR_INDEX, setUpAggregatorAccount } from "./orchestrator/aggregatorAccount.js";
import type { Keeper } from "./keeper/createKeeper.js";
import { startNodeKeeper } from "./keeper/startNodeKeeper.js";
import { keySender } from "./chain/keySender.js";

const FAUCET_PER_ACCOUNT = 1_000n * 1_000_000n;

export interface TestAccount {
  address: Address;
  privateKey: Hex;
  meterId: string;
  zone: string;
  /** The meter's Ed25519 signing key, derived from `privateKey` (testAccountMeterKey), and its public key as registered. */
  meterKey: Hex;
  meterSigner: Hex;
}

export interface StartNodeOptions {
  config: NodeConfig;
  logger?: Logger;
  /** Unix milliseconds; a simulation passes its own. */
  clock?: () => number;
  /** More API route plugins (they see app.node). */
  plugins?: FastifyPluginAsync[];
  /** Seconds between the engine's clock ticks (gate closures, expiries). */
  advanceEverySeconds?: number;
  /** Indexer poll interval. */
  indexerPollMs?: number;
}

/** A default port that was taken, and where the part went instead. */
export interface MovedPort {
  what: "API" | "chain" | "MQTT";
  /** The setting that pins it. */
  variable: "PORT" | "CHAIN_PORT" | "MQTT_PORT";
  from: number;
  to: number;
}

export interface RunningNode {
  url: string;
  rpcUrl: string;
  mqttUrl: string;
  /** Default ports that were taken at start-up and where each part went (the banner says so). */
  movedPorts: MovedPort[];
  chainId: number;
  deployment: Deployment;
  /** True when the contracts were deployed by this start (not reused). */
  freshDeployment: boolean;
  chainReplayed: number;
  database: string;
  testAccounts: TestAccount[];
  /** Key of an operator account (embedded chain only). */
  operatorKey?: Hex;
  services: NodeServices;
  app: FastifyInstance;
  engine: Engine;
  bridge: Bridge;
  /** Closes escrows past their deadline (server/keeper); absent with KEEPER_ENABLED=0 or no key. */
  keeper?: Keeper;
  hub: Hub;
  broker?: EmbeddedBroker;
  /** Resolves once the indexer has indexed every block mined so far (the head when called). */
  indexedBlock(): Promise<bigint>;
  close(): Promise<void>;
}

export async function startNode(options: StartNodeOptions): Promise<RunningNode> {
  const { config } = options;
  const logger = options.logger ?? createLogger("node");
  let clock = options.clock ?? Date.now;
  const nowSeconds = () => Math.floor(clock() / 1000);
  const closers: (() => Promise<unknown>)[] = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (err) {
        logger.error({ msg: "close failed", err: (err as Error).message });
      }
    }
  };

  try {
    // ---- chain
    let local: LocalChain | undefined;
    let transport: Transport;
    let rpcUrl: string;
    if (config.chain.rpcUrl) {
      rpcUrl = config.chain.rpcUrl;
      transport = http(rpcUrl, { batch: { batchSize: 100, wait: 0 }, retryCount: 2, timeout: 15_000 });
    } else {
      await mkdir(config.dataDir, { recursive: true });
      local = await startLocalChain({ host: config.chain.host, port: config.chain.port, portExplicit: config.portExplicit.chain, dataDir: path.join(config.dataDir, "chain") });
      closers.push(() => local!.close());
      rpcUrl = local.url;
      transport = custom(local.provider as EIP1193Provider);
    }
    const probe = createPublicClient({ transport });
    let chainId: number;
    try {
      chainId = await probe.getChainId();
    } catch (err) {
      throw new NodeConfigError("CHAIN_RPC_URL", `is not answering JSON-RPC (${(err as Error).message.split("\n")[0]})`, rpcUrl);
    }
    const chain: Chain = defineChain({ id: chainId, name: local ? "Embedded chain" : "Configured chain", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [rpcUrl] } } });
    const publicClient = createPublicClient({ chain, transport, pollingInterval: local ? 50 : 1_000 }) as PublicClient;
    if (!options.clock && config.clock === "chain") {
      const follow = await followChainClock(publicClient);
      closers.push(async () => follow.stop());
      clock = follow.now;
    }
    const wallet = (key: Hex) => createWalletClient({ chain, transport, account: privateKeyToAccount(key) }) as WalletClient<Transport, Chain, Account>;

    const keys = local
      ? { admin: hardhatKey(0), matcher: hardhatKey(1), meterOracle: hardhatKey(2), arbiter: hardhatKey(3) }
      : { matcher: config.chain.matcherKey!, meterOracle: config.chain.meterOracleKey!, admin: config.chain.registrarKey, arbiter: undefined };

    // ---- contracts: reuse the recorded deployment when its code is on this chain
    let deployment = await readDeployment(config.chain.deploymentsDir, chainId);
    let freshDeployment = false;
    if (deployment) {
      const code = await publicClient.getCode({ address: deployment.contracts.EnergyMarket });
      if (!code || code === "0x") {
        if (!local) throw new NodeConfigError("DEPLOYMENTS_DIR", `${config.chain.deploymentsDir}/${chainId}.json names a market with no code on this chain; deploy again (npm run deploy)`, config.chain.deploymentsDir);
        deployment = undefined;
      }
    }
    if (!deployment) {
      if (!local) throw new NodeConfigError("DEPLOYMENTS_DIR", `holds no ${chainId}.json for the chain at CHAIN_RPC_URL: deploy first (npm run deploy)`, config.chain.deploymentsDir);
      const address = (k: Hex) => privateKeyToAccount(k).address;
      const admin = address(keys.admin!);
      deployment = await deployPlatform(wallet(keys.admin!) as never, publicClient as never, {
        roles: { admin, registrar: admin, pauser: admin, matcher: address(keys.matcher), meterOracle: address(keys.meterOracle), arbiter: address(keys.arbiter!) },
        maxNetworkFeePerKWh: 1_000_000n,
      });
      await writeDeployment(config.chain.deploymentsDir, deployment);
      freshDeployment = true;
    }
    const contracts = { EnergyMarket: getAddress(deployment.contracts.EnergyMarket), ProsumerRegistry: getAddress(deployment.contracts.ProsumerRegistry), PaymentToken: getAddress(deployment.contracts.PaymentToken) };
    const [symbol, decimals] = await Promise.all([
      publicClient.readContract({ address: contracts.PaymentToken, abi: erc20Abi, functionName: "symbol" }),
      publicClient.readContract({ address: contracts.PaymentToken, abi: erc20Abi, functionName: "decimals" }),
    ]);

    // ---- test accounts on the embedded chain: funded and registered once
    const testAccounts: TestAccount[] = [];
    if (local) {
      for (let i = 0; i < config.testAccounts; i++) {
        const privateKey = hardhatKey(4 + i);
        const meter = testAccountMeterKey(privateKey);
        testAccounts.push({
          address: privateKeyToAccount(privateKey).address, privateKey, meterId: `meter-${4 + i}`, zone: config.markets[i % config.markets.length]!.zone,
          meterKey: meter.privateKey, meterSigner: meter.signer,
        });
      }
      if (freshDeployment) await fundTestAccounts(publicClient, wallet(keys.admin!), contracts, testAccounts);
    }
    // The orchestrator's community wallet: configured, or on the embedded chain a fixed key set up
    // (gas, tEUR, prosumer registration, market allowance) with a fresh deployment.
    const aggregatorKey = config.orchestrator.aggregatorKey ?? (local ? hardhatKey(EMBEDDED_AGGREGATOR_INDEX) : undefined);
    if (local && freshDeployment && aggregatorKey) {
      await setUpAggregatorAccount(publicClient, wallet(keys.admin!), wallet(aggregatorKey), contracts, config.orchestrator.aggregatorZone);
    }

    // ---- database: one for every part (tables are prefixed per part)
    let database: OpenedDatabase<EngineDatabase & IndexerDatabase & BridgeDatabase>;
    if (config.databaseUrl) database = await openDatabase({ url: config.databaseUrl });
    else {
      await mkdir(path.join(config.dataDir, "pglite"), { recursive: true });
      database = await openDatabase({ dataDir: path.join(config.dataDir, "pglite"), ownThread: true });
    }
    closers.push(() => database.close());
    const db = database.db;
    await migrateIndexerDatabase(db as never);
    await migrateBridgeDatabase(db as never);

    // ---- device credentials: who may log in to the broker, and send a meter's readings over REST.
    // The bridge's own: MQTT_URL's userinfo for an external broker, a fresh one for the embedded.
    await migrateDeviceStore(db as never);
    const bridgeCredential = config.mqtt.url ? mqttUrlCredential(config.mqtt.url) : newBridgeCredential();
    let broker: EmbeddedBroker | undefined;
    const devices = createDeviceCredentials({
      db: db as never, clock, reservedUsernames: bridgeCredential ? [bridgeCredential.username] : [],
      onCredentialWithdrawn: (username) => broker?.disconnect(username),
    });
    if (local) await issueTestAccountCredentials(devices, testAccounts);

    // ---- engine and settler
    const domain = marketDomain(chainId, contracts.EnergyMarket);
    const directory = createRegistryDirectory({ client: publicClient, contracts: { registry: contracts.ProsumerRegistry, market: contracts.EnergyMarket }, fromBlock: BigInt(deployment.blockNumber), logger });
    await directory.refresh();
    // Buyers' balances and allowances, from the payment token's events: intake refuses a buy its maker cannot pay.
    const funds = createFundsDirectory({ client: publicClient, contracts: { token: contracts.PaymentToken, market: contracts.EnergyMarket }, logger });
    await funds.refresh();
    // Fault tests only: with NODE_ENV=test, ENERGY_FAULT_CRASH_AT=<point> kills the node (SIGKILL)
    // at that step of a settlement batch (engine/settlement/settlementFaults.ts).
    const faults = settlementFaultsFromEnv(process.env);
    const engineDb = faults ? db.withPlugin(faults.plugin) : db;
    // Every placement waits for its operation-log write: on PostgreSQL that write has a
    // connection of its own, never queued behind the pool's archive, indexer and bridge work.
    const logConnection = await database.dedicated();
    const logDb = faults ? logConnection.withPlugin(faults.plugin) : logConnection;
    const engine = await createEngine({
      db: engineDb as never, logDb: logDb as never, markets: config.markets, domain, timeZone: config.timeZone, intakeWorkers: config.intake.workers, logger,
      directory, funds, bookHorizonSeconds: config.intake.bookHorizonDays * 86_400, snapshotEveryOps: config.engineMemory.snapshotEveryOps,
    });
    // Runs after the settler's closer below (closers run last first): stops the intake workers.
    closers.push(() => engine.close());
    const settler = createSettler({
      engine, db: engineDb as never, publicClient, walletClient: wallet(keys.matcher), market: contracts.EnergyMarket,
      maxFills: config.settlement.maxFills, maxLatencyMs: config.settlement.maxLatencyMs, now: nowSeconds, logger, ...(faults ? { faults: faults.hook } : {}),
    });
    // init() reads the matcher's next nonce and picks up batches a previous run left in flight;
    // without it the first batch is signed with nonce -1 and settlement never starts.
    await settler.init();
    settler.start();
    closers.push(async () => {
      await engine.idle();
      await settler.stop();
    });
    const advanceEvery = (options.advanceEverySeconds ?? 1) * 1000;
    let advancing: Promise<void> | undefined;
    const advanceTimer = setInterval(() => {
      if (advancing || !engineNeedsAdvance(engine, nowSeconds())) return;
      advancing = engine.advance(nowSeconds()).catch((err: unknown) => logger.error({ msg: "engine advance failed", err: (err as Error).message })).finally(() => (advancing = undefined));
    }, advanceEvery);
    closers.push(async () => {
      clearInterval(advanceTimer);
      await advancing;
    });
    // Books closed, settled and final leave memory (their orders go to the archive): what the
    // engine holds follows the open market, not its history. The log a snapshot covers goes once
    // ENGINE_OP_LOG_RETENTION_DAYS old.
    let forgetting: Promise<unknown> | undefined;
    let opLogPrunedAt = 0;
    const forgetTimer = setInterval(() => {
      if (forgetting) return;
      forgetting = (async () => {
        await engine.forgetSettled(nowSeconds(), config.engineMemory.retainClosedSeconds);
        if (Date.now() - opLogPrunedAt < 600_000) return;
        opLogPrunedAt = Date.now();
        const deleted = await pruneOpLog(engineDb as never, new Date(clock() - config.engineMemory.opLogRetentionDays * 86_400_000));
        if (deleted > 0) logger.info({ msg: "engine: operations covered by a snapshot pruned from the log", deleted });
      })()
        .catch((err: unknown) => logger.warn({ msg: "engine: forgetting settled books failed; tried again later", err: (err as Error).message }))
        .finally(() => (forgetting = undefined));
    }, Math.max(advanceEvery, 10_000));
    forgetTimer.unref();
    closers.push(async () => {
      clearInterval(forgetTimer);
      await forgetting;
    });

    // ---- indexer
    const indexerAbort = new AbortController();
    const indexerRpc = createChainRpc({ url: rpcUrl, logger, signal: indexerAbort.signal, batchSize: 100 });
    let indexedHead = 0n;
    /** Counts the indexer's commits: API answers read from its tables are cached per count. */
    let indexerCommits = 0;
    const indexerWaiters = new Set<() => void>();
    // One depth for the indexer's undo window and the bridge's reports. The embedded chain cannot
    // reorg (its journal refuses evm_snapshot/evm_revert) and mines a block only per
    // transaction, so any depth above 0 would hold reports back until unrelated traffic came.
    const finalityDepth = config.chain.finalityDepth ?? (local ? 0 : defaultFinalityDepth(chainId));
    const indexerRun = runIndexer({
      db: db as never, rpc: indexerRpc, chainId, contracts: { EnergyMarket: contracts.EnergyMarket, ProsumerRegistry: contracts.ProsumerRegistry },
      startBlock: BigInt(deployment.blockNumber), finalityDepth, pollIntervalMs: options.indexerPollMs ?? (local ? 250 : 2_000),
      logRange: { initial: 2_000, max: 10_000 }, mode: "follow", logger, signal: indexerAbort.signal,
      onCommit: (commit) => {
        indexerCommits++;
        if (commit.toBlock > indexedHead) indexedHead = commit.toBlock;
        for (const wake of indexerWaiters) wake();
      },
    }).catch((err: unknown) => {
      if (!indexerAbort.signal.aborted) logger.error({ msg: "indexer stopped", err: (err as Error).message });
    });
    closers.push(async () => {
      indexerAbort.abort(new Error("node stopping"));
      await indexerRun;
    });

    // ---- meter bridge and its broker
    const bridgeDefaults = readBridgeConfig({
      METER_ORACLE_PRIVATE_KEY: keys.meterOracle, BRIDGE_TOPIC_ROOT: config.bridge.topicRoot, BRIDGE_MQTT_CLIENT_ID: config.bridge.mqttClientId,
    });
    let mqttUrl = config.mqtt.url;
    let bridgeMqttUrl = mqttUrl;
    if (!mqttUrl) {
      broker = await startEmbeddedBroker({
        host: config.mqtt.host, port: config.mqtt.port, portExplicit: config.portExplicit.mqtt,
        access: {
          topicRoot: bridgeDefaults.topicRoot, check: withBridgeCredential(bridgeCredential!, devices.check),
          onRefused: (refusal) => logger.warn({ msg: "MQTT refused", ...refusal }),
        },
      });
      closers.push(() => broker!.close());
      mqttUrl = broker.url;
      bridgeMqttUrl = mqttUrlWithCredential(broker.url, bridgeCredential!);
    }
    // What devices and people see: never the bridge's password.
    mqttUrl = mqttUrlWithoutCredential(mqttUrl);
    const bridge = await startBridge({
      settings: bridgeDefaults, mqttUrl: bridgeMqttUrl!, db: db as never, client: publicClient, oracle: privateKeyToAccount(keys.meterOracle), market: contracts.EnergyMarket,
      registry: contracts.ProsumerRegistry, startBlock: BigInt(deployment.blockNumber), chainId, logger, clock,
      // The indexer above writes to the same database: the bridge reports its final trades.
      indexer: { db: db as never, finalityDepth },
    });
    closers.push(() => bridge.close());
    await bridge.ready;

    // ---- keeper: finalises disputes and reclaims unreported trades once the chain's time passes their deadlines
    const keeper = await startNodeKeeper({
      settings: config.keeper, registrarKey: config.chain.registrarKey, embeddedAdmin: local ? wallet(keys.admin!) : undefined, db: db as never,
      client: publicClient, chainId, market: contracts.EnergyMarket, logger, indexerVersion: () => indexerCommits,
    });
    if (keeper) closers.push(() => keeper.close());

    // ---- API
    const chainInfo: ChainInfo = {
      chainId, rpcUrl, local: Boolean(local), contracts, token: { symbol, decimals }, domain, publicClient,
      ...(keys.admin ? { registrar: wallet(keys.admin) } : {}),
      ...(local && keys.admin ? { faucet: wallet(keys.admin) } : {}),
    };
    const sessions = createSessions({ tokenTtlSeconds: config.api.tokenTtlSeconds, nonceTtlSeconds: 600, sessionMaxSeconds: config.api.sessionMaxSeconds });
    // SIWE domains: configured, or (embedded chain only: config refuses an empty list with
    // CHAIN_RPC_URL) this node's own address, which is known once it listens (the port may move).
    let listeningDomains: string[] = [];
    const siweDomains = config.api.siweDomains.length > 0 ? config.api.siweDomains : () => listeningDomains;
    const services: NodeServices = {
      chain: chainInfo, engine, sessions, clock, logger, bridge, config, timeZone: config.timeZone, testAccounts,
      devices, mqtt: { url: mqttUrl, topicRoot: bridgeDefaults.topicRoot },
      indexer: { db: db as never, rpc: createChainRpc({ url: rpcUrl, timeoutMs: 5_000, maxRetries: 1 }), chainId, contracts: { EnergyMarket: contracts.EnergyMarket, ProsumerRegistry: contracts.ProsumerRegistry }, tokenDecimals: decimals, co2MicroKgPerKWh: toUnits(config.compliance.emissionFactorKgPerKwh, 6, "compliance.emissionFactorKgPerKwh") },
    };
    if (aggregatorKey) services.aggregator = aggregatorSigner(aggregatorKey, config.orchestrator.aggregatorZone, domain);
    if (keeper) services.keeper = keeper;
    const hub = createHub({ limits: config.realtime });
    services.hub = hub;
    const unwire = wireRealtime({ hub, engine, bridge });
    closers.push(async () => unwire());
    const app = await buildApp({
      services, settings: { ...config.api, siweDomains }, hub, plugins: options.plugins ?? [], indexerVersion: () => indexerCommits,
      health: {
        probes: {
          chain: async () => ({ ok: true, detail: `block ${await publicClient.getBlockNumber()}` }),
          database: async () => {
            // A round trip, not a count: counting the op log grows with every order ever placed.
            await sql`select 1`.execute(db);
            return { ok: true, detail: database.kind };
          },
          indexer: async () => ({ ok: !indexerAbort.signal.aborted, detail: `indexed to block ${indexedHead}` }),
          mqtt: async () => ({ ok: bridge.metrics().mqttConnects > bridge.metrics().mqttDisconnects, detail: mqttUrl!.replace(/\/\/[^@/]*@/, "//***@") }),
          // Stopped (every order refused) or with quarantined books: never "ok".
          engine: async () => engineProbe({ status: engine.stats().status, failure: engine.failure()?.details, quarantined: engine.state.quarantined }),
        },
        gauges: () => {
          let open = 0;
          for (const b of engine.state.books.values()) if (b.status === "open") open++;
          const m = bridge.metrics() as unknown as Record<string, number>;
          const gauges: Record<string, number> = {
            engine_orders: engine.state.orders.size, engine_fills: engine.state.fills.size, engine_books: engine.state.books.size, engine_open_books: open, engine_last_seq: engine.state.lastSeq,
            indexer_head_block: Number(indexedHead), ws_sockets: hub.stats().sockets, ws_messages_published: hub.stats().published,
          };
          for (const [k, v] of Object.entries(m)) if (typeof v === "number") gauges[`bridge_${k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`] = v;
          if (keeper) for (const [k, v] of Object.entries(keeper.metrics())) gauges[`keeper_${k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`] = v;
          return gauges;
        },
      },
    });
    closers.push(() => app.close());
    // Rows whose job is done (sent transactions, old readings, dead letters...) are deleted in
    // small batches; the audit trail is kept (server/retention/pruneStores.ts).
    const retention = startRetention({ db: db as never, policy: config.retention, clock, logger });
    closers.push(async () => retention.stop());
    const api = await listenOnPort(
      { port: config.port, explicit: config.portExplicit.api },
      async (port) => {
        const url = await app.listen({ host: config.host, port });
        return { listening: url, port: Number(new URL(url).port) };
      },
      (cause) => new PortInUseError({ what: "API", host: config.host, port: config.port, variable: "PORT", cause }),
    );
    const url = api.listening;
    listeningDomains = localSiweDomains(config.host, api.port);
    const movedPorts: MovedPort[] = [];
    if (local?.movedFrom !== undefined) movedPorts.push({ what: "chain", variable: "CHAIN_PORT", from: local.movedFrom, to: Number(new URL(rpcUrl).port) });
    if (broker?.movedFrom !== undefined) movedPorts.push({ what: "MQTT", variable: "MQTT_PORT", from: broker.movedFrom, to: broker.port });
    if (api.movedFrom !== undefined) movedPorts.push({ what: "API", variable: "PORT", from: api.movedFrom, to: api.port });

    return {
      url, rpcUrl, mqttUrl, movedPorts, chainId, deployment, freshDeployment, chainReplayed: local?.replayed ?? 0,
      database: database.kind === "postgres" ? redact(config.databaseUrl!) : `PGlite in ${path.join(config.dataDir, "pglite")}`,
      testAccounts, ...(local ? { operatorKey: keys.admin! } : {}), services, app, engine, bridge, ...(keeper ? { keeper } : {}), hub, ...(broker ? { broker } : {}),
      async indexedBlock() {
        // cacheTime 0: viem otherwise answers from a block number up to one polling interval
        // old, and a caller that just saw its transaction mined would wait for a block before it.
        const target = await publicClient.getBlockNumber({ cacheTime: 0 });
        while (indexedHead < target) {
          await new Promise<void>((resolve) => {
            const wake = () => {
              indexerWaiters.delete(wake);
              resolve();
            };
            indexerWaiters.add(wake);
            setTimeout(wake, 200).unref();
          });
        }
        return indexedHead;
      },
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * A clock that follows the chain's block time (NODE_CLOCK=chain): the latest block's timestamp
 * plus the wall time since it was seen. Moving the chain's time (evm_increaseTime, a simulated
 * day) moves the engine's gate closures and the bridge's delivery windows with it.
 */
async function followChainClock(client: PublicClient) {
  let base = 0;
  let seenAt = 0;
  const read = async () => {
    const block = await client.getBlock({ blockTag: "latest" });
    const ts = Number(block.timestamp) * 1000;
    // Never step backwards: block time only moves forward, and so must the node's clock.
    if (ts > base + (Date.now() - seenAt)) {
      base = ts;
      seenAt = Date.now();
    }
  };
  await read();
  const timer = setInterval(() => void read().catch(() => undefined), 200);
  return { now: () => base + (Date.now() - seenAt), stop: () => clearInterval(timer) };
}

/** Something for advance() to do: a book past its gate closure, or an order past its expiry. */
function engineNeedsAdvance(engine: Engine, now: number): boolean {
  for (const rec of engine.state.books.values()) if (rec.status === "open" && now >= rec.closesAt) return true;
  return false;
}

async function fundTestAccounts(client: PublicClient, admin: WalletClient<Transport, Chain, Account>, contracts: { PaymentToken: Address; ProsumerRegistry: Address }, accounts: TestAccount[]) {
  const hashes: Hex[] = [];
  // The admin's one nonce queue (server/chain/keySender.ts), shared with the registrar and faucet routes.
  const sender = keySender(client, admin.account);
  for (const a of accounts) {
    hashes.push(await sender.send({ address: contracts.PaymentToken, abi: testEuroAbi, functionName: "faucet", args: [a.address, FAUCET_PER_ACCOUNT] }));
    hashes.push(await sender.send({
      address: contracts.ProsumerRegistry, abi: prosumerRegistryAbi, functionName: "registerProsumer",
      args: [a.address, meterIdToBytes32(a.meterId)!, zoneToHex(a.zone), 10_000n, 20_000n, sourceMask(["solar", "storage"])],
    }));
    // Its meter's key, so the readings its simulated meter signs are delivery evidence.
    hashes.push(await sender.send({ address: contracts.ProsumerRegistry, abi: prosumerRegistryAbi, functionName: "setMeterSigner", args: [a.address, a.meterSigner] }));
  }
  for (const hash of hashes) {
    const receipt = await client.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new Error(`setting up test accounts failed in ${hash}`);
  }
}

export { roleIds, energyMarketAbi };
