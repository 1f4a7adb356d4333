// Sign-In With Ethereum (EIP-4361): nonce → message signed in the wallet → token. The message
// must name one of this node's configured domains (never the request's Host: see
// auth/siweDomains.ts) and its chain, carry an unused nonce of ours and be within its validity
// window; the signature is checked by viem, which also accepts ERC-1271 smart wallets. Roles are
// read from the chain at login and again at every refresh, so a revoked role does not outlive
// the token it was granted with; a refresh never extends the sign-in past SESSION_MAX_SECONDS.
// Every time here is the sessions' wall clock, not the node's market clock (NODE_CLOCK=chain
// makes that block time, which tests and simulations move by days).
import type { FastifyInstance } from "fastify";
import { getAddress, isAddressEqual, recoverMessageAddress, size, type Address, type Hex } from "viem";
import { parseSiweMessage, verifySiweMessage } from "viem/siwe";
import { requireAccount } from "../auth/authenticate.js";
import { siweDomainsOf, type SiweDomainSource } from "../auth/siweDomains.js";
import { ApiError, problem } from "../problems.js";

const tokenResponse = {
  type: "object",
  required: ["token", "expiresIn", "address", "operator"],
  properties: {
    token: { type: "string" },
    expiresIn: { type: "integer", description: "seconds" },
    address: { type: "string" },
    operator: { type: "boolean" },
  },
} as const;

/** The suffix of an ERC-6492 signature (a smart wallet that is not deployed yet). */
const ERC6492_MAGIC = "6492".repeat(16);

export interface AuthRouteOptions {
  /** Domains a SIWE message may name (configured, or the node's listening address); never the request's Host. */
  siweDomains: SiweDomainSource;
}

