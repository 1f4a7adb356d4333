// One WebSocket to the node's /v1/energy/real-time for the whole page: views subscribe to
// channels with a handler; the socket re-subscribes everything after a reconnect.
//
// Channels with a person's data (readings, a resource's events, VPP status) need the session's
// token: a browser's WebSocket cannot send an Authorization header, so it rides in the subscribe
// message whenever the page is signed in. The node grants a channel to the token it came with, so
// every new token (sign-in, refresh) subscribes again; signed out, public channels (order books,
// trades, orchestrator actions) still work, since the node ignores tokens on them. A channel the
// node refuses or ends (an `error` frame naming it) reaches its handlers as type "error".
import { session } from "./api.js";

type Handler = (type: string, data: any) => void;

const handlers = new Map<string, Set<Handler>>();
let socket: WebSocket | undefined;
let open = false;
let retryMs = 1_000;
const stateListeners = new Set<(connected: boolean) => void>();

function url(): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/energy/real-time`;
}

function send(action: "subscribe" | "unsubscribe", channels: string[]) {
  if (!socket || !open || channels.length === 0) return;
  const token = action === "subscribe" ? session.token : null;
  socket.send(JSON.stringify({ action, channels, ...(token ? { token } : {}) }));
}

function connect() {
  const ws = (socket = new WebSocket(url()));
  ws.addEventListener("open", () => {
    open = true;
    retryMs = 1_000;
    send("subscribe", [...handlers.keys()]);
    for (const f of stateListeners) f(true);
  });
  ws.addEventListener("message", (event) => {
    let msg: { channel?: string; type?: string; data?: unknown; code?: string; detail?: string };
    try {
      msg = JSON.parse(String(event.data));
    } catch {
      return;
    }
    if (!msg.channel) return;
    // A refused or ended subscription: the frame itself is the data (code and detail say why).
    const data = msg.type === "error" ? { code: msg.code, detail: msg.detail } : msg.data;
    for (const f of handlers.get(msg.channel) ?? []) f(msg.type ?? "", data);
  });
  ws.addEventListener("close", () => {
    open = false;
    for (const f of stateListeners) f(false);
    // The node restarting or a phone waking up: come back, slower each time, at most every 30 s.
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 30_000);
  });
}

// A new token (or none): subscribe again so channels that need one are granted to it.
session.onChange(() => send("subscribe", [...handlers.keys()]));

export function subscribe(channel: string, handler: Handler): () => void {
  let set = handlers.get(channel);
  if (!set) {
    handlers.set(channel, (set = new Set()));
    send("subscribe", [channel]);
  }
  set.add(handler);
  if (!socket) connect();
  return () => {
    set!.delete(handler);
    if (set!.size === 0) {
      handlers.delete(channel);
      send("unsubscribe", [channel]);
    }
  };
}

export function onConnection(f: (connected: boolean) => void) {
  stateListeners.add(f);
}
