// POST /v1/faucet: test tokens (and gas money) for the signed-in wallet. The node has a
// faucet on its embedded local chain only; elsewhere the client says so without asking.
import type { Address, Hex } from "viem";
import type { EnergyContext } from "../context.js";
import { clientError } from "../errors.js";
import { authedRequest } from "../session.js";
import { getChainInfo } from "./getChainInfo.js";

export interface RequestFaucetParameters {
  /** Whole tokens (the node allows 1 to 10,000; default 1,000). */
  amount?: number;
}

export type RequestFaucetReturnType = { address: Address; amount: bigint; txHash: Hex };

export async function requestFaucet(ctx: EnergyContext, params: RequestFaucetParameters = {}): Promise<RequestFaucetReturnType> {
  if (params.amount !== undefined && !Number.isSafeInteger(params.amount)) throw clientError("invalid_argument", "amount", "must be a whole number of tokens");
  const info = await getChainInfo(ctx);
  if (!info.local) throw clientError("faucet_unavailable", undefined, `chain ${info.chainId} is not the node's embedded local chain: there is no faucet; get ${info.token.symbol} elsewhere`);
  const body = params.amount === undefined ? {} : { amount: params.amount };
  const json = await authedRequest<{ address: Address; amount: string; txHash: Hex }>(ctx, { method: "POST", path: "/v1/faucet", body });
  return { address: json.address, amount: BigInt(json.amount), txHash: json.txHash };
}
