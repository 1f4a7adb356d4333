// Errors of the node's API as RFC 9457 problem+json, from one table of stable codes. A 4xx
// body says what was wrong and names the field; a 5xx body never carries an internal message.
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { IntakeLimitError, type IntakeLimitFigures } from "../engine/intake/errors.js";
import { BaseError, ValidationError } from "../lib/errors.js";

export const problemTable = {
  invalid_request: { status: 400, title: "Invalid request" },
  validation_failed: { status: 422, title: "Rule broken" },
  bad_signature: { status: 422, title: "Bad signature" },
  price_outside_corridor: { status: 422, title: "Price outside the corridor" },
  prosumer_not_active: { status: 422, title: "Not an active prosumer" },
  source_not_registered: { status: 422, title: "Source not registered" },
  book_closed: { status: 422, title: "Book closed" },
  book_quarantined: { status: 422, title: "Book taken out of the market" },
  /** An order's signature is not in the one form the market contract verifies (65 bytes, v 27/28, low s). */
  non_canonical_signature: { status: 422, title: "Signature not in canonical form" },
  /** The order would take its maker past its connection's export or import limit for the interval. */
  connection_limit_exceeded: { status: 422, title: "Connection limit exceeded" },
  /** The buyer's allowance to the market does not cover its open buys and this one. */
  insufficient_allowance: { status: 422, title: "Allowance too small" },
  /** The buyer's balance does not cover its open buys and this one. */
  insufficient_balance: { status: 422, title: "Balance too small" },
  /** The order's interval is further ahead than books are kept (BOOK_HORIZON_DAYS). */
  beyond_book_horizon: { status: 422, title: "Beyond the book horizon" },
  order_not_open: { status: 409, title: "Order not open" },
  duplicate_order: { status: 409, title: "Duplicate order" },
  unauthorized: { status: 401, title: "Not signed in" },
  token_expired: { status: 401, title: "Token expired" },
  session_expired: { status: 401, title: "Session reached its maximum lifetime" },
  login_refused: { status: 401, title: "Login refused" },
  forbidden: { status: 403, title: "Forbidden" },
  not_order_maker: { status: 403, title: "Not your order" },
  operator_only: { status: 403, title: "Operator only" },
  prosumer_only: { status: 403, title: "Registered prosumers only" },
  not_found: { status: 404, title: "Not found" },
  order_not_found: { status: 404, title: "Order not found" },
  route_not_found: { status: 404, title: "Not found" },
  conflict: { status: 409, title: "Conflict" },
  vpp_not_found: { status: 404, title: "VPP not found" },
  vpp_resource_not_found: { status: 404, title: "VPP resource not found" },
  vpp_exists: { status: 409, title: "VPP exists" },
  vpp_resource_exists: { status: 409, title: "VPP resource exists" },
  resource_not_found: { status: 404, title: "Resource not found" },
  resource_taken: { status: 409, title: "Resource id taken" },
  not_resource_owner: { status: 403, title: "Not your resource" },
  event_not_found: { status: 404, title: "Event not found" },
  event_exists: { status: 409, title: "Event exists" },
  event_started: { status: 409, title: "Event started" },
  event_closed: { status: 409, title: "Event closed" },
  resource_not_targeted: { status: 422, title: "Resource not targeted" },
  nothing_to_apply: { status: 409, title: "No dispatch to apply" },
  not_meter_owner: { status: 403, title: "Not your meter" },
  /** The account that trades on a meter sent that meter's reading: a seller cannot vouch for itself. */
  self_reported_reading: { status: 403, title: "A meter's own trader cannot report its readings" },
  /** A wallet other than an operator sent a reading: only the meter's device credential may. */
  device_credential_required: { status: 403, title: "Readings come from the meter's device credential" },
  /** A device credential sent a reading of another meter (or is not a meter's). */
  device_not_this_meter: { status: 403, title: "Not this device's meter" },
  /** HTTP Basic with a device credential that is wrong or revoked. */
  device_credential_refused: { status: 401, title: "Device credential refused" },
  device_not_found: { status: 404, title: "Device not found" },
  device_exists: { status: 409, title: "Device credential exists" },
  device_revoked: { status: 409, title: "Device credential revoked" },
  device_id_reserved: { status: 409, title: "Device id reserved" },
  reading_rejected: { status: 422, title: "Reading rejected" },
  insufficient_history: { status: 422, title: "Not enough history" },
  no_balance_data: { status: 422, title: "No supply and demand to balance" },
  ev_plan_not_found: { status: 404, title: "EV charging plan not found" },
  ev_plan_limit: { status: 422, title: "EV charging plan limit reached" },
  aggregator_spend_limit: { status: 422, title: "Community wallet's daily spending limit reached" },
  payload_too_large: { status: 413, title: "Payload too large" },
  /** The request (headers and body) did not arrive within HTTP_REQUEST_TIMEOUT_MS; the socket is closed. */
  request_timeout: { status: 408, title: "Request timeout" },
  /** A path parameter longer than the router takes (100 characters). */
  uri_too_long: { status: 414, title: "URI too long" },
  /** The request line and headers are larger than the HTTP server reads (16 KiB): a long URL or many headers. */
  headers_too_large: { status: 431, title: "Request header fields too large" },
  rate_limited: { status: 429, title: "Too many requests" },
  chain_rejected: { status: 422, title: "Chain rejected the transaction" },
  unavailable: { status: 503, title: "Service unavailable" },
  /** The engine stopped after a failed log write (EngineFailedError): nothing is taken until a restart. */
  engine_failed: { status: 503, title: "Matching engine stopped" },
  internal_error: { status: 500, title: "Internal error" },
} as const;

