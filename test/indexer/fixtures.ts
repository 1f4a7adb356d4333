// Shared setup for the indexer tests: the embedded chain served over HTTP (the indexer talks to
// it as to any node), a deployment through viem, registered and funded prosumers, helpers that
// make real traffic (listings, signed-order batches, reports, disputes), and databases on
// PGlite and, when DATABASE_URL is set, on PostgreSQL in a schema of their own.
import { PGlite } from "@electric-sql/pglite";
import { Kysely, PGliteDialect, sql } from "kysely";
import {
  createPublicClient, createWalletClient, getAddress, http, parseEventLogs, stringToHex, toHex,
  type Address, type Hex, type PublicClient, type TransactionReceipt,
} from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { energyMarketAbi, prosumerRegistryAbi, testEuroAbi } from "../../contracts/client/abi.js";
import { deployPlatform, type Deployment } from "../../contracts/client/deploy.js";
import { marketDomain, signOrder, SIDE_BUY, SIDE_SELL, sourceMask, type MarketDomain, type Order } from "../../contracts/client/order.js";
import { merkleProof, tradeLeaf, type Trade } from "../../contracts/client/trade.js";
import { openDatabase } from "../../lib/database.js";
import { createLogger } from "../../lib/logger.js";
import { startLocalChain, type LocalChain } from "../../scripts/localChain.js";
import type { IndexedContracts } from "../../indexer/contracts.js";
import { runIndexer, type RunIndexerParameters } from "../../indexer/runIndexer.js";
import { migrateIndexerDatabase } from "../../indexer/store/migrate.js";
import type { IndexerDatabase } from "../../indexer/store/schema.js";
import { createChainRpc } from "../../indexer/sync/rpc.js";

export const MNEMONIC = "test test test test test test test test test test test junk";
/** 2031-01-06T00:00:00Z: chain time starts here, so periods in the tests are fixed. */
export const START_TIME = BigInt(Date.UTC(2031, 0, 6) / 1000);
export const ZONE_A = stringToHex("ZONE-A", { size: 32 });
export const ZONE_B = stringToHex("ZONE-B", { size: 32 });
export const PRICE = 250_000n;
export const HOUR = 3600n;
export const TEUR = 1_000_000n;
/** Every test prosumer's connection, W: 25 kWh a 15-minute window, above any trade here (the
 *  market enforces it since connection limits; the limits themselves are tested in test/contracts). */
export const CONNECTION_W = 100_000n;

export interface ProvenTrade {
  trade: Trade;
  proof: Hex[];
}

export interface MarketChain {
  chain: LocalChain;
  url: string;
  chainId: number;
  client: PublicClient;
  deployment: Deployment;
  contracts: IndexedContracts;
  market: Address;
  registry: Address;
  token: Address;
  accounts: Address[];
  admin: Address;
  matcher: Address;
  oracle: Address;
  arbiter: Address;
  sellers: Address[];
  buyers: Address[];
  zoneBBuyer: Address;
  domain: MarketDomain;
  close(): Promise<void>;
}

const keys = new Map<string, ReturnType<typeof mnemonicToAccount>>();
function accountOf(address: Address) {
  const account = keys.get(address.toLowerCase());
  if (!account) throw new Error(`no key for ${address}`);
  return account;
}

export async function rpc<T>(m: { client: PublicClient }, method: string, params: unknown[] = []): Promise<T> {
  return m.client.request({ method, params } as never) as Promise<T>;
}

