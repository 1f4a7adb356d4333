// Which sellers fall short in an interval of the live simulation: a share of each zone's
// sellers of that interval, at least one where the share is above zero, drawn from the seed,
// the zone and the interval. Chosen per interval rather than as fixed cheats, so disputes show
// from the first delivered interval whatever the hour (a fixed cheat's battery may be charging
// all morning); each home falls short by its own share (LiveHome.deliveryShareBps).
import { ValidationError } from "../lib/errors.js";
import { streamFor } from "./deriveSeed.js";

export interface ChooseUnderDeliverersParameters {
  seed: number;
  intervalStart: number;
  /** Share of each zone's sellers, 0-1. */
  share: number;
  /** The interval's sellers: an id (home index) and zone each. */
  sellers: readonly { home: number; zone: string }[];
}

/** The home indexes that deliver only part of what they sell in this interval. */
export function chooseUnderDeliverers(p: ChooseUnderDeliverersParameters): Set<number> {
  if (!(p.share >= 0 && p.share <= 1)) throw new ValidationError("share", `must be from 0 to 1, got ${String(p.share)}`);
  const chosen = new Set<number>();
  if (p.share === 0) return chosen;
  const byZone = new Map<string, number[]>();
  for (const s of p.sellers) byZone.set(s.zone, [...(byZone.get(s.zone) ?? []), s.home]);
  for (const [zone, homes] of byZone) {
    const random = streamFor(p.seed, "under-delivery", zone, p.intervalStart);
    const order = [...homes].sort((a, b) => a - b);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const count = Math.max(1, Math.round(order.length * p.share));
    for (const home of order.slice(0, count)) chosen.add(home);
  }
  return chosen;
}
