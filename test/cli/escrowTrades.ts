// Trades whose escrow a test wants to see closed, made on a real node's embedded chain: a
// seller's listing taken by a buyer (one trade per take, each its own settlement batch), the
// chain's clock moved to the second (evm_setNextBlockTimestamp + evm_mine), the meter oracle's
// role taken away and given back (so the bridge's reports revert and a trade stays unreported),
// and waits on the node's indexer. Shared by the keeper's tests and the CLI's finalize/reclaim tests.
import { erc20Abi, maxUint256, parseEventLogs, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import { roleIds } from "../../contracts/client/deploy.js";
import { zoneToHex } from "../../engine/markets.js";
import type { IndexerDatabase, TradeRow } from "../../indexer/store/schema.js";
import { hardhatKey } from "../../scripts/localChain.js";
import type { RunningNode } from "../../server/startNode.js";
import type { Kysely } from "kysely";
import { publicClientOf, walletOf } from "../server/helpers.js";

export const INTERVAL = 900;

async function rpc(node: RunningNode, method: string, params: unknown[] = []): Promise<unknown> {
  const res = await fetch(node.rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = (await res.json()) as { result?: unknown; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

/** The latest block's timestamp. */
export async function chainNow(node: RunningNode): Promise<number> {
  const block = (await rpc(node, "eth_getBlockByNumber", ["latest", false])) as { timestamp: Hex };
  return Number(BigInt(block.timestamp));
}

/** Mines a block at exactly `target` (or one second on, when the chain is already there) and waits for the node's clock to follow it. */
export async function moveChainTo(node: RunningNode, target: number): Promise<number> {
  const latest = await chainNow(node);
  // evm_increaseTime would add the wall time since the last block on top: a deadline test needs the second.
  if (target > latest) await rpc(node, "evm_setNextBlockTimestamp", [`0x${target.toString(16)}`]);
  await rpc(node, "evm_mine");
  const now = await chainNow(node);
  const deadline = Date.now() + 15_000;
  // NODE_CLOCK=chain: the node reads block time every 200 ms.
  while (node.services.clock() < now * 1000) {
    if (Date.now() > deadline) throw new Error(`the node's clock did not reach chain time ${now}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return now;
}

async function send(node: RunningNode, key: Hex, call: { address: Address; abi: readonly unknown[]; functionName: string; args?: readonly unknown[] }) {
  const wallet = walletOf(node.rpcUrl, key);
  const client = publicClientOf(node.rpcUrl);
  const hash = await wallet.writeContract(call as never);
  const receipt = await client.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`${call.functionName} reverted in ${hash}`);
  return receipt;
}

/**
 * `energies.length` trades between a seller and a buyer (ZONE-A test accounts) for the window
 * [start, start + 900): the seller lists solar energy, the buyer takes each size from it.
 */
export async function listingTrades(node: RunningNode, p: { sellerKey: Hex; buyerKey: Hex; start: number; energies: bigint[]; pricePerKWh?: bigint }): Promise<bigint[]> {
  const market = node.services.chain.contracts.EnergyMarket;
  await send(node, p.buyerKey, { address: node.services.chain.contracts.PaymentToken, abi: erc20Abi, functionName: "approve", args: [market, maxUint256] });
  const total = p.energies.reduce((a, b) => a + b, 0n);
  const created = await send(node, p.sellerKey, {
    address: market, abi: energyMarketAbi, functionName: "createListing",
    args: [zoneToHex("ZONE-A"), total, p.pricePerKWh ?? 200_000n, p.start, p.start + INTERVAL, p.start, 1],
  });
  const listingId = parseEventLogs({ abi: energyMarketAbi, logs: created.logs, eventName: "ListingCreated" })[0]!.args.listingId;
  const ids: bigint[] = [];
  for (const energy of p.energies) {
    const taken = await send(node, p.buyerKey, { address: market, abi: energyMarketAbi, functionName: "executeTrade", args: [listingId, energy] });
    ids.push(parseEventLogs({ abi: energyMarketAbi, logs: taken.logs, eventName: "TradeExecuted" })[0]!.args.tradeId);
  }
  return ids;
}

/** The embedded chain's meter oracle (Hardhat account 2) loses or regains METER_ORACLE_ROLE: without it the bridge's reports revert. */
export async function setMeterOracleRole(node: RunningNode, granted: boolean): Promise<void> {
  const oracle = privateKeyToAccount(hardhatKey(2)).address;
  await send(node, node.operatorKey!, {
    address: node.services.chain.contracts.EnergyMarket, abi: energyMarketAbi, functionName: granted ? "grantRole" : "revokeRole", args: [roleIds.METER_ORACLE_ROLE, oracle],
  });
}

export function indexerDb(node: RunningNode): Kysely<IndexerDatabase> {
  return node.services.indexer.db;
}

/** The indexed rows of `ids` once `done` holds for all of them (the indexer caught up with the chain first). */
export async function waitForTrades(node: RunningNode, ids: readonly bigint[], done: (t: TradeRow) => boolean, what: string, timeoutMs = 60_000): Promise<TradeRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await node.indexedBlock();
    const rows = await indexerDb(node).selectFrom("indexer_trades").selectAll().where("chain_id", "=", node.chainId).where("trade_id", "in", [...ids]).orderBy("trade_id").execute();
    if (rows.length === ids.length && rows.every(done)) return rows;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}: ${rows.map((r) => `${r.trade_id} ${r.chain_status}`).join(", ") || "no rows"}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every DisputeResolved and TradeRefunded of these trades, read from the chain. */
export async function closingEvents(node: RunningNode, ids: readonly bigint[]) {
  const client = publicClientOf(node.rpcUrl);
  const market = node.services.chain.contracts.EnergyMarket;
  const fromBlock = BigInt(node.deployment.blockNumber);
  const [resolved, refunded] = await Promise.all([
    client.getContractEvents({ address: market, abi: energyMarketAbi, eventName: "DisputeResolved", args: { tradeId: [...ids] }, fromBlock, strict: true }),
    client.getContractEvents({ address: market, abi: energyMarketAbi, eventName: "TradeRefunded", args: { tradeId: [...ids] }, fromBlock, strict: true }),
  ]);
  return { resolved, refunded };
}

/** The next interval start at least `lead` seconds after chain time. */
export async function nextWindow(node: RunningNode, lead = 120): Promise<number> {
  return Math.ceil((await chainNow(node) + lead) / INTERVAL) * INTERVAL;
}