/** Starts a chain at START_TIME with the platform deployed, windows at their 1-hour minimum, prosumers registered and funded. */
export async function startMarketChain(): Promise<MarketChain> {
  const chain = await startLocalChain({ port: 0 });
  const transport = http(chain.url);
  const client = createPublicClient({ chain: hardhat, transport }) as PublicClient;
  const accounts = ((await client.request({ method: "eth_accounts" } as never)) as Address[]).map((a) => getAddress(a));
  for (let i = 0; i < accounts.length; i++) {
    const account = mnemonicToAccount(MNEMONIC, { addressIndex: i });
    if (account.address !== accounts[i]) throw new Error(`account ${i} is not the mnemonic's`);
    keys.set(account.address.toLowerCase(), account);
  }
  await client.request({ method: "evm_setNextBlockTimestamp", params: [toHex(START_TIME)] } as never);
  const [admin, matcher, oracle, arbiter] = accounts as [Address, Address, Address, Address];
  const wallet = createWalletClient({ chain: hardhat, account: admin, transport });
  const roles = { admin, registrar: admin, pauser: admin, matcher, meterOracle: oracle, arbiter };
  const deployment = await deployPlatform(wallet, client, { roles, maxNetworkFeePerKWh: 1_000_000n });
  const m: MarketChain = {
    chain,
    url: chain.url,
    chainId: deployment.chainId,
    client,
    deployment,
    contracts: { EnergyMarket: deployment.contracts.EnergyMarket, ProsumerRegistry: deployment.contracts.ProsumerRegistry },
    market: deployment.contracts.EnergyMarket,
    registry: deployment.contracts.ProsumerRegistry,
    token: deployment.contracts.PaymentToken,
    accounts,
    admin,
    matcher,
    oracle,
    arbiter,
    sellers: accounts.slice(5, 10),
    buyers: accounts.slice(10, 15),
    zoneBBuyer: accounts[15]!,
    domain: marketDomain(deployment.chainId, deployment.contracts.EnergyMarket),
    close: () => chain.close(),
  };
  await send(m, admin, m.market, energyMarketAbi, "setWindows", [HOUR, HOUR, HOUR]);
  let meter = 1;
  for (const s of m.sellers) {
    await send(m, admin, m.registry, prosumerRegistryAbi, "registerProsumer", [s, meterId(meter++), ZONE_A, CONNECTION_W, CONNECTION_W, sourceMask(["solar", "wind", "storage", "mixed"])]);
  }
  for (const b of [...m.buyers, m.zoneBBuyer]) {
    await send(m, admin, m.registry, prosumerRegistryAbi, "registerProsumer", [b, meterId(meter++), b === m.zoneBBuyer ? ZONE_B : ZONE_A, CONNECTION_W / 2n, CONNECTION_W, 0]);
    await send(m, admin, m.token, testEuroAbi, "faucet", [b, 10_000n * TEUR]);
    await send(m, b, m.token, testEuroAbi, "approve", [m.market, 2n ** 256n - 1n]);
  }
  return m;
}

export function meterId(n: number): Hex {
  return stringToHex(`SM-${String(n).padStart(3, "0")}`, { size: 32 });
}

/** Sends a contract call from an unlocked account and returns its receipt; a revert throws. */
export async function send(m: Pick<MarketChain, "client" | "url">, from: Address, address: Address, abi: readonly unknown[], functionName: string, args: readonly unknown[]): Promise<TransactionReceipt> {
  const wallet = createWalletClient({ chain: hardhat, account: from, transport: http(m.url) });
  const hash = await wallet.writeContract({ address, abi, functionName, args } as never);
  const receipt = await m.client.getTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`${functionName} reverted`);
  return receipt;
}

export async function latestTimestamp(m: MarketChain): Promise<bigint> {
  return (await m.client.getBlock({ blockTag: "latest" })).timestamp;
}

/** Moves chain time forward and mines a block there. */
export async function advanceTime(m: MarketChain, seconds: bigint): Promise<void> {
  await rpc(m, "evm_increaseTime", [Number(seconds)]);
  await rpc(m, "evm_mine");
}

export async function mine(m: MarketChain, blocks = 1): Promise<void> {
  for (let i = 0; i < blocks; i++) await rpc(m, "evm_mine");
}

/** The next 15-minute window starting at least an hour after the chain's time. */
export async function nextWindow(m: MarketChain): Promise<{ deliveryStart: bigint; deliveryEnd: bigint }> {
  const now = await latestTimestamp(m);
  const deliveryStart = ((now + HOUR) / 900n + 1n) * 900n;
  return { deliveryStart, deliveryEnd: deliveryStart + 900n };
}

