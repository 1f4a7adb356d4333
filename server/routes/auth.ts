// Sign-In With Ethereum (EIP-4361): nonce → message signed in the wallet → token. The message
// must name this node's domain and chain, carry an unused nonce of ours and be within its
// validity window; the signature is checked by viem, which also accepts ERC-1271 smart wallets.
// Every time here is the sessions' wall clock, not the node's market clock (NODE_CLOCK=chain
// makes that block time, which tests and simulations move by days).
import type { FastifyInstance } from "fastify";
import { getAddress, isAddressEqual, recoverMessageAddress, size, type Address, type Hex } from "viem";
import { parseSiweMessage, verifySiweMessage } from "viem/siwe";
import { energyMarketAbi, prosumerRegistryAbi } from "../../contracts/client/abi.js";
import { roleIds } from "../../contracts/client/deploy.js";
import { requireAccount } from "../auth/authenticate.js";
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
  /** Domains a SIWE message may name; empty: the request's Host header. */
  siweDomains: string[];
}

export async function authRoutes(app: FastifyInstance, options: AuthRouteOptions): Promise<void> {
  const { chain, sessions } = app.node;

  async function isOperator(address: Hex): Promise<boolean> {
    const [registrar, admin] = await Promise.all([
      chain.publicClient.readContract({ address: chain.contracts.ProsumerRegistry, abi: prosumerRegistryAbi, functionName: "hasRole", args: [roleIds.REGISTRAR_ROLE, address] }),
      chain.publicClient.readContract({ address: chain.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "hasRole", args: [roleIds.DEFAULT_ADMIN_ROLE, address] }),
    ]);
    return registrar || admin;
  }

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
    const { nonce, expiresAt } = sessions.issueNonce();
    const domain = options.siweDomains[0] ?? request.host;
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
    const domains = options.siweDomains.length > 0 ? options.siweDomains : [request.host];
    if (!domains.includes(parsed.domain)) throw new ApiError("login_refused", `the message's domain ${parsed.domain} is not this node's (${domains.join(", ")})`, { field: "message.domain" });
    if (parsed.chainId !== chain.chainId) throw new ApiError("login_refused", `the message's chain ID ${parsed.chainId} is not this node's chain ${chain.chainId}`, { field: "message.chainId" });
    const now = new Date(sessions.now());
    if (parsed.expirationTime && parsed.expirationTime <= now) throw new ApiError("login_refused", "the message has expired (Expiration Time is past)", { field: "message.expirationTime" });
    if (parsed.notBefore && parsed.notBefore > now) throw new ApiError("login_refused", "the message is not valid yet (Not Before is in the future)", { field: "message.notBefore" });
    const address = getAddress(parsed.address);
    if (!(await signatureIsValid(address, message, signature, now))) throw new ApiError("login_refused", `the signature is not ${address}'s signature of this message`, { field: "signature" });
    const operator = await isOperator(address);
    const { token } = sessions.issueToken(address, operator);
    request.log.info({ msg: "signed in", address, operator });
    return { token, expiresIn: sessions.tokenTtlSeconds, address, operator };
  });

  app.post("/v1/auth/refresh", {
    preHandler: requireAccount,
    schema: { tags: ["auth"], summary: "A fresh token for a live one (the old one stops working)", security: [{ bearer: [] }], response: { 200: tokenResponse, 401: problem } },
  }, async (request) => {
    const account = request.account!;
    sessions.revoke(account.token);
    const { token } = sessions.issueToken(account.address, account.operator);
    return { token, expiresIn: sessions.tokenTtlSeconds, address: account.address, operator: account.operator };
  });

  app.post("/v1/auth/logout", {
    preHandler: requireAccount,
    schema: { tags: ["auth"], summary: "End the session", security: [{ bearer: [] }], response: { 204: { type: "null" }, 401: problem } },
  }, async (request, reply) => {
    sessions.revoke(request.account!.token);
    return reply.code(204).send();
  });
}
