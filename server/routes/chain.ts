// Everything a wallet or script needs to sign an order the node takes, without this project's
// code: chain id, contract addresses, the payment token, the EIP-712 domain and types of an
// Order, how each field is encoded (sides, sources), the interval grid, each market's corridor,
// gate closure and next open interval, the node's clock, and the rules the engine and the
// contract hold each field to (engine/createEngine.ts admit(), EnergyMarket._checkFill()).
import type { FastifyInstance } from "fastify";
import { EnergySource, orderTypes, SIDE_BUY, SIDE_SELL } from "../../contracts/client/order.js";
import { INTERVAL_SECONDS, nextTradableInterval } from "../../engine/markets.js";

/** Order.source values by name; `none` (0) is what a buy order carries, not a source. */
const sources = Object.fromEntries(Object.entries(EnergySource).filter(([name]) => name !== "none"));

/** What the engine and the contract require of each Order field, in words; the numbers are in the answer's other fields. */
export const orderRules = {
  maker: "the wallet's own address: an active prosumer registered in the order's zone, and the address signed in with SIWE (POST /v1/trading/orders refuses any other maker)",
  side: "sides.buy or sides.sell",
  zone: "a market's zoneId (bytes32); the wire body may give the zone's label instead, the signed value is the zoneId",
  deliveryStart: "unix seconds, a multiple of intervalSeconds, of an interval whose book is still open by the node's clock: now < deliveryStart - the market's gateClosureSeconds (markets[].nextDeliveryStart is the first such interval)",
  deliveryEnd: "deliveryStart + intervalSeconds",
  energyWh: "whole Wh, at least 1 and at most 2^53 - 1",
  limitPricePerKWh: "token base units per kWh, from the market's feedInTariff to its retailPrice inclusive (a market order signs the corridor's far end: retailPrice to buy, feedInTariff to sell)",
  source: "sell: the source the energy comes from (a value of sources), one the maker has registered; buy: 0",
  acceptedSources: "buy: a bitmask of 1 << source of the sources the buyer accepts, 0 for any; sell: 0",
  minSellerReputationBps: "buy: 0 to 10000, the least share of contracted energy a seller must have delivered, 0 for any; sell: 0",
  nonce: "any uint256 at or above the maker's nonce floor on EnergyMarket (nonceFloor(maker): 0 until the maker calls raiseNonceFloor, which voids every order with a lower nonce); nonces need not be sequential, only distinct for orders that are otherwise identical (an order is known by its EIP-712 hash, and the same signed order twice is refused as a duplicate): a random 128-bit value does",
  expiry: "unix seconds after now by the node's clock (the engine refuses an order at or past its expiry, and an unmatched order lapses then; a call market clears at gate closure, so there it must be after deliveryStart - gateClosureSeconds to take part); the contract refuses a fill once block time reaches expiry, so a match must still settle before it; no upper bound: the node's own clients sign deliveryStart, when nothing is left to trade",
  signature: "the maker's 65-byte ECDSA signature of the EIP-712 typed data { domain: eip712.domain, types: eip712.types, primaryType: \"Order\", message: order }",
  submit: "POST /v1/trading/orders { order, signature, kind?: limit|market, timeInForce?: gtc|ioc|fok (a call market takes gtc only), postOnly? } with Authorization: Bearer <token from POST /v1/auth/login>; uint fields as JSON numbers or decimal strings (a nonce above 2^53 as a string)",
} as const;

const ruleProperties = Object.fromEntries(Object.keys(orderRules).map((k) => [k, { type: "string" }]));

