// The embedded broker: serves MQTT on TCP, and a taken port stops it with the ways out named.
import net from "node:net";
import { expect } from "chai";
import mqtt from "mqtt";
import { startEmbeddedBroker } from "../../bridge/embeddedBroker.js";
import { BrokerPortInUseError } from "../../bridge/errors.js";

async function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

describe("embedded broker", () => {
  it("passes QoS 1 messages between clients on an ephemeral port", async () => {
    const broker = await startEmbeddedBroker({ port: 0 });
    try {
      const sub = await mqtt.connectAsync(broker.url);
      const pub = await mqtt.connectAsync(broker.url);
      await sub.subscribeAsync("energy-cloud/+/smart-meter/+/export", { qos: 1 });
      const got = new Promise<string>((r) => sub.once("message", (t, p) => r(`${t} ${p.toString()}`)));
      await pub.publishAsync("energy-cloud/wbg/smart-meter/SM-001/export", "{}", { qos: 1 });
      expect(await got).to.equal("energy-cloud/wbg/smart-meter/SM-001/export {}");
      await Promise.all([sub.endAsync(), pub.endAsync()]);
    } finally {
      await broker.close();
    }
  });

  it("refuses a taken port, naming MQTT_URL and BRIDGE_MQTT_PORT as the ways out", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      let error: unknown;
      try {
        await startEmbeddedBroker({ port });
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(BrokerPortInUseError);
      expect((error as Error).message).to.match(new RegExp(`127\\.0\\.0\\.1:${port} is already in use.*MQTT_URL=mqtt://127\\.0\\.0\\.1:${port}.*BRIDGE_MQTT_PORT`));
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it("says so on the default port 1883 when a Mosquitto already listens there", async function () {
    if (!(await portInUse(1883))) this.skip();
    const err = await startEmbeddedBroker().then(
      async (b) => {
        await b.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(BrokerPortInUseError);
    expect((err as Error).message).to.contain("is a Mosquitto running there?");
  });
});
