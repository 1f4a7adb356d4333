// The bridge's MQTT client: a persistent session (clean: false, fixed client id) with QoS 1,
// reconnect with exponential backoff, and a fresh SUBSCRIBE on every connect (a broker that
// lost the session, like a restarted in-memory broker, gets the subscriptions back).
//
// PUBACK after commit: mqtt.js acknowledges a QoS 1 message as soon as its handler returns and
// handles one packet at a time, so waiting for the database in the handler would serialise every
// message behind a commit. Instead the handler returns at once with a promise for its commit,
// and the PUBACK is held until that promise settles (in arrival order, as MQTT requires). Until
// then the broker keeps the message for the session and redelivers it after a disconnect, so a
// crash between receipt and commit loses nothing; redeliveries are dropped as duplicates.
import mqtt, { type IClientOptions, type MqttClient, type Packet } from "mqtt";
import type { Logger } from "../lib/logger.js";
import { mqttUrlCredential, mqttUrlWithoutCredential } from "./brokerAccess.js";

export interface MessageOutcome {
  /** The PUBACK waits for this. */
  ackAfter: Promise<void>;
}

export interface ConnectMqttParameters {
  url: string;
  clientId: string;
  subscriptions: string[];
  /** Called once per message, one at a time, in arrival order. */
  onMessage: (topic: string, payload: Buffer) => MessageOutcome | Promise<MessageOutcome>;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  logger: Logger;
  onConnect?: (info: { sessionPresent: boolean }) => void;
  onDisconnect?: () => void;
  /** Extra mqtt.js options (credentials, TLS). */
  options?: IClientOptions;
}

export interface MqttLink {
  client: MqttClient;
  /** Resolves once the first connection (and its subscriptions) are up. */
  ready: Promise<void>;
  connected(): boolean;
  /** QoS 1 publish; queued by the client while disconnected. */
  publish(topic: string, payload: string | Buffer, options?: { retain?: boolean }): Promise<void>;
  close(): Promise<void>;
}

type SendPacket = (packet: Packet, cb?: (err?: Error) => void, cbStorePut?: () => void, noStore?: boolean) => void;

export function connectMqtt(p: ConnectMqttParameters): MqttLink {
  // The login from the URL's userinfo, decoded here: mqtt.js splits it at the last ':', which
  // would cut a password containing one.
  const credential = mqttUrlCredential(p.url);
  const client = mqtt.connect(mqttUrlWithoutCredential(p.url), {
    clientId: p.clientId,
    clean: false,
    protocolVersion: 4,
    reconnectPeriod: p.reconnectMinMs,
    connectTimeout: 10_000,
    // We subscribe ourselves on every connect; mqtt.js' own resubscribe would only repeat it.
    resubscribe: false,
    ...(credential ? { username: credential.username, password: credential.password } : {}),
    ...p.options,
  });
  let generation = 0;
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  const deferred = new Map<number, Promise<void>>();

  // Hold PUBACKs of messages whose commit is pending (see the module comment).
  const internal = client as unknown as { _sendPacket: SendPacket };
  const sendPacket = internal._sendPacket.bind(client);
  internal._sendPacket = (packet, cb, cbStorePut, noStore) => {
    const id = (packet as { messageId?: number }).messageId;
    const after = packet.cmd === "puback" && id !== undefined ? deferred.get(id) : undefined;
    if (!after) return sendPacket(packet, cb, cbStorePut, noStore);
    deferred.delete(id!);
    const gen = generation;
    cb?.();
    after.then(
      () => {
        // A PUBACK for an older connection would acknowledge the wrong message: the broker
        // redelivers that one instead and it is dropped as a duplicate.
        if (gen === generation && client.connected) sendPacket(packet);
      },
      (err: unknown) => p.logger.error({ msg: "message not committed; left unacknowledged for redelivery", err: (err as Error)?.message }),
    );
  };

  client.handleMessage = (packet, callback) => {
    const publish = packet as mqtt.IPublishPacket;
    const accept = (outcome: MessageOutcome) => {
      if (publish.qos > 0 && publish.messageId !== undefined) deferred.set(publish.messageId, outcome.ackAfter);
      callback();
    };
    const fail = (err: unknown) => {
      // A handler bug must not wedge the session on one message: log it and let it be acknowledged.
      p.logger.error({ msg: "message handler failed", topic: publish.topic, err: (err as Error)?.stack ?? String(err) });
      callback();
    };
    // Most messages are handled synchronously: no promise hop on the hot path.
    let outcome: MessageOutcome | Promise<MessageOutcome>;
    try {
      outcome = p.onMessage(publish.topic, publish.payload as Buffer);
    } catch (err) {
      fail(err);
      return;
    }
    if (outcome instanceof Promise) outcome.then(accept, fail);
    else accept(outcome);
  };

  client.on("connect", (connack) => {
    generation++;
    client.options.reconnectPeriod = p.reconnectMinMs;
    p.logger.info({ msg: "MQTT connected", url: redact(p.url), clientId: p.clientId, sessionPresent: connack.sessionPresent });
    client.subscribe(p.subscriptions, { qos: 1 }, (err) => {
      if (err) {
        p.logger.error({ msg: "MQTT subscribe failed", err: err.message });
        return;
      }
      p.onConnect?.({ sessionPresent: connack.sessionPresent });
      resolveReady();
    });
  });
  client.on("close", () => {
    generation++;
    deferred.clear();
    // Exponential backoff between reconnect attempts, reset by the next successful connect.
    client.options.reconnectPeriod = Math.min(p.reconnectMaxMs, Math.max(p.reconnectMinMs, (client.options.reconnectPeriod ?? p.reconnectMinMs) * 2));
    p.onDisconnect?.();
  });
  client.on("error", (err) => p.logger.warn({ msg: "MQTT error", url: redact(p.url), err: err.message }));
  client.on("offline", () => p.logger.warn({ msg: "MQTT offline; reconnecting", url: redact(p.url), inMs: client.options.reconnectPeriod }));

  return {
    client,
    ready,
    connected: () => client.connected,
    publish: (topic, payload, options) =>
      new Promise((resolve, reject) => client.publish(topic, payload, { qos: 1, retain: options?.retain ?? false }, (err) => (err ? reject(err) : resolve()))),
    close: () =>
      new Promise<void>((resolve) => {
        // A graceful end waits for in-flight publishes; with the broker gone that can be forever.
        const force = setTimeout(() => client.end(true, {}, () => resolve()), 2_000);
        client.end(false, {}, () => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, "//$1:***@");
}
