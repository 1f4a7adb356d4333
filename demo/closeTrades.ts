// Brings every trade of the day to a final state once the meter bridge has reported them, the
// way a community runs without anyone building trade structs and proofs by hand:
// - a contested dispute is split by the arbiter at what the meter reported (a decision only the
//   arbiter may make);
// - everything else waits for a deadline the market lets anyone act on, and the node's keeper
//   acts (server/keeper): an uncontested pro-rata proposal is finalised after its dispute
//   window, a trade nobody reported is reclaimed for its buyer after the confirmation deadline.
// The demo only moves the simulated clock (and with it the chain) to each deadline in turn and
// waits until the keeper has closed what became due; it sends no finalize or reclaim itself.
// Then the fee recipients claim their fees.
import { encodeFunctionData, type Address, type Hex, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhatKey } from "../scripts/localChain.js";
import { energyMarketAbi } from "../contracts/client/abi.js";
import { amountFor } from "../contracts/client/amount.js";
import type { ChainLedger, LedgerTrade } from "./chainLedger.js";
import type { SimClock } from "./simClock.js";
import { createTransactionSender } from "./sendTransactions.js";

/** Deadlines this close together are passed in one move of the clock. */
export const CLOSE_STEP_SECONDS = 60;
/** How long the keeper may take to close what one move made due (wall time). */
const KEEPER_TIMEOUT_MS = 60_000;

export interface CloseTradesParameters {
  client: PublicClient;
  chainId: number;
  market: Address;
  ledger: ChainLedger;
  clock: SimClock;
  /** The node's keeper account: the only one that should close a trade at a deadline. */
  keeper: Address;
  /** Keys of the fee recipients, who claim what the day's settlements accrued to them. */
  feeRecipientKeys: readonly Hex[];
  progress?: (line: string) => void;
}

export interface CloseTradesReturnType {
  arbitrated: number;
  /** Proposals and contests the keeper finalised, and trades it reclaimed (from the chain's events). */
  finalized: number;
  reclaimed: number;
  /** tEUR base units the fee recipients claimed. */
  feesClaimed: bigint;
  /** Chain times the clock was moved to, one past a group of deadlines each, in order. */
  steps: number[];
  /** Wall time the keeper took per step, longest. */
  maxKeeperWaitMs: number;
}

/** When the market lets anyone close `t`, chain time (unix s); undefined for a final trade. */
export function closingDeadline(t: LedgerTrade, confirmationWindow: bigint): bigint | undefined {
  if (t.status === "proposed" || t.status === "contested") return t.disputeDeadline;
  if (t.status === "open") return t.trade.deliveryEnd + confirmationWindow;
  return undefined;
}

export async function closeTrades(p: CloseTradesParameters): Promise<CloseTradesReturnType> {
  const { client, market, ledger, clock } = p;
  const progress = p.progress ?? (() => {});
  await ledger.sync();
  const [confirmationWindow] = await client.readContract({ address: market, abi: energyMarketAbi, functionName: "windows" });
  const result: CloseTradesReturnType = { arbitrated: 0, finalized: 0, reclaimed: 0, feesClaimed: 0n, steps: [], maxKeeperWaitMs: 0 };

  const contested = [...ledger.trades.values()].filter((t) => t.status === "contested");
  if (contested.length > 0) {
    const arbiter = await createTransactionSender(client, hardhatKey(3), p.chainId);
    await arbiter.send(contested.map((t) => ({
      to: market,
      data: encodeFunctionData({ abi: energyMarketAbi, functionName: "resolveDispute", args: [t.trade, ledger.proofOf(t.trade.tradeId), meterSplit(t)] }),
      gas: 400_000n,
      label: `resolveDispute(${t.trade.tradeId})`,
    })));
    result.arbitrated = contested.length;
    await ledger.sync();
  }

  // Every deadline in turn: the clock moves just past a group of them, the keeper closes them.
  for (;;) {
    const waiting = [...ledger.trades.values()].flatMap((t) => {
      const due = closingDeadline(t, confirmationWindow);
      return due === undefined ? [] : [{ t, due: Number(due) }];
    });
    if (waiting.length === 0) break;
    const first = Math.min(...waiting.map((w) => w.due));
    const group = waiting.filter((w) => w.due <= first + CLOSE_STEP_SECONDS);
    const to = Math.max(clock.nowSeconds(), Math.max(...group.map((w) => w.due)) + 1);
    await clock.advanceTo(to);
    result.steps.push(to);
    const started = performance.now();
    for (;;) {
      await ledger.sync();
      if (group.every((w) => w.t.status === "settled" || w.t.status === "refunded")) break;
      if (performance.now() - started > KEEPER_TIMEOUT_MS) {
        // The cross-check says which trades stayed open; the demo does not close them itself.
        progress(`the keeper left ${group.filter((w) => w.t.status !== "settled" && w.t.status !== "refunded").length} trades open ${KEEPER_TIMEOUT_MS / 1000} s after their deadline`);
        return finish();
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    result.maxKeeperWaitMs = Math.max(result.maxKeeperWaitMs, performance.now() - started);
  }
  return finish();

  async function finish(): Promise<CloseTradesReturnType> {
    const keeper = p.keeper.toLowerCase();
    for (const t of ledger.trades.values()) {
      if (t.resolution?.resolvedBy.toLowerCase() === keeper) result.finalized++;
      if (t.status === "refunded") result.reclaimed++;
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
}

/** The arbiter's split when a party contested: what the meter reported, pro rata (nothing if it never reported). */
function meterSplit(t: LedgerTrade): bigint {
  const delivered = t.deliveries[0]?.deliveredWh ?? 0n;
  const credited = delivered < t.trade.energyWh ? delivered : t.trade.energyWh;
  return amountFor(credited, t.trade.pricePerKWh);
}