/** Trades a receipt executed, rebuilt from its events with Merkle proofs. */
export function tradesOf(receipt: TransactionReceipt): ProvenTrade[] {
  const logs = parseEventLogs({ abi: energyMarketAbi, logs: receipt.logs });
  const batches = new Map<bigint, { communityFeeBps: number; networkFeePerKWh: bigint }>();
  for (const l of logs) if (l.eventName === "BatchSettled") batches.set(l.args.batchId, { communityFeeBps: l.args.communityFeeBps, networkFeePerKWh: l.args.networkFeePerKWh });
  const trades: Trade[] = [];
  for (const l of logs) {
    if (l.eventName !== "TradeExecuted") continue;
    const a = l.args;
    trades.push({
      tradeId: a.tradeId, batchId: a.batchId, seller: a.seller, buyer: a.buyer, zone: a.zone, energyWh: a.energyWh,
      pricePerKWh: a.pricePerKWh, amount: a.amount, deliveryStart: a.deliveryStart, deliveryEnd: a.deliveryEnd,
      source: a.source, ...batches.get(a.batchId)!,
    });
  }
  const leaves = trades.map(tradeLeaf);
  return trades.map((trade, i) => ({ trade, proof: merkleProof(leaves, i) }));
}

let nonce = 1n;

export interface FillSpec {
  buyer: Address;
  seller: Address;
  energyWh: bigint;
  pricePerKWh?: bigint;
  /** A sell limit above the buy limit: the contract rejects the fill with PriceOutOfRange. */
  rejected?: boolean;
}

export async function signedOrder(m: MarketChain, maker: Address, side: number, window: { deliveryStart: bigint; deliveryEnd: bigint }, energyWh: bigint, limit: bigint): Promise<{ order: Order; signature: Hex }> {
  const order: Order = {
    maker, side, zone: ZONE_A, deliveryStart: window.deliveryStart, deliveryEnd: window.deliveryEnd, energyWh,
    limitPricePerKWh: limit, source: side === SIDE_SELL ? 1 : 0, acceptedSources: 0, minSellerReputationBps: 0,
    nonce: nonce++, expiry: window.deliveryStart,
  };
  return { order, signature: await signOrder(accountOf(maker), order, m.domain) };
}

/** One settleBatch with a fresh buy and sell order per fill. */
export async function settleFills(m: MarketChain, fills: readonly FillSpec[], window?: { deliveryStart: bigint; deliveryEnd: bigint }): Promise<{ trades: ProvenTrade[]; receipt: TransactionReceipt }> {
  const w = window ?? (await nextWindow(m));
  const orders = [];
  const plan = [];
  for (const f of fills) {
    const price = f.pricePerKWh ?? PRICE;
    orders.push(await signedOrder(m, f.buyer, SIDE_BUY, w, f.energyWh, price));
    orders.push(await signedOrder(m, f.seller, SIDE_SELL, w, f.energyWh, f.rejected ? price + 1n : price));
    plan.push({ buyIndex: orders.length - 2, sellIndex: orders.length - 1, energyWh: f.energyWh, pricePerKWh: price });
  }
  const receipt = await send(m, m.matcher, m.market, energyMarketAbi, "settleBatch", [orders, plan]);
  return { trades: tradesOf(receipt), receipt };
}

export const EVIDENCE = stringToHex("meter readings", { size: 32 });

export async function report(m: MarketChain, t: ProvenTrade, deliveredWh: bigint): Promise<TransactionReceipt> {
  return send(m, m.oracle, m.market, energyMarketAbi, "reportDelivery", [t.trade, t.proof, deliveredWh, EVIDENCE]);
}

// ---------------------------------------------------------------- databases

export interface TestDatabaseTarget {
  name: string;
  url?: string;
}

export const databaseTargets: TestDatabaseTarget[] = [{ name: "PGlite" }];
if (process.env.DATABASE_URL) databaseTargets.push({ name: "PostgreSQL", url: process.env.DATABASE_URL });

export interface TestDatabase {
  db: Kysely<IndexerDatabase>;
  /** A URL reaching the same schema (PostgreSQL only), for child processes. */
  url?: string;
  close(): Promise<void>;
}

let schemaCounter = 0;
let pgliteTemplate: Promise<File | Blob> | undefined;

// The same parsers as lib/database.ts: numeric and int8 as bigint.
const bigintOrText = (value: string) => (/^-?\d+$/.test(value) ? BigInt(value) : value);
const pgliteParsers = { 1700: bigintOrText, 20: bigintOrText };

