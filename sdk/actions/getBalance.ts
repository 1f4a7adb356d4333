// The wallet's money, read from the chain: payment-token balance, what the market may pull
// from it (the allowance an order's payment is drawn against), and ETH for gas.
import type { Address } from "viem";
import { testEuroAbi } from "../../contracts/client/abi.js";
import { chainClients, chainFailure } from "../chain.js";
import { requireWallet, type EnergyContext } from "../context.js";
import { getChainInfo } from "./getChainInfo.js";

export type GetBalanceReturnType = {
  address: Address;
  token: { address: Address; symbol: string; decimals: number };
  /** Token base units. */
  tokenBalance: bigint;
  /** Token base units the market contract may pull (ERC-20 allowance). */
  allowance: bigint;
  spender: Address;
  /** Wei. */
  eth: bigint;
};

export async function getBalance(ctx: EnergyContext): Promise<GetBalanceReturnType> {
  const { address } = requireWallet(ctx);
  const info = await getChainInfo(ctx);
  const { publicClient } = await chainClients(ctx);
  const token = { address: info.token.address, symbol: info.token.symbol, decimals: info.token.decimals };
  try {
    const [tokenBalance, allowance, eth] = await Promise.all([
      publicClient.readContract({ address: token.address, abi: testEuroAbi, functionName: "balanceOf", args: [address] }),
      publicClient.readContract({ address: token.address, abi: testEuroAbi, functionName: "allowance", args: [address, info.contracts.EnergyMarket] }),
      publicClient.getBalance({ address }),
    ]);
    return { address, token, tokenBalance, allowance, spender: info.contracts.EnergyMarket, eth };
  } catch (err) {
    throw chainFailure(err, "reading balances");
  }
}
