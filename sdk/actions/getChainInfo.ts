// GET /v1/chain: chain id, JSON-RPC URL, contracts, payment token, the EIP-712 domain and
// types of an Order, and the markets with their price corridors. Read once per client; the
// SDK refuses a node whose domain or Order type would make signatures the contract rejects.
import { getAddress } from "viem";
import { orderTypes } from "../../contracts/client/order.js";
import type { EnergyContext } from "../context.js";
import { clientError } from "../errors.js";
import { apiRequest } from "../http.js";
import type { ChainInfo } from "../types.js";

export interface GetChainInfoParameters {
  /** Read it again instead of using the copy from the first call. */
  refresh?: boolean;
}

export type GetChainInfoReturnType = ChainInfo;

export async function getChainInfo(ctx: EnergyContext, params: GetChainInfoParameters = {}): Promise<GetChainInfoReturnType> {
  if (ctx.state.chain && !params.refresh) return ctx.state.chain;
  if (!ctx.state.chainPending || params.refresh) {
    ctx.state.chainPending = apiRequest<ChainInfo>(ctx, { method: "GET", path: "/v1/chain" })
      .then((info) => {
        checkChainInfo(info);
        ctx.state.chain = info;
        return info;
      })
      .finally(() => {
        ctx.state.chainPending = undefined;
      });
  }
  return ctx.state.chainPending;
}

function checkChainInfo(info: ChainInfo): void {
  const { domain } = info.eip712;
  if (domain.chainId !== info.chainId) {
    throw clientError("incompatible_node", "eip712.domain.chainId", `the node's signing domain names chain ${domain.chainId} but the node runs chain ${info.chainId}`);
  }
  if (getAddress(domain.verifyingContract) !== getAddress(info.contracts.EnergyMarket)) {
    throw clientError("incompatible_node", "eip712.domain.verifyingContract", `the node's signing domain names ${domain.verifyingContract}, not its market contract ${info.contracts.EnergyMarket}`);
  }
  if (info.eip712.primaryType !== "Order" || JSON.stringify(info.eip712.types.Order) !== JSON.stringify(orderTypes.Order)) {
    throw clientError("incompatible_node", "eip712.types", "the node's Order type differs from the market contract's that this SDK signs: upgrade the SDK or check the node");
  }
  if (getAddress(info.token.address) !== getAddress(info.contracts.PaymentToken)) {
    throw clientError("incompatible_node", "token.address", `the node's token ${info.token.address} is not its PaymentToken ${info.contracts.PaymentToken}`);
  }
}
