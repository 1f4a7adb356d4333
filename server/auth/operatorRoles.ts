// Whether an address holds an operator role now, read from the chain: REGISTRAR_ROLE on the
// prosumer registry or DEFAULT_ADMIN_ROLE on the market. Login, refresh and the routes that
// spend the node's keys ask here, so a role revoked on chain stops working at once rather than
// when the holder's session ends. Answers are cached per block: a role changes only with a block.
import type { Address } from "viem";
import { energyMarketAbi, prosumerRegistryAbi } from "../../contracts/client/abi.js";
import { roleIds } from "../../contracts/client/deploy.js";
import type { ChainInfo } from "../context.js";

export type OperatorRolesChain = Pick<ChainInfo, "publicClient" | "contracts">;

export interface OperatorRoles {
  /** True when `address` holds REGISTRAR_ROLE on the registry or DEFAULT_ADMIN_ROLE on the market at the latest block. */
  isOperator(address: Address): Promise<boolean>;
}

/** One read of both roles at `blockNumber` (default latest). */
export async function readOperatorRole(chain: OperatorRolesChain, address: Address, blockNumber?: bigint): Promise<boolean> {
  const at = blockNumber === undefined ? {} : { blockNumber };
  const [registrar, admin] = await Promise.all([
    chain.publicClient.readContract({ address: chain.contracts.ProsumerRegistry, abi: prosumerRegistryAbi, functionName: "hasRole", args: [roleIds.REGISTRAR_ROLE, address], ...at }),
    chain.publicClient.readContract({ address: chain.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "hasRole", args: [roleIds.DEFAULT_ADMIN_ROLE, address], ...at }),
  ]);
  return registrar || admin;
}

export function createOperatorRoles(chain: OperatorRolesChain): OperatorRoles {
  let cachedBlock = -1n;
  let cache = new Map<Address, Promise<boolean>>();
  return {
    async isOperator(address) {
      // cacheTime 0: viem would otherwise answer from a block number up to one polling interval
      // old, and a revocation mined just before would still read as a role held.
      const block = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
      if (block !== cachedBlock) {
        cachedBlock = block;
        cache = new Map();
      }
      let answer = cache.get(address);
      if (!answer) {
        answer = readOperatorRole(chain, address, block);
        cache.set(address, answer);
        // A failed read is not an answer: the next request asks the chain again.
        answer.catch(() => cache.delete(address));
      }
      return answer;
    },
  };
}
