// Sign-In With Ethereum sessions. A nonce is handed out once and consumed by the first login
// that presents it, good or bad, so a captured message cannot be replayed. A token is opaque
// (32 random bytes) and lives in memory: a restart signs everyone out, which is what a
// short-lived token promises anyway, and logout is a plain delete.
//
// Sessions live on the wall clock, never the market's: with NODE_CLOCK=chain the node's clock
// follows block time, and moving the chain a day ahead (a test, a simulation, a devnet) must not
// expire every token and nonce. A token's 15 minutes are the user's 15 minutes.
//
// A session (one sign-in and the tokens its refreshes hand out) ends after sessionMaxSeconds
// whatever the refreshes: a stolen token cannot be kept alive forever, and a wallet signs a
// fresh SIWE message at least that often.
import { randomBytes } from "node:crypto";
import type { Address } from "viem";

export interface Session {
  address: Address;
  operator: boolean;
  /** Unix milliseconds, wall clock: this token's end, never after sessionEndsAt. */
  expiresAt: number;
  /** Unix milliseconds, wall clock: the sign-in's end; refreshed tokens inherit it. */
  sessionEndsAt: number;
}

/** Why a token no longer works: its own TTL ran out, or the whole sign-in reached its maximum. */
export type SessionEnded = "expired" | "session_over";

const DEAD_TOKEN_KEPT_MS = 3_600_000;

export interface SessionOptions {
  tokenTtlSeconds: number;
  nonceTtlSeconds: number;
  /** Longest a sign-in lasts, refreshes included. Default 12 hours. */
  sessionMaxSeconds?: number;
  /** Unix milliseconds of real time: token and nonce expiry, and SIWE messages' validity, are judged by it. Default Date.now. */
  wallClock?: () => number;
}

export type Sessions = ReturnType<typeof createSessions>;

export function createSessions(options: SessionOptions) {
  const now = options.wallClock ?? Date.now;
  const sessionMaxMs = (options.sessionMaxSeconds ?? 43_200) * 1000;
  const nonces = new Map<string, number>();
  const tokens = new Map<string, Session>();
  let sweepAt = 0;

  /**
   * Drops expired nonces and tokens now and then, so memory stays bounded by the live ones. A
   * dead token is kept for an hour so that its holder keeps hearing why (token_expired or
   * session_expired) rather than "unknown token".
   */
  function sweep(at: number) {
    if (at < sweepAt) return;
    sweepAt = at + 60_000;
    for (const [nonce, expiresAt] of nonces) if (expiresAt <= at) nonces.delete(nonce);
    for (const [token, session] of tokens) if (session.expiresAt + DEAD_TOKEN_KEPT_MS <= at) tokens.delete(token);
  }

  return {
    /** The wall clock sessions run on, unix milliseconds: SIWE messages' times are checked against it. */
    now,

    issueNonce(): { nonce: string; expiresAt: number } {
      const at = now();
      sweep(at);
      // SIWE nonces are alphanumeric, at least 8 characters.
      const nonce = randomBytes(16).toString("hex");
      const expiresAt = at + options.nonceTtlSeconds * 1000;
      nonces.set(nonce, expiresAt);
      return { nonce, expiresAt };
    },

    /** True once per issued, unexpired nonce. */
    consumeNonce(nonce: string): boolean {
      const expiresAt = nonces.get(nonce);
      nonces.delete(nonce);
      return expiresAt !== undefined && expiresAt > now();
    },

    /**
     * A token for a new sign-in, or (with `sessionEndsAt` of the token it replaces) a refresh that
     * keeps the sign-in's end. `expiresIn` is what the client is told: whole seconds left.
     */
    issueToken(address: Address, operator: boolean, continuing?: { sessionEndsAt: number }): { token: string; session: Session; expiresIn: number } {
      const at = now();
      sweep(at);
      const token = randomBytes(32).toString("base64url");
      const sessionEndsAt = continuing?.sessionEndsAt ?? at + sessionMaxMs;
      const session = { address, operator, expiresAt: Math.min(at + options.tokenTtlSeconds * 1000, sessionEndsAt), sessionEndsAt };
      tokens.set(token, session);
      return { token, session, expiresIn: Math.max(0, Math.floor((session.expiresAt - at) / 1000)) };
    },

    /**
     * The session of a token. A dead token says why, so clients know whether to refresh
     * ("expired") or sign in again ("session_over": the sign-in reached sessionMaxSeconds).
     */
    lookup(token: string): Session | SessionEnded | undefined {
      const session = tokens.get(token);
      if (!session) return undefined;
      if (session.expiresAt <= now()) {
        return session.expiresAt >= session.sessionEndsAt ? "session_over" : "expired";
      }
      return session;
    },

    revoke(token: string): boolean {
      return tokens.delete(token);
    },

    tokenTtlSeconds: options.tokenTtlSeconds,
    sessionMaxSeconds: sessionMaxMs / 1000,
  };
}
