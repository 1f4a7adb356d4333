// For the settlement tests: the embedded chain with the platform deployed and a few funded,
// registered prosumers; a market whose books are capped (so a fill can be partial on both
// orders and a second copy of it would pass the contract's overfill check); a transport that
// drops chosen JSON-RPC calls the way a lost connection does; and the chain's trades read back.
import { expect } from "chai";
import {
  createPublicClient, createWalletClient, http, HttpRequestError, parseEther, type Address, type Hex, type PublicClient, type Transport,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { energyMarketAbi, prosumerRegistryAbi, testEuroAbi } from "../../contracts/client/abi.js";
import { deployPlatform } from "../../contracts/client/deploy.js";
import { marketDomain, type Order } from "../../contracts/client/order.js";
import { createChainDirectory } from "../../engine/chainDirectory.js";
import { createEngine, type Engine } from "../../engine/createEngine.js";
import type { MarketConfig } from "../../engine/markets.js";
import { bytesToHex } from "../../engine/intake/orderSignature.js";
import { hardhatKey, startLocalChain, type LocalChain } from "../../scripts/localChain.js";
import { freshDatabase, signer, wallet, ZONE_HEX, type TestWallet } from "./helpers.js";

/** ZONE-A with 1 kWh a book: a 2 kWh sell meeting a 2 kWh buy fills 1 kWh of each. */
export const cappedMarket: MarketConfig = {
  zone: "ZONE-A", mode: "continuous", feedInTariff: 80_000, retailPrice: 350_000, basePrice: 200_000, gateClosureMinutes: 5, capacityKWh: 1,
};

export interface SettlementChain {
  chain: LocalChain;
  client: PublicClient;
  contracts: { market: Address; registry: Address; token: Address };
  matcherKey: Hex;
  sellers: TestWallet[];
  buyers: TestWallet[];
  sign: (w: TestWallet, order: Order) => Hex;
  close(): Promise<void>;
}

export async function startSettlementChain(): Promise<SettlementChain> {
  const chain = await startLocalChain({ port: 0 });
  const transport = http(chain.url);
  const client = createPublicClient({ chain: hardhat, transport, pollingInterval: 50 }) as PublicClient;
  const admin = createWalletClient({ chain: hardhat, account: privateKeyToAccount(hardhatKey(0)), transport });
  const matcherKey = hardhatKey(1);
  const matcher = privateKeyToAccount(matcherKey).address;
  const me = admin.account.address;
  const d = await deployPlatform(admin, client as never, {
    roles: { admin: me, registrar: me, pauser: me, matcher, meterOracle: me, arbiter: me }, maxNetworkFeePerKWh: 1_000_000n,
  });
  const contracts = { market: d.contracts.EnergyMarket, registry: d.contracts.ProsumerRegistry, token: d.contracts.PaymentToken };
  const wait = async (hash: Hex) => expect((await client.waitForTransactionReceipt({ hash })).status).to.equal("success");
  const sellers = [wallet("settlement seller 1")];
  const buyers = [wallet("settlement buyer 1"), wallet("settlement buyer 2")];
  let meter = 100;
  for (const w of [...sellers, ...buyers]) {
    await wait(await admin.writeContract({ address: contracts.registry, abi: prosumerRegistryAbi, functionName: "registerProsumer", args: [w.address, `0x${(meter++).toString(16).padStart(64, "0")}`, ZONE_HEX, 10_000n, 10_000n, 0x1e] }));
    await wait(await admin.sendTransaction({ to: w.address, value: parseEther("1") }));
  }
  for (const w of buyers) {
    await wait(await admin.writeContract({ address: contracts.token, abi: testEuroAbi, functionName: "faucet", args: [w.address, 1_000_000_000n] }));
    const own = createWalletClient({ chain: hardhat, account: privateKeyToAccount(bytesToHex(w.key)), transport });
    await wait(await own.writeContract({ address: contracts.token, abi: testEuroAbi, functionName: "approve", args: [contracts.market, 2n ** 255n] }));
  }
  return {
    chain, client, contracts, matcherKey, sellers, buyers, sign: signer(marketDomain(hardhat.id, contracts.market)),
    close: () => chain.close(),
  };
}

/** An engine on the shared in-memory database (emptied unless `db` is passed: a restart). */
export async function settlementEngine(s: SettlementChain, db?: Awaited<ReturnType<typeof freshDatabase>>): Promise<{ engine: Engine; opened: Awaited<ReturnType<typeof freshDatabase>> }> {
  const opened = db ?? (await freshDatabase());
  const engine = await createEngine({
    db: opened.db, domain: marketDomain(hardhat.id, s.contracts.market), directory: createChainDirectory(s.client, s.contracts, 0), markets: [cappedMarket],
  });
  return { engine, opened };
}

let orderNonce = 1n;
/** A GTC limit order for the interval at `intervalStart`, expiring when delivery starts. */
export function orderFor(w: TestWallet, side: 0 | 1, energyWh: number, price: number, intervalStart: number): Order {
  return {
    maker: w.address, side, zone: ZONE_HEX, deliveryStart: BigInt(intervalStart), deliveryEnd: BigInt(intervalStart + 900), energyWh: BigInt(energyWh),
    limitPricePerKWh: BigInt(price), source: side === 1 ? 1 : 0, acceptedSources: 0, minSellerReputationBps: 0, nonce: orderNonce++, expiry: BigInt(intervalStart),
  };
}

export interface DroppedCalls {
  /** eth_sendRawTransaction calls lost before they reach the chain. */
  sendsLostBefore: number;
  /** eth_sendRawTransaction calls the chain executes whose answer is lost. */
  sendsLostAfter: number;
  /** eth_getTransactionReceipt calls that fail. */
  receiptLookups: number;
  /** How many calls of each method went through this transport (dropped ones included). */
  seen: Record<string, number>;
}

/**
 * http() to `url` without viem's own retries, losing the calls `drops` says (counted down as
 * they are dropped; set a count to Infinity for a chain that never answers) with the error a
 * dropped connection gives.
 */
export function droppingTransport(url: string, drops: Partial<Omit<DroppedCalls, "seen">>): { transport: Transport; drops: DroppedCalls } {
  const state: DroppedCalls = { sendsLostBefore: 0, sendsLostAfter: 0, receiptLookups: 0, ...drops, seen: {} };
  const inner = http(url, { retryCount: 0 });
  const lost = (method: string) => new HttpRequestError({ url, details: `socket hang up (${method} dropped by the test)` });
  const transport: Transport = (config) => {
    const t = inner(config);
    const request = async (args: { method: string; params?: unknown }) => {
      state.seen[args.method] = (state.seen[args.method] ?? 0) + 1;
      if (args.method === "eth_sendRawTransaction" && state.sendsLostBefore > 0) {
        state.sendsLostBefore--;
        throw lost(args.method);
      }
      if (args.method === "eth_getTransactionReceipt" && state.receiptLookups > 0) {
        state.receiptLookups--;
        throw lost(args.method);
      }
      const result = await t.request(args as never);
      if (args.method === "eth_sendRawTransaction" && state.sendsLostAfter > 0) {
        state.sendsLostAfter--;
        throw lost(args.method);
      }
      return result;
    };
    return { ...t, request: request as typeof t.request };
  };
  return { transport, drops: state };
}

export function matcherWallet(s: SettlementChain, transport: Transport = http(s.chain.url)) {
  return createWalletClient({ chain: hardhat, account: privateKeyToAccount(s.matcherKey), transport });
}

export function clientOver(transport: Transport): PublicClient {
  return createPublicClient({ chain: hardhat, transport, pollingInterval: 50 }) as PublicClient;
}

export interface ChainTrade {
  tradeId: bigint;
  seller: Address;
  buyer: Address;
  energyWh: bigint;
  pricePerKWh: bigint;
  deliveryStart: bigint;
}

/** Every TradeExecuted the market emitted. */
export async function chainTrades(client: PublicClient, market: Address): Promise<ChainTrade[]> {
  const logs = await client.getContractEvents({ address: market, abi: energyMarketAbi, eventName: "TradeExecuted", fromBlock: 0n, toBlock: "latest" });
  return logs.map((l) => l.args as unknown as ChainTrade);
}

export function filledOnChain(client: PublicClient, market: Address, orderHash: Hex): Promise<bigint> {
  return client.readContract({ address: market, abi: energyMarketAbi, functionName: "filledWh", args: [orderHash] });
}
