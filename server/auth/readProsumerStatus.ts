// A wallet's standing in the prosumer registry, read from the chain at the latest block:
// "active" (registered and not suspended), "suspended", or "none". Routes that let a wallet
// spend the community's money (EV charging plans) ask here rather than trusting a session.
import type { Address } from "viem";
import { prosumerRegistryAbi } from "../../contracts/client/abi.js";
import type { ChainInfo } from "../context.js";

export type ProsumerStatus = "none" | "active" | "suspended";

const statuses: readonly ProsumerStatus[] = ["none", "active", "suspended"];

export async function readProsumerStatus(chain: Pick<ChainInfo, "publicClient" | "contracts">, address: Address): Promise<ProsumerStatus> {
  const p = await chain.publicClient.readContract({ address: chain.contracts.ProsumerRegistry, abi: prosumerRegistryAbi, functionName: "getProsumer", args: [address] });
  return statuses[p.status] ?? "none";
}
