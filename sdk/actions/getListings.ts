// Fixed-price listings created on the market contract, as the node indexed them:
// GET /v1/trading/listings. Taking one is a wallet transaction (takeListing).
import type { EnergyContext } from "../context.js";
import { apiRequest } from "../http.js";
import type { ListingJson } from "../types.js";

export interface GetListingsParameters {
  zone?: string | undefined;
  status?: "open" | "filled" | "cancelled" | undefined;
  /** 1 to 500 (default 100). */
  limit?: number | undefined;
}

export type GetListingsReturnType = ListingJson[];

export async function getListings(ctx: EnergyContext, params: GetListingsParameters = {}): Promise<GetListingsReturnType> {
  const json = await apiRequest<{ listings: ListingJson[] }>(ctx, { method: "GET", path: "/v1/trading/listings", query: { zone: params.zone, status: params.status, limit: params.limit } });
  return json.listings;
}
