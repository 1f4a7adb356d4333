// Takes all or part of a fixed-price listing straight from the wallet: executeTrade on the
// market contract, which moves the payment into escrow and executes a trade. The listing is
// found through the node (GET /v1/trading/listings) and re-read from the chain, which is the
// truth about what is left of it.
import { getAddress, parseEventLogs, type Address, type Hex } from "viem";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import { chainTime, marketCallAbi, readContract, sendContractTx } from "../chain.js";
import { requireWallet, type EnergyContext } from "../context.js";
import { clientError, EnergyClientError } from "../errors.js";
import { isoMinute } from "../markets.js";
import { amountFor, formatEnergy, formatPricePerKWh, kWhToWh } from "../units.js";
import { getChainInfo } from "./getChainInfo.js";
import { getListings } from "./getListings.js";
import { getProfile } from "./getProfile.js";
import { checkCanPay } from "./placeOrder.js";

export interface TakeListingParameters {
  listingId: string | bigint;
  /** How much to take, decimal kWh; default: all that is left. */
  kWh?: string | undefined;
}

export type TakeListingReturnType = {
  tradeId: bigint;
  txHash: Hex;
  listingId: bigint;
  energyWh: bigint;
  pricePerKWh: bigint;
  /** Token base units now held in escrow. */
  amount: bigint;
};

interface ChainListing {
  seller: Address;
  remainingWh: bigint;
  source: number;
  zone: Hex;
  pricePerKWh: bigint;
  deliveryStart: number;
  deliveryEnd: number;
  expiry: number;
}

const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";

export function parseUintId(value: unknown, field: string): bigint {
  if (typeof value === "bigint" && value >= 0n) return value;
  if (typeof value === "string" && /^\d{1,78}$/.test(value.trim())) return BigInt(value.trim());
  throw clientError("invalid_argument", field, `${JSON.stringify(typeof value === "bigint" ? value.toString() : value)} is not an id (a whole number)`);
}

export async function takeListing(ctx: EnergyContext, params: TakeListingParameters): Promise<TakeListingReturnType> {
  const account = requireWallet(ctx);
  const listingId = parseUintId(params.listingId, "listingId");
  const requestedWh = params.kWh === undefined ? undefined : kWhToWh(params.kWh, "kWh");
  if (requestedWh === 0n) throw clientError("invalid_argument", "kWh", "must be more than 0 kWh");
  const info = await getChainInfo(ctx);

  const listed = (await getListings(ctx, { status: "open", limit: 500 })).find((l) => l.listingId === listingId.toString());
  if (!listed) throw clientError("listing_not_found", "listingId", `listing ${listingId} is not among the node's open listings (GET /v1/trading/listings)`);
  const onChain = await readContract<ChainListing>(ctx, { address: info.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "listing", args: [listingId] }, "reading the listing");
  if (onChain.seller === ZERO_ADDRESS) throw clientError("listing_not_found", "listingId", `listing ${listingId} was filled or cancelled on the chain`);

  const energyWh = requestedWh ?? onChain.remainingWh;
  if (energyWh > onChain.remainingWh) {
    throw clientError("insufficient_listing_energy", "kWh", `listing ${listingId} has ${formatEnergy(onChain.remainingWh)} left, less than the ${formatEnergy(energyWh)} asked for`);
  }
  const now = await chainTime(ctx);
  if (BigInt(onChain.expiry) <= now) throw clientError("listing_expired", "listingId", `listing ${listingId} expired at ${isoMinute(onChain.expiry)}`);
  if (getAddress(onChain.seller) === account.address) throw clientError("cannot_trade_with_self", "listingId", `listing ${listingId} is the wallet's own`);
  const profile = await getProfile(ctx);
  if (!profile || profile.status !== "active") throw clientError("prosumer_not_active", "listingId", `${account.address} is ${profile ? profile.status : "not registered"}: only active registered prosumers trade`);
  if (profile.zone !== listed.zone) throw clientError("prosumer_not_active", "listingId", `listing ${listingId} is in zone ${listed.zone}; ${account.address} trades in ${profile.zone}`);

  const amount = amountFor(energyWh, onChain.pricePerKWh);
  await checkCanPay(ctx, info, amount, `taking ${formatEnergy(energyWh)} at ${formatPricePerKWh(onChain.pricePerKWh, info.token)}`);
  const { hash, receipt } = await sendContractTx(ctx, { address: info.contracts.EnergyMarket, abi: marketCallAbi, functionName: "executeTrade", args: [listingId, energyWh] }, `taking listing ${listingId}`);
  const [executed] = parseEventLogs({ abi: energyMarketAbi, eventName: "TradeExecuted", logs: receipt.logs });
  if (!executed) throw new EnergyClientError({ code: "chain_rejected", source: "chain", detail: `transaction ${hash} executed no trade` });
  return { tradeId: executed.args.tradeId, txHash: hash, listingId, energyWh, pricePerKWh: onChain.pricePerKWh, amount };
}
