// Listening on a port the way dev servers do (Vite, Next): a port the user asked for is that port
// or a clear error; a default port that is taken (a Mosquitto on 1883, another app on 8080) moves
// to the next free one, so `npm start` comes up on a busy machine and says where it went.
import { createServer } from "node:net";
import { BaseError } from "./errors.js";

/** Ports tried after a taken default, before asking the system for any free one. */
export const NEXT_PORTS_TRIED = 20;

export interface PortChoice {
  port: number;
  /** Set by the user (environment or config file): never moved. */
  explicit: boolean;
}

export interface ListenOnPortReturnType<T> {
  listening: T;
  /** The port it listens on. */
  port: number;
  /** The default port it wanted, when that was taken and it moved. */
  movedFrom?: number;
}

/** The port is taken; names the setting that moves it and, where there is one, the way to use what runs there. */
export class PortInUseError extends BaseError {
  override name = "PortInUseError";
  constructor({ what, host, port, variable, alternative, cause }: { what: string; host: string; port: number; variable: string; alternative?: string; cause?: unknown }) {
    super(
      `${what}: ${host}:${port} is already in use, and ${variable}=${port} asks for exactly that port. ` +
        `Stop what runs there, set ${variable} to another port (0 picks any free one) or unset it (a free port near the default is taken)` +
        (alternative ? `, or ${alternative}` : ""),
      { code: "port_in_use", field: variable, cause },
    );
  }
}

export function isAddressInUse(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === "EADDRINUSE";
}

/**
 * Calls `listen(port)` on the chosen port; when that port is a default (not explicit) and taken,
 * on the next ones, then on 0. `listen` must reject with an EADDRINUSE error when the port is
 * taken and leave nothing half-open. An explicit port that is taken rejects with `onExplicitTaken`'s error.
 */
export async function listenOnPort<T>(
  choice: PortChoice,
  listen: (port: number) => Promise<{ listening: T; port: number }>,
  onExplicitTaken: (cause: unknown) => Error,
): Promise<ListenOnPortReturnType<T>> {
  const candidates = choice.explicit || choice.port === 0 ? [choice.port] : [...Array.from({ length: NEXT_PORTS_TRIED + 1 }, (_, i) => choice.port + i).filter((p) => p <= 65_535), 0];
  let lastError: unknown;
  for (const port of candidates) {
    try {
      const { listening, port: actual } = await listen(port);
      return { listening, port: actual, ...(port !== choice.port ? { movedFrom: choice.port } : {}) };
    } catch (err) {
      if (!isAddressInUse(err)) throw err;
      if (choice.explicit) throw onExplicitTaken(err);
      lastError = err;
    }
  }
  // Port 0 cannot be "in use"; reaching here means the system had no port at all.
  throw lastError;
}

/** A port nothing listens on now on 127.0.0.1 (the system picks it; it is handed over at once, so
 *  a child process or a second server can be told it before it binds). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
