// Who delivered what, from two meters per trade: the seller's measured export is shared among
// the seller's trades of the window, then each buyer's measured import caps what the buyer's
// trades were credited. Both steps use one rule: first in, first out by execution order
// (settled = min(contracted, remaining measured), as in the Beckn DEG P2P draft; the default)
// or pro rata by contracted energy. Pure integer arithmetic on Wh; no meter, no chain.
import type { Address } from "viem";
import type { AllocationRule } from "./config.js";

export interface TradeClaim {
  tradeId: bigint;
  seller: Address;
  buyer: Address;
  contractedWh: bigint;
}

/** Energy a meter can still give to this window's trades, or undefined when unmeasured. */
export type AvailableEnergy = ReadonlyMap<Address, bigint | undefined>;

export type DeliveryBasis = "measured" | "seller_data_missing" | "buyer_data_missing";

export interface TradeDelivery {
  tradeId: bigint;
  /** The seller's export attributed to this trade (before the buyer's cap). */
  sellerAllocatedWh: bigint;
  /** What the oracle reports: at most the contracted energy. */
  deliveredWh: bigint;
  basis: DeliveryBasis;
}

export interface AllocateDeliveredEnergyParameters {
  trades: readonly TradeClaim[];
  sellerExportWh: AvailableEnergy;
  buyerImportWh: AvailableEnergy;
  rule: AllocationRule;
}

export function allocateDeliveredEnergy({ trades, sellerExportWh, buyerImportWh, rule }: AllocateDeliveredEnergyParameters): TradeDelivery[] {
  // Execution order is trade-id order: the market numbers trades as they execute.
  const ordered = [...trades].sort((a, b) => (a.tradeId < b.tradeId ? -1 : a.tradeId > b.tradeId ? 1 : 0));
  const sellerShare = new Map<bigint, bigint>();
  for (const [seller, group] of groupBy(ordered, (t) => t.seller)) {
    const available = sellerExportWh.get(seller);
    const shares = available === undefined ? group.map(() => 0n) : shareEnergy(available, group.map((t) => t.contractedWh), rule);
    group.forEach((t, i) => sellerShare.set(t.tradeId, shares[i]!));
  }
  const delivered = new Map<bigint, bigint>();
  for (const [buyer, group] of groupBy(ordered, (t) => t.buyer)) {
    const available = buyerImportWh.get(buyer);
    const shares = available === undefined ? group.map(() => 0n) : shareEnergy(available, group.map((t) => sellerShare.get(t.tradeId)!), rule);
    group.forEach((t, i) => delivered.set(t.tradeId, shares[i]!));
  }
  return ordered.map((t) => ({
    tradeId: t.tradeId,
    sellerAllocatedWh: sellerShare.get(t.tradeId)!,
    deliveredWh: delivered.get(t.tradeId)!,
    // A missing seller meter decides first: without export nothing was delivered by anyone.
    basis: sellerExportWh.get(t.seller) === undefined ? "seller_data_missing" : buyerImportWh.get(t.buyer) === undefined ? "buyer_data_missing" : "measured",
  }));
}

/**
 * Splits `availableWh` over claims (in execution order); no claim gets more than it asks and
 * the shares never add up to more than is available.
 */
export function shareEnergy(availableWh: bigint, claimsWh: readonly bigint[], rule: AllocationRule): bigint[] {
  if (availableWh < 0n) throw new RangeError("shareEnergy: availableWh must be >= 0");
  const total = claimsWh.reduce((a, b) => a + b, 0n);
  if (total <= availableWh) return [...claimsWh];
  if (rule === "fifo") {
    let remaining = availableWh;
    return claimsWh.map((claim) => {
      const share = claim < remaining ? claim : remaining;
      remaining -= share;
      return share;
    });
  }
  // Pro rata with the largest-remainder method: floor shares, then the Wh left over (fewer than
  // the number of claims) go one each to the largest remainders, ties to the earlier trade.
  const shares = claimsWh.map((claim) => (availableWh * claim) / total);
  let leftover = availableWh - shares.reduce((a, b) => a + b, 0n);
  const byRemainder = claimsWh
    .map((claim, i) => ({ i, remainder: (availableWh * claim) % total }))
    .sort((a, b) => (a.remainder === b.remainder ? a.i - b.i : a.remainder > b.remainder ? -1 : 1));
  for (const { i, remainder } of byRemainder) {
    if (leftover === 0n || remainder === 0n) break;
    shares[i]! += 1n;
    leftover -= 1n;
  }
  return shares;
}

function groupBy<T, K>(items: readonly T[], key: (t: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const g = groups.get(k);
    if (g) g.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}
