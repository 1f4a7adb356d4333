// What keeps one WebSocket client from costing the node more than its share: a message rate
// (token bucket per socket), the error frames that answer a limit, and the log line for a
// client breaking the protocol. A client's mistake is a warning without a stack (the node did
// nothing wrong); only the first of each kind per socket is logged, so a flood floods nothing.
import type { FastifyBaseLogger } from "fastify";
import type { HubLimits, RealtimeSocket } from "./hub.js";

export type LimitCode = "too_many_channels" | "message_too_large" | "rate_limited";

/** The documented `error` frame for a limit: the code, the field at fault when there is one, and the limit. */
export function limitFrame(code: LimitCode, detail: string, extra: { field?: string; limit: number; retryAfterMs?: number }): string {
  return JSON.stringify({ type: "error", code, ...(extra.field ? { field: extra.field } : {}), detail, limit: extra.limit, ...(extra.retryAfterMs !== undefined ? { retryAfterMs: extra.retryAfterMs } : {}) });
}

/**
 * A token bucket holding `perSecond` messages, refilled at `perSecond`: take() is undefined
 * when the message may go on, else the milliseconds until one may.
 */
export function createMessageRate(perSecond: number, clock: () => number = () => performance.now()) {
  let tokens = perSecond;
  let at = clock();
  return {
    take(): number | undefined {
      const now = clock();
      tokens = Math.min(perSecond, tokens + ((now - at) * perSecond) / 1000);
      at = now;
      if (tokens >= 1) {
        tokens -= 1;
        return undefined;
      }
      return Math.ceil(((1 - tokens) * 1000) / perSecond);
    },
  };
}

export interface SocketGuard {
  /** Logs a client's protocol violation at warn, once per code per socket. */
  violation(code: string, detail: string, extra?: Record<string, unknown>): void;
  /** Null when the message may be handled, else the frame answering it. */
  admit(raw: Buffer): string | null;
}

/** What the WebSocket library reports on a socket: a frame it refused (WS_ERR_*), or the connection failing. */
interface SocketError extends Error {
  code?: string;
}

export function guardSocket(socket: RealtimeSocket & { on(event: "error", listener: (err: SocketError) => void): unknown; removeAllListeners(event: "error"): unknown; terminate(): void },
  limits: HubLimits, log: FastifyBaseLogger): SocketGuard {
  const logged = new Set<string>();
  const rate = createMessageRate(limits.maxMessagesPerSecond);

  function violation(code: string, detail: string, extra: Record<string, unknown> = {}) {
    if (logged.has(code)) return;
    logged.add(code);
    log.warn({ msg: "websocket: client broke the protocol", code, detail, ...extra });
  }

  // @fastify/websocket's default handler logs every socket error at error level with its
  // stack and terminates the socket. A frame past maxPayload, a bad UTF-8 text or an unmasked
  // frame is the client's doing: ws has already sent the close frame with the right code
  // (1009, 1007, 1002), so it is a warning; a connection that failed underneath is routine.
  socket.removeAllListeners("error");
  socket.on("error", (err: SocketError) => {
    if (err.code?.startsWith("WS_ERR_")) {
      violation(err.code, err.message);
      return;
    }
    log.info({ msg: "websocket: connection failed", code: err.code, detail: err.message });
    socket.terminate();
  });

  return {
    violation,
    admit(raw) {
      const retryAfterMs = rate.take();
      if (retryAfterMs !== undefined) {
        violation("rate_limited", `more than ${limits.maxMessagesPerSecond} messages a second`);
        return limitFrame("rate_limited", `at most ${limits.maxMessagesPerSecond} messages a second per socket: this one was not handled, send it again later`, { limit: limits.maxMessagesPerSecond, retryAfterMs });
      }
      if (raw.length > limits.maxMessageBytes) {
        violation("message_too_large", `${raw.length} bytes`);
        return limitFrame("message_too_large", `message must be at most ${limits.maxMessageBytes} bytes (it had ${raw.length})`, { field: "message", limit: limits.maxMessageBytes });
      }
      return null;
    },
  };
}