export type ProblemCode = keyof typeof problemTable;

export class ApiError extends BaseError {
  override name = "ApiError";
  constructor(readonly problem: ProblemCode, detail: string, options: { field?: string; cause?: unknown; retryable?: boolean } = {}) {
    super(detail, { code: problem, ...options });
  }
}

export const problemSchema = {
  $id: "problem",
  type: "object",
  required: ["type", "title", "status", "code", "detail"],
  properties: {
    type: { type: "string" },
    title: { type: "string" },
    status: { type: "integer" },
    code: { type: "string" },
    detail: { type: "string" },
    field: { type: "string" },
    // Extension members of the limit refusals (connection_limit_exceeded: Wh and W;
    // insufficient_allowance, insufficient_balance: token base units as decimal strings).
    limitW: { type: "integer" },
    limitWh: { type: "integer" },
    usedWh: { type: "integer" },
    remainingWh: { type: "integer" },
    orderWh: { type: "integer" },
    needed: { type: "string" },
    available: { type: "string" },
    balance: { type: "string" },
    allowance: { type: "string" },
  },
} as const;

/** A route's error responses point here: `response: { 400: problem, ... }`. */
export const problem = { $ref: "problem#" } as const;

/** A route's OpenAPI security: a bearer token from POST /v1/auth/login. */
export const bearer = [{ bearer: [] }];

/** A route's OpenAPI security: a device credential (HTTP Basic, from POST /v1/devices) or a bearer token. */
export const deviceOrBearer: Record<string, string[]>[] = [{ device: [] }, { bearer: [] }];

export type Problem = {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  field?: string;
} & Partial<IntakeLimitFigures>;

export function problemOf(code: ProblemCode, detail: string, field?: string, figures?: IntakeLimitFigures): Problem {
  const { status, title } = problemTable[code];
  return { type: `urn:p2p-energy:problem:${code}`, title, status, code, detail, ...(field ? { field } : {}), ...figures };
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).type("application/problem+json").send(problem);
}

/** Problems for the codes a domain error may carry; unknown codes of a ValidationError are 422. */
function codeOf(error: BaseError): ProblemCode {
  if (error.code in problemTable) return error.code as ProblemCode;
  return error instanceof ValidationError ? "validation_failed" : "internal_error";
}