export async function chainRoutes(app: FastifyInstance): Promise<void> {
  const { chain, engine } = app.node;
  const body = {
    chainId: chain.chainId,
    rpcUrl: chain.rpcUrl,
    local: chain.local,
    contracts: chain.contracts,
    token: { address: chain.contracts.PaymentToken, symbol: chain.token.symbol, decimals: chain.token.decimals },
    eip712: { domain: chain.domain, primaryType: "Order", types: orderTypes },
    intervalSeconds: INTERVAL_SECONDS,
    // Dashboards and reports show times in the community's zone, not the viewer's.
    timeZone: app.node.timeZone ?? "Europe/Berlin",
    clock: app.node.config?.clock ?? "system",
    sides: { buy: SIDE_BUY, sell: SIDE_SELL },
    sources,
    orderRules,
  };
  const markets = engine.markets.map((m) => ({
    zone: m.zone, zoneId: m.zoneHex, mode: m.mode, feedInTariff: m.feedInTariff, retailPrice: m.retailPrice, basePrice: m.basePrice,
    gateClosureMinutes: m.gateClosureMinutes, gateClosureSeconds: m.gateClosureSeconds, capacityKWh: m.capacityKWh ?? null,
  }));
  const field = { type: "object", additionalProperties: true } as const;
  const integerMap = { type: "object", additionalProperties: { type: "integer" } } as const;
  app.get("/v1/chain", {
    schema: {
      tags: ["chain"],
      summary: "Chain id, contracts, token, EIP-712 domain and types, field encodings and rules, markets with their next open interval: all a wallet needs to sign an order",
      response: {
        200: {
          type: "object",
          required: ["chainId", "contracts", "token", "eip712", "intervalSeconds", "now", "sides", "sources", "orderRules", "markets"],
          properties: {
            chainId: { type: "integer" },
            rpcUrl: { type: "string" },
            local: { type: "boolean" },
            contracts: { type: "object", properties: { EnergyMarket: { type: "string" }, ProsumerRegistry: { type: "string" }, PaymentToken: { type: "string" } } },
            token: { type: "object", properties: { address: { type: "string" }, symbol: { type: "string" }, decimals: { type: "integer" } } },
            eip712: {
              type: "object",
              properties: {
                domain: { type: "object", properties: { name: { type: "string" }, version: { type: "string" }, chainId: { type: "integer" }, verifyingContract: { type: "string" } } },
                primaryType: { type: "string" },
                types: field,
              },
            },
            intervalSeconds: { type: "integer", description: "length of a delivery interval: deliveryStart is a multiple of it, deliveryEnd = deliveryStart + it" },
            timeZone: { type: "string", description: "the community's IANA time zone, e.g. Europe/Berlin" },
            now: { type: "integer", description: "the node's clock, unix seconds: gate closure and expiry are judged by it" },
            clock: { type: "string", enum: ["system", "chain"], description: "what the node's clock follows: the system's wall time, or the chain's block time (NODE_CLOCK=chain)" },
            sides: { type: "object", required: ["buy", "sell"], properties: { buy: { type: "integer" }, sell: { type: "integer" } }, description: "Order.side values" },
            sources: { ...integerMap, description: "Order.source values by name (a buy order's source is 0); acceptedSources is a bitmask of 1 << value" },
            orderRules: { type: "object", required: Object.keys(orderRules), properties: ruleProperties, description: "what the engine and the contract require of each Order field" },
            markets: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  zone: { type: "string" }, zoneId: { type: "string", description: "Order.zone (bytes32)" }, mode: { type: "string", description: "continuous, or call (cleared by auction at gate closure)" },
                  feedInTariff: { type: "integer", description: "least limitPricePerKWh, token base units per kWh" },
                  retailPrice: { type: "integer", description: "greatest limitPricePerKWh, token base units per kWh" },
                  basePrice: { type: "integer" },
                  gateClosureMinutes: { type: "integer", description: "a book closes this many minutes before its delivery starts" },
                  gateClosureSeconds: { type: "integer", description: "the same in seconds: an order needs now < deliveryStart - gateClosureSeconds" },
                  capacityKWh: { type: ["integer", "null"] },
                  nextDeliveryStart: { type: "integer", description: "the first interval (unix seconds) whose book is open at now" },
                  nextClosesAt: { type: "integer", description: "when that book closes (unix seconds)" },
                },
              },
            },
          },
        },
      },
    },
  }, async () => {
    const now = Math.floor(app.node.clock() / 1000);
    return {
      ...body,
      now,
      markets: markets.map((m) => {
        const next = nextTradableInterval(m, now);
        return { ...m, nextDeliveryStart: next, nextClosesAt: next - m.gateClosureSeconds };
      }),
    };
  });
}
