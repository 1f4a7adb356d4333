// Reads the bearer token of every request into `request.account` (onRequest, so rate limits
// can key on the address), and the guards routes put in front of themselves: requireAccount
// (any signed-in wallet), requireOperator (a wallet that held an operator role when it signed
// in or last refreshed) and requireOperatorOnChain (one that holds it now: for routes that spend
// the node's keys). A bad token on a public route is ignored; on a guarded route it is the answer.
import type { FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "../problems.js";

const authErrors = new WeakMap<FastifyRequest, ApiError>();

export async function readAccount(request: FastifyRequest): Promise<void> {
  request.account = null;
  const header = request.headers.authorization;
  if (!header) return;
  const match = /^Bearer ([A-Za-z0-9_-]{20,128})$/.exec(header);
  if (!match) {
    authErrors.set(request, new ApiError("unauthorized", "the Authorization header must be `Bearer <token>` with a token from POST /v1/auth/login", { field: "authorization" }));
    return;
  }
  const token = match[1]!;
  const session = request.server.node.sessions.lookup(token);
  if (session === "expired") authErrors.set(request, new ApiError("token_expired", "the token has expired: refresh it before it does, or sign in again (POST /v1/auth/login)", { field: "authorization" }));
  else if (session === "session_over") {
    const hours = request.server.node.sessions.sessionMaxSeconds / 3600;
    authErrors.set(request, new ApiError("session_expired", `the sign-in reached its maximum lifetime of ${Number(hours.toFixed(2))} h (SESSION_MAX_SECONDS), which refreshes do not extend: sign in again (POST /v1/auth/login)`, { field: "authorization" }));
  }
  else if (!session) authErrors.set(request, new ApiError("unauthorized", "the token is unknown or was logged out: sign in again (POST /v1/auth/login)", { field: "authorization" }));
  else request.account = { address: session.address, operator: session.operator, token };
}

export async function requireAccount(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  const error = authErrors.get(request);
  if (error) throw error;
  if (!request.account) throw new ApiError("unauthorized", "this route needs a token: sign in with Ethereum (GET /v1/auth/nonce, POST /v1/auth/login) and send `Authorization: Bearer <token>`", { field: "authorization" });
}

export async function requireOperator(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  await requireAccount(request, reply);
  if (!request.account!.operator) throw new ApiError("operator_only", `${request.account!.address} holds no operator role (REGISTRAR_ROLE on the registry or DEFAULT_ADMIN_ROLE on the market)`);
}

/**
 * requireOperator, and the role still held on chain at the latest block. For routes that act
 * with the node's own keys (registering prosumers with the registrar key, the community wallet's
 * orders): a registrar whose role was revoked must lose them at once, not when the token ends.
 */
export async function requireOperatorOnChain(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  await requireOperator(request, reply);
  const { address } = request.account!;
  if (!(await request.server.operatorRoles.isOperator(address))) {
    throw new ApiError("operator_only", `${address} no longer holds an operator role on chain (REGISTRAR_ROLE on the registry or DEFAULT_ADMIN_ROLE on the market): this route acts with the node's keys`);
  }
}
