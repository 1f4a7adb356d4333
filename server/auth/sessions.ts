// Sign-In With Ethereum sessions. A nonce is handed out once and consumed by the first login
// that presents it, good or bad, so a captured message cannot be replayed. A token is opaque
// (32 random bytes) and lives in memory: a restart signs everyone out, which is what a
// short-lived token promises anyway, and logout is a plain delete.
import { randomBytes } from "node:crypto";
import type { Address } from "viem";

export interface Session {
  address: Address;
  operator: boolean;
  /** Unix milliseconds. */
  expiresAt: number;
}

export interface SessionOptions {
  tokenTtlSeconds: number;
  nonceTtlSeconds: number;
  clock: () => number;
}

export type Sessions = ReturnType<typeof createSessions>;

export function createSessions(options: SessionOptions) {
  const nonces = new Map<string, number>();
  const tokens = new Map<string, Session>();
  let sweepAt = 0;

  /** Drops expired nonces and tokens now and then, so memory stays bounded by the live ones. */
  function sweep(now: number) {
    if (now < sweepAt) return;
    sweepAt = now + 60_000;
    for (const [nonce, expiresAt] of nonces) if (expiresAt <= now) nonces.delete(nonce);
    for (const [token, session] of tokens) if (session.expiresAt <= now) tokens.delete(token);
  }

  return {
    issueNonce(): { nonce: string; expiresAt: number } {
      const now = options.clock();
      sweep(now);
      // SIWE nonces are alphanumeric, at least 8 characters.
      const nonce = randomBytes(16).toString("hex");
      const expiresAt = now + options.nonceTtlSeconds * 1000;
      nonces.set(nonce, expiresAt);
      return { nonce, expiresAt };
    },

    /** True once per issued, unexpired nonce. */
    consumeNonce(nonce: string): boolean {
      const expiresAt = nonces.get(nonce);
      nonces.delete(nonce);
      return expiresAt !== undefined && expiresAt > options.clock();
    },

    issueToken(address: Address, operator: boolean): { token: string; session: Session } {
      const now = options.clock();
      sweep(now);
      const token = randomBytes(32).toString("base64url");
      const session = { address, operator, expiresAt: now + options.tokenTtlSeconds * 1000 };
      tokens.set(token, session);
      return { token, session };
    },

    /** The session of a token: "expired" is told apart so clients know to refresh or log in. */
    lookup(token: string): Session | "expired" | undefined {
      const session = tokens.get(token);
      if (!session) return undefined;
      if (session.expiresAt <= options.clock()) {
        tokens.delete(token);
        return "expired";
      }
      return session;
    },

    revoke(token: string): boolean {
      return tokens.delete(token);
    },

    tokenTtlSeconds: options.tokenTtlSeconds,
  };
}
