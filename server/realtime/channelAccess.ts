// Who may hear which WebSocket channel: the REST API's rules, applied to subscriptions. Market
// data (order books, trades, the orchestrator's actions) is public, as GET /v1/trading/... and
// GET /v1/orchestrator/actions are. Channels that carry a person's data need a token (sent as
// `token` in the subscribe message, since a browser's WebSocket cannot set headers; or an
// Authorization header on the upgrade request) and apply the owner rules of their REST routes:
//
//   consumption.real-time, generation.solar  readings of the meter registered to the token's
//                                            address only (operators: every meter), as GET
//                                            /v1/energy/consumption decides by registry meter
//   events.{resourceId}                      the resource's owner or an operator, as GET /v1/events
//   vpp.{id}.status                          any signed-in wallet, as GET /v1/vpp/{id}/status
//
// A grant is bound to the token it was given with: once that token expires, is refreshed or
// logged out, the subscription ends at its next message with an error frame saying so.
import type { Address } from "viem";
import type { MeterInfo } from "../../bridge/meterDirectory.js";
import type { Session, Sessions } from "../auth/sessions.js";
import type { SubscriptionGrant } from "./hub.js";

export type ChannelRule = "public" | "readings" | "resource_owner" | "signed_in";

export function channelRule(channel: string): ChannelRule {
  if (channel === "consumption.real-time" || channel === "generation.solar") return "readings";
  if (channel.startsWith("events.")) return "resource_owner";
  if (channel.startsWith("vpp.")) return "signed_in";
  // trading.market.{zone}, orchestrator.actions: what the public REST routes show anyway.
  return "public";
}

/** The rule as a client reads it in an error frame. */
export function ruleText(channel: string): string {
  switch (channelRule(channel)) {
    case "readings":
      return "carries meters' readings: it needs a token (\"token\" in the subscribe message) and delivers only the readings of the meter registered to the token's address (operators: every meter)";
    case "resource_owner":
      return "carries one resource's demand-response events: it needs a token (\"token\" in the subscribe message) and reaches only the resource's owner or an operator";
    case "signed_in":
      return "needs a token (\"token\" in the subscribe message), as GET /v1/vpp/{id}/status does";
    default:
      return "is public";
  }
}

export interface ChannelAccessDeps {
  sessions: Pick<Sessions, "lookup">;
  /** The registry's meters (the bridge's directory); absent when the node runs no bridge. */
  meters?: { byMeterId(meterId: string): MeterInfo | undefined; byAccount(account: Address): MeterInfo | undefined } | undefined;
  /** A coordination resource's owner; undefined when unknown (or no coordination service). */
  resourceOwner(resourceId: string): Promise<Address | undefined>;
}

export type ChannelRefusal = {
  granted: false;
  /** The REST API's codes: unauthorized, token_expired, session_expired, not_meter_owner, not_resource_owner. */
  code: string;
  detail: string;
};
export type ChannelDecision = { granted: true; grant: SubscriptionGrant | null } | ChannelRefusal;

const sameAddress = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Why a token does not open a private channel, in the REST API's words. */
function tokenRefusal(channel: string, state: ReturnType<Sessions["lookup"]>, hadToken: boolean): ChannelRefusal {
  const rule = `${channel} ${ruleText(channel)}`;
  if (!hadToken) return { granted: false, code: "unauthorized", detail: `${rule}; sign in with Ethereum (POST /v1/auth/login) for a token` };
  if (state === "expired") return { granted: false, code: "token_expired", detail: `${rule}; the token has expired: refresh it (POST /v1/auth/refresh) and subscribe again` };
  if (state === "session_over") return { granted: false, code: "session_expired", detail: `${rule}; the sign-in reached its maximum lifetime (SESSION_MAX_SECONDS): sign in again` };
  return { granted: false, code: "unauthorized", detail: `${rule}; the token is unknown, refreshed or logged out: subscribe with a live one` };
}

/**
 * Whether the holder of `token` may subscribe to `channel`, and the grant that keeps checking it.
 * Public channels ignore the token altogether (a stale one must not break the market view).
 */
export async function authorizeChannel(deps: ChannelAccessDeps, channel: string, token: string | undefined): Promise<ChannelDecision> {
  const rule = channelRule(channel);
  if (rule === "public") return { granted: true, grant: null };
  const state = token === undefined ? undefined : deps.sessions.lookup(token);
  if (typeof state !== "object") return tokenRefusal(channel, state, token !== undefined);
  const session: Session = state;
  const holds = () => deps.sessions.lookup(token!) === session;
  const endedFrame = () => {
    const refusal = tokenRefusal(channel, deps.sessions.lookup(token!), true);
    return JSON.stringify({ type: "error", code: refusal.code, field: "token", channel, detail: `subscription ended: ${refusal.detail}` });
  };

  if (rule === "signed_in") return { granted: true, grant: { holds, endedFrame } };

  if (rule === "resource_owner") {
    if (session.operator) return { granted: true, grant: { holds, endedFrame } };
    const resourceId = channel.slice("events.".length);
    const owner = await deps.resourceOwner(resourceId);
    // Unknown and someone else's answer alike: ids of others are not confirmed (REST: 404).
    if (!owner || !sameAddress(owner, session.address)) {
      return { granted: false, code: "not_resource_owner", detail: `${channel} ${ruleText(channel)}; ${session.address} owns no resource ${resourceId}` };
    }
    return { granted: true, grant: { holds, endedFrame } };
  }

  // Readings: an operator hears every meter; anyone else the meter the registry gives their
  // address, decided per message so a meter that changes hands stops reaching its former owner.
  if (session.operator) return { granted: true, grant: { holds, endedFrame } };
  const meters = deps.meters;
  if (!meters?.byAccount(session.address)) {
    return { granted: false, code: "not_meter_owner", detail: `${channel} ${ruleText(channel)}; ${session.address} has no registered meter` };
  }
  const admits = (data: unknown) => {
    const meterId = (data as { meterId?: unknown } | null)?.meterId;
    if (typeof meterId !== "string") return false;
    const meter = meters.byMeterId(meterId);
    return meter !== undefined && sameAddress(meter.account, session.address);
  };
  return { granted: true, grant: { holds, admits, endedFrame } };
}
