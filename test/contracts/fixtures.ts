// Shared setup for the contract tests: one in-process Hardhat network per test run, a full
// deployment with roles, registered prosumers funded with tEUR, and helpers that sign orders
// and rebuild trades (with Merkle proofs) from a transaction's events.
import { network } from "hardhat";
import type { ContractTransactionReceipt, Signer } from "ethers";
import type { Address, Hex } from "viem";
import { orderTypes, type Order, SIDE_BUY, SIDE_SELL, EnergySource, sourceMask } from "../../contracts/client/order.js";
import { merkleProof, tradeLeaf, type Trade } from "../../contracts/client/trade.js";

export const connection = await network.create();
export const { ethers, networkHelpers } = connection;

export const ZONE_A = ethers.encodeBytes32String("ZONE-A") as Hex;
export const ZONE_B = ethers.encodeBytes32String("ZONE-B") as Hex;
export const TEUR = 1_000_000n; // 1 tEUR in base units (6 decimals)
export const PRICE = 250_000n; // 0.25 tEUR per kWh
export const MAX_NETWORK_FEE = 1_000_000n;
export const INTERVAL = 15n * 60n;
/** The fixture's connection limit (W): sellers' export and import, buyers' import. */
export const CONNECTION_W = 100_000n;

export { SIDE_BUY, SIDE_SELL, EnergySource, sourceMask };

export async function deployMarket() {
  const signers = await ethers.getSigners();
  const [admin, matcher, oracle, arbiter, pauser] = signers as unknown as [Signer, Signer, Signer, Signer, Signer];
  const sellers = signers.slice(5, 10);
  const buyers = signers.slice(10, 15);
  const outsider = signers[15]!;
  const feeRecipient = signers[16]!;
  const networkRecipient = signers[17]!;
  const zoneBBuyer = signers[18]!;

  const token = await ethers.deployContract("TestEuro");
  const registry = await ethers.deployContract("ProsumerRegistry", [await admin.getAddress()]);
  const market = await ethers.deployContract("EnergyMarket", [
    await admin.getAddress(),
    await token.getAddress(),
    await registry.getAddress(),
    MAX_NETWORK_FEE,
  ]);
  await market.grantRole(await market.MATCHER_ROLE(), await matcher.getAddress());
  await market.grantRole(await market.METER_ORACLE_ROLE(), await oracle.getAddress());
  await market.grantRole(await market.ARBITER_ROLE(), await arbiter.getAddress());
  await market.grantRole(await market.PAUSER_ROLE(), await pauser.getAddress());

  const allSources = sourceMask(["solar", "wind", "storage", "mixed"]);
  // Connections of 100 kW (25 kWh a 15-minute window): far above what the tests trade, so only
  // the tests about connection limits, which set their own (TrustII.test.ts), meet them.
  let meter = 1;
  for (const s of sellers) {
    await registry.registerProsumer(await s.getAddress(), meterId(meter++), ZONE_A, CONNECTION_W, CONNECTION_W, allSources);
  }
  for (const b of buyers) {
    await registry.registerProsumer(await b.getAddress(), meterId(meter++), ZONE_A, 5_000n, CONNECTION_W, 0);
  }
  await registry.registerProsumer(await zoneBBuyer.getAddress(), meterId(meter++), ZONE_B, 5_000n, CONNECTION_W, 0);
  for (const b of [...buyers, zoneBBuyer]) {
    await token.faucet(await b.getAddress(), 10_000n * TEUR);
    await token.connect(b).approve(await market.getAddress(), ethers.MaxUint256);
  }

  const now = BigInt(await networkHelpers.time.latest());
  const deliveryStart = ((now + 3600n) / INTERVAL + 1n) * INTERVAL;
  const deliveryEnd = deliveryStart + INTERVAL;
  const { chainId } = await ethers.provider.getNetwork();
  const domain = {
    name: "EnergyMarket",
    version: "1",
    chainId: Number(chainId),
    verifyingContract: (await market.getAddress()) as Address,
  } as const;

  return {
    token, registry, market, admin, matcher, oracle, arbiter, pauser,
    sellers, buyers, outsider, feeRecipient, networkRecipient, zoneBBuyer,
    deliveryStart, deliveryEnd, domain,
  };
}

export type MarketFixture = Awaited<ReturnType<typeof deployMarket>>;

