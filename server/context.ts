// What the node's routes share, passed to buildApp as one typed object: the chain, the engine,
// the indexer's database, the bridge, the clock. Nothing here is read from the environment.
import type { Kysely } from "kysely";
import type { Account, Address, Chain, PublicClient, Transport, WalletClient } from "viem";
import type { MarketDomain } from "../contracts/client/order.js";
import type { Engine } from "../engine/createEngine.js";
import type { IndexerApiOptions } from "../indexer/api/context.js";
import type { IndexerDatabase } from "../indexer/store/schema.js";
import type { Logger } from "../lib/logger.js";
import type { Bridge } from "../bridge/startBridge.js";
import type { OperatorRoles } from "./auth/operatorRoles.js";
import type { Sessions } from "./auth/sessions.js";
import type { NodeConfig } from "./config.js";
import type { Coordination } from "./coordination/types.js";
import type { DeviceCredentials } from "./devices/deviceCredentials.js";
import type { Hub } from "./realtime/hub.js";

export interface ChainInfo {
  chainId: number;
  /** The JSON-RPC URL wallets use. */
  rpcUrl: string;
  /** True for the embedded chain: the faucet and test accounts exist only there. */
  local: boolean;
  contracts: { EnergyMarket: Address; ProsumerRegistry: Address; PaymentToken: Address };
  token: { symbol: string; decimals: number };
  domain: MarketDomain;
  publicClient: PublicClient;
  /** Holds REGISTRAR_ROLE: registers prosumers for operators. */
  registrar?: WalletClient<Transport, Chain, Account>;
  /** Funds wallets with tEUR on the local chain only. */
  faucet?: WalletClient<Transport, Chain, Account>;
}

/** Readings over REST take the bridge's MQTT validation path. */
export interface ReadingIntake {
  /** Validates and stores one reading published as `payload` on `topic`; throws the rejection. */
  submit(topic: string, payload: Uint8Array): Promise<void>;
  topicRoot: string;
}

export interface NodeServices {
  chain: ChainInfo;
  engine: Engine;
  indexer: IndexerApiOptions & { db: Kysely<IndexerDatabase> };
  sessions: Sessions;
  /** Unix milliseconds (a simulation may run its own clock). */
  clock: () => number;
  logger: Logger;
  readings?: ReadingIntake;
  /** The meter bridge: device commands (VPP apply, DR) go out through it. */
  bridge?: Bridge;
  /** WebSocket channels: plugins publish here. */
  hub?: Hub;
  /** The settings the node started with (routes read their sections from here). */
  config?: NodeConfig;
  /** The community's IANA time zone (TIME_ZONE): dashboards show times in it. */
  timeZone?: string;
  /** Funded, registered accounts of the embedded chain (Hardhat's well-known keys); empty elsewhere. */
  testAccounts?: { address: Address; privateKey: `0x${string}`; meterId: string; zone: string }[];
  /** Resources, reports and demand-response events (set by the coordination plugin). */
  coordination?: Coordination;
  /** Device credentials: MQTT logins and REST readings sent by a meter (server/devices). */
  devices?: DeviceCredentials;
  /** The broker devices connect to, as they reach it (no credentials in the URL). */
  mqtt?: { url: string; topicRoot: string };
}

export interface AuthenticatedAccount {
  address: Address;
  operator: boolean;
  token: string;
}

declare module "fastify" {
  interface FastifyInstance {
    node: NodeServices;
    /** Operator roles as the chain says now (cached per block): server/auth/operatorRoles.ts. */
    operatorRoles: OperatorRoles;
  }
  interface FastifyRequest {
    /** Set by the auth hook on routes that take a token; null when none was sent. */
    account: AuthenticatedAccount | null;
  }
}
