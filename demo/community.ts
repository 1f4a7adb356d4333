// The simulated energy community: who lives where, what each home consumes, which homes have
// PV, a battery or an EV, and which sellers cheat. A pure function of (seed, date, options):
// the same inputs give the same community, value for value. Everything a runner needs per
// interval is precomputed here (load and potential PV per home and interval); the state that
// evolves over the day (battery, EV, meter registers) is stepped by household.ts.
//
// Randomness: one mulberry32 stream per (seed, aspect, home), see deriveSeed.ts, so a home's
// attributes do not shift when another aspect draws more or less.
import type { HourlySeries } from "../engine/forecast/hourlySeries.js";
import { ValidationError } from "../lib/errors.js";
import { dayIntervals, INTERVAL_SECONDS, type DayIntervals } from "./dayIntervals.js";
import { streamFor, uniform, uniformInt } from "./deriveSeed.js";
import { drawLoadFactor, readHouseholdLoadSeries, replayDayWh, seasonalDays } from "./loadProfile.js";
import { clearSkyIrradiance, drawDayKind, pvOutputWh, simulateZoneSky, type SkyCondition, type ZoneSky } from "./solar.js";

export const DEFAULT_ZONES = ["ZONE-A", "ZONE-B"] as const;

/** Shares of homes with each asset; counts are rounded, so a community always has exactly these. */
export interface CommunityShares {
  /** Share of all homes with rooftop PV. Default 0.45. */
  pv: number;
  /** Share of PV homes with a battery. Default 0.3. */
  batteryOfPv: number;
  /** Share of all homes with an EV. Default 0.2. */
  ev: number;
  /** Share of PV homes (the sellers) that deliver only part of what they sell, on purpose. Default 0.05. */
  underDeliveringOfPv: number;
}

export const DEFAULT_SHARES: CommunityShares = { pv: 0.45, batteryOfPv: 0.3, ev: 0.2, underDeliveringOfPv: 0.05 };

export interface PvSystem {
  /** Peak (nameplate) power, W; 3,000-12,000 in steps of 100. */
  peakW: number;
  /** Share of nameplate yield that reaches the meter (inverter, wiring, heat, soiling); 0.75-0.85. */
  performanceRatio: number;
}

export interface HomeBattery {
  /** Usable capacity, Wh; 5,000-15,000 in steps of 500. */
  capacityWh: number;
  /** Largest charging power, W (AC side); 3,000-5,000 in steps of 100. */
  maxChargeW: number;
  /** Largest discharging power, W (AC side); equal to maxChargeW. */
  maxDischargeW: number;
  /** Stored Wh per AC Wh charged, per mille; 940-970 (round trip 88-94 %). */
  chargeEfficiencyPermille: number;
  /** AC Wh out per stored Wh, per mille; equal to chargeEfficiencyPermille. */
  dischargeEfficiencyPermille: number;
  /** State of charge the policy never discharges below, Wh: 10 % of capacity, rounded up. */
  reserveWh: number;
  /** State of charge at the start of the day, Wh; between reserveWh and 60 % of capacity. */
  initialSocWh: number;
}

export interface ElectricVehicle {
  /** "overnight": plugged in since the evening before, leaves in the morning; "daytime": home from late morning to evening. */
  habit: "overnight" | "daytime";
  /** First interval (index into the day) the car is plugged in. */
  arrivalInterval: number;
  /** Interval the car leaves at the start of (index; it charges in [arrival, departure)). */
  departureInterval: number;
  /** Unix seconds of arrivalInterval's start. */
  arrivalUnixSeconds: number;
  /** Unix seconds the car leaves (departureInterval's start). */
  departureUnixSeconds: number;
  /** Energy the car must have taken (AC side) before it leaves, Wh; multiple of 100, always feasible. */
  neededWh: number;
  /** Charger (wallbox) power, W: 3,700, 7,400 or 11,000. */
  chargerW: number;
}

