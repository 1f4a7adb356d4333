// JSON Schemas of the auditor API: what each route accepts and exactly what it may return
// (fastify serialises responses through them, so no column leaks by accident).
const uint = { type: "string", pattern: "^[0-9]+$" } as const;
const nullableUint = { type: ["string", "null"], pattern: "^[0-9]+$" } as const;
const hash = { type: "string", pattern: "^0x[0-9a-fA-F]{64}$" } as const;
const nullableHash = { type: ["string", "null"] } as const;
const address = { type: "string", pattern: "^0x[0-9a-fA-F]{40}$" } as const;
const nullableString = { type: ["string", "null"] } as const;
const time = { type: ["string", "null"], format: "date-time" } as const;

export const tradeStatuses = ["executed", "delivered", "disputed", "settled", "refunded"] as const;

export const tradeSchema = {
  type: "object",
  // Every field, always present (null when it does not apply yet), in this order.
  required: [
    "tradeId", "batchId", "listingId", "seller", "buyer", "zone", "zoneLabel", "energyWh", "pricePerKWh", "amount", "deliveryStart", "deliveryEnd",
    "deliveryStartTime", "deliveryEndTime", "source", "communityFeeBps", "networkFeePerKWh", "status", "chainStatus", "executed", "delivery", "dispute", "settlement",
  ],
  properties: {
    tradeId: uint,
    batchId: uint,
    listingId: nullableUint,
    seller: address,
    buyer: address,
    zone: hash,
    zoneLabel: nullableString,
    energyWh: uint,
    pricePerKWh: uint,
    amount: uint,
    deliveryStart: uint,
    deliveryEnd: uint,
    deliveryStartTime: time,
    deliveryEndTime: time,
    source: { type: "string" },
    communityFeeBps: { type: "integer" },
    networkFeePerKWh: uint,
    status: { type: "string", enum: tradeStatuses },
    chainStatus: { type: "string", enum: ["open", "proposed", "contested", "settled", "refunded"] },
    executed: {
      type: "object",
      properties: { blockNumber: uint, blockHash: hash, txHash: hash, logIndex: { type: "integer" }, timestamp: uint, time },
    },
    delivery: {
      type: ["object", "null"],
      properties: { deliveredWh: nullableUint, withinTolerance: { type: ["boolean", "null"] }, evidenceHash: nullableHash, txHash: hash, timestamp: nullableUint, time },
    },
    dispute: {
      type: ["object", "null"],
      properties: {
        openedBy: nullableString,
        reasonHash: nullableHash,
        proposedSellerAmount: nullableUint,
        deadline: nullableUint,
        txHash: hash,
        timestamp: nullableUint,
        resolvedBy: nullableString,
        sellerAmount: nullableUint,
        buyerAmount: nullableUint,
        resolvedTxHash: nullableHash,
      },
    },
    settlement: {
      type: ["object", "null"],
      properties: {
        sellerPayout: nullableUint,
        buyerRefund: nullableUint,
        communityFee: nullableUint,
        networkFee: nullableUint,
        releasedEarly: { type: "boolean" },
        txHash: hash,
        timestamp: nullableUint,
        time,
      },
    },
  },
} as const;

export const eventSchema = {
  type: "object",
  properties: {
    contract: { type: "string" },
    event: { type: "string" },
    blockNumber: uint,
    blockHash: hash,
    txHash: hash,
    txIndex: { type: "integer" },
    logIndex: { type: "integer" },
    timestamp: uint,
    time,
    args: { type: "object", additionalProperties: true },
  },
} as const;

const filterProperties = {
  seller: { type: "string", description: "seller address" },
  buyer: { type: "string", description: "buyer address" },
  zone: { type: "string", description: "grid zone: bytes32 hex or its label, e.g. ZONE-A" },
  status: { type: "string", enum: tradeStatuses },
  period: { type: "string", description: "delivery period: 2026, 2026-Q1, 2026-02, 2026-02-14, today, month, quarter or year, in days of the community's calendar (its time zone, DST included)" },
  from: { type: "string", description: "delivery start at or after: unix seconds or ISO 8601" },
  to: { type: "string", description: "delivery start before: unix seconds or ISO 8601" },
} as const;

export const tradeListQuerySchema = {
  type: "object",
  properties: {
    ...filterProperties,
    limit: { type: "integer", minimum: 1, maximum: 1000, default: 100 },
    cursor: { type: "string", maxLength: 200 },
    order: { type: "string", enum: ["asc", "desc"], default: "asc" },
  },
} as const;

export const tradeCsvQuerySchema = {
  type: "object",
  properties: { ...filterProperties, order: { type: "string", enum: ["asc", "desc"], default: "asc" } },
} as const;

export const tradeIdParamsSchema = {
  type: "object",
  required: ["tradeId"],
  properties: { tradeId: { type: "string", pattern: "^[0-9]{1,78}$" } },
} as const;

export const statsQuerySchema = {
  type: "object",
  properties: {
    zone: filterProperties.zone,
    period: filterProperties.period,
    from: filterProperties.from,
    to: filterProperties.to,
    interval: { type: "string", enum: ["15m", "1h", "1d"], default: "1h" },
  },
} as const;

export const reportParamsSchema = {
  type: "object",
  required: ["period"],
  properties: { period: { type: "string", maxLength: 10 } },
} as const;

export const reportQuerySchema = {
  type: "object",
  properties: { zone: filterProperties.zone },
} as const;

export const volumeSchema = {
  type: "object",
  properties: {
    trades: uint,
    energyWh: uint,
    energyKWh: { type: "string" },
    value: uint,
    vwapPerKWh: nullableUint,
  },
} as const;

export const disputesSchema = {
  type: "object",
  properties: { opened: uint, open: uint, resolved: uint },
} as const;

export const noQuerySchema = { type: "object", properties: {} } as const;
