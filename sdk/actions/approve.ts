// Lets the market contract draw payments from the wallet: an ERC-20 approve() of the payment
// token, sent from the wallet over the chain's JSON-RPC. Settlement pulls each buy's payment
// against this allowance, so a buyer approves before buying.
import { maxUint256, type Hex } from "viem";
import { testEuroAbi } from "../../contracts/client/abi.js";
import { sendContractTx } from "../chain.js";
import type { EnergyContext } from "../context.js";
import { clientError } from "../errors.js";
import { parseDecimal } from "../units.js";
import { getChainInfo } from "./getChainInfo.js";

export interface ApproveParameters {
  /** Whole-token decimal string ("250.5"), "max" for unlimited, or base units as a bigint. */
  amount: string | bigint;
}

export type ApproveReturnType = { txHash: Hex; allowance: bigint; unlimited: boolean };

export async function approve(ctx: EnergyContext, params: ApproveParameters): Promise<ApproveReturnType> {
  const info = await getChainInfo(ctx);
  let allowance: bigint;
  if (typeof params.amount === "bigint") allowance = params.amount;
  else if (typeof params.amount === "string" && params.amount.trim().toLowerCase() === "max") allowance = maxUint256;
  else allowance = parseDecimal(params.amount, info.token.decimals, "amount", info.token.symbol);
  if (allowance < 0n || allowance > maxUint256) throw clientError("invalid_argument", "amount", "must be from 0 to 2^256-1 base units");
  const { hash } = await sendContractTx(ctx, { address: info.token.address, abi: testEuroAbi, functionName: "approve", args: [info.contracts.EnergyMarket, allowance] }, "approve");
  return { txHash: hash, allowance, unlimited: allowance === maxUint256 };
}
