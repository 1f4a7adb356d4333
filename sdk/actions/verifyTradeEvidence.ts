// Checks a trade's delivery report the way an auditor who trusts no node would: from the node it
// takes only the evidence bytes (GET /v1/trades/:tradeId/evidence); the report's hash and
// delivered Wh, the meters' registered keys and the trades come from the chain's JSON-RPC, read
// here; the re-derivation is the bridge's own (bridge/verifyEvidence.ts). The market is the one
// GET /v1/chain names unless the caller pins it, and the registry is the market's own.
import { getAddress, isAddress, type Address, type Hex } from "viem";
import { readEvidenceOnChain } from "../../bridge/evidenceOnChain.js";
import { verifyEvidence, type VerifyEvidenceReturnType } from "../../bridge/verifyEvidence.js";
import { chainClients, chainFailure } from "../chain.js";
import type { EnergyContext } from "../context.js";
import { clientError } from "../errors.js";
import { apiRequestText } from "../http.js";
import { getChainInfo } from "./getChainInfo.js";
import { parseUintId } from "./takeListing.js";

export interface VerifyTradeEvidenceParameters {
  tradeId: string | bigint;
  /** The market contract to check against; default: the one the node's GET /v1/chain names. */
  market?: Address | string | undefined;
}

export type VerifyTradeEvidenceReturnType = VerifyEvidenceReturnType & {
  tradeId: bigint;
  market: Address;
  registry: Address;
  /** The evidence exactly as the node sent it (its keccak256: `evidenceHash`). */
  evidence: string;
  /** The trade's DeliveryConfirmed, when the chain has one. */
  report: { deliveredWh: bigint; evidenceHash: Hex; txHash: Hex; blockNumber: bigint; reportedAt: bigint } | undefined;
};

export type VerifyTradeEvidenceErrorType = import("../errors.js").EnergyClientError;

export async function verifyTradeEvidence(ctx: EnergyContext, params: VerifyTradeEvidenceParameters): Promise<VerifyTradeEvidenceReturnType> {
  const tradeId = parseUintId(params.tradeId, "tradeId");
  if (params.market !== undefined && !isAddress(params.market, { strict: false })) throw clientError("invalid_argument", "market", `${JSON.stringify(params.market)} is not an address`);
  const market = getAddress(params.market ?? (await getChainInfo(ctx)).contracts.EnergyMarket);
  const evidence = await apiRequestText(ctx, `/v1/trades/${tradeId}/evidence`);
  const { publicClient } = await chainClients(ctx);
  let found;
  try {
    found = await readEvidenceOnChain(publicClient, { market, tradeId, evidence });
  } catch (err) {
    throw chainFailure(err, `reading trade ${tradeId}'s report and the meters' keys`);
  }
  const result = verifyEvidence({ evidence, tradeId, onChain: found.onChain });
  const r = found.onChain.report;
  return {
    ...result,
    tradeId,
    market,
    registry: found.registry,
    evidence,
    report: r ? { deliveredWh: r.deliveredWh, evidenceHash: r.evidenceHash, txHash: found.reportTx!, blockNumber: found.reportBlock!, reportedAt: r.reportedAt } : undefined,
  };
}