/**
 * A migrated PGlite in memory, configured as lib/database.ts configures it. Starting PGlite
 * costs ~1.7 s (WASM and initdb); loading a dump of a migrated one costs ~0.5 s.
 */
async function openPGliteCopy(): Promise<TestDatabase> {
  pgliteTemplate ??= (async () => {
    const pglite = await PGlite.create("memory://", { parsers: pgliteParsers });
    const db = new Kysely<IndexerDatabase>({ dialect: new PGliteDialect({ pglite }) });
    await migrateIndexerDatabase(db);
    const dump = await pglite.dumpDataDir("none");
    await db.destroy();
    return dump;
  })();
  const pglite = await PGlite.create({ loadDataDir: await pgliteTemplate, parsers: pgliteParsers });
  const db = new Kysely<IndexerDatabase>({ dialect: new PGliteDialect({ pglite }) });
  return { db, close: () => db.destroy() };
}

/** A fresh, migrated database: PGlite in memory, or a new schema on PostgreSQL dropped at close. */
export async function openTestDatabase(target: TestDatabaseTarget): Promise<TestDatabase> {
  if (!target.url) return openPGliteCopy();
  const schema = `indexer_test_${process.pid}_${Date.now().toString(36)}_${schemaCounter++}`;
  const admin = await openDatabase<unknown>({ url: target.url });
  await sql`create schema ${sql.id(schema)}`.execute(admin.db);
  await admin.close();
  const url = withSearchPath(target.url, schema);
  const dropSchema = async () => {
    const cleanup = await openDatabase<unknown>({ url: target.url! });
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(cleanup.db);
    await cleanup.close();
  };
  const opened = await openDatabase<IndexerDatabase>({ url });
  try {
    await migrateIndexerDatabase(opened.db);
  } catch (err) {
    await opened.close();
    await dropSchema();
    throw err;
  }
  return {
    db: opened.db,
    url,
    close: async () => {
      await opened.close();
      await dropSchema();
    },
  };
}

export function withSearchPath(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set("options", `-c search_path=${schema}`);
  return u.toString();
}

// ---------------------------------------------------------------- indexing

export function indexerParams(m: MarketChain, db: Kysely<IndexerDatabase>, overrides: Partial<RunIndexerParameters> = {}): RunIndexerParameters {
  return {
    db,
    rpc: createChainRpc({ url: m.url, maxRetries: 2, backoffMs: 20 }),
    chainId: m.chainId,
    contracts: m.contracts,
    startBlock: BigInt(m.deployment.blockNumber),
    finalityDepth: 12,
    pollIntervalMs: 20,
    logRange: { initial: 50, max: 1_000 },
    mode: "once",
    logger: createLogger("indexer-test"),
    ...overrides,
  };
}

/** Indexes the chain up to its current head. */
export async function indexOnce(m: MarketChain, db: Kysely<IndexerDatabase>, overrides: Partial<RunIndexerParameters> = {}): Promise<void> {
  await runIndexer(indexerParams(m, db, { ...overrides, mode: "once" }));
}

/** What a fresh index of the same chain must equal: every user-visible table, in key order. */
export async function dumpTables(db: Kysely<IndexerDatabase>): Promise<Record<string, unknown[]>> {
  const q = db as Kysely<any>;
  const order: Record<string, string[]> = {
    indexer_events: ["chain_id", "block_number", "log_index"],
    indexer_trades: ["chain_id", "trade_id"],
    indexer_batches: ["chain_id", "batch_id"],
    indexer_listings: ["chain_id", "listing_id"],
    indexer_cancelled_orders: ["chain_id", "order_hash"],
    indexer_nonce_floors: ["chain_id", "maker"],
    indexer_prosumers: ["chain_id", "account"],
  };
  const out: Record<string, unknown[]> = {};
  for (const [table, keys] of Object.entries(order)) {
    let query = q.selectFrom(table).selectAll();
    for (const k of keys) query = query.orderBy(k);
    out[table] = await query.execute();
  }
  out.indexer_checkpoints = await q.selectFrom("indexer_checkpoints").select(["chain_id", "block_number", "block_hash", "block_timestamp"]).execute();
  return out;
}
