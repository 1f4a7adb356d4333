// The node's keeper: which account it signs with, its gas money on the embedded chain, its
// tables, and the route's view of it (`app.node.keeper`). Its own account, not the admin's or
// another role's, so its transactions never race theirs for a nonce.
import type { Kysely } from "kysely";
import { formatEther, parseEther, type Account, type Address, type Chain, type Hex, type PublicClient, type Transport, type WalletClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { IndexerDatabase } from "../../indexer/store/schema.js";
import type { Logger } from "../../lib/logger.js";
import { hardhatKey } from "../../scripts/localChain.js";
import { keySender } from "../chain/keySender.js";
import type { NodeConfig } from "../config.js";
import { createKeeper, type Keeper } from "./createKeeper.js";
import { migrateKeeperDatabase, type KeeperDatabase } from "./database.js";

/** Hardhat account index of the embedded chain's keeper (apart from the roles 0-3, test accounts 4-19 and the aggregator 99). */
export const EMBEDDED_KEEPER_INDEX = 98;
/** The embedded keeper is topped up to this much ETH whenever it has less than half. */
const EMBEDDED_KEEPER_GAS = parseEther("10");

export interface StartNodeKeeperParameters {
  settings: NodeConfig["keeper"];
  /** The registrar's key of a configured chain: the keeper's when KEEPER_PRIVATE_KEY is unset. */
  registrarKey?: Hex | undefined;
  /** The embedded chain's admin, which funds the embedded keeper; absent with CHAIN_RPC_URL. */
  embeddedAdmin?: WalletClient<Transport, Chain, Account> | undefined;
  /** The node's one database: the keeper's tables and the indexer's. */
  db: Kysely<KeeperDatabase & IndexerDatabase>;
  client: PublicClient;
  chainId: number;
  market: Address;
  logger: Logger;
  indexerVersion?: () => number;
}

/** Starts the keeper, or says why not and returns undefined. */
export async function startNodeKeeper(p: StartNodeKeeperParameters): Promise<Keeper | undefined> {
  const { settings, logger } = p;
  if (!settings.enabled) {
    logger.info({ msg: "keeper off (KEEPER_ENABLED=0): escrows past their deadline wait for someone to close them" });
    return undefined;
  }
  const key = settings.key ?? (p.embeddedAdmin ? hardhatKey(EMBEDDED_KEEPER_INDEX) : p.registrarKey);
  if (!key) {
    logger.warn({ msg: "keeper off: set KEEPER_PRIVATE_KEY (an account with gas money) so the node closes escrows past their deadline" });
    return undefined;
  }
  const account = privateKeyToAccount(key);
  if (p.embeddedAdmin) await topUpGas(p.client, p.embeddedAdmin, account.address);
  await migrateKeeperDatabase(p.db as unknown as Kysely<KeeperDatabase>);
  const keeper = await createKeeper({
    db: p.db as unknown as Kysely<KeeperDatabase>, indexerDb: p.db as unknown as Kysely<IndexerDatabase>, client: p.client, account, market: p.market, chainId: p.chainId, logger, tickMs: settings.tickMs,
    ...(p.indexerVersion ? { indexerVersion: p.indexerVersion } : {}),
  });
  logger.info({ msg: "keeper running", address: account.address, tickMs: settings.tickMs, key: settings.key ? "KEEPER_PRIVATE_KEY" : p.embeddedAdmin ? "embedded" : "REGISTRAR_PRIVATE_KEY" });
  return keeper;
}

async function topUpGas(client: PublicClient, admin: WalletClient<Transport, Chain, Account>, address: Address): Promise<void> {
  const balance = await client.getBalance({ address });
  if (balance * 2n >= EMBEDDED_KEEPER_GAS) return;
  // The admin's one nonce queue (server/chain/keySender.ts): the faucet and registrations send from it too.
  const receipt = await keySender(client, admin.account).sendAndWait({ to: address, value: EMBEDDED_KEEPER_GAS - balance });
  if (receipt.status !== "success") throw new Error(`funding the keeper ${address} with ${formatEther(EMBEDDED_KEEPER_GAS)} ETH failed in ${receipt.transactionHash}`);
}
