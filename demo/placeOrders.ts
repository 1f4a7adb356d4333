// The wallet agents' orders for one delivery interval, each signed by its home's key (EIP-712,
// the market's digest, native secp256k1) and placed with POST /v1/trading/orders under the
// home's own session, a bounded number in flight. A refusal is kept with its problem code, not
// thrown: one bad order must not stop the community's trading.
import type { Address, Hex } from "viem";
import { SIDE_BUY, SIDE_SELL, EnergySource, type MarketDomain, type Order } from "../contracts/client/order.js";
import { createOrderHasher, signDigest } from "../engine/intake/orderSignature.js";
import { zoneToHex } from "../engine/markets.js";
import type { AgentOrder } from "./agentPricing.js";
import { mapConcurrent, type ApiClient } from "./apiClient.js";

export interface OrderToPlace {
  agent: AgentOrder;
  maker: Address;
  privateKey: Uint8Array;
  token: string;
  /** Unique per maker and order. */
  nonce: bigint;
  /** Unix seconds the order stops being fillable. */
  expiry: number;
  /** A sale's source (EnergySource); default solar, the home's PV surplus. */
  source?: number;
}

export interface PlacedOrder {
  agent: AgentOrder;
  maker: Address;
  /** The engine's order id (its EIP-712 digest); null when the API refused it. */
  orderId: Hex | null;
  status: string;
  /** The problem code of a refusal. */
  error?: string;
}

export interface PlaceOrdersParameters {
  api: ApiClient;
  domain: MarketDomain;
  orders: readonly OrderToPlace[];
  concurrency: number;
  intervalSeconds: number;
}

export function createOrderPlacer(domain: MarketDomain) {
  const hashOrder = createOrderHasher(domain);
  const zones = new Map<string, Hex>();
  const zoneHex = (zone: string) => {
    let hex = zones.get(zone);
    if (!hex) zones.set(zone, (hex = zoneToHex(zone)));
    return hex;
  };

  return async function placeOrders({ api, orders, concurrency, intervalSeconds }: Omit<PlaceOrdersParameters, "domain">): Promise<PlacedOrder[]> {
    return mapConcurrent(orders, concurrency, async (o) => {
      const a = o.agent;
      const sell = a.side === "sell";
      const order: Order = {
        maker: o.maker, side: sell ? SIDE_SELL : SIDE_BUY, zone: zoneHex(a.zone),
        deliveryStart: BigInt(a.intervalStart), deliveryEnd: BigInt(a.intervalStart + intervalSeconds),
        energyWh: BigInt(a.energyWh), limitPricePerKWh: BigInt(a.limitPricePerKWh),
        // What the home exports is its PV surplus unless told (a battery's sale); a buyer takes any source from any seller.
        source: sell ? (o.source ?? EnergySource.solar) : 0, acceptedSources: 0, minSellerReputationBps: 0,
        nonce: o.nonce, expiry: BigInt(o.expiry),
      };
      const signature = signDigest(o.privateKey, hashOrder(order));
      const body = {
        order: {
          maker: order.maker, side: order.side, zone: order.zone, deliveryStart: a.intervalStart, deliveryEnd: a.intervalStart + intervalSeconds,
          energyWh: a.energyWh, limitPricePerKWh: a.limitPricePerKWh, source: order.source, acceptedSources: 0, minSellerReputationBps: 0,
          nonce: o.nonce.toString(), expiry: o.expiry,
        },
        signature,
      };
      const res = await api.request("POST", "/v1/trading/orders", { body, token: o.token });
      if (res.status !== 201) return { agent: a, maker: o.maker, orderId: null, status: "refused", error: `${res.status} ${res.json?.code ?? ""}`.trim() };
      return { agent: a, maker: o.maker, orderId: res.json.orderId as Hex, status: res.json.status as string };
    });
  };
}
