// One of the wallet's orders: GET /v1/trading/orders/:id.
import type { EnergyContext } from "../context.js";
import { authedRequest } from "../session.js";
import type { OrderRecord } from "../types.js";
import { checkOrderId } from "./cancelOrder.js";

export type GetOrderReturnType = OrderRecord;

export async function getOrder(ctx: EnergyContext, params: { orderId: string }): Promise<GetOrderReturnType> {
  return authedRequest<OrderRecord>(ctx, { method: "GET", path: `/v1/trading/orders/${checkOrderId(params.orderId)}` });
}
