// Places a signed order: kWh and a price per kWh as decimal strings become the EIP-712 Order
// the market contract verifies (integer Wh, token base units per kWh), signed by the wallet
// with the node's domain and posted to POST /v1/trading/orders. Every rule the client can
// judge by itself (zone, corridor, gate closure, registration, allowance) is checked first,
// so a refused order costs no request to the order endpoint.
import { testEuroAbi } from "../../contracts/client/abi.js";
import { orderTypes, type Order } from "../../contracts/client/order.js";
import { chainClients, chainFailure } from "../chain.js";
import { requireWallet, type EnergyContext } from "../context.js";
import { clientError } from "../errors.js";
import { findMarket, resolveInterval } from "../markets.js";
import { authedRequest } from "../session.js";
import type { ChainInfo, MarketInfo, OrderRecord, ProsumerProfile } from "../types.js";
import { amountFor, formatEnergy, formatPricePerKWh, formatTokenAmount, kWhToWh, parseDecimal } from "../units.js";
import { getChainInfo } from "./getChainInfo.js";
import { getProfile } from "./getProfile.js";

export type OrderSide = "buy" | "sell";
export type TimeInForce = "gtc" | "ioc" | "fok";

export interface PlaceOrderParameters {
  side: OrderSide;
  /** Energy as a decimal string of kWh, at most 3 places (1 Wh): "1.5". */
  kWh: string;
  /** Limit price in tokens per kWh as a decimal string: "0.25". Omit with `market: true`. */
  pricePerKWh?: string | undefined;
  /** A market order: priced by the zone's reference price, bounded by the corridor; it never rests. */
  market?: boolean | undefined;
  /** "next" (default), unix seconds, or an ISO 8601 time starting a delivery interval. */
  interval?: string | number | undefined;
  /** Zone label or bytes32 id; default: the wallet's registered zone. */
  zone?: string | undefined;
  /** Sell: the source sold, one of the wallet's registered sources (default: the first). */
  source?: string | undefined;
  /** Buy: sources accepted (default: any). */
  acceptedSources?: string[] | undefined;
  /** Buy: least seller reputation, basis points (default 0: any). */
  minSellerReputationBps?: number | undefined;
  timeInForce?: TimeInForce | undefined;
  postOnly?: boolean | undefined;
}

export type PlaceOrderReturnType = OrderRecord;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export async function placeOrder(ctx: EnergyContext, params: PlaceOrderParameters): Promise<PlaceOrderReturnType> {
  const account = requireWallet(ctx);
  if (params.side !== "buy" && params.side !== "sell") throw clientError("invalid_argument", "side", `must be "buy" or "sell"`);
  const energyWh = kWhToWh(params.kWh, "kWh");
  if (energyWh === 0n) throw clientError("invalid_argument", "kWh", "must be more than 0 kWh");
  if (energyWh > MAX_SAFE) throw clientError("invalid_argument", "kWh", `must be at most ${formatEnergy(MAX_SAFE)}`);
  const market = params.market === true;
  if (market && params.pricePerKWh !== undefined) throw clientError("invalid_argument", "pricePerKWh", "give a limit price or ask for a market order, not both");
  if (!market && params.pricePerKWh === undefined) throw clientError("invalid_argument", "pricePerKWh", "is required for a limit order (or ask for a market order)");

  const info = await getChainInfo(ctx);
  const token = info.token;
  const price = market ? undefined : parseDecimal(params.pricePerKWh, token.decimals, "pricePerKWh", `${token.symbol} per kWh`);

  // The zone: as given (checked against the node's markets without asking anyone) or the wallet's own.
  let profile: ProsumerProfile | null | undefined;
  let marketInfo: MarketInfo;
  if (params.zone !== undefined) marketInfo = findMarket(info, params.zone);
  else {
    profile = await getProfile(ctx);
    if (!profile || !profile.zone) throw clientError("prosumer_not_active", "zone", `${account.address} is not a registered prosumer, so it has no zone to trade in`);
    marketInfo = findMarket(info, profile.zone);
  }

  const feedIn = BigInt(marketInfo.feedInTariff);
  const retail = BigInt(marketInfo.retailPrice);
  if (price !== undefined && (price < feedIn || price > retail)) {
    throw clientError(
      "price_outside_corridor", "pricePerKWh",
      `${formatPricePerKWh(price, token)} is outside zone ${marketInfo.zone}'s price corridor: at least the feed-in tariff ${formatPricePerKWh(feedIn, token)} and at most the retail price ${formatPricePerKWh(retail, token)}`,
    );
  }
  if (market && marketInfo.mode === "call") {
    throw clientError("invalid_argument", "market", `zone ${marketInfo.zone} clears by call auction, where every order waits for the auction: give a limit price instead`);
  }
  // A market order signs the corridor's far end as its limit; the node fills it at the book's prices.
  const limit = price ?? (params.side === "buy" ? retail : feedIn);

  const nowSeconds = Math.floor(ctx.now() / 1000);
  const start = resolveInterval(params.interval, marketInfo, info.intervalSeconds, nowSeconds);

  const side = params.side === "buy" ? 0 : 1;
  const { source, acceptedSources, minSellerReputationBps } = sidePreferences(info, params);

  // Registration: active, in this zone, and (to sell) owning the source.
  profile ??= await getProfile(ctx);
  if (!profile || profile.status !== "active") {
    throw clientError("prosumer_not_active", "zone", `${account.address} is ${profile ? profile.status : "not registered"}: only active registered prosumers trade`);
  }
  if (profile.zone !== marketInfo.zone) {
    throw clientError("prosumer_not_active", "zone", `${account.address} is registered in zone ${profile.zone}, not ${marketInfo.zone}: trades stay inside one zone`);
  }
  let sourceId = 0;
  if (side === 1) {
    const name = source ?? profile.sources[0];
    if (!name) throw clientError("source_not_registered", "source", `${account.address} has no registered energy source to sell`);
    if (!profile.sources.includes(name)) {
      throw clientError("source_not_registered", "source", `${name} is not among ${account.address}'s registered sources (${profile.sources.join(", ") || "none"})`);
    }
    sourceId = info.sources[name]!;
  }

  // A buy's payment is pulled at settlement: the allowance and balance must cover it now.
  if (side === 0) await checkCanPay(ctx, info, amountFor(energyWh, limit), `buying ${formatEnergy(energyWh)} at up to ${formatPricePerKWh(limit, token)}`);

  const order: Order = {
    maker: account.address,
    side,
    zone: marketInfo.zoneId,
    deliveryStart: BigInt(start),
    deliveryEnd: BigInt(start + info.intervalSeconds),
    energyWh,
    limitPricePerKWh: limit,
    source: sourceId,
    acceptedSources,
    minSellerReputationBps,
    nonce: randomNonce(),
    // The book closes before delivery starts; past that an order has nothing left to do.
    expiry: BigInt(start),
  };
  const signature = await account.signTypedData({ domain: info.eip712.domain, types: orderTypes, primaryType: "Order", message: order });
  return authedRequest<OrderRecord>(ctx, {
    method: "POST",
    path: "/v1/trading/orders",
    body: {
      order,
      signature,
      kind: market ? "market" : "limit",
      ...(params.timeInForce ? { timeInForce: params.timeInForce } : {}),
      ...(params.postOnly ? { postOnly: true } : {}),
    },
  });
}

