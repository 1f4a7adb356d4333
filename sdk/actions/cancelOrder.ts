// Cancels one of the wallet's open orders on the node: DELETE /v1/trading/orders/:id. The
// node stops matching it; what already filled stays traded.
import type { EnergyContext } from "../context.js";
import { clientError } from "../errors.js";
import { authedRequest } from "../session.js";
import type { OrderRecord } from "../types.js";

export interface CancelOrderParameters {
  /** The order's id: its EIP-712 hash, 0x + 64 hex digits. */
  orderId: string;
}

export type CancelOrderReturnType = OrderRecord;

export function checkOrderId(orderId: unknown): string {
  if (typeof orderId !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(orderId)) {
    throw clientError("invalid_argument", "orderId", `${JSON.stringify(orderId)} is not an order id (0x followed by 64 hex digits)`);
  }
  return orderId.toLowerCase();
}

export async function cancelOrder(ctx: EnergyContext, params: CancelOrderParameters): Promise<CancelOrderReturnType> {
  return authedRequest<OrderRecord>(ctx, { method: "DELETE", path: `/v1/trading/orders/${checkOrderId(params.orderId)}` });
}
