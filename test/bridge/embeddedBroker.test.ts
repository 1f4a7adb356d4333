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

  it("refuses a taken port it was asked for (MQTT_PORT), naming MQTT_URL and MQTT_PORT as the ways out", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      let error: unknown;
      try {
        await startEmbeddedBroker({ port, portExplicit: true });
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(BrokerPortInUseError);
      expect((error as Error).message).to.match(new RegExp(`127\\.0\\.0\\.1:${port} is already in use.*MQTT_URL=mqtt://127\\.0\\.0\\.1:${port}.*MQTT_PORT`));
      expect((error as BrokerPortInUseError).field).to.equal("MQTT_PORT");
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it("moves a default port that is taken to the next free one and says where it came from", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const broker = await startEmbeddedBroker({ port, portExplicit: false });
      try {
        expect(broker.port).to.not.equal(port);
        expect(broker.movedFrom).to.equal(port);
        expect(broker.url).to.equal(`mqtt://127.0.0.1:${broker.port}`);
        // A real broker on the new port: a client connects and round-trips a message.
        const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
        await client.subscribeAsync("t/x");
        const got = new Promise<string>((r) => client.once("message", (_t, p) => r(p.toString())));
        await client.publishAsync("t/x", "moved");
        expect(await got).to.equal("moved");
        await client.endAsync();
      } finally {
        await broker.close();
      }
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it("on the default port 1883 with a Mosquitto already there: moves on unless MQTT_PORT asked for 1883", async function () {
    if (!(await portInUse(1883))) this.skip();
    const err = await startEmbeddedBroker({ portExplicit: true }).then(
      async (b) => {
        await b.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(BrokerPortInUseError);
    expect((err as Error).message).to.contain("is a Mosquitto running there?");
    const moved = await startEmbeddedBroker({ portExplicit: false });
    try {
      expect(moved.movedFrom).to.equal(1883);
      expect(moved.port).to.be.greaterThan(1883);
    } finally {
      await moved.close();
    }
  });
});