/** The root error handler: schema failures and coded errors become 4xx problems; anything else a bare 500. */
export function handleApiError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error.validation && error.validation.length > 0) {
    const first = error.validation[0]!;
    const params = first.params as { missingProperty?: string; additionalProperty?: string };
    const path = first.instancePath.replace(/^\//, "").replace(/\//g, ".");
    const leaf = params?.missingProperty ?? params?.additionalProperty;
    const field = [path, leaf].filter(Boolean).join(".");
    const where = error.validationContext ?? "body";
    const rule = params?.additionalProperty ? "is not a known field" : (first.message ?? "is invalid");
    return sendProblem(reply, problemOf("invalid_request", `${where}${field ? `.${field}` : ""} ${rule}`, field || undefined));
  }
  // The JSON body parser's refusals (server/validation/inputLimits.ts) name the field.
  if (error.code === "INPUT_LIMIT") return sendProblem(reply, problemOf("invalid_request", error.message, (error as { field?: string }).field));
  if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") return sendProblem(reply, problemOf("payload_too_large", error.message));
  if (error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" || error.code === "FST_ERR_CTP_EMPTY_JSON_BODY" || (error.statusCode === 400 && !(error instanceof BaseError))) {
    return sendProblem(reply, problemOf("invalid_request", error.message));
  }
  // Any other framework refusal (4xx from fastify or its parsers) keeps its meaning under a stable code.
  if (!(error instanceof BaseError) && typeof error.statusCode === "number" && error.statusCode >= 400 && error.statusCode < 500) {
    return sendProblem(reply, problemOf(codeOfStatus(error.statusCode), error.message));
  }
  if (error instanceof BaseError) {
    const code = codeOf(error);
    const { status } = problemTable[code];
    if (status >= 500) {
      request.log.error({ msg: "api: failure", code, err: error.cause ?? error });
      return sendProblem(reply, problemOf(code, code === "internal_error" ? "the request failed on the server; see its log" : error.shortMessage));
    }
    return sendProblem(reply, problemOf(code, error.shortMessage, error.field, error instanceof IntakeLimitError ? error.figures : undefined));
  }
  request.log.error({ msg: "api: unexpected error", err: error });
  return sendProblem(reply, problemOf("internal_error", "the request failed on the server; see its log"));
}

/** The code of a framework error by its HTTP status; a status the table does not have is a 400. */
function codeOfStatus(status: number): ProblemCode {
  const byStatus: Partial<Record<number, ProblemCode>> = { 404: "route_not_found", 408: "request_timeout", 413: "payload_too_large", 414: "uri_too_long", 431: "headers_too_large" };
  return byStatus[status] ?? "invalid_request";
}

/**
 * fastify's `frameworkErrors`: what the router refuses before any route runs. A malformed
 * %-escape in the path is 400 invalid_request, a path parameter over the router's length 414.
 */
export function handleFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error.code === "FST_ERR_BAD_URL") return sendProblem(reply, problemOf("invalid_request", "the URL's path has a malformed %-escape", "url"));
  if (error.code === "FST_ERR_MAX_PARAM_LENGTH") return sendProblem(reply, problemOf("uri_too_long", "a path parameter is longer than 100 characters", "url"));
  request.log.error({ msg: "api: framework error", err: error });
  return sendProblem(reply, problemOf("internal_error", "the request failed on the server; see its log"));
}

/**
 * fastify's `clientErrorHandler`: what the HTTP parser refuses before fastify sees a request
 * (a request not received within the request timeout, headers over the size limit, malformed
 * HTTP), answered as a problem on the raw socket, which is then closed.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // A reset connection has no one to answer.
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const problem = err.code === "ERR_HTTP_REQUEST_TIMEOUT"
    ? problemOf("request_timeout", "the request, body included, did not arrive within the server's request timeout")
    : err.code === "HPE_HEADER_OVERFLOW"
      ? problemOf("headers_too_large", "the request line and headers are larger than 16 KiB (a long URL or many headers)")
      : problemOf("invalid_request", "the request is not well-formed HTTP/1.1");
  const body = JSON.stringify(problem);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const head = `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
  socket.end(head + body, () => socket.destroy());
}
