// A trade as the market contract needs it for every later call (dispute, release): the Trade
// struct and its Merkle proof, from the node's auditor API (GET /v1/trades/:tradeId). The
// client does not take them on trust: it re-encodes the leaf and checks the proof reaches the
// batch root before any transaction is signed with them.
import { concat, getAddress, keccak256, type Hex } from "viem";
import { tradeLeaf, type Trade } from "../../contracts/client/trade.js";
import type { EnergyContext } from "../context.js";
import { clientError } from "../errors.js";
import { apiRequest } from "../http.js";
import type { AuditedTradeJson } from "../types.js";
import { getChainInfo } from "./getChainInfo.js";
import { parseUintId } from "./takeListing.js";

export type GetAuditedTradeReturnType = { trade: Trade; proof: Hex[]; root: Hex; json: AuditedTradeJson };

/** The root `proof` leads to from `leaf`, pairs hashed in sorted order (OpenZeppelin's MerkleProof). */
export function processProof(leaf: Hex, proof: readonly Hex[]): Hex {
  let node = leaf;
  for (const sibling of proof) node = BigInt(node) < BigInt(sibling) ? keccak256(concat([node, sibling])) : keccak256(concat([sibling, node]));
  return node;
}

export async function getAuditedTrade(ctx: EnergyContext, params: { tradeId: string | bigint }): Promise<GetAuditedTradeReturnType> {
  const tradeId = parseUintId(params.tradeId, "tradeId");
  const info = await getChainInfo(ctx);
  const json = await apiRequest<AuditedTradeJson>(ctx, { method: "GET", path: `/v1/trades/${tradeId}` });
  const t = json.trade;
  const source = info.sources[t.source] ?? (t.source === "none" ? 0 : undefined);
  if (source === undefined) throw clientError("invalid_trade_proof", "tradeId", `the node describes trade ${tradeId} with an unknown source ${JSON.stringify(t.source)}`);
  const trade: Trade = {
    tradeId: BigInt(t.tradeId), batchId: BigInt(t.batchId), seller: getAddress(t.seller), buyer: getAddress(t.buyer), zone: t.zone,
    energyWh: BigInt(t.energyWh), pricePerKWh: BigInt(t.pricePerKWh), amount: BigInt(t.amount), deliveryStart: BigInt(t.deliveryStart),
    deliveryEnd: BigInt(t.deliveryEnd), source, communityFeeBps: t.communityFeeBps, networkFeePerKWh: BigInt(t.networkFeePerKWh),
  };
  if (trade.tradeId !== tradeId) throw clientError("invalid_trade_proof", "tradeId", `asked for trade ${tradeId}, the node answered with trade ${trade.tradeId}`);
  const leaf = tradeLeaf(trade);
  if (leaf !== json.merkle.leaf) throw clientError("invalid_trade_proof", "tradeId", `trade ${tradeId} as the node describes it does not encode to the leaf it gives`);
  if (!json.batch) throw clientError("invalid_trade_proof", "tradeId", `the node has no settlement batch for trade ${tradeId}`);
  if (processProof(leaf, json.merkle.proof) !== json.batch.root) throw clientError("invalid_trade_proof", "tradeId", `the node's proof for trade ${tradeId} does not reach batch ${json.batch.batchId}'s root`);
  return { trade, proof: json.merkle.proof, root: json.batch.root, json };
}
