// Anyone closes a dispute the contract says is over: finalizeDispute on the market with the
// trade and its proof, once chain time is past the dispute's deadline. An uncontested pro-rata
// proposal settles as proposed; a contest the arbiter left undecided falls back to the meter's
// word (or, without a report, refunds the buyer). The money goes to the trade's parties only;
// the caller pays the gas. The node's keeper does the same by itself (GET /v1/keeper/actions).
import { parseEventLogs, type Hex } from "viem";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import { chainTime, marketCallAbi, readContract, sendContractTx } from "../chain.js";
import { requireWallet, type EnergyContext } from "../context.js";
import { clientError } from "../errors.js";
import { isoSecond } from "../markets.js";
import { getAuditedTrade } from "./getAuditedTrade.js";
import { getChainInfo } from "./getChainInfo.js";
import { chainTradeStatuses } from "./openDispute.js";

export interface FinalizeTradeParameters {
  tradeId: string | bigint;
}

export type FinalizeTradeReturnType = {
  tradeId: bigint;
  txHash: Hex;
  /** What the trade settled at (TradeSettled): the seller's payout after fees and the buyer's refund. */
  sellerPayout: bigint;
  buyerRefund: bigint;
};

export async function finalizeTrade(ctx: EnergyContext, params: FinalizeTradeParameters): Promise<FinalizeTradeReturnType> {
  requireWallet(ctx);
  const info = await getChainInfo(ctx);
  const market = info.contracts.EnergyMarket;
  const { trade, proof } = await getAuditedTrade(ctx, { tradeId: params.tradeId });
  const status = chainTradeStatuses[await readContract<number>(ctx, { address: market, abi: energyMarketAbi, functionName: "tradeStatus", args: [trade.tradeId] }, "reading the trade's status")];
  if (status !== "proposed" && status !== "contested") {
    throw clientError("invalid_trade_status", "tradeId", `trade ${trade.tradeId} is ${status}: only a proposal or a contested dispute can be finalised`);
  }
  const dispute = await readContract<{ deadline: bigint }>(ctx, { address: market, abi: energyMarketAbi, functionName: "dispute", args: [trade.tradeId] }, "reading the trade's dispute");
  const now = await chainTime(ctx);
  if (now <= dispute.deadline) {
    const what = status === "proposed" ? "its dispute window" : "the arbitration timeout";
    throw clientError("dispute_window_open", "tradeId", `trade ${trade.tradeId}'s ${status} dispute can be finalised after ${what} ends at ${isoSecond(dispute.deadline)} (chain time now ${isoSecond(now)})`);
  }
  const { hash, receipt } = await sendContractTx(ctx, { address: market, abi: marketCallAbi, functionName: "finalizeDispute", args: [trade, proof] }, `finalising trade ${trade.tradeId}`);
  const settled = parseEventLogs({ abi: energyMarketAbi, logs: receipt.logs, eventName: "TradeSettled" }).find((l) => l.args.tradeId === trade.tradeId);
  return { tradeId: trade.tradeId, txHash: hash, sellerPayout: settled?.args.sellerPayout ?? 0n, buyerRefund: settled?.args.buyerRefund ?? 0n };
}
