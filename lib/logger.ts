// Structured logs (pino): `{ msg, ...fields }`, never string soup. Quiet under tests unless
// LOG_LEVEL says otherwise.
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(name: string, level = process.env.LOG_LEVEL ?? (process.env.NODE_ENV === "test" ? "silent" : "info")): Logger {
  return pino({ name, level });
}
