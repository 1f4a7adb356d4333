// What the auditor API's routes share: the database, the chain, the units it reports in, and the
// community's calendar its periods are days of.
import type { Kysely } from "kysely";
import type { IndexedContracts } from "../contracts.js";
import type { IndexerDatabase } from "../store/schema.js";
import type { ChainRpc } from "../sync/rpc.js";

export interface IndexerApiOptions {
  db: Kysely<IndexerDatabase>;
  /** Used by /verify and /status; the rest of the API reads only the database. */
  rpc: ChainRpc;
  chainId: number;
  contracts: IndexedContracts;
  /** Decimals of the payment token, for the reports' formatted values (tEUR: 6). */
  tokenDecimals: number;
  /** CO2 avoided per renewable kWh, in micro-kg (0.385 kg → 385000). */
  co2MicroKgPerKWh: bigint;
  /**
   * The community's IANA time zone (the node's TIME_ZONE). A period (`2026-02-14`, `2026-Q1`,
   * `today`) is days of its calendar, DST included, as on the compliance, carbon and savings
   * routes; so are `interval=1d` buckets. Default "Europe/Berlin".
   */
  timeZone?: string;
  /** Unix milliseconds: what `today`, `month`, `quarter` and `year` resolve against. Default Date.now. */
  clock?: () => number;
}

/** The options with the calendar resolved: what the routes read as `app.indexer`. */
export interface IndexerApiContext extends IndexerApiOptions {
  timeZone: string;
  clock: () => number;
}

declare module "fastify" {
  interface FastifyInstance {
    /** The auditor API's shared resources, inside its plugin's scope. */
    indexer: IndexerApiContext;
  }
}
