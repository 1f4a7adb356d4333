// The engine's view of prosumers, read from the chain: registry profile (zone, active, owned
// sources), the connection's power limits and the market's delivered/contracted reputation. Cached briefly: intake asks per
// order, the chain changes per block.
import type { Address, PublicClient } from "viem";
import { energyMarketAbi, prosumerRegistryAbi } from "../contracts/client/abi.js";
import type { ProsumerDirectory } from "./createEngine.js";

export function createChainDirectory(client: PublicClient, contracts: { registry: Address; market: Address }, ttlMs = 5_000): ProsumerDirectory {
  const profiles = new Map<string, { at: number; value: Promise<{ zone: `0x${string}`; active: boolean; sources: number }> }>();
  const reputations = new Map<string, { at: number; value: Promise<number> }>();
  const limits = new Map<string, { at: number; value: Promise<{ exportLimitW: bigint; importLimitW: bigint }> }>();
  const cached = <T>(map: Map<string, { at: number; value: Promise<T> }>, key: string, load: () => Promise<T>) => {
    const hit = map.get(key);
    if (hit && Date.now() - hit.at < ttlMs) return hit.value;
    const value = load();
    map.set(key, { at: Date.now(), value });
    value.catch(() => map.delete(key));
    return value;
  };
  return {
    profile: (account) =>
      cached(profiles, account.toLowerCase(), async () => {
        const [zone, active, sources] = await client.readContract({ address: contracts.registry, abi: prosumerRegistryAbi, functionName: "tradingProfile", args: [account] });
        return { zone, active, sources };
      }),
    connectionLimits: (account) =>
      cached(limits, account.toLowerCase(), async () => {
        const p = await client.readContract({ address: contracts.registry, abi: prosumerRegistryAbi, functionName: "getProsumer", args: [account] });
        return { exportLimitW: p.exportLimitW, importLimitW: p.importLimitW };
      }),
    reputationBps: (seller) =>
      cached(reputations, seller.toLowerCase(), async () =>
        Number(await client.readContract({ address: contracts.market, abi: energyMarketAbi, functionName: "sellerReputationBps", args: [seller] })),
      ),
  };
}
