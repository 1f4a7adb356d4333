// Embedded PGlite on a thread of its own (pgliteWorker.ts), as a kysely dialect: the node's
// thread only posts each statement and takes its rows back, so the database's work and the
// node's (HTTP, matching, signatures) use two cores instead of taking turns on one. Statements
// go one at a time over one connection (kysely serialises them: PGliteAdapter has no multiple
// connections), transactions are plain BEGIN/COMMIT/ROLLBACK on it.
import { Worker } from "node:worker_threads";
import {
  CompiledQuery, PGliteAdapter, PostgresIntrospector, PostgresQueryCompiler,
  type DatabaseConnection, type Dialect, type Driver, type Kysely, type QueryResult,
} from "kysely";
import type { PGliteReply, PGliteRequest, PGliteWorkerData, SerializedDatabaseError } from "./pgliteWorker.js";
import { workerEntry } from "./workerEntry.js";

/** A database error from the thread, with Postgres's fields (code, constraint, ...) as pg and PGlite give them. */
export class EmbeddedDatabaseError extends Error {
  override name = "DatabaseError";
  code?: string;
  constructor(e: SerializedDatabaseError) {
    super(e.message);
    Object.assign(this, e.fields);
  }
}

class ThreadDriver implements Driver {
  #worker: Worker | undefined;
  #pending = new Map<number, { resolve: (r: Extract<PGliteReply, { rows: unknown[] }>) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #stopped: Error | undefined;
  readonly #connection: DatabaseConnection;

  constructor(private readonly dataDir: string) {
    this.#connection = {
      executeQuery: async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
        const { rows, affectedRows } = await this.#send(query.sql, query.parameters);
        return { rows: rows as R[], ...(affectedRows != null ? { numAffectedRows: BigInt(affectedRows) } : {}) };
      },
      streamQuery: () => {
        throw new Error("embedded database: streaming is not supported");
      },
    };
  }

  async init(): Promise<void> {
    const entry = workerEntry("pgliteWorker", import.meta.url);
    const worker = new Worker(entry.url, { workerData: { dataDir: this.dataDir } satisfies PGliteWorkerData, ...(entry.execArgv ? { execArgv: entry.execArgv } : {}) });
    this.#worker = worker;
    await new Promise<void>((resolve, reject) => {
      worker.once("error", reject);
      worker.once("message", (m: PGliteReply) => {
        worker.off("error", reject);
        if ("failed" in m) reject(new EmbeddedDatabaseError(m.failed));
        else resolve();
      });
    });
    worker.on("message", (m: PGliteReply) => {
      if (!("id" in m)) return;
      const waiting = this.#pending.get(m.id);
      if (!waiting) return;
      this.#pending.delete(m.id);
      if (this.#pending.size === 0) worker.unref();
      if ("error" in m) waiting.reject(new EmbeddedDatabaseError(m.error));
      else waiting.resolve(m);
    });
    // A thread that dies fails what it held and every later statement: the node's health check
    // then reports the database, and a restart opens it again from its files.
    const stop = (why: Error) => {
      this.#stopped ??= why;
      for (const w of this.#pending.values()) w.reject(why);
      this.#pending.clear();
    };
    worker.on("error", (err) => stop(new Error(`embedded database thread failed: ${err.message}`, { cause: err })));
    worker.on("exit", (code) => stop(new Error(`embedded database thread exited (code ${code})`)));
    // Idle, the thread never keeps the process alive; one with a statement in flight does.
    worker.unref();
  }

  #send(sql: string, params: readonly unknown[], close = false): Promise<Extract<PGliteReply, { rows: unknown[] }>> {
    if (this.#stopped) return Promise.reject(this.#stopped);
    const worker = this.#worker;
    if (!worker) return Promise.reject(new Error("embedded database: not opened"));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage((close ? { id, close: true } : { id, sql, params }) satisfies PGliteRequest);
    });
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return this.#connection;
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("begin"));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("commit"));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("rollback"));
  }

  async releaseConnection(): Promise<void> {}

  async destroy(): Promise<void> {
    const worker = this.#worker;
    if (!worker || this.#stopped) return;
    try {
      // PGlite flushes its files on close.
      await this.#send("", [], true);
    } finally {
      this.#stopped = new Error("embedded database: closed");
      await worker.terminate();
    }
  }
}

class PGliteThreadDialect implements Dialect {
  constructor(private readonly dataDir: string) {}
  createAdapter() {
    return new PGliteAdapter();
  }
  createDriver() {
    return new ThreadDriver(this.dataDir);
  }
  createIntrospector(db: Kysely<any>) {
    return new PostgresIntrospector(db);
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
}

/** A kysely dialect for PGlite in `dataDir`, on a thread of its own. */
export function pgliteThreadDialect(dataDir: string): Dialect {
  return new PGliteThreadDialect(dataDir);
}
