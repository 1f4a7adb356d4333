// Anyone refunds a trade nobody reported: reclaim on the market with the trade and its proof,
// once chain time is past its confirmation deadline (deliveryEnd + the market's confirmation
// window). The payment goes back to the trade's buyer whoever calls; the caller pays the gas.
// The node's keeper does the same by itself (GET /v1/keeper/actions).
import { type Address, type Hex } from "viem";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import { chainTime, marketCallAbi, readContract, sendContractTx } from "../chain.js";
import { requireWallet, type EnergyContext } from "../context.js";
import { clientError } from "../errors.js";
import { isoSecond } from "../markets.js";
import { getAuditedTrade } from "./getAuditedTrade.js";
import { getChainInfo } from "./getChainInfo.js";
import { chainTradeStatuses } from "./openDispute.js";

export interface ReclaimTradeParameters {
  tradeId: string | bigint;
}

export type ReclaimTradeReturnType = { tradeId: bigint; txHash: Hex; buyer: Address; amount: bigint };

export async function reclaimTrade(ctx: EnergyContext, params: ReclaimTradeParameters): Promise<ReclaimTradeReturnType> {
  requireWallet(ctx);
  const info = await getChainInfo(ctx);
  const market = info.contracts.EnergyMarket;
  const { trade, proof } = await getAuditedTrade(ctx, { tradeId: params.tradeId });
  const status = chainTradeStatuses[await readContract<number>(ctx, { address: market, abi: energyMarketAbi, functionName: "tradeStatus", args: [trade.tradeId] }, "reading the trade's status")];
  const unreportedContest = status === "contested" && !(await readContract<{ reported: boolean }>(ctx, { address: market, abi: energyMarketAbi, functionName: "dispute", args: [trade.tradeId] }, "reading the trade's dispute")).reported;
  if (status !== "open" && !unreportedContest) {
    throw clientError("invalid_trade_status", "tradeId", `trade ${trade.tradeId} is ${status}${status === "contested" ? " with a meter report" : ""}: only a trade without a meter report can be reclaimed`);
  }
  const [confirmationWindow] = await readContract<readonly [bigint, bigint, bigint]>(ctx, { address: market, abi: energyMarketAbi, functionName: "windows" }, "reading the market's windows");
  const deadline = trade.deliveryEnd + confirmationWindow;
  const now = await chainTime(ctx);
  if (now <= deadline) {
    throw clientError("confirmation_deadline_not_reached", "tradeId", `trade ${trade.tradeId} can be reclaimed after its confirmation deadline ${isoSecond(deadline)} (chain time now ${isoSecond(now)})`);
  }
  const { hash } = await sendContractTx(ctx, { address: market, abi: marketCallAbi, functionName: "reclaim", args: [trade, proof] }, `reclaiming trade ${trade.tradeId} for its buyer`);
  return { tradeId: trade.tradeId, txHash: hash, buyer: trade.buyer, amount: trade.amount };
}
