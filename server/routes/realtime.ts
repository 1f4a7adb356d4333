// WebSocket GET /v1/energy/real-time: `{action: "subscribe" | "unsubscribe", channels: [...]}`.
// Every client message is answered: `subscribed`/`unsubscribed` with the channels, or an
// `error` naming the field and the rule. Bad messages never close the socket.
import type { FastifyInstance } from "fastify";
import { isChannel, type Hub } from "../realtime/hub.js";

const MAX_CHANNELS = 64;

export async function realtimeRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;
  app.get("/v1/energy/real-time", {
    websocket: true,
    schema: { tags: ["energy"], summary: "WebSocket: subscribe to consumption.real-time, generation.solar, vpp.{id}.status, trading.market.{zone}, events.{resourceId}" },
  }, (socket) => {
    const error = (field: string, rule: string) => socket.send(JSON.stringify({ type: "error", code: "invalid_message", field, detail: `${field} ${rule}` }));
    socket.on("message", (raw: Buffer) => {
      if (raw.length > 16_384) return error("message", "must be at most 16 KiB");
      let msg: unknown;
      try {
        msg = JSON.parse(raw.toString("utf8"));
      } catch {
        return error("message", "must be JSON");
      }
      const m = msg as { action?: unknown; channels?: unknown };
      if (m === null || typeof m !== "object") return error("message", "must be an object");
      if (m.action !== "subscribe" && m.action !== "unsubscribe") return error("action", 'must be "subscribe" or "unsubscribe"');
      if (!Array.isArray(m.channels) || m.channels.length === 0 || m.channels.length > MAX_CHANNELS) return error("channels", `must be an array of 1 to ${MAX_CHANNELS} channel names`);
      for (let i = 0; i < m.channels.length; i++) {
        const c = m.channels[i];
        if (typeof c !== "string" || !isChannel(c)) {
          return error(`channels[${i}]`, "must be one of consumption.real-time, generation.solar, vpp.{id}.status, trading.market.{zone}, events.{resourceId}");
        }
      }
      const channels = m.channels as string[];
      if (m.action === "subscribe") hub.subscribe(socket, channels);
      else hub.unsubscribe(socket, channels);
      socket.send(JSON.stringify({ type: m.action === "subscribe" ? "subscribed" : "unsubscribed", channels }));
    });
    socket.on("close", () => hub.remove(socket));
  });
}
