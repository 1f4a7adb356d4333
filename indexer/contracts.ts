// The contracts the indexer follows and how their logs are recognised. Logs are matched by
// address first: the market and the registry share AccessControl's event signatures.
import { getAddress, toEventSelector, type Abi, type AbiEvent, type Address, type Hex } from "viem";
import { energyMarketAbi, prosumerRegistryAbi } from "../contracts/client/abi.js";

export type ContractName = "EnergyMarket" | "ProsumerRegistry";

export interface IndexedContracts {
  EnergyMarket: Address;
  ProsumerRegistry: Address;
}

export const contractAbis = {
  EnergyMarket: energyMarketAbi,
  ProsumerRegistry: prosumerRegistryAbi,
} as const satisfies Record<ContractName, Abi>;

export interface EventDefinition {
  contract: ContractName;
  name: string;
  item: AbiEvent;
}

/** Per contract address (lower-case): its name and its events by topic0. */
export type EventLookup = Map<string, { contract: ContractName; byTopic: Map<Hex, EventDefinition> }>;

export function buildEventLookup(contracts: IndexedContracts): EventLookup {
  const lookup: EventLookup = new Map();
  for (const contract of Object.keys(contractAbis) as ContractName[]) {
    const byTopic = new Map<Hex, EventDefinition>();
    for (const item of contractAbis[contract] as Abi) {
      if (item.type !== "event") continue;
      byTopic.set(toEventSelector(item), { contract, name: item.name, item });
    }
    lookup.set(getAddress(contracts[contract]).toLowerCase(), { contract, byTopic });
  }
  return lookup;
}

export function contractAddresses(contracts: IndexedContracts): Address[] {
  return [getAddress(contracts.EnergyMarket), getAddress(contracts.ProsumerRegistry)];
}
