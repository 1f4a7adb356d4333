// EIP-712 signed orders exactly as EnergyMarket.hashOrder() sees them. Any wallet can sign
// with the domain and types below; hashOrder() here equals the contract's (tested).
import { hashTypedData, type Address, type Hex, type LocalAccount, type TypedDataDomain } from "viem";

export const SIDE_BUY = 0;
export const SIDE_SELL = 1;
export type Side = typeof SIDE_BUY | typeof SIDE_SELL;

/** Energy sources; a set of them is a bitmask of `1 << source`. */
export const EnergySource = { none: 0, solar: 1, wind: 2, storage: 3, mixed: 4 } as const;
export type EnergySourceName = Exclude<keyof typeof EnergySource, "none">;

export function sourceMask(sources: readonly EnergySourceName[]): number {
  return sources.reduce((mask, s) => mask | (1 << EnergySource[s]), 0);
}

export interface Order {
  maker: Address;
  side: number;
  zone: Hex;
  deliveryStart: bigint;
  deliveryEnd: bigint;
  energyWh: bigint;
  limitPricePerKWh: bigint;
  source: number;
  acceptedSources: number;
  minSellerReputationBps: number;
  nonce: bigint;
  expiry: bigint;
}

export const orderTypes = {
  Order: [
    { name: "maker", type: "address" },
    { name: "side", type: "uint8" },
    { name: "zone", type: "bytes32" },
    { name: "deliveryStart", type: "uint64" },
    { name: "deliveryEnd", type: "uint64" },
    { name: "energyWh", type: "uint64" },
    { name: "limitPricePerKWh", type: "uint128" },
    { name: "source", type: "uint8" },
    { name: "acceptedSources", type: "uint8" },
    { name: "minSellerReputationBps", type: "uint16" },
    { name: "nonce", type: "uint256" },
    { name: "expiry", type: "uint64" },
  ],
} as const;

export interface MarketDomain extends TypedDataDomain {
  name: "EnergyMarket";
  version: "1";
  chainId: number;
  verifyingContract: Address;
}

/** The EIP-712 domain of the EnergyMarket deployed at `verifyingContract` on `chainId`. */
export function marketDomain(chainId: number, verifyingContract: Address): MarketDomain {
  return { name: "EnergyMarket", version: "1", chainId, verifyingContract };
}

/** The digest a maker signs; equal to EnergyMarket.hashOrder(order). */
export function hashOrder(order: Order, domain: MarketDomain): Hex {
  return hashTypedData({ domain, types: orderTypes, primaryType: "Order", message: order });
}

/** Signs `order` with a local account (a private key held by this process). */
export function signOrder(account: LocalAccount, order: Order, domain: MarketDomain): Promise<Hex> {
  return account.signTypedData({ domain, types: orderTypes, primaryType: "Order", message: order });
}
