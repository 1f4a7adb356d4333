// The wallet's side of the chain: viem clients over the JSON-RPC URL the node advertises (or
// one the caller gives), and contract calls that are simulated before they are sent, so a
// revert comes back as the contract's custom error with its values and costs no gas.
import {
  BaseError, ContractFunctionRevertedError, InsufficientFundsError, createPublicClient, createWalletClient, defineChain, http,
  type Abi, type Address, type Hex, type PublicClient, type TransactionReceipt,
} from "viem";
import { energyMarketAbi, testEuroAbi } from "../contracts/client/abi.js";
import { getChainInfo } from "./actions/getChainInfo.js";
import { requireWallet, type ChainClients, type EnergyContext } from "./context.js";
import { EnergyClientError, clientError } from "./errors.js";

/** The market's ABI plus the token's errors, so a failed payment inside a market call decodes too. */
export const marketCallAbi = [...energyMarketAbi, ...testEuroAbi.filter((item) => item.type === "error")] as const;

export function chainClients(ctx: EnergyContext): Promise<ChainClients> {
  ctx.state.clients ??= (async () => {
    const info = await getChainInfo(ctx);
    const url = ctx.rpcUrl ?? info.rpcUrl;
    const chain = defineChain({
      id: info.chainId, name: info.local ? "Embedded chain" : `Chain ${info.chainId}`,
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [url] } },
    });
    const transport = http(url, { retryCount: 1, timeout: 30_000 });
    const publicClient = createPublicClient({ chain, transport, pollingInterval: info.local ? 50 : 1_000 }) as PublicClient;
    let rpcChainId: number;
    try {
      rpcChainId = await publicClient.getChainId();
    } catch (err) {
      throw chainFailure(err, `reaching the chain at ${url}`);
    }
    if (rpcChainId !== info.chainId) {
      throw clientError("incompatible_node", "rpcUrl", `the JSON-RPC at ${url} serves chain ${rpcChainId}, but the node trades on chain ${info.chainId}`);
    }
    const walletClient = ctx.account ? createWalletClient({ account: ctx.account, chain, transport }) : undefined;
    return { publicClient, walletClient };
  })().catch((err: unknown) => {
    ctx.state.clients = undefined;
    throw err;
  });
  return ctx.state.clients;
}

/** The latest block's timestamp: the clock the contracts judge windows and expiries by. */
export async function chainTime(ctx: EnergyContext): Promise<bigint> {
  const { publicClient } = await chainClients(ctx);
  try {
    const block = await publicClient.getBlock({ blockTag: "latest" });
    return block.timestamp;
  } catch (err) {
    throw chainFailure(err, "reading the latest block");
  }
}

export async function readContract<T>(ctx: EnergyContext, call: { address: Address; abi: Abi; functionName: string; args?: readonly unknown[] }, what: string): Promise<T> {
  const { publicClient } = await chainClients(ctx);
  try {
    return (await publicClient.readContract(call as never)) as T;
  } catch (err) {
    throw chainFailure(err, what);
  }
}

export interface SentTransaction {
  hash: Hex;
  receipt: TransactionReceipt;
}

/** Simulates, signs locally, sends and waits for one contract call of the wallet. */
export async function sendContractTx(ctx: EnergyContext, call: { address: Address; abi: Abi; functionName: string; args: readonly unknown[] }, what: string): Promise<SentTransaction> {
  const account = requireWallet(ctx);
  const { publicClient, walletClient } = await chainClients(ctx);
  let hash: Hex;
  try {
    const { request } = (await publicClient.simulateContract({ ...call, account } as never)) as { request: unknown };
    hash = await walletClient!.writeContract(request as never);
  } catch (err) {
    throw chainFailure(err, what);
  }
  let receipt: TransactionReceipt;
  try {
    receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 120_000 });
  } catch (err) {
    throw new EnergyClientError({ code: "chain_unavailable", source: "chain", retryable: true, cause: err, detail: `${what}: sent as ${hash} but no receipt came; check the transaction before sending again` });
  }
  if (receipt.status !== "success") {
    throw new EnergyClientError({ code: "chain_rejected", source: "chain", detail: `${what}: transaction ${hash} reverted` });
  }
  return { hash, receipt };
}

/** A viem failure as an EnergyClientError: a revert names the custom error and its values. */
export function chainFailure(err: unknown, what: string): EnergyClientError {
  if (err instanceof EnergyClientError) return err;
  if (err instanceof BaseError) {
    const revert = err.walk((e) => e instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null;
    if (revert) {
      const name = revert.data?.errorName;
      const args = (revert.data?.args ?? []).map(String).join(", ");
      return new EnergyClientError({
        code: "chain_rejected", source: "chain", errorName: name, cause: err,
        detail: name ? `${what}: the contract refused with ${name}(${args})` : `${what}: the contract reverted${revert.reason ? ` (${revert.reason})` : ""}`,
      });
    }
    if (err.walk((e) => e instanceof InsufficientFundsError)) {
      return new EnergyClientError({ code: "chain_rejected", source: "chain", cause: err, detail: `${what}: the wallet has too little ETH to pay for gas` });
    }
    return new EnergyClientError({ code: "chain_unavailable", source: "chain", retryable: true, cause: err, detail: `${what}: ${err.shortMessage}` });
  }
  return new EnergyClientError({ code: "chain_unavailable", source: "chain", retryable: true, cause: err, detail: `${what}: ${(err as Error)?.message ?? String(err)}` });
}
