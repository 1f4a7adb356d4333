// Who may do what on the MQTT broker. One table of rights, read by both brokers: the embedded
// Aedes broker checks every CONNECT, PUBLISH and SUBSCRIBE against it (embeddedBroker.ts), and
// the Mosquitto ACL file is rendered from it (mosquittoConfig.ts), so the two cannot drift.
//
// Nobody is anonymous. A client is one of:
// - a device (a smart meter, battery, EV charger, ...), its username its device id: publishes
//   only under its own topics `{root}/{region}/{deviceType}/{deviceId}/{export|import|interval|status}`
//   and subscribes only to its own `{root}/+/{deviceType}/{deviceId}/command`. So a meter cannot
//   speak for another meter (the review's accomplice publishing export for a seller's meter),
//   nor read another device's commands;
// - the bridge: subscribes to every meter's readings and every device's status, publishes
//   commands, dead letters and its metrics;
// - a monitor, an operator's read-only tool (alerting, a dashboard): subscribes to dead letters
//   and the bridge's metrics. Dead letters carry rejected payloads of people's meters, so only
//   the bridge and monitors see them; nobody else reads another party's readings.
//
// The broker also ties a session to its credential: the client id is replaced by the username
// (Mosquitto: use_username_as_clientid), so no one can take over the bridge's persistent session
// (and the readings queued in it) by connecting with its client id.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readingSubscription, statusSubscription } from "./topics.js";

/** What a device may publish on its own topics; everything else it sends is refused. */
export const deviceMetrics = ["export", "import", "interval", "status"] as const;

/** The device type of an operator's read-only tool: it sees dead letters and metrics, publishes nothing. */
export const MONITOR = "monitor";

export type BrokerIdentity =
  | { role: "bridge"; username: string }
  | { role: "monitor"; username: string }
  | {
    role: "device";
    /** Equal to deviceId. */
    username: string;
    deviceType: string;
    deviceId: string;
    /** The one region it publishes under; null: any region (the bridge reads meters by id). */
    region: string | null;
  };

/** Topic filters a client may publish to and subscribe with. */
export interface BrokerRights {
  /** A published topic must match one of these. */
  publish: string[];
  /** A requested subscription must lie within one of these (never wider). */
  subscribe: string[];
}

/** Decides who presents a username and password: undefined refuses the connection. */
export type CheckBrokerCredential = (username: string, password: string) => Promise<BrokerIdentity | undefined>;

export interface BrokerCredential {
  username: string;
  password: string;
}

export function brokerRights(identity: BrokerIdentity, root: string): BrokerRights {
  switch (identity.role) {
    case "bridge":
      return {
        publish: [`${root}/+/+/+/command`, `${root}/dead-letter/#`, `${root}/bridge/+/metrics`],
        subscribe: [readingSubscription(root), statusSubscription(root)],
      };
    case "monitor":
      return { publish: [], subscribe: [`${root}/dead-letter/#`, `${root}/bridge/+/metrics`] };
    case "device": {
      const region = identity.region ?? "+";
      return {
        publish: deviceMetrics.map((m) => `${root}/${region}/${identity.deviceType}/${identity.deviceId}/${m}`),
        subscribe: [`${root}/+/${identity.deviceType}/${identity.deviceId}/command`],
      };
    }
  }
}

/** The MQTT match of a concrete `topic` against `filter` (`+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  // Wildcards never match topics of the broker itself ($SYS...): MQTT-4.7.2-1.
  if (topic.startsWith("$") && !filter.startsWith("$")) return false;
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** True when every topic `requested` can match is also matched by `allowed`. */
export function filterWithin(requested: string, allowed: string): boolean {
  if (requested.startsWith("$")) return false;
  const r = requested.split("/");
  const a = allowed.split("/");
  for (let i = 0; i < r.length; i++) {
    if (a[i] === "#") return true;
    if (a[i] === undefined || r[i] === "#") return false;
    if (r[i] === "+" ? a[i] !== "+" : a[i] !== "+" && a[i] !== r[i]) return false;
  }
  return r.length === a.length;
}

export function mayPublish(rights: BrokerRights, topic: string): boolean {
  return rights.publish.some((f) => topicMatches(f, topic));
}

export function maySubscribe(rights: BrokerRights, filter: string): boolean {
  return rights.subscribe.some((f) => filterWithin(filter, f));
}

/** The bridge's username on the embedded broker; no device may take it. */
export const EMBEDDED_BRIDGE_USERNAME = "bridge";

/**
 * A fresh credential for the bridge on the embedded broker, made at every start and kept in
 * memory only: the bridge is the one client that needs it, in the same process.
 */
export function newBridgeCredential(): BrokerCredential {
  return { username: EMBEDDED_BRIDGE_USERNAME, password: randomBytes(24).toString("base64url") };
}

/**
 * The bridge's own credential in front of the device check: its username is answered here
 * and never reaches `devices`, so a device registered under the same name cannot log in as it.
 */
export function withBridgeCredential(bridge: BrokerCredential, devices: CheckBrokerCredential): CheckBrokerCredential {
  const expected = digest(bridge.password);
  return async (username, password) => {
    if (username === bridge.username) return timingSafeEqual(digest(password), expected) ? { role: "bridge", username } : undefined;
    return devices(username, password);
  };
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/** The username and password in an MQTT URL's userinfo (`mqtt://bridge:secret@host:1883`), decoded. */
export function mqttUrlCredential(url: string): BrokerCredential | undefined {
  const u = new URL(url);
  if (!u.username) return undefined;
  return { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
}

/** `url` with `credential` as its userinfo (percent-encoded). */
export function mqttUrlWithCredential(url: string, credential: BrokerCredential): string {
  return mqttUrlWithoutCredential(url).replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)/, `$1${encodeURIComponent(credential.username)}:${encodeURIComponent(credential.password)}@`);
}

/** `url` without userinfo, otherwise exactly as given: safe to show and log. */
export function mqttUrlWithoutCredential(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^@/?#]*@/, "$1");
}
