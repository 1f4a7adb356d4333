// The engine's view of prosumers, kept in memory from the registry's events instead of one chain
// read per order: intake asks for every order, and behind a busy chain's queued writes those
// reads dominated order time. Known accounts are answered from memory while the events are
// followed in the background (at most one pull a second, shared by every caller); an account
// not seen yet is read from the chain once (a registration a block ago must not be refused).
// Besides the trading profile it keeps each connection's power limits (exportLimitW,
// importLimitW), which intake holds a maker's orders to per interval.
//
// Stale by up to a pull is safe with money: the market checks the same registry when it settles
// a fill (BuyerInactive, SellerInactive, SourceNotRegistered, ReputationTooLow), so intake is an
// early filter, not the guard. Reputation moves with deliveries, not registry events: it is read
// from the market and kept for `reputationTtlMs`.
import { getAbiItem, type Address, type Hex, type PublicClient } from "viem";
import { energyMarketAbi, prosumerRegistryAbi } from "../contracts/client/abi.js";
import { fetchLogs } from "../bridge/fetchLogs.js";
import type { ProsumerDirectory } from "./createEngine.js";

const registryEvents = [
  getAbiItem({ abi: prosumerRegistryAbi, name: "ProsumerRegistered" }),
  getAbiItem({ abi: prosumerRegistryAbi, name: "ProsumerUpdated" }),
  getAbiItem({ abi: prosumerRegistryAbi, name: "ProsumerStatusChanged" }),
] as const;

/** IProsumerRegistry.Status: None (never registered) and Active. */
const NONE = 0;
const ACTIVE = 1;

interface Profile {
  zone: Hex;
  active: boolean;
  sources: number;
  exportLimitW: bigint;
  importLimitW: bigint;
}

export interface RegistryDirectoryParameters {
  client: PublicClient;
  contracts: { registry: Address; market: Address };
  /** The registry's deployment block: events before it cannot exist. */
  fromBlock: bigint;
  /** Least time between two pulls of new events, ms. */
  minRefreshMs?: number;
  reputationTtlMs?: number;
  logger?: { warn(o: object): void };
}

export type RegistryDirectory = ProsumerDirectory & {
  /** Pulls the events since the last pull (one at a time); resolves when done. */
  refresh(): Promise<void>;
  size(): number;
};

export function createRegistryDirectory(p: RegistryDirectoryParameters): RegistryDirectory {
  const minRefreshMs = p.minRefreshMs ?? 1_000;
  const reputationTtlMs = p.reputationTtlMs ?? 30_000;
  const profiles = new Map<string, Profile>();
  const statuses = new Map<string, number>();
  const reputations = new Map<string, { at: number; value: Promise<number> }>();
  const firstReads = new Map<string, Promise<Profile>>();
  let nextBlock = p.fromBlock;
  let running: Promise<void> | undefined;
  let lastPullAt = 0;

  async function pull(): Promise<void> {
    // cacheTime 0: viem caches the block number for its polling interval, which would hide new blocks.
    const latest = await p.client.getBlockNumber({ cacheTime: 0 });
    if (latest < nextBlock) return;
    const logs = await fetchLogs(p.client, { address: p.contracts.registry, events: registryEvents, fromBlock: nextBlock, toBlock: latest });
    for (const log of logs) {
      const key = log.args.account.toLowerCase();
      if (log.eventName === "ProsumerStatusChanged") {
        statuses.set(key, log.args.status);
        const known = profiles.get(key);
        if (known) known.active = log.args.status === ACTIVE;
        continue;
      }
      // Registered or updated: zone and sources as of this event; the status is unchanged by it.
      const status = statuses.get(key) ?? ACTIVE;
      profiles.set(key, { zone: log.args.zone, active: status === ACTIVE, sources: log.args.sources, exportLimitW: log.args.exportLimitW, importLimitW: log.args.importLimitW });
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
    startPull().catch((err: unknown) => p.logger?.warn({ msg: "registry directory: pull failed; answers stay as they were", err: (err as Error).message }));
  }

  /**
   * A registered account is kept from this read on, with its status: the events of the next pull
   * are applied on top in order (each carries the whole record), which ends at the chain's state.
   * An unregistered one is not kept: its registration arrives with a later pull.
   */
  function firstRead(key: string, account: Address): Promise<Profile> {
    let reading = firstReads.get(key);
    if (reading) return reading;
    reading = p.client
      .readContract({ address: p.contracts.registry, abi: prosumerRegistryAbi, functionName: "getProsumer", args: [account] })
      .then((r) => {
        const profile: Profile = { zone: r.zone, active: r.status === ACTIVE, sources: r.sources, exportLimitW: r.exportLimitW, importLimitW: r.importLimitW };
        if (r.status !== NONE && !profiles.has(key)) {
          statuses.set(key, r.status);
          profiles.set(key, { ...profile });
        }
        return profile;
      })
      .finally(() => firstReads.delete(key));
    firstReads.set(key, reading);
    return reading;
  }

  async function lookup(account: Address): Promise<Profile> {
    const key = account.toLowerCase();
    refreshInBackground();
    const known = profiles.get(key);
    if (known) return known;
    // Not seen in the events pulled so far: the chain says (and the next pull records it).
    return firstRead(key, account);
  }

  return {
    refresh,
    size: () => profiles.size,

    async profile(account) {
      const { zone, active, sources } = await lookup(account);
      return { zone, active, sources };
    },

    async connectionLimits(account) {
      const { exportLimitW, importLimitW } = await lookup(account);
      return { exportLimitW, importLimitW };
    },

    reputationBps(seller) {
      const key = seller.toLowerCase();
      const hit = reputations.get(key);
      if (hit && Date.now() - hit.at < reputationTtlMs) return hit.value;
      const value = p.client
        .readContract({ address: p.contracts.market, abi: energyMarketAbi, functionName: "sellerReputationBps", args: [seller] })
        .then(Number);
      reputations.set(key, { at: Date.now(), value });
      value.catch(() => reputations.delete(key));
      return value;
    },
  };
}
