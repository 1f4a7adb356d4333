// Everything a wallet or script needs to sign orders without this project's code: chain id,
// contract addresses, the payment token, and the EIP-712 domain and types of an Order.
import type { FastifyInstance } from "fastify";
import { orderTypes } from "../../contracts/client/order.js";
import { INTERVAL_SECONDS } from "../../engine/markets.js";

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
    sources: { solar: 1, wind: 2, storage: 3, mixed: 4 },
    markets: engine.markets.map((m) => ({
      zone: m.zone, zoneId: m.zoneHex, mode: m.mode, feedInTariff: m.feedInTariff, retailPrice: m.retailPrice, basePrice: m.basePrice,
      gateClosureMinutes: m.gateClosureMinutes, capacityKWh: m.capacityKWh ?? null,
    })),
  };
  const field = { type: "object", additionalProperties: true } as const;
  app.get("/v1/chain", {
    schema: {
      tags: ["chain"],
      summary: "Chain id, contracts, token, EIP-712 domain and types, markets",
      response: {
        200: {
          type: "object",
          required: ["chainId", "contracts", "token", "eip712", "markets"],
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
            intervalSeconds: { type: "integer" },
            timeZone: { type: "string", description: "the community's IANA time zone, e.g. Europe/Berlin" },
            sources: field,
            markets: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  zone: { type: "string" }, zoneId: { type: "string" }, mode: { type: "string" }, feedInTariff: { type: "integer" }, retailPrice: { type: "integer" },
                  basePrice: { type: "integer" }, gateClosureMinutes: { type: "integer" }, capacityKWh: { type: ["integer", "null"] },
                },
              },
            },
          },
        },
      },
    },
  }, async () => body);
}
