// The embedded MQTT broker (Aedes, in-process) used when no MQTT_URL is set, so a fresh machine
// runs the bridge with nothing installed. It listens on plain TCP like Mosquitto, so real
// devices and mosquitto_pub can use it. Sessions and queued QoS 1 messages live in memory: they
// survive a broker restart inside this process (pass `persistence` back in), not a process exit.
import net from "node:net";
import { Aedes } from "aedes";
import { listenOnPort } from "../lib/listenOnPort.js";
import { BrokerPortInUseError } from "./errors.js";

export interface EmbeddedBroker {
  url: string;
  host: string;
  port: number;
  /** The default port it wanted, when that was taken and it moved. */
  movedFrom?: number;
  /** Sessions and queued messages; hand it to the next broker to keep them across a restart. */
  persistence: unknown;
  close(): Promise<void>;
}

export interface StartEmbeddedBrokerParameters {
  host?: string;
  port?: number;
  /** The port was asked for (MQTT_PORT): a taken one is an error instead of moving on. Default true. */
  portExplicit?: boolean;
  persistence?: unknown;
}

export async function startEmbeddedBroker({ host = "127.0.0.1", port = 1883, portExplicit = true, persistence }: StartEmbeddedBrokerParameters = {}): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker(persistence ? { persistence } : {});
  const server = net.createServer(broker.handle);
  const sockets = new Set<net.Socket>();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  let bound: { port: number; movedFrom?: number };
  try {
    bound = await listenOnPort(
      { port, explicit: portExplicit },
      (p) =>
        new Promise<{ listening: net.Server; port: number }>((resolve, reject) => {
          server.once("error", reject);
          server.listen(p, host, () => {
            server.off("error", reject);
            resolve({ listening: server, port: (server.address() as net.AddressInfo).port });
          });
        }),
      (cause) => new BrokerPortInUseError({ host, port, cause }),
    );
  } catch (err) {
    await new Promise<void>((r) => broker.close(() => r()));
    throw err;
  }
  return {
    url: `mqtt://${host}:${bound.port}`,
    host,
    port: bound.port,
    ...(bound.movedFrom !== undefined ? { movedFrom: bound.movedFrom } : {}),
    persistence: (broker as unknown as { persistence: unknown }).persistence,
    close: async () => {
      await new Promise<void>((r) => broker.close(() => r()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
