// The wallet's registry entry (GET /v1/prosumers/:address): zone, status, registered sources.
// Kept by the client after the first read; null when the wallet is not a registered prosumer.
import type { Address } from "viem";
import { requireWallet, type EnergyContext } from "../context.js";
import { EnergyClientError } from "../errors.js";
import { apiRequest } from "../http.js";
import type { ProsumerProfile } from "../types.js";

export interface GetProfileParameters {
  /** Someone else's profile; default: the client's wallet. */
  address?: Address;
  refresh?: boolean;
}

export type GetProfileReturnType = ProsumerProfile | null;

export async function getProfile(ctx: EnergyContext, params: GetProfileParameters = {}): Promise<GetProfileReturnType> {
  const own = params.address === undefined;
  const address = params.address ?? requireWallet(ctx).address;
  if (own && ctx.state.profile && !params.refresh) return ctx.state.profile;
  try {
    const profile = await apiRequest<ProsumerProfile>(ctx, { method: "GET", path: `/v1/prosumers/${address}` });
    if (own) ctx.state.profile = profile;
    return profile;
  } catch (err) {
    if (err instanceof EnergyClientError && err.status === 404 && err.code === "not_found") return null;
    throw err;
  }
}
