// The node's public JSON, as the SDK reads it. Amounts that may exceed 2^53 arrive as decimal
// strings; small integers (prices per kWh, Wh of one order, unix seconds) as numbers.
import type { Address, Hex } from "viem";

export interface MarketInfo {
  zone: string;
  zoneId: Hex;
  mode: "continuous" | "call";
  /** Price floor, token base units per kWh. */
  feedInTariff: number;
  /** Price ceiling, token base units per kWh. */
  retailPrice: number;
  basePrice: number;
  gateClosureMinutes: number;
  capacityKWh: number | null;
}

/** GET /v1/chain */
export interface ChainInfo {
  chainId: number;
  rpcUrl: string;
  local: boolean;
  contracts: { EnergyMarket: Address; ProsumerRegistry: Address; PaymentToken: Address };
  token: { address: Address; symbol: string; decimals: number };
  eip712: {
    domain: { name: string; version: string; chainId: number; verifyingContract: Address };
    primaryType: string;
    types: Record<string, { name: string; type: string }[]>;
  };
  intervalSeconds: number;
  sources: Record<string, number>;
  markets: MarketInfo[];
}

/** GET /v1/prosumers/:address */
export interface ProsumerProfile {
  address: Address;
  registered: boolean;
  status: "none" | "active" | "suspended";
  meterId: string | null;
  zone: string | null;
  exportLimitW: number;
  importLimitW: number;
  sources: string[];
  reputationBps: number;
}

export interface FillJson {
  fillId: number;
  side: "buy" | "sell";
  counterparty?: string;
  energyWh: number;
  pricePerKWh: number;
  /** Token base units. */
  amount: string;
  status: "pending" | "settling" | "executed" | "failed";
  tradeId?: string;
  txHash?: string;
  reason?: string;
}

export type OrderStatus = "open" | "filled" | "cancelled" | "expired" | "closed" | "rejected";

/** An order as the node keeps it (POST/GET/DELETE /v1/trading/orders). */
export interface OrderRecord {
  orderId: Hex;
  maker: Address;
  side: "buy" | "sell";
  zone: string;
  intervalStart: number;
  kind?: "limit" | "market";
  status: OrderStatus;
  reason?: string;
  sizeWh: number;
  filledWh: number;
  limitPricePerKWh: number;
  fills: FillJson[];
}

/** GET /v1/trading/listings */
export interface ListingJson {
  listingId: string;
  seller: Address;
  zone: string;
  energyWh: string;
  remainingWh: string;
  pricePerKWh: string;
  deliveryStart: number;
  deliveryEnd: number;
  expiry: number;
  source: number;
  status: "open" | "filled" | "cancelled";
}

export type TradeStatus = "executed" | "delivered" | "disputed" | "settled" | "refunded";

/** GET /v1/trading/history: one of the caller's trades with its delivery status. */
export interface TradeHistoryItem {
  tradeId: string;
  batchId: string;
  role: "buyer" | "seller";
  buyer: Address;
  seller: Address;
  zone: string;
  energyWh: string;
  pricePerKWh: string;
  amount: string;
  deliveryStart: number;
  deliveryEnd: number;
  source: number;
  status: TradeStatus;
  deliveredWh: string | null;
  txHash: string;
}

/** GET /v1/trades/:tradeId (the auditor API): the trade row, its batch and Merkle proof. */
export interface AuditedTradeJson {
  trade: {
    tradeId: string;
    batchId: string;
    listingId: string | null;
    seller: Address;
    buyer: Address;
    zone: Hex;
    zoneLabel: string | null;
    energyWh: string;
    pricePerKWh: string;
    amount: string;
    deliveryStart: string;
    deliveryEnd: string;
    source: string;
    communityFeeBps: number;
    networkFeePerKWh: string;
    status: TradeStatus;
    chainStatus: "open" | "proposed" | "contested" | "settled" | "refunded";
  };
  batch: { batchId: string; root: Hex; firstTradeId: string; tradeCount: string } | null;
  merkle: { leaf: Hex; proof: Hex[] };
}
