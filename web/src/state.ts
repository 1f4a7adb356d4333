// What the views share: the node's chain description (markets, token, time zone), the zone the
// viewer picked, the node's clock as last seen (a simulated node runs its own), and a bus for
// "something changed" so one view's action refreshes the others.
import type { ChainJson } from "./api.js";

export const state = {
  chain: undefined as unknown as ChainJson,
  zone: "",
  /** The node's clock (unix seconds) from its last markets answer, and when we saw it. */
  nodeNow: 0,
  seenAt: 0,
};

export function nodeNowSeconds(): number {
  // Not extrapolated with wall time: a simulated node's clock moves in steps of its own.
  return state.nodeNow;
}

export function noteNodeNow(now: number | undefined) {
  if (typeof now === "number") {
    state.nodeNow = now;
    state.seenAt = Date.now();
  }
}

type Topic = "orders" | "zone" | "session";
const bus = new Map<Topic, Set<() => void>>();
export function on(topic: Topic, f: () => void) {
  let set = bus.get(topic);
  if (!set) bus.set(topic, (set = new Set()));
  set.add(f);
}
export function emit(topic: Topic) {
  for (const f of bus.get(topic) ?? []) f();
}

export function marketOf(zone: string) {
  return state.chain.markets.find((m) => m.zone === zone);
}
