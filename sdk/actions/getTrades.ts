// The wallet's trades as buyer or seller, newest first, with where each stands in delivery
// (executed, delivered, disputed, settled, refunded): GET /v1/trading/history.
import type { EnergyContext } from "../context.js";
import { authedRequest } from "../session.js";
import type { TradeHistoryItem, TradeStatus } from "../types.js";

export interface GetTradesParameters {
  status?: TradeStatus | undefined;
  /** 1 to 500 (default 100). */
  limit?: number | undefined;
  /** Page: trades with ids below this one (the `next` of the previous page). */
  before?: string | undefined;
}

export type GetTradesReturnType = { trades: TradeHistoryItem[]; next: string | null };

export async function getTrades(ctx: EnergyContext, params: GetTradesParameters = {}): Promise<GetTradesReturnType> {
  const json = await authedRequest<{ trades: TradeHistoryItem[]; next?: string | null }>(ctx, {
    method: "GET", path: "/v1/trading/history", query: { status: params.status, limit: params.limit, before: params.before },
  });
  return { trades: json.trades, next: json.next ?? null };
}
