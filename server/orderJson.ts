// Orders on the wire: the EIP-712 `Order` struct as JSON, integers as JSON numbers or decimal
// strings (uint256 nonces do not fit a double), and the engine's records back out as JSON with
// amounts as decimal strings.
import { getAddress, type Hex } from "viem";
import type { Order } from "../contracts/client/order.js";
import type { FillRecord, OrderRecord } from "../engine/engineState.js";
import { zoneLabel, zoneToHex } from "../engine/markets.js";
import { ValidationError } from "../lib/errors.js";

// The decimal string first: the app's Ajv coerces types while it tries anyOf branches, so with
// the integer branch first a long decimal string (a uint256 nonce) became a lossy double, and the
// order's hash no longer matched what the wallet signed. String first, a JSON number is turned
// into its exact decimal text instead (and a negative or fractional one still fails both).
// A JSON number past 2^53 - 1 is no longer exact: larger values come as decimal strings.
const uint = { anyOf: [{ type: "string", pattern: "^[0-9]{1,78}$" }, { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER }] } as const;
const address = { type: "string", pattern: "^0x[0-9a-fA-F]{40}$" } as const;

export const orderSchema = {
  type: "object",
  additionalProperties: false,
  required: ["maker", "side", "zone", "deliveryStart", "deliveryEnd", "energyWh", "limitPricePerKWh", "nonce", "expiry"],
  properties: {
    maker: address,
    side: { type: "integer", enum: [0, 1], description: "0 buy, 1 sell" },
    zone: { type: "string", minLength: 1, maxLength: 66, description: "bytes32 zone id (0x + 64 hex) or its label, e.g. ZONE-A" },
    deliveryStart: uint,
    deliveryEnd: uint,
    energyWh: uint,
    limitPricePerKWh: { ...uint, description: "token base units per kWh" },
    source: { type: "integer", minimum: 0, maximum: 255, default: 0 },
    acceptedSources: { type: "integer", minimum: 0, maximum: 255, default: 0 },
    minSellerReputationBps: { type: "integer", minimum: 0, maximum: 65535, default: 0 },
    nonce: uint,
    expiry: uint,
  },
} as const;

export interface OrderJson {
  maker: string;
  side: number;
  zone: string;
  deliveryStart: number | string;
  deliveryEnd: number | string;
  energyWh: number | string;
  limitPricePerKWh: number | string;
  source?: number;
  acceptedSources?: number;
  minSellerReputationBps?: number;
  nonce: number | string;
  expiry: number | string;
}

const UINT64_MAX = (1n << 64n) - 1n;

function uintField(value: number | string, field: string, max = UINT64_MAX): bigint {
  const v = BigInt(value);
  if (v > max) throw new ValidationError(`order.${field}`, `must be at most ${max}`);
  return v;
}

/** The zone as signed (bytes32); a label is converted the way the registry stores it. */
export function zoneFromJson(zone: string, field = "order.zone"): Hex {
  if (/^0x[0-9a-fA-F]{64}$/.test(zone)) return zone.toLowerCase() as Hex;
  if (new TextEncoder().encode(zone).length > 32) throw new ValidationError(field, "must be a bytes32 hex id or a label of at most 32 bytes");
  return zoneToHex(zone);
}

export function orderFromJson(json: OrderJson): Order {
  return {
    maker: getAddress(json.maker),
    side: json.side,
    zone: zoneFromJson(json.zone),
    deliveryStart: uintField(json.deliveryStart, "deliveryStart"),
    deliveryEnd: uintField(json.deliveryEnd, "deliveryEnd"),
    energyWh: uintField(json.energyWh, "energyWh"),
    limitPricePerKWh: uintField(json.limitPricePerKWh, "limitPricePerKWh", (1n << 128n) - 1n),
    source: json.source ?? 0,
    acceptedSources: json.acceptedSources ?? 0,
    minSellerReputationBps: json.minSellerReputationBps ?? 0,
    nonce: uintField(json.nonce, "nonce", (1n << 256n) - 1n),
    expiry: uintField(json.expiry, "expiry"),
  };
}

export const fillSchema = {
  type: "object",
  required: ["fillId", "side", "energyWh", "pricePerKWh", "amount", "status"],
  properties: {
    fillId: { type: "integer" },
    side: { type: "string", enum: ["buy", "sell"], description: "this order's side in the fill" },
    counterparty: { type: "string" },
    energyWh: { type: "integer" },
    pricePerKWh: { type: "integer" },
    amount: { type: "string", description: "token base units" },
    status: { type: "string", enum: ["pending", "settling", "executed", "failed"] },
    tradeId: { type: "string" },
    txHash: { type: "string" },
    reason: { type: "string" },
  },
} as const;

export const orderRecordSchema = {
  type: "object",
  required: ["orderId", "maker", "side", "zone", "intervalStart", "status", "sizeWh", "filledWh", "limitPricePerKWh", "fills"],
  properties: {
    orderId: { type: "string" },
    maker: { type: "string" },
    side: { type: "string", enum: ["buy", "sell"] },
    zone: { type: "string" },
    intervalStart: { type: "integer" },
    kind: { type: "string" },
    status: { type: "string", enum: ["open", "filled", "cancelled", "expired", "closed", "rejected"] },
    reason: { type: "string" },
    sizeWh: { type: "integer" },
    filledWh: { type: "integer" },
    limitPricePerKWh: { type: "integer" },
    fills: { type: "array", items: fillSchema },
  },
} as const;

export function fillToJson(fill: FillRecord, orderId: Hex) {
  const side = fill.buyId === orderId ? "buy" : "sell";
  return {
    fillId: fill.fillId,
    side,
    // Checksummed like every other address the API returns (the maker may have signed lowercase).
    counterparty: getAddress(side === "buy" ? fill.seller : fill.buyer),
    energyWh: fill.energyWh,
    pricePerKWh: fill.price,
    amount: fill.amount.toString(),
    status: fill.status,
    ...(fill.tradeId !== undefined ? { tradeId: fill.tradeId.toString() } : {}),
    ...(fill.txHash ? { txHash: fill.txHash } : {}),
    ...(fill.reason ? { reason: fill.reason } : {}),
  };
}

export function orderToJson(order: OrderRecord, fills: FillRecord[]) {
  const o = order.accepted.order;
  return {
    orderId: order.id,
    maker: o.maker,
    side: o.side === 0 ? "buy" : "sell",
    zone: safeZoneLabel(o.zone),
    intervalStart: Number(o.deliveryStart),
    kind: order.accepted.kind,
    status: order.status,
    ...(order.reason ? { reason: order.reason } : {}),
    sizeWh: order.sizeWh,
    filledWh: order.filledWh,
    limitPricePerKWh: Number(o.limitPricePerKWh),
    fills: fills.map((f) => fillToJson(f, order.id)),
  };
}

export function safeZoneLabel(zone: Hex): string {
  try {
    return zoneLabel(zone);
  } catch {
    return zone;
  }
}
