// The client: binds the actions to one node and one wallet, viem style. Each method is the
// action of the same purpose with the client's context as its first argument; the actions
// can also be called directly with a context from createEnergyContext.
import { privateKeyToAccount } from "viem/accounts";
import type { Address, Hex } from "viem";
import { approve, type ApproveParameters } from "./actions/approve.js";
import { cancelOrder, type CancelOrderParameters } from "./actions/cancelOrder.js";
import { finalizeTrade, type FinalizeTradeParameters } from "./actions/finalizeTrade.js";
import { getAuditedTrade } from "./actions/getAuditedTrade.js";
import { getBalance } from "./actions/getBalance.js";
import { getChainInfo, type GetChainInfoParameters } from "./actions/getChainInfo.js";
import { getListings, type GetListingsParameters } from "./actions/getListings.js";
import { getOrder } from "./actions/getOrder.js";
import { getProfile, type GetProfileParameters } from "./actions/getProfile.js";
import { getTrades, type GetTradesParameters } from "./actions/getTrades.js";
import { listOrders, type ListOrdersParameters } from "./actions/listOrders.js";
import { login } from "./actions/login.js";
import { logout } from "./actions/logout.js";
import { openDispute, type OpenDisputeParameters } from "./actions/openDispute.js";
import { placeOrder, type PlaceOrderParameters } from "./actions/placeOrder.js";
import { reclaimTrade, type ReclaimTradeParameters } from "./actions/reclaimTrade.js";
import { releaseEarly, type ReleaseEarlyParameters } from "./actions/releaseEarly.js";
import { requestFaucet, type RequestFaucetParameters } from "./actions/requestFaucet.js";
import { takeListing, type TakeListingParameters } from "./actions/takeListing.js";
import { verifyTradeEvidence, type VerifyTradeEvidenceParameters } from "./actions/verifyTradeEvidence.js";
import type { EnergyContext } from "./context.js";
import { clientError } from "./errors.js";

export interface EnergyClientOptions {
  /** The node's base URL, e.g. http://127.0.0.1:8080. */
  apiUrl: string;
  /** The wallet's key (0x + 64 hex digits). Without one, only public reads work. */
  privateKey?: Hex | string | undefined;
  /** JSON-RPC URL to use instead of the one GET /v1/chain advertises. */
  rpcUrl?: string | undefined;
  /** The domain a SIWE message may name; default: the API URL's host. */
  siweDomain?: string | undefined;
  fetch?: typeof fetch | undefined;
  /** Unix milliseconds (tests move it). */
  now?: (() => number) | undefined;
}

/** Checks and normalises a private key without ever putting it in a message. */
export function parsePrivateKey(key: string, field = "privateKey"): Hex {
  const trimmed = key.trim();
  const hex = trimmed.startsWith("0x") || trimmed.startsWith("0X") ? trimmed.slice(2) : trimmed;
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw clientError("invalid_argument", field, "must be 64 hex digits, optionally after 0x (the value is not shown)");
  return `0x${hex.toLowerCase()}` as Hex;
}

export function createEnergyContext(options: EnergyClientOptions): EnergyContext {
  let url: URL;
  try {
    url = new URL(options.apiUrl);
  } catch {
    throw clientError("invalid_argument", "apiUrl", `${JSON.stringify(options.apiUrl)} is not a URL such as http://127.0.0.1:8080`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw clientError("invalid_argument", "apiUrl", "must be an http: or https: URL");
  let account;
  if (options.privateKey !== undefined) {
    try {
      account = privateKeyToAccount(parsePrivateKey(options.privateKey));
    } catch {
      // viem's message would repeat the key: say only what is wrong with it.
      throw clientError("invalid_argument", "privateKey", "is not a valid secp256k1 private key (the value is not shown)");
    }
  }
  return {
    apiUrl: url.toString().replace(/\/+$/, ""),
    account,
    fetch: options.fetch ?? globalThis.fetch,
    now: options.now ?? Date.now,
    rpcUrl: options.rpcUrl,
    siweDomain: options.siweDomain,
    state: {},
  };
}

export function createEnergyClient(options: EnergyClientOptions) {
  const ctx = createEnergyContext(options);
  return {
    /** The wallet's address, or undefined for a read-only client. */
    address: ctx.account?.address as Address | undefined,
    context: ctx,
    login: () => login(ctx),
    logout: () => logout(ctx),
    chainInfo: (params?: GetChainInfoParameters) => getChainInfo(ctx, params),
    profile: (params?: GetProfileParameters) => getProfile(ctx, params),
    balance: () => getBalance(ctx),
    faucet: (params?: RequestFaucetParameters) => requestFaucet(ctx, params),
    approve: (params: ApproveParameters) => approve(ctx, params),
    placeOrder: (params: PlaceOrderParameters) => placeOrder(ctx, params),
    listOrders: (params?: ListOrdersParameters) => listOrders(ctx, params),
    getOrder: (params: { orderId: string }) => getOrder(ctx, params),
    cancelOrder: (params: CancelOrderParameters) => cancelOrder(ctx, params),
    listings: (params?: GetListingsParameters) => getListings(ctx, params),
    takeListing: (params: TakeListingParameters) => takeListing(ctx, params),
    trades: (params?: GetTradesParameters) => getTrades(ctx, params),
    auditedTrade: (params: { tradeId: string | bigint }) => getAuditedTrade(ctx, params),
    openDispute: (params: OpenDisputeParameters) => openDispute(ctx, params),
    releaseEarly: (params: ReleaseEarlyParameters) => releaseEarly(ctx, params),
    /** Anyone: finalizeDispute once the dispute's deadline passed (the parties get the money). */
    finalizeTrade: (params: FinalizeTradeParameters) => finalizeTrade(ctx, params),
    /** Anyone: reclaim an unreported trade after its confirmation deadline (the buyer gets the money). */
    reclaimTrade: (params: ReclaimTradeParameters) => reclaimTrade(ctx, params),
    /** Re-derives a trade's delivery report from its evidence, checked against the chain only. */
    verifyTradeEvidence: (params: VerifyTradeEvidenceParameters) => verifyTradeEvidence(ctx, params),
  };
}

export type EnergyClient = ReturnType<typeof createEnergyClient>;