export interface Household {
  /** "H-0001", ... in community order. */
  id: string;
  /** The smart meter's device id, "SM-0001" for H-0001 (the MQTT topic's deviceId). */
  meterId: string;
  zone: string;
  /** Index in community.households. */
  index: number;
  /** Consumption of the home's appliances per interval, Wh (EV charging and battery excluded). */
  loadWh: number[];
  /** The series day this home replays, "YYYY-MM-DD" (wall clock of the source series). */
  loadSourceDay: string;
  /** The home's consumption level against the community mean (triangular, 0.6-1.6, mean 1). */
  loadFactor: number;
  pv: PvSystem | null;
  /** What the PV would produce per interval, Wh (zeros without PV); a cheating seller may curtail some. */
  generationWh: number[];
  battery: HomeBattery | null;
  ev: ElectricVehicle | null;
  /** True for a seller that on purpose delivers only deliveryShareBps of what it sold. */
  underDelivers: boolean;
  /** Share of sold energy this home actually delivers, basis points: 10,000 when honest, 5,000-8,000 when not. */
  deliveryShareBps: number;
  /** Grid connection export limit, W (the PV's peak; 0 without PV): what the registry holds. */
  exportLimitW: number;
  /** Grid connection import limit, W (3 x 230 V x 35 A main fuse). */
  importLimitW: number;
  /** Export register at the start of the day, Wh (a meter is not new). */
  initialExportRegisterWh: number;
  /** Import register at the start of the day, Wh. */
  initialImportRegisterWh: number;
}

export interface Community {
  seed: number;
  date: string;
  timeZone: string;
  latitude: number;
  longitude: number;
  /** Interval length, seconds (900). */
  intervalSeconds: number;
  /** The day's intervals: start unix seconds and local wall-clock minute of each (92, 96 or 100). */
  intervals: DayIntervals;
  /** Mean clear-sky global horizontal irradiance per interval, W/m². */
  clearSkyIrradianceWm2: number[];
  /** Kind of day over the community (the zones' skies are drawn around it). */
  dayKind: SkyCondition;
  /** One sky per zone, in `zoneIds` order. */
  zones: ZoneSky[];
  zoneIds: string[];
  households: Household[];
  /** How loads were scaled (see loadProfile.ts). */
  load: { windowMeanDailyKWh: number; seasonalFactor: number; meanDailyLoadWh: number; candidateDays: number };
}

export interface CreateCommunityParameters {
  /** Number of homes, 1-100,000. */
  households: number;
  /** Any integer; the community is a pure function of it (and the rest of these parameters). */
  seed: number;
  /** Local calendar date simulated, "YYYY-MM-DD". */
  date: string;
  /** Grid zone ids; homes are split into equal contiguous blocks in this order. Default ZONE-A, ZONE-B. */
  zones?: readonly string[];
  /** Degrees north. Default 53.5 (Hamburg). */
  latitude?: number;
  /** Degrees east. Default 10.0. */
  longitude?: number;
  /** IANA zone of the community's clock. Default "Europe/Berlin". */
  timeZone?: string;
  /** The household load CSV; default data/household-hourly-kwh-2006-2009.csv in the repository (lib/dataFiles.ts). */
  loadCsvPath?: string;
  /** An already loaded series (then loadCsvPath is not read). */
  loadSeries?: HourlySeries;
  /** Community mean consumption per home per day over a year, Wh. Default 10,000. */
  meanDailyLoadWh?: number;
  /** Force the kind of day instead of drawing it from the seed. */
  dayKind?: SkyCondition;
  shares?: Partial<CommunityShares>;
}

export type CreateCommunityReturnType = Community;

/** 3 x 230 V x 35 A. */
const IMPORT_LIMIT_W = 24_150;