export async function authRoutes(app: FastifyInstance, options: AuthRouteOptions): Promise<void> {
  const { chain, sessions } = app.node;
  const isOperator = (address: Address) => app.operatorRoles.isOperator(address);

  /**
   * An externally owned account's signature is recovered here, with no chain call. Only when
   * that fails and the address is a contract (ERC-1271) or the signature is wrapped for one not
   * deployed yet (ERC-6492) does viem ask the chain. Asking the chain first let any caller make
   * the node retry a reverting eth_call for a second per malformed signature.
   */
  async function signatureIsValid(address: Address, message: string, signature: Hex, time: Date): Promise<boolean> {
    if (size(signature) === 65) {
      try {
        if (isAddressEqual(await recoverMessageAddress({ message, signature }), address)) return true;
      } catch {
        // Not a valid ECDSA signature; a contract wallet may still accept it.
      }
    }
    if (!signature.toLowerCase().endsWith(ERC6492_MAGIC)) {
      const code = await chain.publicClient.getCode({ address });
      if (!code || code === "0x") return false;
    }
    return verifySiweMessage(chain.publicClient, { message, signature, time });
  }

  app.get("/v1/auth/nonce", {
    schema: {
      tags: ["auth"],
      summary: "A single-use nonce for a Sign-In With Ethereum message",
      response: {
        200: {
          type: "object",
          required: ["nonce", "expiresAt", "chainId", "domain", "uri"],
          properties: {
            nonce: { type: "string" },
            expiresAt: { type: "string", format: "date-time" },
            chainId: { type: "integer" },
            domain: { type: "string" },
            uri: { type: "string" },
          },
        },
      },
    },
  }, async (request) => {
    const domains = siweDomainsOf(options.siweDomains);
    if (domains.length === 0) throw new ApiError("unavailable", "this node accepts no SIWE domain yet (it is not listening, and SIWE_DOMAINS is unset)");
    // The Host header only picks which configured name to suggest (a browser on localhost gets
    // localhost:8080, one on 127.0.0.1 gets that); a name not configured is never suggested.
    const domain = domains.includes(request.host) ? request.host : domains[0]!;
    const { nonce, expiresAt } = sessions.issueNonce();
    return { nonce, expiresAt: new Date(expiresAt).toISOString(), chainId: chain.chainId, domain, uri: `${request.protocol}://${domain}` };
  });

  app.post<{ Body: { message: string; signature: Hex } }>("/v1/auth/login", {
    schema: {
      tags: ["auth"],
      summary: "Exchange a signed SIWE message for a token",
      body: {
        type: "object",
        required: ["message", "signature"],
        additionalProperties: false,
        properties: {
          message: { type: "string", minLength: 1, maxLength: 4096 },
          signature: { type: "string", pattern: "^0x[0-9a-fA-F]+$", maxLength: 20000 },
        },
      },
      response: { 200: tokenResponse, 400: problem, 401: problem },
    },
  }, async (request) => {
    const { message, signature } = request.body;
    const parsed = parseSiweMessage(message);
    if (!parsed.address || !parsed.domain || !parsed.nonce || !parsed.uri || !parsed.version || parsed.chainId === undefined) {
      throw new ApiError("invalid_request", "message is not an EIP-4361 message: it needs domain, address, URI, version, chain ID and nonce", { field: "message" });
    }
    // The nonce goes first and whatever happens next: one try per nonce.
    if (!sessions.consumeNonce(parsed.nonce)) {
      throw new ApiError("login_refused", "the message's nonce was not issued by this node, was already used, or expired: get a new one from GET /v1/auth/nonce", { field: "message.nonce" });
    }
    const domains = siweDomainsOf(options.siweDomains);
    if (!domains.includes(parsed.domain)) {
      throw new ApiError("login_refused", `the message's domain ${parsed.domain} is not this node's (${domains.join(", ") || "none configured: set SIWE_DOMAINS"}): sign in only on the node's own site`, { field: "message.domain" });
    }
    if (parsed.chainId !== chain.chainId) throw new ApiError("login_refused", `the message's chain ID ${parsed.chainId} is not this node's chain ${chain.chainId}`, { field: "message.chainId" });
    const now = new Date(sessions.now());
    if (parsed.expirationTime && parsed.expirationTime <= now) throw new ApiError("login_refused", "the message has expired (Expiration Time is past)", { field: "message.expirationTime" });
    if (parsed.notBefore && parsed.notBefore > now) throw new ApiError("login_refused", "the message is not valid yet (Not Before is in the future)", { field: "message.notBefore" });
    const address = getAddress(parsed.address);
    if (!(await signatureIsValid(address, message, signature, now))) throw new ApiError("login_refused", `the signature is not ${address}'s signature of this message`, { field: "signature" });
    const operator = await isOperator(address);
    const { token, expiresIn } = sessions.issueToken(address, operator);
    request.log.info({ msg: "signed in", address, operator });
    return { token, expiresIn, address, operator };
  });

  app.post("/v1/auth/refresh", {
    preHandler: requireAccount,
    schema: {
      tags: ["auth"],
      summary: "A fresh token for a live one (the old one stops working); roles are read from the chain again",
      description: "The new token lives TOKEN_TTL_SECONDS, but never past the sign-in's SESSION_MAX_SECONDS: after that, 401 session_expired and the wallet signs in again.",
      security: [{ bearer: [] }],
      response: { 200: tokenResponse, 401: problem },
    },
  }, async (request) => {
    const account = request.account!;
    const session = sessions.lookup(account.token);
    if (typeof session !== "object") throw new ApiError("unauthorized", "the token is unknown or was logged out: sign in again (POST /v1/auth/login)", { field: "authorization" });
    // The role the session was granted with is not carried over: a registrar whose role was
    // revoked on chain gets a token without operator rights.
    const operator = await isOperator(account.address);
    // One refresh per token: a second one racing this one (a copied token) gets nothing.
    if (!sessions.revoke(account.token)) throw new ApiError("unauthorized", "the token was refreshed or logged out meanwhile: use the new token, or sign in again", { field: "authorization" });
    const { token, expiresIn } = sessions.issueToken(account.address, operator, { sessionEndsAt: session.sessionEndsAt });
    if (operator !== account.operator) request.log.info({ msg: "refresh: operator role changed on chain", address: account.address, operator });
    return { token, expiresIn, address: account.address, operator };
  });

  app.post("/v1/auth/logout", {
    preHandler: requireAccount,
    schema: { tags: ["auth"], summary: "End the session", security: [{ bearer: [] }], response: { 204: { type: "null" }, 401: problem } },
  }, async (request, reply) => {
    sessions.revoke(request.account!.token);
    return reply.code(204).send();
  });
}
