// What each buyer can pay, kept in memory from the payment token's events instead of two chain
// reads per buy order: intake checks a buy's cost against the maker's balance and its allowance
// to the market (createEngine.ts). An account is read from the chain once, at first sight, at
// the block the events were last pulled to; from then on the token's Transfer and Approval
// events move it, followed in the background (at most one pull a second, shared by every caller,
// as in registryDirectory.ts).
//
// Stale by up to a pull is safe with money: the market checks the buyer's balance and allowance
// again when it settles a batch (InsufficientFunds), so intake is an early filter that keeps
// orders the chain would refuse out of the books, not the guard.
import { getAbiItem, maxUint256, type Address, type PublicClient } from "viem";
import { testEuroAbi } from "../contracts/client/abi.js";
import { fetchLogs } from "../bridge/fetchLogs.js";
import type { PaymentFunds } from "./createEngine.js";

const tokenEvents = [getAbiItem({ abi: testEuroAbi, name: "Transfer" }), getAbiItem({ abi: testEuroAbi, name: "Approval" })] as const;

interface Funds {
  balance: bigint;
  /** Allowance to the market. */
  allowance: bigint;
}

export interface FundsDirectoryParameters {
  client: PublicClient;
  /** The ERC-20 the market settles in, and the market (the spender that matters). */
  contracts: { token: Address; market: Address };
  /** Least time between two pulls of new events, ms. */
  minRefreshMs?: number;
  logger?: { warn(o: object): void };
}

export type FundsDirectory = PaymentFunds & {
  /** Pulls the events since the last pull (one at a time); resolves when done. */
  refresh(): Promise<void>;
  /** Accounts followed. */
  size(): number;
};

export function createFundsDirectory(p: FundsDirectoryParameters): FundsDirectory {
  const minRefreshMs = p.minRefreshMs ?? 1_000;
  const market = p.contracts.market.toLowerCase();
  const accounts = new Map<string, Funds>();
  const firstReads = new Map<string, Promise<Funds>>();
  /** The next block to pull events from; undefined before the first pull, which starts at the
   *  head: no account is known then, so no earlier event can matter. */
  let nextBlock: bigint | undefined;
  let running: Promise<void> | undefined;
  let lastPullAt = 0;

  async function pull(): Promise<void> {
    // cacheTime 0: viem caches the block number for its polling interval, which would hide new blocks.
    const latest = await p.client.getBlockNumber({ cacheTime: 0 });
    if (nextBlock === undefined) {
      nextBlock = latest + 1n;
      return;
    }
    if (latest < nextBlock) return;
    const logs = await fetchLogs(p.client, { address: p.contracts.token, events: tokenEvents, fromBlock: nextBlock, toBlock: latest });
    for (const log of logs) {
      if (log.eventName === "Approval") {
        const known = accounts.get(log.args.owner.toLowerCase());
        if (known && log.args.spender.toLowerCase() === market) known.allowance = log.args.value;
        continue;
      }
      const { from, to, value } = log.args;
      const sender = accounts.get(from.toLowerCase());
      if (sender) {
        sender.balance -= value;
        // The market pulls a buyer's payment with transferFrom, which spends its allowance
        // without an Approval event (OpenZeppelin ERC20 v5); an unlimited allowance is never
        // spent. A plain transfer to the market would look the same: counting it as spent only
        // makes intake stricter than the chain, never looser.
        if (to.toLowerCase() === market && sender.allowance !== maxUint256) sender.allowance = sender.allowance > value ? sender.allowance - value : 0n;
      }
      const receiver = accounts.get(to.toLowerCase());
      if (receiver) receiver.balance += value;
    }
    nextBlock = latest + 1n;
  }

  function startPull(): Promise<void> {
    running ??= pull().finally(() => {
      running = undefined;
      lastPullAt = Date.now();
    });
    return running;
  }

  /** Everything up to now: a pull already under way may have started before the caller's last write. */
  async function refresh(): Promise<void> {
    if (running) await running.catch(() => undefined);
    return startPull();
  }

  function refreshInBackground(): void {
    if (running || Date.now() - lastPullAt < minRefreshMs) return;
    startPull().catch((err: unknown) => p.logger?.warn({ msg: "funds directory: pull failed; answers stay as they were", err: (err as Error).message }));
  }

  /**
   * An account not followed yet: pull to the head (an approval a block ago must count), then
   * read it at the block pulled to, so the events of every later pull apply on top exactly once.
   * A pull that finishes while the read is out moved past that block: read again.
   */
  async function firstRead(key: string, account: Address): Promise<Funds> {
    await refresh();
    for (;;) {
      const at = nextBlock! - 1n;
      const [balance, allowance] = await Promise.all([
        p.client.readContract({ address: p.contracts.token, abi: testEuroAbi, functionName: "balanceOf", args: [account], blockNumber: at }),
        p.client.readContract({ address: p.contracts.token, abi: testEuroAbi, functionName: "allowance", args: [account, p.contracts.market], blockNumber: at }),
      ]);
      if (nextBlock! - 1n !== at) continue;
      const funds = { balance, allowance };
      accounts.set(key, funds);
      return funds;
    }
  }

  return {
    refresh,
    size: () => accounts.size,

    async funds(account, options) {
      const key = account.toLowerCase();
      if (accounts.has(key) && options?.fresh) await refresh();
      const known = accounts.get(key);
      if (known) {
        refreshInBackground();
        return { ...known };
      }
      let reading = firstReads.get(key);
      if (!reading) {
        reading = firstRead(key, account).finally(() => firstReads.delete(key));
        firstReads.set(key, reading);
      }
      return { ...(await reading) };
    },
  };
}
