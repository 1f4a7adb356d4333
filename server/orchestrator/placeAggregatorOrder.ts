// One order of the community's wallet into the engine: built, EIP-712 signed by the aggregator
// and placed like any prosumer's. Returns the order id, or why it was not placed.
import { randomBytes } from "node:crypto";
import type { Engine } from "../../engine/createEngine.js";
import { INTERVAL_SECONDS } from "../../engine/markets.js";
import { BaseError } from "../../lib/errors.js";
import type { AggregatorSigner } from "./aggregatorAccount.js";

export interface AggregatorOrder {
  zone: string;
  side: "buy" | "sell";
  /** Unix seconds, the delivery interval. */
  intervalStart: number;
  energyWh: number;
  pricePerKWh: number;
}

export type PlacedOrder = { outcome: "done"; orderId: string; status: string } | { outcome: "skipped" | "failed"; detail: string };

export async function placeAggregatorOrder(engine: Engine, signer: AggregatorSigner | undefined, o: AggregatorOrder, nowSeconds: number): Promise<PlacedOrder> {
  if (!signer) return { outcome: "skipped", detail: "no aggregator account: set AGGREGATOR_KEY (the community wallet) to trade the residual" };
  if (signer.zone !== o.zone) return { outcome: "skipped", detail: `the aggregator account is registered in zone ${signer.zone}, not ${o.zone}` };
  const market = engine.markets.find((m) => m.zone === o.zone);
  if (!market) return { outcome: "failed", detail: `no market for zone ${o.zone}` };
  const sell = o.side === "sell";
  const order = {
    maker: signer.address, side: sell ? 1 : 0, zone: market.zoneHex, deliveryStart: BigInt(o.intervalStart), deliveryEnd: BigInt(o.intervalStart + INTERVAL_SECONDS),
    energyWh: BigInt(o.energyWh), limitPricePerKWh: BigInt(o.pricePerKWh),
    // Sold energy is the community's mix (solar, storage, EV soak leftovers): source 4 "mixed".
    source: sell ? 4 : 0, acceptedSources: 0, minSellerReputationBps: 0,
    nonce: BigInt(`0x${randomBytes(16).toString("hex")}`),
    // Valid until its book's delivery starts (the gate closes before that anyway).
    expiry: BigInt(o.intervalStart),
  };
  try {
    const signature = await signer.signOrder(order);
    const placed = await engine.placeOrder({ order, signature }, nowSeconds);
    return { outcome: "done", orderId: placed.orderId, status: placed.status };
  } catch (err) {
    return { outcome: "failed", detail: err instanceof BaseError ? err.shortMessage : `the engine refused the order: ${(err as Error).message}` };
  }
}