export function meterId(n: number): Hex {
  return ethers.encodeBytes32String(`SM-${String(n).padStart(3, "0")}`) as Hex;
}

let nonceCounter = 1n;

/** A valid order for the fixture's zone and window; overrides change any field. */
export async function makeOrder(
  f: MarketFixture,
  maker: Signer,
  side: number,
  overrides: Partial<Order> = {},
): Promise<Order> {
  return {
    maker: (await maker.getAddress()) as Address,
    side,
    zone: ZONE_A,
    deliveryStart: f.deliveryStart,
    deliveryEnd: f.deliveryEnd,
    energyWh: 1_000n,
    limitPricePerKWh: PRICE,
    source: side === SIDE_SELL ? EnergySource.solar : 0,
    acceptedSources: 0,
    minSellerReputationBps: 0,
    nonce: nonceCounter++,
    expiry: f.deliveryStart,
    ...overrides,
  };
}

/** Signs with the signer's key through ethers (an independent EIP-712 implementation). */
export async function signOrder(f: MarketFixture, signer: Signer, order: Order): Promise<Hex> {
  const types = { Order: orderTypes.Order.map((t) => ({ name: t.name, type: t.type })) };
  return (await signer.signTypedData(f.domain, types, order)) as Hex;
}

export async function signed(f: MarketFixture, signer: Signer, order: Order) {
  return { order, signature: await signOrder(f, signer, order) };
}

export interface ProvenTrade {
  trade: Trade;
  proof: Hex[];
}

/** Rebuilds every trade a transaction executed, with its Merkle proof, from its events. */
export function tradesFromReceipt(f: MarketFixture, receipt: ContractTransactionReceipt | null): ProvenTrade[] {
  if (!receipt) throw new Error("no receipt");
  const executed: Omit<Trade, "communityFeeBps" | "networkFeePerKWh">[] = [];
  const batches = new Map<bigint, { communityFeeBps: number; networkFeePerKWh: bigint }>();
  for (const log of receipt.logs) {
    const parsed = f.market.interface.parseLog(log);
    if (!parsed) continue;
    if (parsed.name === "TradeExecuted") {
      const a = parsed.args;
      executed.push({
        tradeId: a.tradeId, batchId: a.batchId, seller: a.seller, buyer: a.buyer, zone: a.zone,
        energyWh: a.energyWh, pricePerKWh: a.pricePerKWh, amount: a.amount,
        deliveryStart: a.deliveryStart, deliveryEnd: a.deliveryEnd, source: Number(a.source),
      });
    } else if (parsed.name === "BatchSettled") {
      batches.set(parsed.args.batchId, {
        communityFeeBps: Number(parsed.args.communityFeeBps),
        networkFeePerKWh: parsed.args.networkFeePerKWh,
      });
    }
  }
  const trades: Trade[] = executed.map((t) => ({ ...t, ...batches.get(t.batchId)! }));
  const result: ProvenTrade[] = [];
  for (const batchId of new Set(trades.map((t) => t.batchId))) {
    const inBatch = trades.filter((t) => t.batchId === batchId);
    const leaves = inBatch.map(tradeLeaf);
    inBatch.forEach((trade, i) => result.push({ trade, proof: merkleProof(leaves, i) }));
  }
  return result;
}

/** Reject reasons, in the order of IEnergyMarket.RejectReason. */
export const RejectReason = {
  None: 0, InvalidIndex: 1, SideMismatch: 2, BadBuySignature: 3, BadSellSignature: 4,
  BuyOrderCancelled: 5, SellOrderCancelled: 6, BuyOrderExpired: 7, SellOrderExpired: 8,
  ZoneMismatch: 9, WindowMismatch: 10, PriceOutOfRange: 11, ZeroEnergy: 12, BuyOverfill: 13,
  SellOverfill: 14, SelfTrade: 15, BuyerInactive: 16, SellerInactive: 17, SourceNotRegistered: 18,
  SourceNotAccepted: 19, ReputationTooLow: 20, InsufficientFunds: 21, SellerExportLimit: 22,
  BuyerImportLimit: 23,
} as const;

/** Trade statuses, in the order of IEnergyMarket.TradeStatus. */
export const TradeStatus = { Open: 0, Proposed: 1, Contested: 2, Settled: 3, Refunded: 4 } as const;
