// GET /v1/keeper/actions: what the node's escrow keeper (server/keeper) will close, is closing and
// has closed, so anyone can see that an escrow past its deadline does not wait on a person.
// Public, read-only, no token: every trade id, party and transaction here is on chain and in the
// auditor API already; nothing is started or changed by calling it.
import type { FastifyInstance } from "fastify";
import type { KeeperActionView } from "../keeper/createKeeper.js";
import { ApiError, problem } from "../problems.js";

const actionSchema = {
  type: "object",
  required: ["tradeId", "action", "reason", "dueAt", "dueTime", "state", "outcome", "txHash", "attempts", "lastError", "buyer", "seller", "closedAt"],
  properties: {
    tradeId: { type: "string", description: "the trade id (uint256, decimal)" },
    action: { type: "string", enum: ["finalize", "reclaim"], description: "finalize: finalizeDispute (the proposal or, after the arbitration timeout, the meter's word); reclaim: the payment back to the buyer" },
    reason: { type: "string", enum: ["dispute_window_ended", "arbitration_timeout", "confirmation_deadline"] },
    dueAt: { type: "string", description: "chain time (unix seconds) after which the market allows the action" },
    dueTime: { type: ["string", "null"], format: "date-time" },
    state: {
      type: "string", enum: ["scheduled", "due", "pending", "in_flight", "done", "failed"],
      description: "scheduled: not due yet; due: due, about to be queued; pending: queued; in_flight: signed and sent; done; failed: the market refuses it for good",
    },
    outcome: {
      type: ["string", "null"], enum: ["closed", "already_closed", "superseded", "rejected", null],
      description: "closed: the keeper's transaction closed the escrow; already_closed: someone else (or a release, the arbiter) did; superseded: the trade moved to a state the action does not fit",
    },
    txHash: { type: ["string", "null"], description: "the keeper's transaction, or the one that closed the trade first" },
    attempts: { type: "integer" },
    lastError: { type: ["string", "null"] },
    buyer: { type: "string" },
    seller: { type: "string" },
    closedAt: { type: ["string", "null"], description: "block time (unix seconds) of the closing transaction" },
  },
} as const;

const responseSchema = {
  type: "object",
  required: ["chainTime", "keeper", "windows", "pending", "scheduled", "recent"],
  properties: {
    chainTime: { type: ["string", "null"], description: "the latest block's timestamp at the keeper's last tick: what deadlines are judged by" },
    keeper: {
      type: "object",
      required: ["address", "running", "tickMs", "lastTickAt", "lastError"],
      properties: {
        address: { type: "string", description: "the account that sends the keeper's transactions" },
        running: { type: "boolean" },
        tickMs: { type: "integer" },
        lastTickAt: { type: ["string", "null"], format: "date-time" },
        lastError: { type: ["string", "null"] },
      },
    },
    windows: {
      type: ["object", "null"],
      description: "the market's windows in seconds (windows()), as of the last plan",
      properties: { confirmationWindow: { type: "string" }, disputeWindow: { type: "string" }, arbitrationTimeout: { type: "string" } },
    },
    pending: { type: "array", items: actionSchema, description: "due, queued or in flight, soonest due first" },
    scheduled: { type: "array", items: actionSchema, description: "not due yet, soonest first" },
    recent: { type: "array", items: actionSchema, description: "done or failed, most recent first" },
  },
} as const;

const iso = (unixSeconds: bigint) => new Date(Number(unixSeconds) * 1000).toISOString();

function actionJson(a: KeeperActionView) {
  return {
    tradeId: a.tradeId.toString(), action: a.action, reason: a.reason, dueAt: a.dueAt.toString(), dueTime: iso(a.dueAt), state: a.state, outcome: a.outcome,
    txHash: a.txHash, attempts: a.attempts, lastError: a.lastError, buyer: a.buyer, seller: a.seller, closedAt: a.closedAt === null ? null : a.closedAt.toString(),
  };
}

export async function keeperRoutes(app: FastifyInstance): Promise<void> {
  app.get<{ Querystring: { limit: number } }>("/v1/keeper/actions", {
    schema: {
      tags: ["keeper"],
      summary: "Escrow actions the node's keeper will take, is taking and took",
      description:
        "Trades whose escrow the market lets anyone close once chain time passes a deadline: an uncontested pro-rata proposal after its dispute window, " +
        "a contest the arbiter left undecided past the arbitration timeout (the meter's word), a trade without a meter report after its confirmation " +
        "deadline (refund to the buyer). Anyone may call it; no token.",
      querystring: {
        type: "object",
        additionalProperties: false,
        properties: { limit: { type: "integer", minimum: 1, maximum: 500, default: 50, description: "most entries per list" } },
      },
      response: { 200: responseSchema, 400: problem, 503: problem },
    },
  }, async (request) => {
    const keeper = app.node.keeper;
    if (!keeper) throw new ApiError("unavailable", "this node runs no keeper (KEEPER_ENABLED=0, or no KEEPER_PRIVATE_KEY with CHAIN_RPC_URL)");
    const view = await keeper.listActions({ limit: request.query.limit });
    return {
      chainTime: view.chainTime === null ? null : view.chainTime.toString(),
      keeper: { ...view.keeper, lastTickAt: view.keeper.lastTickAt === null ? null : new Date(view.keeper.lastTickAt).toISOString() },
      windows: view.windows && {
        confirmationWindow: view.windows.confirmationWindow.toString(), disputeWindow: view.windows.disputeWindow.toString(), arbitrationTimeout: view.windows.arbitrationTimeout.toString(),
      },
      pending: view.pending.map(actionJson),
      scheduled: view.scheduled.map(actionJson),
      recent: view.recent.map(actionJson),
    };
  });
}
