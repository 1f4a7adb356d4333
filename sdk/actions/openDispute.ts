// Buyer or seller disputes a trade after its delivery window (or contests the meter's
// pro-rata proposal within the dispute window): openDispute on the market contract with the
// trade and its proof. The reason travels as its keccak256 hash; the text stays with the caller.
import { keccak256, stringToBytes, type Hex } from "viem";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import { chainTime, marketCallAbi, readContract, sendContractTx } from "../chain.js";
import { requireWallet, type EnergyContext } from "../context.js";
import { clientError } from "../errors.js";
import { isoMinute } from "../markets.js";
import { getAuditedTrade } from "./getAuditedTrade.js";
import { getChainInfo } from "./getChainInfo.js";

export interface OpenDisputeParameters {
  tradeId: string | bigint;
  /** Why, in words: its hash goes on-chain. */
  reason: string;
}

export type OpenDisputeReturnType = { tradeId: bigint; txHash: Hex; reasonHash: Hex };

/** IEnergyMarket.TradeStatus, in order. */
export const chainTradeStatuses = ["open", "proposed", "contested", "settled", "refunded"] as const;

export async function openDispute(ctx: EnergyContext, params: OpenDisputeParameters): Promise<OpenDisputeReturnType> {
  const account = requireWallet(ctx);
  if (typeof params.reason !== "string" || params.reason.trim() === "") throw clientError("invalid_argument", "reason", "must say why the trade is disputed");
  const info = await getChainInfo(ctx);
  const { trade, proof } = await getAuditedTrade(ctx, { tradeId: params.tradeId });
  if (account.address !== trade.buyer && account.address !== trade.seller) {
    throw clientError("not_trade_party", "tradeId", `${account.address} is neither the buyer nor the seller of trade ${trade.tradeId}`);
  }
  const status = chainTradeStatuses[await readContract<number>(ctx, { address: info.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "tradeStatus", args: [trade.tradeId] }, "reading the trade's status")];
  if (status !== "open" && status !== "proposed") {
    throw clientError("invalid_trade_status", "tradeId", `trade ${trade.tradeId} is ${status}: only an open trade or a pending proposal can be disputed`);
  }
  const now = await chainTime(ctx);
  if (now < trade.deliveryEnd) {
    throw clientError("delivery_not_ended", "tradeId", `trade ${trade.tradeId}'s delivery ends at ${isoMinute(trade.deliveryEnd)} (chain time now ${isoMinute(now)}); a dispute can open after that`);
  }
  const reasonHash = keccak256(stringToBytes(params.reason));
  const { hash } = await sendContractTx(ctx, { address: info.contracts.EnergyMarket, abi: marketCallAbi, functionName: "openDispute", args: [trade, proof, reasonHash] }, `disputing trade ${trade.tradeId}`);
  return { tradeId: trade.tradeId, txHash: hash, reasonHash };
}
