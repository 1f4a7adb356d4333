// /v1/status: how far the index reaches and how far behind the chain's head it is.
import type { FastifyInstance } from "fastify";
import { getCheckpoint } from "../../store/checkpoints.js";
import { fetchBlockHeader } from "../../sync/blocks.js";
import { isoTime } from "../serialize.js";
import { rejectUnknownQuery } from "./unknownQuery.js";

export function statusRoutes(app: FastifyInstance): void {
  app.get(
    "/v1/status",
    {
      schema: {
        // The indexer's checkpoint and the chain head (null when the chain cannot be reached)
        querystring: { type: "object", properties: {} },
        response: {
          200: {
            type: "object",
            required: ["chainId", "checkpoint", "head", "behindBlocks"],
            properties: {
              chainId: { type: "integer" },
              checkpoint: {
                type: ["object", "null"],
                properties: { blockNumber: { type: "string" }, blockHash: { type: "string" }, timestamp: { type: "string" }, time: { type: ["string", "null"] } },
              },
              head: { type: ["string", "null"] },
              behindBlocks: { type: ["string", "null"] },
            },
          },
          500: { $ref: "indexerProblem#" },
        },
      },
      preValidation: rejectUnknownQuery({ properties: {} }),
    },
    async () => {
      const { db, rpc, chainId } = app.indexer;
      const cp = await getCheckpoint(db, chainId);
      const head = await fetchBlockHeader(rpc, "latest").catch(() => undefined);
      return {
        chainId,
        checkpoint: cp ? { blockNumber: cp.block_number.toString(), blockHash: cp.block_hash, timestamp: cp.block_timestamp.toString(), time: isoTime(cp.block_timestamp) } : null,
        head: head ? head.number.toString() : null,
        behindBlocks: head && cp ? (head.number > cp.block_number ? head.number - cp.block_number : 0n).toString() : null,
      };
    },
  );
}
