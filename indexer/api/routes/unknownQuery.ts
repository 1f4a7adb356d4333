// A misspelt filter (`?sellr=0x…`) must not silently widen an auditor's query to every trade,
// whatever the host's Ajv settings do with additional properties: unknown query keys get a 400.
import type { FastifyReply, FastifyRequest } from "fastify";
import { problemOf, sendProblem } from "../problems.js";

export function rejectUnknownQuery(schema: { properties: Record<string, unknown> }) {
  const allowed = new Set(Object.keys(schema.properties));
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const query = (request.query ?? {}) as Record<string, unknown>;
    const unknown = Object.keys(query).find((k) => !allowed.has(k));
    if (unknown !== undefined) {
      const known = [...allowed].join(", ") || "none";
      return sendProblem(reply, problemOf("invalid_request", `querystring.${unknown} is not a known parameter (known: ${known})`, unknown));
    }
  };
}
