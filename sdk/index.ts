// The prosumer SDK: a client over the node's public HTTP API and the chain's JSON-RPC, with
// the wallet's key kept in this process. See createEnergyClient for the methods.
export { createEnergyClient, createEnergyContext, parsePrivateKey, type EnergyClient, type EnergyClientOptions } from "./createEnergyClient.js";
export { EnergyClientError, clientErrorCodes, type ClientErrorCode, type EnergyClientErrorSource } from "./errors.js";
export { findMarket, nextOpenInterval, resolveInterval, isoMinute, isoSecond } from "./markets.js";
export { amountFor, formatDecimal, formatEnergy, formatPricePerKWh, formatTokenAmount, kWhToWh, parseDecimal, whToKWh } from "./units.js";
export type { EnergyContext } from "./context.js";
export type * from "./types.js";
export { approve, type ApproveParameters, type ApproveReturnType } from "./actions/approve.js";
export { cancelOrder, type CancelOrderParameters, type CancelOrderReturnType } from "./actions/cancelOrder.js";
export { finalizeTrade, type FinalizeTradeParameters, type FinalizeTradeReturnType } from "./actions/finalizeTrade.js";
export { getAuditedTrade, processProof, type GetAuditedTradeReturnType } from "./actions/getAuditedTrade.js";
export { getBalance, type GetBalanceReturnType } from "./actions/getBalance.js";
export { getChainInfo, type GetChainInfoParameters, type GetChainInfoReturnType } from "./actions/getChainInfo.js";
export { getListings, type GetListingsParameters, type GetListingsReturnType } from "./actions/getListings.js";
export { getOrder, type GetOrderReturnType } from "./actions/getOrder.js";
export { getProfile, type GetProfileParameters, type GetProfileReturnType } from "./actions/getProfile.js";
export { getTrades, type GetTradesParameters, type GetTradesReturnType } from "./actions/getTrades.js";
export { listOrders, type ListOrdersParameters, type ListOrdersReturnType } from "./actions/listOrders.js";
export { login, type LoginReturnType } from "./actions/login.js";
export { logout } from "./actions/logout.js";
export { openDispute, type OpenDisputeParameters, type OpenDisputeReturnType } from "./actions/openDispute.js";
export { placeOrder, type OrderSide, type PlaceOrderParameters, type PlaceOrderReturnType, type TimeInForce } from "./actions/placeOrder.js";
export { reclaimTrade, type ReclaimTradeParameters, type ReclaimTradeReturnType } from "./actions/reclaimTrade.js";
export { releaseEarly, type ReleaseEarlyParameters, type ReleaseEarlyReturnType } from "./actions/releaseEarly.js";
export { requestFaucet, type RequestFaucetParameters, type RequestFaucetReturnType } from "./actions/requestFaucet.js";
export { takeListing, type TakeListingParameters, type TakeListingReturnType } from "./actions/takeListing.js";
export { verifyTradeEvidence, type VerifyTradeEvidenceParameters, type VerifyTradeEvidenceReturnType } from "./actions/verifyTradeEvidence.js";
