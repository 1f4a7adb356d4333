// Brings every trade of the day to a final state the way the contract allows, once the meter
// bridge has reported all of them:
// - a pro-rata proposal nobody contested is finalised after its dispute window (anyone may call
//   finalizeDispute; the operator relays them in Multicall3 batches);
// - a contested dispute is split by the arbiter at what the meter reported;
// - a trade nobody reported is reclaimed by its buyer after the confirmation deadline;
// then the fee recipients claim their fees. The simulated clock (and with it the chain) jumps
// past each deadline first.
import { encodeFunctionData, type Address, type Hex, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhatKey } from "../scripts/localChain.js";
import { energyMarketAbi } from "../contracts/client/abi.js";
import { amountFor } from "../contracts/client/amount.js";
import type { ChainLedger, LedgerTrade } from "./chainLedger.js";
import { multicall3Abi } from "./multicall3Contract.js";
import type { SimClock } from "./simClock.js";
import { createTransactionSender, type ContractCall, type TransactionSender } from "./sendTransactions.js";

const CALLS_PER_MULTICALL = 100;
/** Hardhat's development mnemonic; account 3 is the embedded chain's arbiter (server/startNode.ts). */

export interface CloseTradesParameters {
  client: PublicClient;
  chainId: number;
  market: Address;
  multicall: Address;
  operator: TransactionSender;
  ledger: ChainLedger;
  clock: SimClock;
  /** Buyer keys by address (lower case), for reclaims. */
  buyerKey: (buyer: Address) => Hex | undefined;
  /** Keys of the fee recipients, who claim what the day's settlements accrued to them. */
  feeRecipientKeys: readonly Hex[];
}

export interface CloseTradesReturnType {
  finalized: number;
  arbitrated: number;
  reclaimed: number;
  /** tEUR base units the fee recipients claimed. */
  feesClaimed: bigint;
}

export async function closeTrades(p: CloseTradesParameters): Promise<CloseTradesReturnType> {
  const { client, market, ledger, clock } = p;
  await ledger.sync();
  const [confirmationWindow] = await client.readContract({ address: market, abi: energyMarketAbi, functionName: "windows" });
  const result = { finalized: 0, arbitrated: 0, reclaimed: 0, feesClaimed: 0n };
  const all = [...ledger.trades.values()];

  const proposed = all.filter((t) => t.status === "proposed");
  const contested = all.filter((t) => t.status === "contested");
  if (proposed.length > 0 || contested.length > 0) {
    // Past every proposal's dispute window (DisputeOpened carries its deadline).
    const latestDeadline = proposed.reduce((m, t) => (t.disputeDeadline! > m ? t.disputeDeadline! : m), 0n);
    if (proposed.length > 0) await clock.advanceTo(Math.max(clock.nowSeconds(), Number(latestDeadline) + 1));
    const calls = proposed.map((t) => ({
      target: market, allowFailure: false,
      callData: encodeFunctionData({ abi: energyMarketAbi, functionName: "finalizeDispute", args: [t.trade, ledger.proofOf(t.trade.tradeId)] }),
    }));
    const txs: ContractCall[] = [];
    for (let i = 0; i < calls.length; i += CALLS_PER_MULTICALL) {
      const chunk = calls.slice(i, i + CALLS_PER_MULTICALL);
      txs.push({ to: p.multicall, data: encodeFunctionData({ abi: multicall3Abi, functionName: "aggregate3", args: [chunk] }), gas: 100_000n + 150_000n * BigInt(chunk.length), label: `finalizeDispute ×${chunk.length}` });
    }
    await p.operator.send(txs);
    result.finalized = proposed.length;

    if (contested.length > 0) {
      const arbiter = await createTransactionSender(client, hardhatKey(3), p.chainId);
      await arbiter.send(contested.map((t) => ({
        to: market,
        data: encodeFunctionData({ abi: energyMarketAbi, functionName: "resolveDispute", args: [t.trade, ledger.proofOf(t.trade.tradeId), meterSplit(t)] }),
        gas: 400_000n,
        label: `resolveDispute(${t.trade.tradeId})`,
      })));
      result.arbitrated = contested.length;
    }
    await ledger.sync();
  }

  // Trades nobody reported (the ledger is synced: a late report would show as proposed or settled).
  const open = [...ledger.trades.values()].filter((t) => t.status === "open");
  if (open.length > 0) {
    const lastEnd = open.reduce((m, t) => (t.trade.deliveryEnd > m ? t.trade.deliveryEnd : m), 0n);
    await clock.advanceTo(Math.max(clock.nowSeconds(), Number(lastEnd + confirmationWindow) + 1));
    const byBuyer = new Map<Address, LedgerTrade[]>();
    for (const t of open) byBuyer.set(t.trade.buyer, [...(byBuyer.get(t.trade.buyer) ?? []), t]);
    for (const [buyer, trades] of byBuyer) {
      const key = p.buyerKey(buyer);
      if (!key) throw new Error(`no key for buyer ${buyer} to reclaim ${trades.length} unreported trades`);
      await client.request({ method: "hardhat_setBalance" as never, params: [buyer, "0xde0b6b3a7640000"] as never });
      const sender = await createTransactionSender(client, key, p.chainId);
      await sender.send(trades.map((t) => ({
        to: market, data: encodeFunctionData({ abi: energyMarketAbi, functionName: "reclaim", args: [t.trade, ledger.proofOf(t.trade.tradeId)] }), gas: 300_000n, label: `reclaim(${t.trade.tradeId})`,
      })));
      result.reclaimed += trades.length;
    }
    await ledger.sync();
  }

  // Every trade is final: the fee recipients take what they are owed.
  for (const key of p.feeRecipientKeys) {
    const recipient = privateKeyToAccount(key).address;
    const owed = await client.readContract({ address: market, abi: energyMarketAbi, functionName: "feesOwed", args: [recipient] });
    if (owed === 0n) continue;
    await client.request({ method: "hardhat_setBalance" as never, params: [recipient, "0xde0b6b3a7640000"] as never });
    const sender = await createTransactionSender(client, key, p.chainId);
    await sender.send([{ to: market, data: encodeFunctionData({ abi: energyMarketAbi, functionName: "claimFees" }), gas: 200_000n, label: `claimFees(${recipient})` }]);
    result.feesClaimed += owed;
  }
  await ledger.sync();
  return result;
}

/** The arbiter's split when a party contested: what the meter reported, pro rata (nothing if it never reported). */
function meterSplit(t: LedgerTrade): bigint {
  const delivered = t.deliveries[0]?.deliveredWh ?? 0n;
  const credited = delivered < t.trade.energyWh ? delivered : t.trade.energyWh;
  return amountFor(credited, t.trade.pricePerKWh);
}
