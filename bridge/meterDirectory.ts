// Which account owns which smart meter, the connection's export/import limits and the key that
// signs the meter's readings, as the prosumer registry says. Built from the registry's events and refreshed incrementally; a
// meter id not found after a refresh is unknown: its readings are rejected, never guessed.
import { getAbiItem, hexToString, stringToHex, type Address, type Hex, type PublicClient } from "viem";
import { prosumerRegistryAbi } from "../contracts/client/abi.js";
import { fetchLogs } from "./fetchLogs.js";
import { isMeterSignerSet } from "./readingSignature.js";

export interface MeterInfo {
  meterId: string;
  account: Address;
  zone: Hex;
  exportLimitW: bigint;
  importLimitW: bigint;
  /** 1 active, 2 suspended (IProsumerRegistry.Status). */
  status: number;
  /** The Ed25519 key (bytes32) that signs this meter's readings; undefined while it has none. */
  signer: Hex | undefined;
}

export interface MeterDirectory {
  /** From what is already known; no chain call. */
  byMeterId(meterId: string): MeterInfo | undefined;
  byAccount(account: Address): MeterInfo | undefined;
  /**
   * Known, or after one refresh (at most one per `minRefreshMs`, shared by callers). With
   * `refresh`, a known meter is looked up afresh too (same rate limit): a key just rotated on
   * chain must not turn the meter's first newly signed readings into dead letters.
   */
  lookup(meterId: string, options?: { refresh?: boolean }): Promise<MeterInfo | undefined>;
  /** Reads the registry events since the last refresh. */
  refresh(): Promise<void>;
  size(): number;
}

const registryEvents = [
  getAbiItem({ abi: prosumerRegistryAbi, name: "ProsumerRegistered" }),
  getAbiItem({ abi: prosumerRegistryAbi, name: "ProsumerUpdated" }),
  getAbiItem({ abi: prosumerRegistryAbi, name: "ProsumerStatusChanged" }),
  getAbiItem({ abi: prosumerRegistryAbi, name: "MeterSignerSet" }),
] as const;

/** A device id as the registry stores it (bytes32, like ethers' encodeBytes32String). */
export function meterIdToBytes32(meterId: string): Hex | undefined {
  if (Buffer.byteLength(meterId, "utf8") > 31) return undefined;
  return stringToHex(meterId, { size: 32 });
}

export function bytes32ToMeterId(value: Hex): string {
  return hexToString(value, { size: 32 }).replace(/\0+$/, "");
}

export function createRegistryMeterDirectory({
  client,
  registry,
  fromBlock,
  minRefreshMs = 1_000,
}: {
  client: PublicClient;
  registry: Address;
  fromBlock: bigint;
  minRefreshMs?: number;
}): MeterDirectory {
  const meters = new Map<string, MeterInfo>();
  const accounts = new Map<Address, MeterInfo>();
  // Keys are per meter in the registry; kept apart so an entry rebuilt by ProsumerUpdated keeps its key.
  const signers = new Map<string, Hex>();
  let nextBlock = fromBlock;
  let running: Promise<void> | undefined;
  let lastRefreshAt = 0;
  let scheduled: Promise<void> | undefined;

  async function pull() {
    const latest = await client.getBlockNumber({ cacheTime: 0 });
    if (latest < nextBlock) return;
    const logs = await fetchLogs(client, { address: registry, events: registryEvents, fromBlock: nextBlock, toBlock: latest });
    for (const log of logs) {
      if (log.eventName === "ProsumerStatusChanged") {
        const info = accounts.get(log.args.account);
        if (info) info.status = log.args.status;
        continue;
      }
      if (log.eventName === "MeterSignerSet") {
        const meterId = bytes32ToMeterId(log.args.meterId);
        const signer = isMeterSignerSet(log.args.signer) ? log.args.signer : undefined;
        if (signer) signers.set(meterId, signer);
        else signers.delete(meterId);
        const info = meters.get(meterId);
        if (info) info.signer = signer;
        continue;
      }
      const a = log.args;
      const previous = accounts.get(a.account);
      if (previous) meters.delete(previous.meterId);
      const info: MeterInfo = {
        meterId: bytes32ToMeterId(a.meterId),
        account: a.account,
        zone: a.zone,
        exportLimitW: a.exportLimitW,
        importLimitW: a.importLimitW,
        status: previous?.status ?? 1,
        signer: signers.get(bytes32ToMeterId(a.meterId)),
      };
      meters.set(info.meterId, info);
      accounts.set(info.account, info);
    }
    nextBlock = latest + 1n;
  }

  function refresh(): Promise<void> {
    running ??= pull().finally(() => {
      running = undefined;
      lastRefreshAt = Date.now();
    });
    return running;
  }

  return {
    byMeterId: (meterId) => meters.get(meterId),
    byAccount: (account) => accounts.get(account),
    size: () => meters.size,
    refresh,
    async lookup(meterId, options) {
      const known = meters.get(meterId);
      if ((known && !options?.refresh) || meterIdToBytes32(meterId) === undefined) return known;
      if (running) await running;
      else {
        const waitMs = lastRefreshAt + minRefreshMs - Date.now();
        if (waitMs <= 0) await refresh();
        // A reading that needs a fresh key waits for the next allowed look rather than being
        // judged on a copy that may predate the rotation; all such readings share that one look.
        else if (options?.refresh) await (scheduled ??= new Promise((r) => setTimeout(r, waitMs)).then(() => refresh()).finally(() => (scheduled = undefined)));
      }
      return meters.get(meterId);
    },
  };
}
