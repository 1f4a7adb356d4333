// Reads the bearer token of every request into `request.account` (onRequest, so rate limits
// can key on the address), and the guards routes put in front of themselves: requireAccount
// (any signed-in wallet) and requireOperator (a wallet that held an operator role when it
// signed in). A bad token on a public route is ignored; on a guarded route it is the answer.
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
