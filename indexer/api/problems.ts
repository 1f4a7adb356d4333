// Errors of the auditor API as RFC 9457 problem+json, from one table of stable codes. 4xx
// bodies say what was wrong and which field; 5xx bodies never carry internal messages.
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { BaseError } from "../../lib/errors.js";

export const problemTable = {
  invalid_request: { status: 400, title: "Invalid request" },
  trade_not_found: { status: 404, title: "Trade not found" },
  route_not_found: { status: 404, title: "Not found" },
  chain_unavailable: { status: 503, title: "Chain unavailable" },
  internal_error: { status: 500, title: "Internal error" },
} as const;

export type ProblemCode = keyof typeof problemTable;

export class ApiError extends BaseError {
  override name = "ApiError";
  constructor(readonly problem: ProblemCode, detail: string, options: { field?: string; cause?: unknown } = {}) {
    super(detail, { code: problem, ...options });
  }
}

export const problemSchema = {
  $id: "indexerProblem",
  type: "object",
  required: ["type", "title", "status", "code", "detail"],
  properties: {
    type: { type: "string" },
    title: { type: "string" },
    status: { type: "integer" },
    code: { type: "string", enum: Object.keys(problemTable) },
    detail: { type: "string" },
    field: { type: "string" },
  },
} as const;

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ProblemCode;
  detail: string;
  field?: string;
}

export function problemOf(code: ProblemCode, detail: string, field?: string): Problem {
  const { status, title } = problemTable[code];
  return { type: `urn:p2p-energy:problem:${code}`, title, status, code, detail, ...(field ? { field } : {}) };
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).type("application/problem+json").send(problem);
}

/** The plugin's error handler: schema failures and ApiErrors become 4xx problems, anything else a bare 500. */
export function handleApiError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error.validation && error.validation.length > 0) {
    const first = error.validation[0]!;
    const missing = (first.params as { missingProperty?: string })?.missingProperty;
    const field = missing ?? first.instancePath.replace(/^\//, "").replace(/\//g, ".");
    const where = error.validationContext ?? "request";
    return sendProblem(reply, problemOf("invalid_request", `${where}${field ? `.${field}` : ""} ${first.message ?? "is invalid"}`, field || undefined));
  }
  // The host's refusals before a route runs (body parser, body size, media type) stay 4xx.
  if (!(error instanceof BaseError) && typeof error.statusCode === "number" && error.statusCode >= 400 && error.statusCode < 500) {
    return sendProblem(reply, problemOf("invalid_request", error.message, (error as { field?: string }).field));
  }
  if (error instanceof ApiError) {
    if (problemTable[error.problem].status >= 500) request.log.warn({ msg: "indexer api: upstream failure", code: error.problem, err: error.cause ?? error });
    return sendProblem(reply, problemOf(error.problem, error.shortMessage, error.field));
  }
  request.log.error({ msg: "indexer api: unexpected error", err: error });
  return sendProblem(reply, problemOf("internal_error", "the request failed on the server; see its log"));
}
