// The embedded database's own thread: PGlite (Postgres compiled to WebAssembly) runs every
// statement synchronously on whatever thread holds it, so in the node's thread a burst of writes
// (a book closing, a delivery window decided) held HTTP answers behind it (issue #17). Here it
// answers one message per statement: { id, sql, params } -> { id, rows, affectedRows } or
// { id, error }. The node's side is pgliteThread.ts, which also serialises statements (one
// connection, as kysely's PGlite dialect does).
import { parentPort, workerData } from "node:worker_threads";
import { PGlite } from "@electric-sql/pglite";
import { bigintParsers } from "./bigintParsers.js";

export interface PGliteWorkerData {
  dataDir: string;
}

export type PGliteRequest = { id: number; sql: string; params: readonly unknown[] } | { id: number; close: true };

export type PGliteReply =
  | { id: number; rows: unknown[]; affectedRows: number | undefined }
  | { id: number; error: SerializedDatabaseError }
  | { ready: true }
  | { failed: SerializedDatabaseError };

/** What crosses the thread of a database error: its message and the fields Postgres gives. */
export interface SerializedDatabaseError {
  message: string;
  name: string;
  fields: Record<string, string | number | undefined>;
}

const ERROR_FIELDS = ["code", "severity", "detail", "hint", "position", "schema", "table", "column", "dataType", "constraint", "where", "routine"] as const;

function serialize(err: unknown): SerializedDatabaseError {
  const e = err as Error & Record<string, unknown>;
  const fields: SerializedDatabaseError["fields"] = {};
  for (const f of ERROR_FIELDS) if (typeof e?.[f] === "string" || typeof e?.[f] === "number") fields[f] = e[f] as string | number;
  return { message: e?.message ?? String(err), name: e?.name ?? "Error", fields };
}

async function main(): Promise<void> {
  const port = parentPort!;
  const { dataDir } = workerData as PGliteWorkerData;
  let pglite: PGlite;
  try {
    pglite = await PGlite.create(dataDir, { parsers: bigintParsers });
  } catch (err) {
    port.postMessage({ failed: serialize(err) } satisfies PGliteReply);
    return;
  }
  port.on("message", async (m: PGliteRequest) => {
    if ("close" in m) {
      try {
        await pglite.close();
        port.postMessage({ id: m.id, rows: [], affectedRows: undefined } satisfies PGliteReply);
      } catch (err) {
        port.postMessage({ id: m.id, error: serialize(err) } satisfies PGliteReply);
      }
      port.close();
      return;
    }
    try {
      const { rows, affectedRows } = await pglite.query(m.sql, m.params as unknown[], { rowMode: "object" });
      port.postMessage({ id: m.id, rows, affectedRows } satisfies PGliteReply);
    } catch (err) {
      port.postMessage({ id: m.id, error: serialize(err) } satisfies PGliteReply);
    }
  });
  port.postMessage({ ready: true } satisfies PGliteReply);
}

void main();