function requireFinite(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw new ValidationError(field, `must be a number from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** The first `count` of a seeded shuffle of `items`. */
function chooseSubset(random: () => number, items: readonly number[], count: number): Set<number> {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return new Set(a.slice(0, count));
}

function firstIntervalAtOrAfter(localMinute: readonly number[], minute: number): number {
  const i = localMinute.findIndex((m) => m >= minute);
  return i < 0 ? localMinute.length : i;
}

function drawEv(seed: number, index: number, day: DayIntervals): ElectricVehicle {
  const r = streamFor(seed, "ev", index);
  const habit = r() < 0.5 ? "overnight" : "daytime";
  const u = r();
  const chargerW = u < 0.2 ? 3_700 : u < 0.7 ? 7_400 : 11_000;
  let arrivalInterval: number;
  let departureInterval: number;
  let wantedWh: number;
  if (habit === "overnight") {
    arrivalInterval = 0;
    departureInterval = firstIntervalAtOrAfter(day.localMinute, 15 * uniformInt(r, 24, 34)); // 06:00-08:30
    wantedWh = uniform(r, 4_000, 14_000);
  } else {
    arrivalInterval = firstIntervalAtOrAfter(day.localMinute, 15 * uniformInt(r, 32, 48)); // 08:00-12:00
    departureInterval = firstIntervalAtOrAfter(day.localMinute, 15 * uniformInt(r, 64, 80)); // 16:00-20:00
    wantedWh = uniform(r, 5_000, 20_000);
  }
  // At most 80 % of what the charger could deliver while parked: the need is always feasible.
  const perInterval = Math.floor((chargerW * INTERVAL_SECONDS) / 3600);
  const feasibleWh = Math.floor(0.8 * perInterval * (departureInterval - arrivalInterval));
  const neededWh = Math.floor(Math.min(wantedWh, feasibleWh) / 100) * 100;
  const starts = day.startUnixSeconds;
  return {
    habit,
    arrivalInterval,
    departureInterval,
    arrivalUnixSeconds: starts[arrivalInterval]!,
    departureUnixSeconds: departureInterval < starts.length ? starts[departureInterval]! : day.endUnixSeconds,
    neededWh,
    chargerW,
  };
}

function drawBattery(seed: number, index: number): HomeBattery {
  const r = streamFor(seed, "battery", index);
  const capacityWh = 500 * uniformInt(r, 10, 30);
  const powerW = 100 * uniformInt(r, 30, 50);
  const efficiency = uniformInt(r, 940, 970);
  const reserveWh = Math.ceil(capacityWh / 10);
  return {
    capacityWh,
    maxChargeW: powerW,
    maxDischargeW: powerW,
    chargeEfficiencyPermille: efficiency,
    dischargeEfficiencyPermille: efficiency,
    reserveWh,
    initialSocWh: uniformInt(r, reserveWh, Math.floor(capacityWh * 0.6)),
  };
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/**
 * Builds the community for one local day. Throws ValidationError naming the field on bad input
 * (household count, date, zones, coordinates, time zone, shares, an unreadable CSV).
 */
export function createCommunity(params: CreateCommunityParameters): CreateCommunityReturnType {
  const n = params.households;
  if (!Number.isSafeInteger(n) || n < 1 || n > 100_000) throw new ValidationError("households", `must be an integer from 1 to 100000, got ${String(n)}`);
  if (!Number.isSafeInteger(params.seed)) throw new ValidationError("seed", `must be an integer, got ${String(params.seed)}`);
  const seed = params.seed;
  const latitude = requireFinite("latitude", params.latitude ?? 53.5, -66, 66);
  const longitude = requireFinite("longitude", params.longitude ?? 10.0, -180, 180);
  const timeZone = params.timeZone ?? "Europe/Berlin";
  const zoneIds = [...(params.zones ?? DEFAULT_ZONES)];
  if (zoneIds.length === 0 || new Set(zoneIds).size !== zoneIds.length || zoneIds.some((z) => typeof z !== "string" || z.length === 0)) {
    throw new ValidationError("zones", "must be a non-empty list of distinct, non-empty zone ids");
  }
  const meanDailyLoadWh = requireFinite("meanDailyLoadWh", params.meanDailyLoadWh ?? 10_000, 100, 1_000_000);
  const shares: CommunityShares = { ...DEFAULT_SHARES, ...params.shares };
  for (const [k, v] of Object.entries(shares)) requireFinite(`shares.${k}`, v, 0, 1);

  const day = dayIntervals(params.date, timeZone);
  const series = params.loadSeries ?? readHouseholdLoadSeries(params.loadCsvPath);
  const season = seasonalDays(series, params.date);
  const irradiance = clearSkyIrradiance(day.startUnixSeconds, latitude, longitude);
  const dayKind = params.dayKind ?? drawDayKind(seed, params.date);
  const zones = zoneIds.map((zone) => simulateZoneSky({ seed, date: params.date, zone, intervalCount: day.startUnixSeconds.length, dayKind }));

  const all = Array.from({ length: n }, (_, i) => i);
  const pvHomes = chooseSubset(streamFor(seed, "roles", "pv"), all, Math.round(n * shares.pv));
  const pvList = all.filter((i) => pvHomes.has(i));
  const batteryHomes = chooseSubset(streamFor(seed, "roles", "battery"), pvList, Math.round(pvList.length * shares.batteryOfPv));
  const evHomes = chooseSubset(streamFor(seed, "roles", "ev"), all, Math.round(n * shares.ev));
  const cheats = chooseSubset(streamFor(seed, "roles", "under-delivery"), pvList, Math.round(pvList.length * shares.underDeliveringOfPv));

  const width = Math.max(4, String(n).length);
  const households: Household[] = all.map((i) => {
    const zoneIndex = Math.floor((i * zoneIds.length) / n);
    const loadRandom = streamFor(seed, "load", i);
    const dayStart = season.dayStarts[Math.floor(loadRandom() * season.dayStarts.length)]!;
    const loadFactor = drawLoadFactor(loadRandom);
    const whPerKWh = (meanDailyLoadWh * season.seasonalFactor * loadFactor) / season.windowMeanDailyKWh;
    const loadWh = replayDayWh({ series, dayStart, whPerKWh, localMinute: day.localMinute, random: loadRandom });

    let pv: PvSystem | null = null;
    let generationWh: number[];
    if (pvHomes.has(i)) {
      const r = streamFor(seed, "pv", i);
      pv = { peakW: 100 * uniformInt(r, 30, 120), performanceRatio: uniform(r, 0.75, 0.85) };
      generationWh = pvOutputWh(pv.peakW, pv.performanceRatio, irradiance, zones[zoneIndex]!.clearSkyIndex);
    } else {
      generationWh = new Array<number>(day.startUnixSeconds.length).fill(0);
    }
    const underDelivers = cheats.has(i);
    const meter = streamFor(seed, "meter", i);
    return {
      id: `H-${pad(i + 1, width)}`,
      meterId: `SM-${pad(i + 1, width)}`,
      zone: zoneIds[zoneIndex]!,
      index: i,
      loadWh,
      loadSourceDay: new Date((series.start + dayStart) * 3_600_000).toISOString().slice(0, 10),
      loadFactor,
      pv,
      generationWh,
      battery: batteryHomes.has(i) ? drawBattery(seed, i) : null,
      ev: evHomes.has(i) ? drawEv(seed, i, day) : null,
      underDelivers,
      deliveryShareBps: underDelivers ? uniformInt(streamFor(seed, "under-delivery", i), 5_000, 8_000) : 10_000,
      exportLimitW: pv?.peakW ?? 0,
      importLimitW: IMPORT_LIMIT_W,
      initialExportRegisterWh: pv ? uniformInt(meter, 0, 20_000_000) : 0,
      initialImportRegisterWh: uniformInt(meter, 1_000_000, 40_000_000),
    };
  });

  return {
    seed,
    date: params.date,
    timeZone,
    latitude,
    longitude,
    intervalSeconds: INTERVAL_SECONDS,
    intervals: day,
    clearSkyIrradianceWm2: irradiance,
    dayKind,
    zones,
    zoneIds,
    households,
    load: { windowMeanDailyKWh: season.windowMeanDailyKWh, seasonalFactor: season.seasonalFactor, meanDailyLoadWh, candidateDays: season.dayStarts.length },
  };
}
