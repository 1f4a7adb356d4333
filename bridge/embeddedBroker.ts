// The embedded MQTT broker (Aedes, in-process) used when no MQTT_URL is set, so a fresh machine
// runs the bridge with nothing installed. It listens on plain TCP like Mosquitto, so real
// devices and mosquitto_pub can use it. Sessions and queued QoS 1 messages live in memory: they
// survive a broker restart inside this process (pass `persistence` back in), not a process exit.
//
// With `access` (the node always passes it) every client must log in and may only use its own
// topics (brokerAccess.ts); the credential check is injected, so this package knows nothing of
// where credentials are stored. Without `access` the broker is open to anyone: only for the
// bridge's own tests and a lab bridge on a loopback port.
import net from "node:net";
import { Aedes, type Client } from "aedes";
import { listenOnPort } from "../lib/listenOnPort.js";
import { brokerRights, mayPublish, maySubscribe, type BrokerIdentity, type BrokerRights, type CheckBrokerCredential } from "./brokerAccess.js";
import { BrokerPortInUseError } from "./errors.js";

export interface EmbeddedBroker {
  url: string;
  host: string;
  port: number;
  /** The default port it wanted, when that was taken and it moved. */
  movedFrom?: number;
  /** Sessions and queued messages; hand it to the next broker to keep them across a restart. */
  persistence: unknown;
  /**
   * Closes every session logged in as `username` (a revoked or rotated credential) and refuses
   * a login of it whose check was already under way. Returns how many sessions it closed.
   */
  disconnect(username: string): number;
  close(): Promise<void>;
}

/** A refused connect, publish or subscribe, for logs and tests. */
export interface BrokerRefusal {
  action: "connect" | "publish" | "subscribe";
  /** As presented; undefined for an anonymous connect. */
  username: string | undefined;
  clientId: string;
  topic?: string;
  reason: string;
}

export interface EmbeddedBrokerAccess {
  /** First level of every topic (BRIDGE_TOPIC_ROOT): rights are granted under it only. */
  topicRoot: string;
  check: CheckBrokerCredential;
  onRefused?: (refusal: BrokerRefusal) => void;
}

export interface StartEmbeddedBrokerParameters {
  host?: string;
  port?: number;
  /** The port was asked for (MQTT_PORT): a taken one is an error instead of moving on. Default true. */
  portExplicit?: boolean;
  persistence?: unknown;
  /** Log-in and topic rights; absent: an open broker (tests, a lab bridge). */
  access?: EmbeddedBrokerAccess;
}

export async function startEmbeddedBroker({ host = "127.0.0.1", port = 1883, portExplicit = true, persistence, access }: StartEmbeddedBrokerParameters = {}): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker(persistence ? { persistence } : {});
  const guard = access ? guardBroker(broker, access) : undefined;
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
    disconnect: (username) => guard?.disconnect(username) ?? 0,
    close: async () => {
      await new Promise<void>((r) => broker.close(() => r()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface Session {
  identity: BrokerIdentity;
  rights: BrokerRights;
}

type AuthError = Error & { returnCode: number };

function authError(message: string, returnCode: 3 | 4 | 5): AuthError {
  return Object.assign(new Error(message), { returnCode });
}

/** Installs the log-in and topic checks on `broker`; returns the revocation hook. */
function guardBroker(broker: Aedes, access: EmbeddedBrokerAccess) {
  const sessions = new WeakMap<Client, Session>();
  /** Logged-in clients by username, from the login on (before Aedes lists them as connected). */
  const byUsername = new Map<string, Set<Client>>();
  const forget = (client: Client) => {
    const username = sessions.get(client)?.identity.username;
    const set = username === undefined ? undefined : byUsername.get(username);
    set?.delete(client);
    if (set?.size === 0) byUsername.delete(username!);
  };
  broker.on("clientDisconnect", forget);
  broker.on("clientError", (client) => {
    if (client.closed) forget(client);
  });
  /** Bumped by disconnect(username): a check that started before it must not let the login through. */
  const revocations = new Map<string, number>();
  const refuse = (r: BrokerRefusal) => access.onRefused?.(r);

  broker.authenticate = (client, username, password, done) => {
    const clientId = client.id;
    if (!username || password === undefined) {
      refuse({ action: "connect", username, clientId, reason: "anonymous" });
      return done(authError("not authorized: this broker takes no anonymous clients", 5), false);
    }
    const epoch = revocations.get(username) ?? 0;
    access.check(username, Buffer.from(password).toString("utf8")).then(
      (identity) => {
        if (!identity || identity.username !== username || (revocations.get(username) ?? 0) !== epoch) {
          refuse({ action: "connect", username, clientId, reason: identity ? "revoked while logging in" : "bad username or password" });
          return done(authError("bad user name or password", 4), false);
        }
        // The session belongs to the credential, not to a client id anyone may present: a
        // device choosing the bridge's client id would otherwise take over its session and the
        // readings queued in it (Mosquitto: use_username_as_clientid).
        (client as { id: string }).id = username;
        sessions.set(client, { identity, rights: brokerRights(identity, access.topicRoot) });
        let set = byUsername.get(username);
        if (!set) byUsername.set(username, (set = new Set()));
        set.add(client);
        done(null, true);
      },
      (err: unknown) => {
        refuse({ action: "connect", username, clientId, reason: `credential check failed: ${(err as Error)?.message}` });
        done(authError("server unavailable", 3), false);
      },
    );
  };

  broker.authorizePublish = (client, packet, done) => {
    // client is null only for a will left by a client of another broker instance: none here.
    const session = client ? sessions.get(client) : undefined;
    if (session && mayPublish(session.rights, packet.topic)) return done(null);
    refuse({ action: "publish", username: session?.identity.username, clientId: client?.id ?? "", topic: packet.topic, reason: "not among its topics" });
    // Aedes closes the publisher's connection and drops the message; nobody receives it.
    done(new Error(`not authorized to publish to ${packet.topic}`));
  };

  broker.authorizeSubscribe = (client, subscription, done) => {
    const session = sessions.get(client);
    if (session && maySubscribe(session.rights, subscription.topic)) return done(null, subscription);
    refuse({ action: "subscribe", username: session?.identity.username, clientId: client.id, topic: subscription.topic, reason: "not among its topics" });
    // SUBACK 0x80 for this filter; the connection stays.
    done(null, null);
  };

  return {
    disconnect(username: string): number {
      revocations.set(username, (revocations.get(username) ?? 0) + 1);
      let closed = 0;
      for (const client of byUsername.get(username) ?? []) {
        sessions.delete(client);
        if (client.closed) continue;
        client.close();
        closed++;
      }
      byUsername.delete(username);
      return closed;
    },
  };
}
