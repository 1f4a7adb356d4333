// What every action takes first: where the node is, the wallet, and the little state a client
// keeps between calls (the session token, the node's chain description, chain clients). The
// private key itself is not kept: only viem's local account, which signs but does not expose it.
import type { LocalAccount, PublicClient, WalletClient, Transport, Chain, Account } from "viem";
import { clientError } from "./errors.js";
import type { ChainInfo, ProsumerProfile } from "./types.js";

export interface Session {
  token: string;
  address: string;
  operator: boolean;
  /** Unix milliseconds, by the client's clock. */
  expiresAt: number;
  ttlMs: number;
}

export interface ChainClients {
  publicClient: PublicClient;
  walletClient: WalletClient<Transport, Chain, Account> | undefined;
}

export interface EnergyContext {
  /** The node's base URL, without a trailing slash. */
  apiUrl: string;
  account: LocalAccount | undefined;
  fetch: typeof fetch;
  /** Unix milliseconds: token expiry and gate closure are judged by it. */
  now: () => number;
  /** JSON-RPC URL to use instead of the one the node advertises. */
  rpcUrl: string | undefined;
  /** The SIWE domain the client agrees to sign for; default: the API URL's host. */
  siweDomain: string | undefined;
  state: {
    session?: Session | undefined;
    sessionPending?: Promise<Session> | undefined;
    chain?: ChainInfo | undefined;
    chainPending?: Promise<ChainInfo> | undefined;
    clients?: Promise<ChainClients> | undefined;
    profile?: ProsumerProfile | undefined;
  };
}

export function requireWallet(ctx: EnergyContext): LocalAccount {
  if (!ctx.account) throw clientError("no_wallet", "privateKey", "this call needs a wallet: create the client with a privateKey");
  return ctx.account;
}
