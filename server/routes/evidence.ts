// A delivery report's evidence, and its verification: GET /v1/trades/:tradeId/evidence answers
// the exact bytes the meter bridge stored (its window's document in bridge_evidence, or a
// version-2 document in bridge_decisions.evidence; their keccak256 went on-chain),
// GET .../evidence/verify re-derives the report from them and the chain: the hash against the
// market's DeliveryConfirmed, every reading's signature against the registry's MeterSignerSet
// history, the measurement and the allocation against the reported Wh (bridge/verifyEvidence.ts).
// The route reads the chain itself; an auditor who trusts no node does the same with the CLI
// (`energy verify-evidence <tradeId>`), from the evidence bytes alone.
import type { FastifyInstance } from "fastify";
import type { Kysely } from "kysely";
import { readEvidenceOnChain } from "../../bridge/evidenceOnChain.js";
import { evidenceHashInSlices } from "../../bridge/evidence.js";
import { verifyEvidence } from "../../bridge/verifyEvidence.js";
import type { BridgeDatabase } from "../../bridge/database.js";
import { readStoredEvidence } from "../../bridge/storedEvidence.js";
import { ApiError, problem } from "../problems.js";

const params = {
  type: "object",
  required: ["tradeId"],
  properties: { tradeId: { type: "string", pattern: "^(0|[1-9][0-9]{0,77})$", description: "the trade id (uint256, decimal)" } },
} as const;

const verificationSchema = {
  type: "object",
  required: ["tradeId", "verified", "deliveredWh", "reported", "problems", "readings", "evidenceHash", "evidence"],
  properties: {
    tradeId: { type: "string" },
    verified: { type: "boolean", description: "the hash, every signature, the measurement, the allocation and the reported Wh all check out" },
    deliveredWh: { type: ["string", "null"], description: "re-derived from the signed readings (null when the evidence is too broken to compute it)" },
    basis: { type: ["string", "null"], enum: ["measured", "seller_data_missing", "buyer_data_missing", null] },
    reported: {
      type: ["object", "null"],
      description: "the trade's DeliveryConfirmed on chain; null while there is none",
      required: ["deliveredWh", "evidenceHash", "txHash", "blockNumber", "reportedAt"],
      properties: {
        deliveredWh: { type: "string" }, evidenceHash: { type: "string" }, txHash: { type: "string" }, blockNumber: { type: "string" },
        reportedAt: { type: "string", format: "date-time" },
      },
    },
    problems: {
      type: "array",
      items: {
        type: "object", required: ["code", "path", "detail"],
        properties: { code: { type: "string" }, path: { type: "string" }, detail: { type: "string" } },
      },
    },
    readings: {
      type: "array",
      description: "each signed reading of the evidence and the registered key it verified under (null: none did)",
      items: {
        type: "object", required: ["party", "meter", "metric", "sha256", "signer"],
        properties: { party: { type: "string" }, meter: { type: "string" }, metric: { type: "string" }, sha256: { type: "string" }, signer: { type: ["string", "null"] } },
      },
    },
    evidenceHash: { type: "string", description: "keccak256 of `evidence`" },
    evidence: { type: "string", description: "the evidence exactly as stored: hash these bytes (UTF-8)" },
  },
} as const;

export async function evidenceRoutes(app: FastifyInstance): Promise<void> {
  const db = app.node.indexer.db as unknown as Kysely<BridgeDatabase>;
  const { chain } = app.node;

  async function storedEvidence(tradeId: string): Promise<string> {
    const evidence = await readStoredEvidence(db, BigInt(tradeId));
    if (evidence === undefined) {
      throw new ApiError("not_found", `the meter bridge has not decided trade ${tradeId}: its delivery window has not closed yet, or there is no such trade`, { field: "tradeId" });
    }
    return evidence;
  }

  app.get<{ Params: { tradeId: string } }>("/v1/trades/:tradeId/evidence", {
    schema: {
      tags: ["auditor"],
      summary: "The evidence of a trade's delivery report, exactly as hashed on chain",
      description: "The evidence of the trade's delivery window, shared by all its trades: the meters' signed readings, what they measured, " +
        "every trade's allocation inputs and result (bridge/evidence.ts; version 2, before, was one document per trade). " +
        "keccak256 of the body's bytes is the evidenceHash of the trade's DeliveryConfirmed; the `x-evidence-hash` header repeats it.",
      params,
      response: {
        200: { type: "object", description: "canonical JSON (keys sorted, bigints as decimal strings), sent byte for byte as stored", additionalProperties: true },
        400: problem, 404: problem,
      },
    },
  }, async (request, reply) => {
    const evidence = await storedEvidence(request.params.tradeId);
    // A string with a JSON content type goes out as it is: re-serialising could change the bytes.
    return reply.type("application/json; charset=utf-8").header("x-evidence-hash", await evidenceHashInSlices(evidence)).send(evidence);
  });

  app.get<{ Params: { tradeId: string } }>("/v1/trades/:tradeId/evidence/verify", {
    schema: {
      tags: ["auditor"],
      summary: "Re-derives a trade's delivery report from its evidence and the chain",
      description: "Checks keccak256(evidence) against the trade's DeliveryConfirmed, every reading's Ed25519 signature against the key the registry held " +
        "for its meter (MeterSignerSet), and recomputes the measured energy and the allocation to the reported deliveredWh. " +
        "`problems` names each check that failed; the same check runs in `energy verify-evidence <tradeId>` against the chain alone.",
      params,
      response: { 200: verificationSchema, 400: problem, 404: problem, 503: problem },
    },
  }, async (request) => {
    const { tradeId } = request.params;
    const evidence = await storedEvidence(tradeId);
    let found;
    try {
      found = await readEvidenceOnChain(chain.publicClient, { market: chain.contracts.EnergyMarket, tradeId: BigInt(tradeId), evidence });
    } catch (err) {
      throw new ApiError("unavailable", `reading the chain failed: ${(err as Error).message.split("\n")[0]}`, { cause: err, retryable: true });
    }
    const result = verifyEvidence({ evidence, tradeId: BigInt(tradeId), onChain: found.onChain });
    const report = found.onChain.report;
    return {
      tradeId,
      verified: result.ok,
      deliveredWh: result.deliveredWh?.toString() ?? null,
      basis: result.basis ?? null,
      reported: report
        ? {
            deliveredWh: report.deliveredWh.toString(), evidenceHash: report.evidenceHash, txHash: found.reportTx!, blockNumber: found.reportBlock!.toString(),
            reportedAt: new Date(Number(report.reportedAt) * 1000).toISOString(),
          }
        : null,
      problems: result.problems,
      readings: result.readings.map((r) => ({ ...r, signer: r.signer ?? null })),
      evidenceHash: result.evidenceHash,
      evidence,
    };
  });
}
