// Rooftop PV output for the simulated day: where the sun is (the equations of NOAA's solar
// calculator), how much reaches a horizontal surface under a clear sky (Haurwitz), how much of
// that clouds let through (a seeded, autocorrelated sky per zone), and what a system of a given
// peak power makes of it in each 15-minute interval, in integer Wh.
//
// Panels are modelled as horizontal (the yield of global horizontal irradiance): a tilted,
// south-facing roof makes ~10-15 % more over a year in Hamburg, which the performance ratio
// spread (0.75-0.85) covers well enough for a market demo.
import { ValidationError } from "../lib/errors.js";
import { gaussian, streamFor } from "./deriveSeed.js";
import { INTERVAL_SECONDS } from "./dayIntervals.js";

const DEG = Math.PI / 180;

export interface SolarPosition {
  /** Solar declination, degrees. */
  declinationDeg: number;
  /** Equation of time, minutes (true solar time minus mean solar time). */
  equationOfTimeMin: number;
  /** Hour angle, degrees: 0 at solar noon, negative in the morning, 15 per hour. */
  hourAngleDeg: number;
  /** Geometric elevation above the horizon, degrees (no refraction); negative at night. */
  elevationDeg: number;
  /** Azimuth clockwise from north, degrees (180 = south). */
  azimuthDeg: number;
}

/**
 * Sun position at `unixSeconds` (UTC) seen from `latitudeDeg` (north positive), `longitudeDeg`
 * (east positive), by the equations of NOAA's solar calculator (Meeus, "Astronomical
 * Algorithms"): declination and elevation within ~0.01 degrees for 1800-2100.
 */
export function solarPosition(unixSeconds: number, latitudeDeg: number, longitudeDeg: number): SolarPosition {
  const julianCentury = (unixSeconds / 86_400 + 2_440_587.5 - 2_451_545) / 36_525;
  const t = julianCentury;
  const meanLong = (280.46646 + t * (36000.76983 + t * 0.0003032)) % 360;
  const meanAnomaly = 357.52911 + t * (35999.05029 - 0.0001537 * t);
  const eccentricity = 0.016708634 - t * (0.000042037 + 0.0000001267 * t);
  const m = meanAnomaly * DEG;
  const center = Math.sin(m) * (1.914602 - t * (0.004817 + 0.000014 * t)) + Math.sin(2 * m) * (0.019993 - 0.000101 * t) + Math.sin(3 * m) * 0.000289;
  const omega = (125.04 - 1934.136 * t) * DEG;
  const apparentLong = (meanLong + center - 0.00569 - 0.00478 * Math.sin(omega)) * DEG;
  const meanObliquity = 23 + (26 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60) / 60;
  const obliquity = (meanObliquity + 0.00256 * Math.cos(omega)) * DEG;
  const decl = Math.asin(Math.sin(obliquity) * Math.sin(apparentLong));
  const y = Math.tan(obliquity / 2) ** 2;
  const l0 = meanLong * DEG;
  const e = eccentricity;
  const eqTime =
    (4 / DEG) *
    (y * Math.sin(2 * l0) - 2 * e * Math.sin(m) + 4 * e * y * Math.sin(m) * Math.cos(2 * l0) - 0.5 * y * y * Math.sin(4 * l0) - 1.25 * e * e * Math.sin(2 * m));
  const minutesUtc = (((unixSeconds % 86_400) + 86_400) % 86_400) / 60;
  const trueSolarMinutes = minutesUtc + eqTime + 4 * longitudeDeg;
  const hourAngleDeg = ((((trueSolarMinutes / 4 - 180) % 360) + 540) % 360) - 180;
  const ha = hourAngleDeg * DEG;
  const lat = latitudeDeg * DEG;
  const cosZenith = Math.min(1, Math.max(-1, Math.sin(lat) * Math.sin(decl) + Math.cos(lat) * Math.cos(decl) * Math.cos(ha)));
  const elevationDeg = 90 - Math.acos(cosZenith) / DEG;
  // Azimuth from south, westward positive, then turned to "from north, clockwise".
  const fromSouth = Math.atan2(Math.sin(ha), Math.cos(ha) * Math.sin(lat) - Math.tan(decl) * Math.cos(lat));
  const azimuthDeg = (fromSouth / DEG + 180 + 360) % 360;
  return { declinationDeg: decl / DEG, equationOfTimeMin: eqTime, hourAngleDeg, elevationDeg, azimuthDeg };
}

/**
 * Clear-sky global horizontal irradiance, W/m², for a sun at `elevationDeg` (Haurwitz 1945:
 * GHI = 1098 cos z exp(-0.059 / cos z)); 0 with the sun below the horizon.
 */
export function clearSkyGhi(elevationDeg: number): number {
  const cosZ = Math.sin(elevationDeg * DEG);
  return cosZ <= 0 ? 0 : 1098 * cosZ * Math.exp(-0.059 / cosZ);
}

/**
 * Mean clear-sky GHI over each interval [start, start + intervalSeconds), W/m², by Simpson's rule
 * on the start, middle and end (the sun rises inside an interval, so the midpoint alone is off).
 */
