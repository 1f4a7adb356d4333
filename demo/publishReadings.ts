// The homes' smart meters on MQTT: after each interval every meter publishes its 15-minute
// interval reading and its export/import registers (QoS 1, as the bridge expects) on
// `{root}/{region}/smart-meter/{meterId}/{interval|export|import}`. One client connection
// carries the whole community's meters, as a head-end system or a data hub would, unless each
// meter has its own broker credential. Every energy reading is signed by its meter's key (the
// bridge settles on nothing else), so the connection carrying it need not be trusted.
import mqtt, { type MqttClient } from "mqtt";
import { signReading, type MeterPrivateKey } from "../bridge/readingSignature.js";
import { deviceTopic, SMART_METER } from "../bridge/topics.js";
import type { MeterReadings } from "./meterReadings.js";

export interface MeterPublisher {
  /** Publishes the readings; resolves when the broker has acknowledged every message (PUBACK). */
  publish(readings: readonly MeterReadings[], metrics: readonly ("interval" | "export" | "import")[]): Promise<number>;
  close(): Promise<void>;
}

export interface ConnectMeterPublisherParameters {
  /** The broker; a device credential goes in the URL's userinfo (`mqtt://user:pass@host:port`). */
  url: string;
  topicRoot: string;
  region: string;
  clientId: string;
  /** Each meter's private signing key by meter id; absent: payloads go as given (the caller signed them). */
  keys?: ReadonlyMap<string, MeterPrivateKey>;
}

export async function connectMeterPublisher({ url, topicRoot, region, clientId, keys }: ConnectMeterPublisherParameters): Promise<MeterPublisher> {
  const client: MqttClient = await mqtt.connectAsync(url, { clientId, clean: true, reconnectPeriod: 500, connectTimeout: 10_000 });
  return {
    async publish(readings, metrics) {
      const sends: Promise<unknown>[] = [];
      for (const r of readings) {
        for (const metric of metrics) {
          const topic = deviceTopic(topicRoot, { region, deviceType: SMART_METER, deviceId: r.meterId, metric });
          let payload: unknown = r[metric];
          if (keys) {
            const privateKey = keys.get(r.meterId);
            if (!privateKey) throw new Error(`meter ${r.meterId} has no signing key`);
            payload = signReading({ meterId: r.meterId, metric, payload: r[metric] as unknown as Record<string, unknown>, privateKey });
          }
          sends.push(client.publishAsync(topic, JSON.stringify(payload), { qos: 1 }));
        }
      }
      await Promise.all(sends);
      return sends.length;
    },
    close: () => client.endAsync(),
  };
}

export interface MeterLogin {
  username: string;
  password: string;
}

/**
 * One broker connection per meter, each logged in with that meter's own device credential (the
 * node's broker lets a device publish only under its own id), behind one publisher.
 */
export async function connectMeterPublishers(
  p: Omit<ConnectMeterPublisherParameters, "clientId"> & { logins: ReadonlyMap<string, MeterLogin> },
): Promise<MeterPublisher> {
  const publishers = new Map<string, MeterPublisher>();
  const entries = [...p.logins];
  try {
    // A few logins at a time: each costs the broker a password hash.
    for (let i = 0; i < entries.length; i += 32) {
      await Promise.all(entries.slice(i, i + 32).map(async ([meterId, login]) => {
        const url = new URL(p.url);
        url.username = encodeURIComponent(login.username);
        url.password = encodeURIComponent(login.password);
        publishers.set(meterId, await connectMeterPublisher({ ...p, url: url.toString(), clientId: login.username }));
      }));
    }
  } catch (err) {
    await Promise.all([...publishers.values()].map((m) => m.close().catch(() => undefined)));
    throw err;
  }
  return {
    async publish(readings, metrics) {
      const sent = await Promise.all(readings.map((r) => {
        const publisher = publishers.get(r.meterId);
        if (!publisher) throw new Error(`meter ${r.meterId} has no broker login`);
        return publisher.publish([r], metrics);
      }));
      return sent.reduce((a, b) => a + b, 0);
    },
    close: async () => {
      await Promise.all([...publishers.values()].map((m) => m.close()));
    },
  };
}
