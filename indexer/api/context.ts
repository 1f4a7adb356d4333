// What the auditor API's routes share: the database, the chain, and the units it reports in.
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
}

declare module "fastify" {
  interface FastifyInstance {
    /** The auditor API's shared resources, inside its plugin's scope. */
    indexer: IndexerApiOptions;
  }
}
