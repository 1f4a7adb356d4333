// The community's own wallet (the "aggregator"): it signs the orchestrator's P2P offers and bids
// and the buy orders of EV charging plans, like any prosumer signs theirs (EIP-712, the engine's
// domain). Configured with AGGREGATOR_KEY; on the embedded chain a fixed Hardhat-derived key,
// funded and registered as a prosumer of its zone on a fresh deployment.
import { erc20Abi, maxUint256, type Account, type Address, type Chain, type Hex, type PublicClient, type Transport, type WalletClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { prosumerRegistryAbi, testEuroAbi } from "../../contracts/client/abi.js";
import { signOrder, sourceMask, type MarketDomain, type Order } from "../../contracts/client/order.js";
import { meterIdToBytes32 } from "../../bridge/meterDirectory.js";
import { zoneToHex } from "../../engine/markets.js";
import { keySender } from "../chain/keySender.js";

/** Hardhat account index of the embedded chain's aggregator (far from the test accounts 4..19). */
export const EMBEDDED_AGGREGATOR_INDEX = 99;
export const AGGREGATOR_METER_ID = "community-aggregator";
/** The community wallet trades for the whole zone (its deficit at the evening peak, every EV
 *  plan), so its connection is the zone's feeder: 20 MW each way (5,000 kWh a 15-minute
 *  interval). Intake and settleBatch hold it to this like any prosumer (registry limits are W). */
const AGGREGATOR_LIMIT_W = 20_000_000n;
const AGGREGATOR_FUNDS = 10_000n * 1_000_000n;

export interface AggregatorSigner {
  address: Address;
  /** The zone it is registered in: the only market its orders are accepted in. */
  zone: string;
  signOrder(order: Order): Promise<Hex>;
}

declare module "../context.js" {
  interface NodeServices {
    /** The community's wallet for the orchestrator's orders (server/orchestrator/aggregatorAccount.ts). */
    aggregator?: AggregatorSigner;
  }
}

export function aggregatorSigner(key: Hex, zone: string, domain: MarketDomain): AggregatorSigner {
  const account = privateKeyToAccount(key);
  return { address: account.address, zone, signOrder: (order) => signOrder(account, order, domain) };
}

/**
 * On a fresh embedded chain: gas money from the admin, tEUR from the faucet, registration as a
 * prosumer of `zone` with every source (it resells what the community stores and produces), and
 * the market allowed to pull its tEUR when its buys settle.
 */
export async function setUpAggregatorAccount(
  client: PublicClient, admin: WalletClient<Transport, Chain, Account>, aggregator: WalletClient<Transport, Chain, Account>,
  contracts: { PaymentToken: Address; ProsumerRegistry: Address; EnergyMarket: Address }, zone: string,
): Promise<void> {
  const address = aggregator.account.address;
  // The admin sends through its one nonce queue (server/chain/keySender.ts), as the routes do.
  const admins = keySender(client, admin.account);
  const hashes: Hex[] = [
    await admins.send({ to: address, value: 10n ** 19n }),
    await admins.send({ address: contracts.PaymentToken, abi: testEuroAbi, functionName: "faucet", args: [address, AGGREGATOR_FUNDS] }),
    await admins.send({
      address: contracts.ProsumerRegistry, abi: prosumerRegistryAbi, functionName: "registerProsumer",
      args: [address, meterIdToBytes32(AGGREGATOR_METER_ID)!, zoneToHex(zone), AGGREGATOR_LIMIT_W, AGGREGATOR_LIMIT_W, sourceMask(["solar", "wind", "storage", "mixed"])],
    }),
  ];
  for (const hash of hashes) {
    const receipt = await client.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new Error(`setting up the aggregator account failed in ${hash}`);
  }
  const approve = await aggregator.writeContract({ address: contracts.PaymentToken, abi: erc20Abi, functionName: "approve", args: [contracts.EnergyMarket, maxUint256] } as never);
  const receipt = await client.waitForTransactionReceipt({ hash: approve });
  if (receipt.status !== "success") throw new Error(`the aggregator's approval failed in ${approve}`);
}
