// The bridge assembled from its parts, with every dependency passed in (database, chain client,
// oracle account, the indexer's database as the trade source, clock), so tests run it against a
// real broker, chain, indexer and database with their own clock. main.ts builds the
// dependencies from the environment.
//
// One loop (tick) does the periodic work in order: read new registry entries, close windows
// whose grace period ended (decisions + outbox), drain the outbox to the chain, expire
// unanswered commands, publish metrics. A failing step is logged and retried next tick; it never
// stops MQTT intake, which runs on its own.
import { EventEmitter } from "node:events";
import type { Kysely } from "kysely";
import type { Address, LocalAccount, PublicClient } from "viem";
import type { IndexerDatabase } from "../indexer/store/schema.js";
import type { Logger } from "../lib/logger.js";
import type { BridgeConfig } from "./config.js";
import { connectMqtt, type MqttLink } from "./connectMqtt.js";
import type { BridgeDatabase } from "./database.js";
import { decideDueDeliveries, type DecidedWindow } from "./decideDeliveries.js";
import {
  expireUnacknowledgedCommands, recordCommandStatus, sendDeviceCommand, type CommandAck, type CommandDependencies, type DeviceAddress, type DeviceCommand, type SentCommand,
} from "./deviceCommands.js";
import { createReadingIngest, type CommitSummary, type CommittedReading, type IngestOptions, type ReadingVerdict } from "./ingestReadings.js";
import { createRegistryMeterDirectory, type MeterDirectory } from "./meterDirectory.js";
import { createMetrics, snapshotMetrics, type BridgeMetrics } from "./metrics.js";
import { countUnsent } from "./outbox.js";
import { retryDelayMs, sendDeliveryReports, type ReportResult } from "./sendDeliveryReports.js";
import { metricsTopic, parseDeviceTopic, readingSubscription, statusSubscription } from "./topics.js";
import { createIndexedTradesDue, type TradesDue } from "./tradesDue.js";

export type BridgeSettings = Pick<
  BridgeConfig,
  | "mqttClientId" | "topicRoot" | "mqttReconnectMinMs" | "mqttReconnectMaxMs" | "intervalSeconds" | "graceSeconds"
  | "maxClockSkewSeconds" | "retentionSeconds" | "allocation" | "plausibilityMarginPct" | "maxPayloadBytes"
  | "reportBatchSize" | "tickMs" | "retryMinMs" | "retryMaxMs" | "commandAckSeconds"
>;

export interface StartBridgeParameters {
  settings: BridgeSettings;
  mqttUrl: string;
  db: Kysely<BridgeDatabase>;
  client: PublicClient;
  oracle: LocalAccount;
  market: Address;
  registry: Address;
  /** First block to read registry events and our own DeliveryConfirmed from (the deployment block). */
  startBlock: bigint;
  /**
   * Where the trades to report come from: an indexer's tables for this chain (the node's and the
   * standalone bridge's own database), each trade only once it is `finalityDepth` blocks under
   * the indexer's head (tradesDue.ts).
   */
  indexer: { db: Kysely<IndexerDatabase>; finalityDepth: number };
  chainId: number;
  logger: Logger;
  /** Unix milliseconds; Date.now by default. */
  clock?: () => number;
  /** Run tick() every settings.tickMs (default true); tests call tick() themselves. */
  autoTick?: boolean;
  directory?: MeterDirectory;
}

export interface BridgeEvents {
  committed: [CommitSummary];
  /** The readings a group commit stored, with their values, after the commit (MQTT and REST alike). */
  readings: [CommittedReading[]];
  commitFailed: [Error];
  decided: [DecidedWindow[]];
  reported: [ReportResult[]];
  commandAck: [CommandAck];
  /** Every message on a status topic, with the acknowledgement it carried (if any). */
  deviceStatus: [{ topic: string; ack: CommandAck | undefined }];
  mqttConnected: [{ sessionPresent: boolean }];
  mqttDisconnected: [];
  tickFailed: [{ step: string; error: Error }];
}

