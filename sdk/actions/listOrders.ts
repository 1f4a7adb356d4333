// The wallet's orders on the node, newest first, with their fills (trade ids and transaction
// hashes once settled): GET /v1/trading/orders.
import type { EnergyContext } from "../context.js";
import { authedRequest } from "../session.js";
import type { OrderRecord, OrderStatus } from "../types.js";

export interface ListOrdersParameters {
  status?: OrderStatus | undefined;
  /** 1 to 500 (default 100). */
  limit?: number | undefined;
}

export type ListOrdersReturnType = OrderRecord[];

export async function listOrders(ctx: EnergyContext, params: ListOrdersParameters = {}): Promise<ListOrdersReturnType> {
  const json = await authedRequest<{ orders: OrderRecord[] }>(ctx, { method: "GET", path: "/v1/trading/orders", query: { status: params.status, limit: params.limit } });
  return json.orders;
}
