// What a live simulation learns from a running node before it trades: chain, contracts and the
// EIP-712 domain (GET /v1/chain), the MQTT broker its meter bridge listens on as GET /healthz
// names it in the mqtt check (a device credential's answer names it too, see
// onboardLiveHouseholds.ts), and how far the node's clock is from
// this machine's (GET /v1/trading/markets answers with the node's `now`), so a simulation follows
// a node that runs on chain time (NODE_CLOCK=chain) as well as one on wall time.
import { getAddress, type Address } from "viem";
import { marketDomain, type MarketDomain } from "../contracts/client/order.js";
import { BaseError } from "../lib/errors.js";
import { ApiRequestError, type ApiClient } from "./apiClient.js";

export interface NodeMarket {
  zone: string;
  mode: "continuous" | "call";
  feedInTariff: number;
  retailPrice: number;
  basePrice: number;
  gateClosureMinutes: number;
}

export interface DiscoveredNode {
  chainId: number;
  rpcUrl: string;
  /** The node's embedded chain: a faucet and Hardhat's well-known operator key. */
  local: boolean;
  contracts: { EnergyMarket: Address; ProsumerRegistry: Address; PaymentToken: Address };
  domain: MarketDomain;
  intervalSeconds: number;
  timeZone: string;
  markets: NodeMarket[];
  /** The broker the node's meter bridge uses, as its health check names it; undefined if it hides it (credentials) or runs no bridge. */
  mqttUrl: string | undefined;
  /** The node's clock minus this machine's, ms; 0 when they agree within 2 s. */
  clockOffsetMs: number;
}

export class NodeUnreachableError extends BaseError {
  override name = "NodeUnreachableError";
  constructor(url: string, cause: unknown) {
    super(`no node answers at ${url} (${(cause as Error).message ?? String(cause)}): start one with \`npm start\`, or pass --url`, { code: "node_unreachable", retryable: true, cause });
  }
}

/** Offsets under this are the rounding of the node's whole-second `now`, not another clock. */
const SAME_CLOCK_MS = 2_000;

export async function discoverNode(api: ApiClient, url: string): Promise<DiscoveredNode> {
  let chain;
  try {
    chain = await api.request("GET", "/v1/chain");
  } catch (err) {
    throw new NodeUnreachableError(url, err);
  }
  if (chain.status !== 200) throw new ApiRequestError(chain.status, chain.json, "GET /v1/chain");
  const c = chain.json as {
    chainId: number; rpcUrl: string; local: boolean; contracts: Record<string, string>; intervalSeconds: number; timeZone: string; markets: NodeMarket[];
  };
  const contracts = { EnergyMarket: getAddress(c.contracts.EnergyMarket!), ProsumerRegistry: getAddress(c.contracts.ProsumerRegistry!), PaymentToken: getAddress(c.contracts.PaymentToken!) };

  const health = await api.request("GET", "/healthz");
  const detail = (health.json as { checks?: Record<string, { detail?: string }> } | undefined)?.checks?.mqtt?.detail;
  // A URL whose credentials the node masked is no use to connect with.
  const mqttUrl = detail && /^(mqtts?|wss?):\/\//.test(detail) && !detail.includes("***@") ? detail : undefined;

  const before = Date.now();
  const markets = await api.request("GET", "/v1/trading/markets?status=open");
  const after = Date.now();
  if (markets.status !== 200) throw new ApiRequestError(markets.status, markets.json, "GET /v1/trading/markets");
  // `now` is whole seconds: its middle against the middle of the round trip.
  const offset = (markets.json.now as number) * 1000 + 500 - (before + after) / 2;

  return {
    chainId: c.chainId, rpcUrl: c.rpcUrl, local: c.local, contracts, domain: marketDomain(c.chainId, contracts.EnergyMarket),
    intervalSeconds: c.intervalSeconds, timeZone: c.timeZone, markets: c.markets, mqttUrl,
    clockOffsetMs: Math.abs(offset) < SAME_CLOCK_MS ? 0 : Math.round(offset),
  };
}
