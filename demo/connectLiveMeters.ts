// The live homes' smart meters on the node's broker. Each meter logs in with its own device
// credential (the broker lets a meter publish only under its own topics) and signs every
// interval reading with its Ed25519 key, the one the registry holds for it, or the bridge does
// not take the reading as delivery evidence. A node without device credentials (an open
// broker) gets one shared connection, as the demo's head-end does; a registry without meter
// keys gets unsigned readings.
import mqtt from "mqtt";
import { signReading } from "../bridge/readingSignature.js";
import { BaseError } from "../lib/errors.js";
import { mapConcurrent } from "./apiClient.js";
import type { LiveHome } from "./liveCommunity.js";
import type { MeterReadings } from "./meterReadings.js";
import { connectMeterPublisher, type MeterPublisher } from "./publishReadings.js";

export interface MeterCredential {
  username: string;
  password: string;
}

export interface ConnectLiveMetersParameters {
  url: string;
  topicRoot: string;
  /** The topic level between root and device type; a credential may be bound to one. */
  region: string;
  homes: readonly LiveHome[];
  /** credentials[i] is homes[i]'s meter's; none at all: the broker is open. */
  credentials: readonly (MeterCredential | undefined)[];
  /** Sign readings with each home's meter key (the registry holds the keys). */
  sign: boolean;
  clientIdPrefix: string;
}

export interface LiveMeters {
  /** Publishes each home's interval reading (signed when asked); resolves once the broker acknowledged all. */
  publish(readings: readonly MeterReadings[]): Promise<number>;
  close(): Promise<void>;
}

export class MeterBrokerError extends BaseError {
  override name = "MeterBrokerError";
}

const INTERVAL_ONLY = ["interval"] as const;

export async function connectLiveMeters(p: ConnectLiveMetersParameters): Promise<LiveMeters> {
  const withLogin = (c: MeterCredential | undefined) => {
    if (!c) return p.url;
    const u = new URL(p.url);
    u.username = encodeURIComponent(c.username);
    u.password = encodeURIComponent(c.password);
    return u.toString();
  };
  const perMeter = p.credentials.some((c) => c !== undefined);
  await probeBroker(withLogin(p.credentials[0]), p.url, `${p.clientIdPrefix}-probe`);
  const publishers = new Map<string, MeterPublisher>();
  const connected: MeterPublisher[] = [];
  try {
    if (perMeter) {
      await mapConcurrent(p.homes, 16, async (h, i) => {
        const publisher = await connectMeterPublisher({ url: withLogin(p.credentials[i]), topicRoot: p.topicRoot, region: p.region, clientId: h.meterId });
        connected.push(publisher);
        publishers.set(h.meterId, publisher);
      });
    } else {
      const shared = await connectMeterPublisher({ url: p.url, topicRoot: p.topicRoot, region: p.region, clientId: p.clientIdPrefix });
      connected.push(shared);
      for (const h of p.homes) publishers.set(h.meterId, shared);
    }
  } catch (err) {
    await Promise.all(connected.map((c) => c.close().catch(() => undefined)));
    throw new MeterBrokerError(`the meters could not log in to ${p.url}: ${(err as Error).message}`, { code: "mqtt_refused", cause: err });
  }
  const keys = new Map(p.homes.map((h) => [h.meterId, h.meterKey.privateKey]));
  return {
    async publish(readings) {
      const sent = await Promise.all(readings.map((r) => {
        const interval = p.sign ? signReading({ meterId: r.meterId, metric: "interval", payload: { ...r.interval }, privateKey: keys.get(r.meterId)! }) : r.interval;
        return publishers.get(r.meterId)!.publish([{ ...r, interval }], INTERVAL_ONLY);
      }));
      return sent.reduce((a, b) => a + b, 0);
    },
    async close() {
      await Promise.all(connected.map((c) => c.close().catch(() => undefined)));
    },
  };
}

/** Fails fast on a broker that is not there or refuses the login (the MQTT client itself would retry for ever). */
async function probeBroker(url: string, shownUrl: string, clientId: string): Promise<void> {
  try {
    const probe = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5_000, clientId }, false);
    await probe.endAsync();
  } catch (err) {
    throw new MeterBrokerError(`no MQTT broker takes the meters at ${shownUrl} (${(err as Error).message}): pass the bridge's broker with --mqtt`, { code: "mqtt_unreachable", cause: err });
  }
}
