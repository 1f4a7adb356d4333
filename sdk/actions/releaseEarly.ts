// The buyer pays the seller in full from escrow, before or instead of the meter's report:
// releaseEarly on the market contract with the trade and its proof.
import type { Hex } from "viem";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import { marketCallAbi, readContract, sendContractTx } from "../chain.js";
import { requireWallet, type EnergyContext } from "../context.js";
import { clientError } from "../errors.js";
import { getAuditedTrade } from "./getAuditedTrade.js";
import { getChainInfo } from "./getChainInfo.js";
import { chainTradeStatuses } from "./openDispute.js";

export interface ReleaseEarlyParameters {
  tradeId: string | bigint;
}

export type ReleaseEarlyReturnType = { tradeId: bigint; txHash: Hex; amount: bigint };

export async function releaseEarly(ctx: EnergyContext, params: ReleaseEarlyParameters): Promise<ReleaseEarlyReturnType> {
  const account = requireWallet(ctx);
  const info = await getChainInfo(ctx);
  const { trade, proof } = await getAuditedTrade(ctx, { tradeId: params.tradeId });
  if (account.address !== trade.buyer) throw clientError("not_buyer", "tradeId", `only the buyer ${trade.buyer} can release trade ${trade.tradeId}'s payment early`);
  const status = chainTradeStatuses[await readContract<number>(ctx, { address: info.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "tradeStatus", args: [trade.tradeId] }, "reading the trade's status")];
  if (status === "settled" || status === "refunded") throw clientError("invalid_trade_status", "tradeId", `trade ${trade.tradeId} is already ${status}`);
  const { hash } = await sendContractTx(ctx, { address: info.contracts.EnergyMarket, abi: marketCallAbi, functionName: "releaseEarly", args: [trade, proof] }, `releasing trade ${trade.tradeId}`);
  return { tradeId: trade.tradeId, txHash: hash, amount: trade.amount };
}
