// Sign-In With Ethereum and the token that follows. The client signs in on first need,
// refreshes the token when little of its life is left, and signs in again once if the node
// no longer knows the token (expired, logged out, node restarted): a 401 means the request
// was refused before it did anything, so sending it again is safe.
import { createSiweMessage } from "viem/siwe";
import { requireWallet, type EnergyContext, type Session } from "./context.js";
import { EnergyClientError, clientError } from "./errors.js";
import { apiRequest, type ApiRequest } from "./http.js";

interface NonceJson {
  nonce: string;
  expiresAt: string;
  chainId: number;
  domain: string;
  uri: string;
}

interface TokenJson {
  token: string;
  expiresIn: number;
  address: string;
  operator: boolean;
}

/** Refresh when less than this much of the token's life is left. */
function refreshMarginMs(session: Session): number {
  return Math.min(60_000, Math.floor(session.ttlMs / 4));
}

function toSession(ctx: EnergyContext, json: TokenJson, startedAt: number): Session {
  const ttlMs = json.expiresIn * 1000;
  return { token: json.token, address: json.address, operator: json.operator, expiresAt: startedAt + ttlMs, ttlMs };
}

/** Signs a fresh SIWE message for the node's nonce and exchanges it for a token. */
export async function signIn(ctx: EnergyContext): Promise<Session> {
  const account = requireWallet(ctx);
  const nonce = await apiRequest<NonceJson>(ctx, { method: "GET", path: "/v1/auth/nonce" });
  // The node names the domain; a wallet only signs in for the site it is talking to, so a node
  // cannot collect a login signature valid somewhere else.
  const expected = ctx.siweDomain ?? new URL(ctx.apiUrl).host;
  if (nonce.domain !== expected) {
    throw clientError("untrusted_domain", "siweDomain", `the node asks for a sign-in to ${JSON.stringify(nonce.domain)} but this client talks to ${JSON.stringify(expected)}; pass siweDomain if the node is reached through a proxy`);
  }
  const message = createSiweMessage({
    address: account.address,
    chainId: nonce.chainId,
    domain: nonce.domain,
    nonce: nonce.nonce,
    uri: nonce.uri,
    version: "1",
    statement: "Sign in to the community energy market.",
    issuedAt: new Date(ctx.now()),
    // By the node's clock: the message is worthless once its nonce has expired anyway.
    expirationTime: new Date(nonce.expiresAt),
  });
  const signature = await account.signMessage({ message });
  const startedAt = ctx.now();
  const json = await apiRequest<TokenJson>(ctx, { method: "POST", path: "/v1/auth/login", body: { message, signature } });
  const session = toSession(ctx, json, startedAt);
  ctx.state.session = session;
  return session;
}

async function refreshToken(ctx: EnergyContext, current: Session): Promise<Session> {
  const startedAt = ctx.now();
  const json = await apiRequest<TokenJson>(ctx, { method: "POST", path: "/v1/auth/refresh", token: current.token });
  const session = toSession(ctx, json, startedAt);
  ctx.state.session = session;
  return session;
}

function isAuthRefusal(err: unknown): boolean {
  return err instanceof EnergyClientError && err.source === "api" && err.status === 401 && (err.code === "token_expired" || err.code === "unauthorized");
}

/** A live session: the current one, a refreshed one, or a new sign-in. One at a time. */
export function ensureSession(ctx: EnergyContext): Promise<Session> {
  const current = ctx.state.session;
  const now = ctx.now();
  if (current && now < current.expiresAt - refreshMarginMs(current)) return Promise.resolve(current);
  if (ctx.state.sessionPending) return ctx.state.sessionPending;
  const pending = (async () => {
    if (current && now < current.expiresAt) {
      try {
        return await refreshToken(ctx, current);
      } catch (err) {
        if (!isAuthRefusal(err)) throw err;
      }
    }
    ctx.state.session = undefined;
    return signIn(ctx);
  })().finally(() => {
    ctx.state.sessionPending = undefined;
  });
  ctx.state.sessionPending = pending;
  return pending;
}

/** A request with the session's token; on a 401 the client signs in again and retries once. */
export async function authedRequest<T>(ctx: EnergyContext, req: Omit<ApiRequest, "token">): Promise<T> {
  const session = await ensureSession(ctx);
  try {
    return await apiRequest<T>(ctx, { ...req, token: session.token });
  } catch (err) {
    if (!isAuthRefusal(err)) throw err;
    if (ctx.state.session === session) ctx.state.session = undefined;
    const again = await ensureSession(ctx);
    return apiRequest<T>(ctx, { ...req, token: again.token });
  }
}

/** Ends the session on the node (a no-op without one). */
export async function signOut(ctx: EnergyContext): Promise<void> {
  const session = ctx.state.session;
  ctx.state.session = undefined;
  if (!session) return;
  try {
    await apiRequest<void>(ctx, { method: "POST", path: "/v1/auth/logout", token: session.token });
  } catch (err) {
    // Already gone on the node: that is what logging out wanted.
    if (!isAuthRefusal(err)) throw err;
  }
}