export interface Bridge {
  events: EventEmitter<BridgeEvents>;
  metrics(): BridgeMetrics;
  mqtt: MqttLink;
  directory: MeterDirectory;
  /** First level of every device topic (`energy-cloud` in the spec). */
  topicRoot: string;
  /** Length of the delivery interval an interval reading covers (seconds). */
  intervalSeconds: number;
  /** Waits for the MQTT subscription to be in place. */
  ready: Promise<void>;
  /** One round of the periodic work; resolves when it is done. */
  tick(): Promise<void>;
  /** Commits every reading received so far. */
  flushReadings(): Promise<void>;
  sendCommand(device: DeviceAddress, command: DeviceCommand): Promise<SentCommand>;
  /**
   * Runs a reading that did not come over MQTT (`topic` + `payload` exactly as a meter would
   * publish them) through the same validation and storage, and resolves once it is committed
   * or dead-lettered, with the verdict.
   */
  submitReading(topic: string, payload: Uint8Array, options?: IngestOptions): Promise<ReadingVerdict>;
  close(): Promise<void>;
}

export async function startBridge(p: StartBridgeParameters): Promise<Bridge> {
  const { settings, db, client, logger } = p;
  const clock = p.clock ?? Date.now;
  const metrics = createMetrics();
  const events = new EventEmitter<BridgeEvents>();
  const directory = p.directory ?? createRegistryMeterDirectory({ client, registry: p.registry, fromBlock: p.startBlock });
  const tradesDue: TradesDue = createIndexedTradesDue({ db: p.indexer.db, chainId: p.chainId, finalityDepth: p.indexer.finalityDepth, client, logger });
  const decided = new Set<bigint>();
  let connectedSinceMs: number | undefined;
  let mqttLink: MqttLink | undefined;
  const publish = (topic: string, payload: string, retain = false) => {
    if (!mqttLink) return Promise.resolve();
    return mqttLink.publish(topic, payload, { retain }).catch((err: Error) => logger.warn({ msg: "MQTT publish failed", topic, err: err.message }));
  };

  // The registry first: readings from meters it does not know are rejected.
  try {
    await directory.refresh();
  } catch (err) {
    logger.warn({ msg: "prosumer registry not readable yet; will retry", err: (err as Error).message });
  }

  const ingest = createReadingIngest({
    db, directory, clock, metrics, logger,
    rules: {
      topicRoot: settings.topicRoot, maxPayloadBytes: settings.maxPayloadBytes, intervalSeconds: settings.intervalSeconds,
      graceSeconds: settings.graceSeconds, maxClockSkewSeconds: settings.maxClockSkewSeconds, retentionSeconds: settings.retentionSeconds,
      plausibilityMarginPct: settings.plausibilityMarginPct,
    },
    publish: (topic, payload) => void publish(topic, payload),
    onCommitted: (summary) => events.emit("committed", summary),
    onCommitFailed: (error) => events.emit("commitFailed", error),
    onReadings: (readings) => events.emit("readings", readings),
  });
  await ingest.load();

  const commandDeps: CommandDependencies = {
    db, clock, metrics, logger, topicRoot: settings.topicRoot, ackSeconds: settings.commandAckSeconds,
    publish: (topic, payload) => mqttLink!.publish(topic, payload),
  };

  mqttLink = connectMqtt({
    url: p.mqttUrl,
    clientId: settings.mqttClientId,
    subscriptions: [readingSubscription(settings.topicRoot), statusSubscription(settings.topicRoot)],
    reconnectMinMs: settings.mqttReconnectMinMs,
    reconnectMaxMs: settings.mqttReconnectMaxMs,
    logger,
    onConnect: (info) => {
      connectedSinceMs ??= clock();
      metrics.mqttConnects++;
      events.emit("mqttConnected", info);
    },
    onDisconnect: () => {
      connectedSinceMs = undefined;
      metrics.mqttDisconnects++;
      events.emit("mqttDisconnected");
    },
    onMessage: (topic, payload) => {
      if (topic.endsWith("/status") && parseDeviceTopic(settings.topicRoot, topic)?.metric === "status") {
        metrics.statusMessages++;
        return (async () => {
          const ack = await recordCommandStatus(commandDeps, topic, payload);
          if (ack) events.emit("commandAck", ack);
          events.emit("deviceStatus", { topic, ack });
          return { ackAfter: ingest.nextCommit() };
        })();
      }
      const outcome = ingest.handleMessage(topic, payload);
      return outcome instanceof Promise ? outcome.then((o) => ({ ackAfter: o.committed })) : { ackAfter: outcome.committed };
    },
  });

  let ticking: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let sendFailures = 0;
  let nextSendAtMs = 0;

  async function step(name: string, fn: () => Promise<void>) {
    try {
      await fn();
    } catch (err) {
      metrics.chainErrors += name === "commands" ? 0 : 1;
      logger.warn({ msg: `bridge ${name} step failed; retrying next tick`, err: (err as Error).message });
      events.emit("tickFailed", { step: name, error: err as Error });
    }
  }

  async function runTick() {
    await step("registry", () => directory.refresh());
    await step("trades", () => tradesDue.prefetch());
    await step("decide", async () => {
      const windows = await decideDueDeliveries({
        db, tradesDue, directory, clock, decided, metrics, logger, market: p.market, connectedSinceMs: () => connectedSinceMs,
        intervalSeconds: settings.intervalSeconds, graceSeconds: settings.graceSeconds, allocation: settings.allocation,
        flushReadings: () => ingest.flush(),
      });
      if (windows.length > 0) {
        metrics.confirmationsPending = await countUnsent(db);
        events.emit("decided", windows);
      }
    });
    if (clock() >= nextSendAtMs) {
      await step("send", async () => {
        try {
          const results = await sendDeliveryReports({
            db, client, account: p.oracle, market: p.market, chainId: p.chainId, fromBlock: p.startBlock, clock,
            batchSize: settings.reportBatchSize, retryMinMs: settings.retryMinMs, retryMaxMs: settings.retryMaxMs, metrics, logger,
          });
          sendFailures = 0;
          nextSendAtMs = 0;
          if (results.length > 0) {
            logger.info({ msg: "delivery reports on-chain", reported: results.length, pending: metrics.confirmationsPending });
            events.emit("reported", results);
          }
        } catch (err) {
          // The chain is down: back off as a whole, not only row by row.
          nextSendAtMs = clock() + retryDelayMs(sendFailures++, settings.retryMinMs, settings.retryMaxMs);
          throw err;
        }
      });
    }
    await step("commands", async () => {
      await expireUnacknowledgedCommands(commandDeps);
    });
    void publish(metricsTopic(settings.topicRoot, settings.mqttClientId), JSON.stringify(snapshotMetrics(metrics)), true);
  }

  function tick(): Promise<void> {
    ticking ??= runTick().finally(() => (ticking = undefined));
    return ticking;
  }

  function loop() {
    if (closed) return;
    timer = setTimeout(() => void tick().finally(loop), settings.tickMs);
  }
  if (p.autoTick ?? true) loop();

  return {
    events,
    metrics: () => snapshotMetrics(metrics),
    mqtt: mqttLink,
    directory,
    topicRoot: settings.topicRoot,
    intervalSeconds: settings.intervalSeconds,
    ready: mqttLink.ready,
    tick,
    flushReadings: () => ingest.flush(),
    sendCommand: (device, command) => sendDeviceCommand(commandDeps, device, command),
    submitReading: (topic, payload, options) => ingest.submit(topic, payload, options),
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await ticking;
      // Commit what arrived, then leave: PUBACKs of committed messages go out before the end.
      await ingest.close();
      await mqttLink!.close();
    },
  };
}
