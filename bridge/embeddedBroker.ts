// The embedded MQTT broker (Aedes, in-process) used when no MQTT_URL is set, so a fresh machine
// runs the bridge with nothing installed. It listens on plain TCP like Mosquitto, so real
// devices and mosquitto_pub can use it. Sessions and queued QoS 1 messages live in memory: they
// survive a broker restart inside this process (pass `persistence` back in), not a process exit.
import net from "node:net";
import { Aedes } from "aedes";
import { BrokerPortInUseError } from "./errors.js";

export interface EmbeddedBroker {
  url: string;
  host: string;
  port: number;
  /** Sessions and queued messages; hand it to the next broker to keep them across a restart. */
  persistence: unknown;
  close(): Promise<void>;
}

export async function startEmbeddedBroker({ host = "127.0.0.1", port = 1883, persistence }: { host?: string; port?: number; persistence?: unknown } = {}): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker(persistence ? { persistence } : {});
  const server = net.createServer(broker.handle);
  const sockets = new Set<net.Socket>();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((r) => broker.close(() => r()));
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") throw new BrokerPortInUseError({ host, port, cause: err });
    throw err;
  }
  const actualPort = (server.address() as net.AddressInfo).port;
  return {
    url: `mqtt://${host}:${actualPort}`,
    host,
    port: actualPort,
    persistence: (broker as unknown as { persistence: unknown }).persistence,
    close: async () => {
      await new Promise<void>((r) => broker.close(() => r()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
