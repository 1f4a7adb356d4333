// The homes' smart meters on MQTT: after each interval every meter publishes its 15-minute
// interval reading and its export/import registers (QoS 1, as the bridge expects) on
// `{root}/{region}/smart-meter/{meterId}/{interval|export|import}`. One client connection
// carries the whole community's meters, as a head-end system or a data hub would.
import mqtt, { type MqttClient } from "mqtt";
import { deviceTopic, SMART_METER } from "../bridge/topics.js";
import type { MeterReadings } from "./meterReadings.js";

export interface MeterPublisher {
  /** Publishes the readings; resolves when the broker has acknowledged every message (PUBACK). */
  publish(readings: readonly MeterReadings[], metrics: readonly ("interval" | "export" | "import")[]): Promise<number>;
  close(): Promise<void>;
}

export async function connectMeterPublisher({ url, topicRoot, region, clientId }: { url: string; topicRoot: string; region: string; clientId: string }): Promise<MeterPublisher> {
  const client: MqttClient = await mqtt.connectAsync(url, { clientId, clean: true, reconnectPeriod: 500, connectTimeout: 10_000 });
  return {
    async publish(readings, metrics) {
      const sends: Promise<unknown>[] = [];
      for (const r of readings) {
        for (const metric of metrics) {
          const topic = deviceTopic(topicRoot, { region, deviceType: SMART_METER, deviceId: r.meterId, metric });
          sends.push(client.publishAsync(topic, JSON.stringify(r[metric]), { qos: 1 }));
        }
      }
      await Promise.all(sends);
      return sends.length;
    },
    close: () => client.endAsync(),
  };
}
