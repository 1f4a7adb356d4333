// viem's EIP-712 digest of an order: slow (~200/s) but independent of orderSignature.ts, for
// equality checks and callers off the hot path. Apart so the signature workers never load viem.
import { hashTypedData, type Hex } from "viem";
import type { MarketDomain, Order } from "../../contracts/client/order.js";

/** viem's digest, for the equality test and any caller off the hot path. */
export function hashOrderSlow(order: Order, domain: MarketDomain): Hex {
  return hashTypedData({ domain, types: { Order: orderFields }, primaryType: "Order", message: order });
}

const orderFields = [
  { name: "maker", type: "address" }, { name: "side", type: "uint8" }, { name: "zone", type: "bytes32" },
  { name: "deliveryStart", type: "uint64" }, { name: "deliveryEnd", type: "uint64" }, { name: "energyWh", type: "uint64" },
  { name: "limitPricePerKWh", type: "uint128" }, { name: "source", type: "uint8" }, { name: "acceptedSources", type: "uint8" },
  { name: "minSellerReputationBps", type: "uint16" }, { name: "nonce", type: "uint256" }, { name: "expiry", type: "uint64" },
] as const;
