// Sign-In With Ethereum sessions. A nonce is handed out once and consumed by the first login
// that presents it, good or bad, so a captured message cannot be replayed. A token is opaque
// (32 random bytes) and lives in memory: a restart signs everyone out, which is what a
// short-lived token promises anyway, and logout is a plain delete.
//
// Sessions live on the wall clock, never the market's: with NODE_CLOCK=chain the node's clock
// follows block time, and moving the chain a day ahead (a test, a simulation, a devnet) must not
// expire every token and nonce. A token's 15 minutes are the user's 15 minutes.
import { randomBytes } from "node:crypto";
import type { Address } from "viem";

export interface Session {
  address: Address;
  operator: boolean;
  /** Unix milliseconds, wall clock. */
  expiresAt: number;
}

export interface SessionOptions {
  tokenTtlSeconds: number;
  nonceTtlSeconds: number;
  /** Unix milliseconds of real time: token and nonce expiry, and SIWE messages' validity, are judged by it. Default Date.now. */
  wallClock?: () => number;
}

export type Sessions = ReturnType<typeof createSessions>;

export function createSessions(options: SessionOptions) {
  const now = options.wallClock ?? Date.now;
  const nonces = new Map<string, number>();
  const tokens = new Map<string, Session>();
  let sweepAt = 0;

  /** Drops expired nonces and tokens now and then, so memory stays bounded by the live ones. */
  function sweep(at: number) {
    if (at < sweepAt) return;
    sweepAt = at + 60_000;
    for (const [nonce, expiresAt] of nonces) if (expiresAt <= at) nonces.delete(nonce);
    for (const [token, session] of tokens) if (session.expiresAt <= at) tokens.delete(token);
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

    issueToken(address: Address, operator: boolean): { token: string; session: Session } {
      const at = now();
      sweep(at);
      const token = randomBytes(32).toString("base64url");
      const session = { address, operator, expiresAt: at + options.tokenTtlSeconds * 1000 };
      tokens.set(token, session);
      return { token, session };
    },

    /** The session of a token: "expired" is told apart so clients know to refresh or log in. */
    lookup(token: string): Session | "expired" | undefined {
      const session = tokens.get(token);
      if (!session) return undefined;
      if (session.expiresAt <= now()) {
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
