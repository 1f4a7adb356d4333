// MQTT topic names of the spec: `{root}/{region}/{deviceType}/{deviceId}/{metric}`, with
// `energy-cloud` as the root. Devices publish readings and `status`; the bridge publishes
// `command`, dead letters under `{root}/dead-letter/...` (one level deeper, so they never
// match the reading subscription) and its metrics under `{root}/bridge/{clientId}/metrics`.

export interface DeviceTopic {
  region: string;
  deviceType: string;
  deviceId: string;
  metric: string;
}

/** The device type whose readings settle trades. */
export const SMART_METER = "smart-meter";

/** Metrics of a smart meter the bridge reads. */
export const readingMetrics = ["export", "import", "interval"] as const;
export type ReadingMetric = (typeof readingMetrics)[number];

export function isReadingMetric(metric: string): metric is ReadingMetric {
  return (readingMetrics as readonly string[]).includes(metric);
}

/** Every smart meter's every metric; non-reading metrics are sorted out after parsing. */
export function readingSubscription(root: string): string {
  return `${root}/+/${SMART_METER}/+/+`;
}

/** Device acknowledgements of commands, from any device type. */
export function statusSubscription(root: string): string {
  return `${root}/+/+/+/status`;
}

/** Splits a device topic; undefined when it does not have the five levels under `root`. */
export function parseDeviceTopic(root: string, topic: string): DeviceTopic | undefined {
  const parts = topic.split("/");
  if (parts.length !== 5 || parts[0] !== root) return undefined;
  const [, region, deviceType, deviceId, metric] = parts as [string, string, string, string, string];
  if (!region || !deviceType || !deviceId || !metric) return undefined;
  return { region, deviceType, deviceId, metric };
}

export function deviceTopic(root: string, t: DeviceTopic): string {
  return `${root}/${t.region}/${t.deviceType}/${t.deviceId}/${t.metric}`;
}

export function commandTopic(root: string, t: Omit<DeviceTopic, "metric">): string {
  return deviceTopic(root, { ...t, metric: "command" });
}

/** `{root}/dead-letter/{region}/{deviceType}/{deviceId}/{metric}`: the original topic, one level down. */
export function deadLetterTopic(root: string, originalTopic: string): string {
  const rest = originalTopic.startsWith(`${root}/`) ? originalTopic.slice(root.length + 1) : originalTopic;
  return `${root}/dead-letter/${rest}`;
}

export function metricsTopic(root: string, clientId: string): string {
  return `${root}/bridge/${clientId}/metrics`;
}