export function clearSkyIrradiance(intervalStarts: readonly number[], latitudeDeg: number, longitudeDeg: number, intervalSeconds = INTERVAL_SECONDS): number[] {
  const at = (t: number) => clearSkyGhi(solarPosition(t, latitudeDeg, longitudeDeg).elevationDeg);
  return intervalStarts.map((t) => (at(t) + 4 * at(t + intervalSeconds / 2) + at(t + intervalSeconds)) / 6);
}

export type SkyCondition = "clear" | "partly" | "overcast";

/** Clear-sky index (share of clear-sky irradiance that gets through): mean and spread per condition. */
const SKY_INDEX: Record<SkyCondition, { mean: number; sd: number }> = {
  clear: { mean: 0.97, sd: 0.03 },
  partly: { mean: 0.62, sd: 0.18 },
  overcast: { mean: 0.25, sd: 0.07 },
};

/** How often each condition holds over a day of a given kind (the chain's stationary mix). */
const DAY_MIX: Record<SkyCondition, Record<SkyCondition, number>> = {
  clear: { clear: 0.85, partly: 0.12, overcast: 0.03 },
  partly: { clear: 0.3, partly: 0.55, overcast: 0.15 },
  overcast: { clear: 0.03, partly: 0.22, overcast: 0.75 },
};

/** Chance per 15 minutes that the condition stays as it is (mean spell ~2.5 h). */
const STAY = 0.9;
/** Lag-one correlation of the clear-sky index around its condition's mean (~40 min memory). */
const INDEX_AR = 0.7;
/** Day kinds for northern Germany, share of days: mostly cloudy, rarely clear all day. */
const DAY_KIND_ODDS: [SkyCondition, number][] = [["clear", 0.25], ["partly", 0.45], ["overcast", 0.3]];

export interface ZoneSky {
  zone: string;
  /** The kind of day the chain was drawn for. */
  dayKind: SkyCondition;
  /** Condition per interval. */
  condition: SkyCondition[];
  /** Share of clear-sky irradiance reaching the panels per interval, in [0.05, 1]. */
  clearSkyIndex: number[];
}

function pick(random: () => number, odds: readonly [SkyCondition, number][]): SkyCondition {
  let u = random();
  for (const [c, p] of odds) {
    if (u < p) return c;
    u -= p;
  }
  return odds[odds.length - 1]![0];
}

/** The kind of day over the community (weather is regional, so all zones share it). */
export function drawDayKind(seed: number, date: string): SkyCondition {
  return pick(streamFor(seed, "sky", date, "day-kind"), DAY_KIND_ODDS);
}

/**
 * One zone's sky over `intervalCount` intervals: a three-state Markov chain (clear, partly,
 * overcast) whose stationary mix is the day kind's, and around each state's mean clear-sky
 * index an AR(1) noise, so clouds come and go in spells rather than flicker. Seeded by
 * (seed, date, zone): the same zone gets the same sky whatever other zones exist.
 */
export function simulateZoneSky(params: { seed: number; date: string; zone: string; intervalCount: number; dayKind: SkyCondition }): ZoneSky {
  const { seed, date, zone, intervalCount, dayKind } = params;
  if (!Number.isSafeInteger(intervalCount) || intervalCount < 0) throw new ValidationError("intervalCount", `must be a non-negative integer, got ${intervalCount}`);
  const mix = DAY_MIX[dayKind];
  if (mix === undefined) throw new ValidationError("dayKind", `must be clear, partly or overcast, got ${JSON.stringify(dayKind)}`);
  const odds = Object.entries(mix) as [SkyCondition, number][];
  const random = streamFor(seed, "sky", date, zone);
  const condition: SkyCondition[] = [];
  const clearSkyIndex: number[] = [];
  let state = pick(random, odds);
  let noise = 0;
  const innovation = Math.sqrt(1 - INDEX_AR * INDEX_AR);
  for (let i = 0; i < intervalCount; i++) {
    if (i > 0 && random() >= STAY) state = pick(random, odds);
    noise = INDEX_AR * noise + innovation * gaussian(random);
    const { mean, sd } = SKY_INDEX[state];
    condition.push(state);
    clearSkyIndex.push(Math.min(1, Math.max(0.05, mean + sd * noise)));
  }
  return { zone, dayKind, condition, clearSkyIndex };
}

/**
 * Energy from a PV system in one interval, integer Wh (rounded to nearest):
 * peakW x irradiance / 1000 W/m² x performanceRatio x clearSkyIndex x interval hours.
 */
export function pvIntervalWh(peakW: number, performanceRatio: number, irradianceWm2: number, clearSkyIndex = 1, intervalSeconds = INTERVAL_SECONDS): number {
  return Math.round(((peakW * irradianceWm2) / 1000) * performanceRatio * clearSkyIndex * (intervalSeconds / 3600));
}

/** PV output per interval, integer Wh, for `irradianceWm2[i]` x `clearSkyIndex[i]` (1 where omitted). */
export function pvOutputWh(peakW: number, performanceRatio: number, irradianceWm2: readonly number[], clearSkyIndex?: readonly number[]): number[] {
  return irradianceWm2.map((g, i) => pvIntervalWh(peakW, performanceRatio, g, clearSkyIndex?.[i] ?? 1));
}
