// WebSocket GET /v1/energy/real-time: `{action: "subscribe" | "unsubscribe", channels: [...],
// token?}`. Every client message is answered: `subscribed`/`unsubscribed` with the channels, or
// an `error` naming the field and the rule. Bad messages never close the socket. The hub's
// per-socket limits (channels held, message size, messages a second) are answered with their
// own codes (realtime/socketGuard.ts); only a frame past the server's maxPayload, which it does
// not read at all, closes the socket (1009).
//
// Channels with a person's data need a token and follow the REST routes' owner rules
// (realtime/channelAccess.ts): a browser's WebSocket cannot send an Authorization header, so the
// token rides in the subscribe message (an Authorization header on the upgrade request works
// too, for other clients). A refused channel gets its own error frame naming it and the rule;
// the message's other channels are still subscribed. Messages of one socket are handled in the
// order they came, so answers keep that order even when a check has to wait (a resource lookup).
import type { FastifyInstance } from "fastify";
import type { Address } from "viem";
import { authorizeChannel, type ChannelAccessDeps } from "../realtime/channelAccess.js";
import { isChannel, MAX_BUFFERED_BYTES, type Hub } from "../realtime/hub.js";
import { guardSocket, limitFrame } from "../realtime/socketGuard.js";

const MAX_CHANNELS = 64;
/** As the Authorization header's bearer token (auth/authenticate.ts). */
const TOKEN = /^[A-Za-z0-9_-]{20,128}$/;

export async function realtimeRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;
  const node = app.node;
  // Read when used: the bridge and coordination are set on app.node by plugins registered later.
  const access: ChannelAccessDeps = {
    sessions: node.sessions,
    get meters() { return node.bridge?.directory; },
    resourceOwner: async (resourceId: string): Promise<Address | undefined> => (await node.coordination?.getResource(resourceId))?.owner,
  };

  app.get("/v1/energy/real-time", {
    websocket: true,
    schema: {
      tags: ["energy"],
      summary: "WebSocket: subscribe to trading.market.{zone} and orchestrator.actions (public); consumption.real-time, generation.solar, events.{resourceId}, vpp.{id}.status (with a token)",
      description: 'Send {"action": "subscribe", "channels": [...], "token": "<token from POST /v1/auth/login>"}. Readings channels deliver only the meter registered to the token\'s address (operators: all); events.{resourceId} only to its owner or an operator; vpp.{id}.status to any signed-in wallet.',
    },
  }, (socket, request) => {
    const error = (field: string, rule: string) => socket.send(JSON.stringify({ type: "error", code: "invalid_message", field, detail: `${field} ${rule}` }));
    // A token sent on the upgrade request (non-browser clients) is the default credential.
    const upgradeToken = request.account?.token;
    // Per-socket limits (the hub's): channels held, message size, messages a second.
    const guard = guardSocket(socket, hub.limits, request.log);

    async function handle(raw: Buffer) {
      // Queued before the socket closed: nothing to answer, nothing to subscribe.
      if (closed) return;
      let msg: unknown;
      try {
        msg = JSON.parse(raw.toString("utf8"));
      } catch {
        return error("message", "must be JSON");
      }
      const m = msg as { action?: unknown; channels?: unknown; token?: unknown };
      if (m === null || typeof m !== "object") return error("message", "must be an object");
      if (m.action !== "subscribe" && m.action !== "unsubscribe") return error("action", 'must be "subscribe" or "unsubscribe"');
      if (!Array.isArray(m.channels) || m.channels.length === 0 || m.channels.length > MAX_CHANNELS) return error("channels", `must be an array of 1 to ${MAX_CHANNELS} channel names`);
      for (let i = 0; i < m.channels.length; i++) {
        const c = m.channels[i];
        if (typeof c !== "string" || !isChannel(c)) {
          return error(`channels[${i}]`, "must be one of consumption.real-time, generation.solar, vpp.{id}.status, trading.market.{zone}, events.{resourceId}, orchestrator.actions");
        }
      }
      if (m.token !== undefined && (typeof m.token !== "string" || !TOKEN.test(m.token))) return error("token", "must be a token from POST /v1/auth/login");
      const channels = m.channels as string[];
      if (m.action === "unsubscribe") {
        hub.unsubscribe(socket, channels);
        socket.send(JSON.stringify({ type: "unsubscribed", channels }));
        return;
      }
      const holding = hub.channelsAfter(socket, channels);
      if (holding > hub.limits.maxChannelsPerSocket) {
        guard.violation("too_many_channels", `${holding} channels`);
        socket.send(limitFrame("too_many_channels", `channels would make ${holding} on this socket, at most ${hub.limits.maxChannelsPerSocket}: nothing was subscribed, unsubscribe some first`, { field: "channels", limit: hub.limits.maxChannelsPerSocket }));
        return;
      }
      const token = (m.token as string | undefined) ?? upgradeToken;
      const granted: string[] = [];
      for (let i = 0; i < channels.length; i++) {
        const channel = channels[i]!;
        const decision = await authorizeChannel(access, channel, token);
        // Closed while a check waited: subscribing now would keep a dead socket in the hub.
        if (closed) return;
        if (!decision.granted) {
          socket.send(JSON.stringify({ type: "error", code: decision.code, field: `channels[${i}]`, channel, detail: decision.detail }));
          continue;
        }
        hub.subscribe(socket, [channel], decision.grant);
        granted.push(channel);
      }
      if (granted.length > 0) socket.send(JSON.stringify({ type: "subscribed", channels: granted }));
    }

    let closed = false;
    let queue: Promise<void> = Promise.resolve();
    socket.on("message", (raw: Buffer) => {
      // A client that floods without reading its answers is dropped, as the hub drops a slow one.
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
        hub.remove(socket);
        socket.close(1013, "too slow: send buffer full");
        return;
      }
      // Over a limit: answered in its turn (answers keep the messages' order), never parsed.
      const refusal = guard.admit(raw);
      if (refusal) {
        queue = queue.then(() => {
          if (!closed) socket.send(refusal);
        });
        return;
      }
      queue = queue.then(() => handle(raw)).catch((err: unknown) => {
        request.log.warn({ msg: "websocket: message failed", err: (err as Error).message });
        error("message", "could not be handled: try again");
      });
    });
    socket.on("close", () => {
      closed = true;
      hub.remove(socket);
    });
  });
}