function sidePreferences(info: ChainInfo, params: PlaceOrderParameters): { source: string | undefined; acceptedSources: number; minSellerReputationBps: number } {
  const known = Object.keys(info.sources);
  const sourceId = (name: string, field: string) => {
    const id = info.sources[name];
    if (id === undefined) throw clientError("invalid_argument", field, `${JSON.stringify(name)} is not an energy source; one of ${known.join(", ")}`);
    return id;
  };
  if (params.side === "sell") {
    if (params.acceptedSources?.length) throw clientError("invalid_argument", "acceptedSources", "is a buyer's preference; a sell order names its source");
    if (params.minSellerReputationBps) throw clientError("invalid_argument", "minSellerReputationBps", "is a buyer's preference");
    if (params.source !== undefined) sourceId(params.source, "source");
    return { source: params.source, acceptedSources: 0, minSellerReputationBps: 0 };
  }
  if (params.source !== undefined) throw clientError("invalid_argument", "source", "is what a seller sells; a buy order takes acceptedSources");
  const acceptedSources = (params.acceptedSources ?? []).reduce((mask, name) => mask | (1 << sourceId(name, "acceptedSources")), 0);
  const rep = params.minSellerReputationBps ?? 0;
  if (!Number.isInteger(rep) || rep < 0 || rep > 10_000) throw clientError("invalid_argument", "minSellerReputationBps", "must be a whole number of basis points from 0 to 10000");
  return { source: undefined, acceptedSources, minSellerReputationBps: rep };
}

/** Refuses a payment the wallet could not make: amount vs the market's allowance and the balance. */
export async function checkCanPay(ctx: EnergyContext, info: ChainInfo, amount: bigint, what: string): Promise<void> {
  const { address } = requireWallet(ctx);
  const { publicClient } = await chainClients(ctx);
  let allowance: bigint;
  let balance: bigint;
  try {
    [allowance, balance] = await Promise.all([
      publicClient.readContract({ address: info.token.address, abi: testEuroAbi, functionName: "allowance", args: [address, info.contracts.EnergyMarket] }),
      publicClient.readContract({ address: info.token.address, abi: testEuroAbi, functionName: "balanceOf", args: [address] }),
    ]);
  } catch (err) {
    throw chainFailure(err, "reading the allowance");
  }
  if (allowance < amount) {
    throw clientError("insufficient_allowance", "allowance", `${what} needs ${formatTokenAmount(amount, info.token)} approved for the market, but the allowance is ${formatTokenAmount(allowance, info.token)}: approve more first`);
  }
  if (balance < amount) {
    throw clientError("insufficient_balance", "balance", `${what} needs ${formatTokenAmount(amount, info.token)}, but the wallet holds ${formatTokenAmount(balance, info.token)}`);
  }
}

function randomNonce(): bigint {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return BigInt(`0x${Buffer.from(bytes).toString("hex")}`);
}
