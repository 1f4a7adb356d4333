// The live simulation's community: N homes split over the node's zones in contiguous blocks,
// each zone its own demo community (community.ts) so every zone gets its share of PV homes and
// batteries, and the same homes every day: a home's assets, wallet and meter follow from the
// seed, the household count and its index; its load and PV follow the local date it lives.
//
// Wallets, meter ids and meter keys are keyed on (seed, household count): re-running with the
// same two finds the homes already registered; another count is another community with wallets of its own
// (a home's zone depends on the count, and the registry holds a wallet in one zone for good).
//
// Who under-delivers is chosen per interval among its sellers (chooseUnderDeliverers.ts); how
// much of what it sold a home then delivers is its own (deliveryShareBps).
import { deriveMeterKeyPair, type MeterKeyPair } from "../bridge/readingSignature.js";
import type { HourlySeries } from "../engine/forecast/hourlySeries.js";
import { ValidationError } from "../lib/errors.js";
import { createCommunity, type CommunityShares, type Household } from "./community.js";
import { dayIntervals, localClock, type DayIntervals } from "./dayIntervals.js";
import { deriveSeed, streamFor, uniformInt } from "./deriveSeed.js";
import { deriveHouseholdWallets, type HouseholdWallet } from "./householdWallets.js";
import { drawDayKind, type SkyCondition } from "./solar.js";

/** More PV and batteries than the demo's day (0.45, 0.3): a small live community still trades every interval. */
export const LIVE_SHARES: CommunityShares = { pv: 0.5, batteryOfPv: 0.6, ev: 0.2, underDeliveringOfPv: 0 };

export interface LiveHome {
  /** 0 .. households - 1. */
  index: number;
  /** "H-0001", ... */
  id: string;
  zone: string;
  /** The meter id it is registered with and publishes under: `live-{seed}-{households}-{index + 1}`. */
  meterId: string;
  wallet: HouseholdWallet;
  /** The meter's Ed25519 key that signs its readings, derived from the wallet's key (simulated meters only). */
  meterKey: MeterKeyPair;
  /** Share of what it sold that it delivers in an interval it under-delivers, basis points (5,000-8,000). */
  deliveryShareBps: number;
  /** What the registry holds for it. */
  registration: { exportLimitW: number; importLimitW: number; sources: ("solar" | "storage")[] };
  hasPv: boolean;
  hasBattery: boolean;
  hasEv: boolean;
}

export interface LiveDay {
  date: string;
  intervals: DayIntervals;
  /** households[i] is homes[i]'s model for this day. */
  households: Household[];
}

export interface LiveCommunity {
  homes: LiveHome[];
  timeZone: string;
  /** The local calendar date ("YYYY-MM-DD") an instant falls on in the community's time zone. */
  dateOf(unixSeconds: number): string;
  /** The homes' models for a local date (the last two asked are kept). */
  day(date: string): LiveDay;
}

export interface CreateLiveCommunityParameters {
  households: number;
  seed: number;
  /** The node's market zones, in order. */
  zones: readonly string[];
  timeZone: string;
  /** Any date: the homes' assets do not depend on it. */
  date: string;
  shares?: Partial<CommunityShares>;
  /** Force the kind of day; default drawn per date from the seed. */
  dayKind?: SkyCondition;
  loadSeries?: HourlySeries;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

export function createLiveCommunity(p: CreateLiveCommunityParameters): LiveCommunity {
  const n = p.households;
  if (!Number.isSafeInteger(n) || n < 1 || n > 10_000) throw new ValidationError("households", `must be a whole number from 1 to 10000, got ${String(n)}`);
  if (p.zones.length === 0) throw new ValidationError("zones", "the node has no markets");
  const shares: CommunityShares = { ...LIVE_SHARES, ...p.shares, underDeliveringOfPv: 0 };
  // The community's own seed: the run's seed and its size (see the top of the file).
  const seed = deriveSeed(p.seed, "live-community", n);
  const zoneOf = (i: number) => Math.floor((i * p.zones.length) / n);
  const members = p.zones.map((_, z) => Array.from({ length: n }, (_, i) => i).filter((i) => zoneOf(i) === z));
  const wallets = deriveHouseholdWallets(seed, n);
  const width = Math.max(4, String(n).length);

  const zoneCommunity = (z: number, date: string) =>
    members[z]!.length === 0
      ? []
      : createCommunity({
          households: members[z]!.length, seed: deriveSeed(seed, "zone", p.zones[z]!), date, zones: [p.zones[z]!], timeZone: p.timeZone, shares,
          // One sky over the town: every zone gets the same kind of day (its clouds still its own).
          dayKind: p.dayKind ?? drawDayKind(seed, date),
          ...(p.loadSeries ? { loadSeries: p.loadSeries } : {}),
        }).households;

  // Assets do not depend on the date: read them from one day.
  const models: Household[] = new Array(n);
  p.zones.forEach((_, z) => zoneCommunity(z, p.date).forEach((h, j) => (models[members[z]![j]!] = h)));
  const homes: LiveHome[] = models.map((h, i) => ({
    index: i,
    id: `H-${pad(i + 1, width)}`,
    zone: p.zones[zoneOf(i)]!,
    meterId: `live-${p.seed}-${n}-${i + 1}`,
    wallet: wallets[i]!,
    meterKey: deriveMeterKeyPair(`live-meter:${wallets[i]!.privateKeyHex}`),
    deliveryShareBps: uniformInt(streamFor(seed, "delivery-share", i), 5_000, 8_000),
    registration: {
      // A battery exports through its own inverter: the connection must allow its discharge power.
      exportLimitW: Math.max(h.pv?.peakW ?? 0, h.battery?.maxDischargeW ?? 0),
      importLimitW: h.importLimitW,
      sources: [...(h.pv ? ["solar" as const] : []), ...(h.battery ? ["storage" as const] : [])],
    },
    hasPv: h.pv !== null,
    hasBattery: h.battery !== null,
    hasEv: h.ev !== null,
  }));
  if (new Set(homes.map((h) => h.meterId)).size !== n || homes.some((h) => h.meterId.length > 31)) {
    throw new ValidationError("seed", "gives meter ids longer than 31 bytes: use a smaller seed");
  }

  const days = new Map<string, LiveDay>();
  return {
    homes,
    timeZone: p.timeZone,
    dateOf(unixSeconds) {
      const c = localClock(unixSeconds, p.timeZone);
      return `${c.year}-${pad(c.month, 2)}-${pad(c.day, 2)}`;
    },
    day(date) {
      let d = days.get(date);
      if (d) return d;
      const households: Household[] = new Array(n);
      p.zones.forEach((_, z) => {
        zoneCommunity(z, date).forEach((h, j) => {
          const i = members[z]![j]!;
          const home = homes[i]!;
          households[i] = { ...h, id: home.id, meterId: home.meterId, index: i, underDelivers: false, deliveryShareBps: home.deliveryShareBps, exportLimitW: home.registration.exportLimitW };
        });
      });
      const intervals = dayIntervals(date, p.timeZone);
      d = { date, intervals, households };
      if (days.size >= 2) days.delete(days.keys().next().value!);
      days.set(date, d);
      return d;
    },
  };
}
