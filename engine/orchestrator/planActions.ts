// What the microgrid does in one interval, from its balance and its resources: charge or
// discharge batteries, soak surplus into parked EVs, defer or shed flexible loads, raise a
// demand-response event, and offer or bid the residual on the P2P market. Pure: the service
// (server/orchestrator/) turns each planned action into a device command, an order or an event.
// Energy is whole Wh throughout; every action carries a reason that shows its numbers.
import { ValidationError } from "../../lib/errors.js";
import type { GridBalance, GridState } from "./balance.js";

export interface DeviceAddress {
  region: string;
  deviceType: string;
  deviceId: string;
}

export interface PlanBattery {
  resourceId: string;
  capacityWh: number;
  /** State of charge now, percent (0..100, decimals allowed). */
  socPct: number;
  /** Percent of capacity never discharged; default 10. */
  reservePct?: number;
  maxChargeW: number;
  maxDischargeW: number;
  device?: DeviceAddress | null;
}

export interface PlanEv {
  resourceId: string;
  /** Energy the owner still needs by departure, Wh. */
  energyNeededWh: number;
  maxChargeW: number;
  pluggedIn: boolean;
  /** Unix ms; null/undefined = no deadline given. */
  departureMs?: number | null;
  /** May discharge to the grid (vehicle-to-grid); needs capacityWh and socPct to be used. */
  v2g?: boolean;
  capacityWh?: number;
  socPct?: number;
  /** Discharge power for V2G, W; default maxChargeW. */
  maxDischargeW?: number;
  device?: DeviceAddress | null;
}

export interface PlanLoad {
  resourceId: string;
  /** Power that can be shifted or shed, W. */
  flexibleW: number;
  /** Never shed or deferred. */
  essential: boolean;
  device?: DeviceAddress | null;
}

export type PlanState = GridState | "island";
export type ActionKind =
  | "battery_charge" | "battery_discharge" | "ev_charge" | "ev_defer" | "ev_discharge" | "load_shed" | "load_defer" | "p2p_offer" | "p2p_bid" | "dr_event" | "island" | "maintain";

export interface PlannedAction {
  kind: ActionKind;
  resourceId: string | null;
  /** Energy moved, shifted or traded in the interval, Wh; null for maintain / island. */
  energyWh: number | null;
  /** Power the device is asked for (charge/discharge rate, load reduction), W. */
  powerW?: number;
  reason: string;
  device?: DeviceAddress | null;
  /** dr_event: the resources it targets. */
  targets?: string[];
}

export interface PlanActionsParameters {
  balance: GridBalance;
  /** Islanded (operator call or frequency excursion): the critical plan runs whatever the ratio. */
  island?: { reason: string };
  /** Start of the interval planned, unix ms. */
  intervalStartMs: number;
  /** Interval length; default 900 s. */
  intervalSeconds?: number;
  batteries?: readonly PlanBattery[];
  evs?: readonly PlanEv[];
  loads?: readonly PlanLoad[];
}

export interface ActionPlan {
  state: PlanState;
  actions: PlannedAction[];
  /** Energy the plan puts into devices (surplus) or takes from batteries / demand (deficit), Wh. */
  handledWh: number;
  /** What is left for the P2P market: offered (surplus) or bid (deficit), Wh. */
  residualWh: number;
}

export const DEFAULT_RESERVE_PCT = 10;
const DEFAULT_INTERVAL_SECONDS = 900;

/** Wh with up to 3 decimals of kWh: 91488 → "91.488 kWh". */
export function kwhText(wh: number): string {
  return `${Number((wh / 1000).toFixed(3))} kWh`;
}

/** Percent as basis points, exact for up to 2 decimals. */
function bps(field: string, pct: number): bigint {
  if (!Number.isFinite(pct) || pct < 0 || pct > 100) throw new ValidationError(field, `must be a percentage from 0 to 100, got ${pct}`);
  return BigInt(Math.round(pct * 100));
}

function whole(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new ValidationError(field, `must be a whole number >= 0, got ${value}`);
  return value;
}

/** Energy at `powerW` over `seconds`, rounded down to whole Wh. */
export function energyOver(powerW: number, seconds: number): number {
  return Number((BigInt(powerW) * BigInt(seconds)) / 3600n);
}

/** Energy above the reserve, rounded down: capacity x (soc - reserve) / 100. */
export function availableAboveReserve(b: PlanBattery): number {
  const soc = bps("socPct", b.socPct);
  const reserve = bps("reservePct", b.reservePct ?? DEFAULT_RESERVE_PCT);
  if (soc <= reserve) return 0;
  return Number((BigInt(whole("capacityWh", b.capacityWh)) * (soc - reserve)) / 10_000n);
}

/** Room left to charge, rounded down: capacity x (100 - soc) / 100. */
export function headroom(b: PlanBattery): number {
  const soc = bps("socPct", b.socPct);
  return Number((BigInt(whole("capacityWh", b.capacityWh)) * (10_000n - soc)) / 10_000n);
}

/**
 * Splits `needWh` over parts in proportion to `limitsWh` (what each can give). Rule: each part
 * gets floor(need x limit / total); the Wh left over (fewer than the number of parts) go one
 * part at a time to the part with the largest limit that still has room (ties: the earlier).
 * The sum is exactly min(need, total) and no part exceeds its limit.
 */
export function splitProportionally(needWh: number, limitsWh: readonly number[]): number[] {
  const total = limitsWh.reduce((s, x) => s + BigInt(x), 0n);
  const need = BigInt(Math.min(needWh, Number(total)));
  if (total === 0n || need <= 0n) return limitsWh.map(() => 0);
  const shares = limitsWh.map((l) => (need * BigInt(l)) / total);
  let left = need - shares.reduce((s, x) => s + x, 0n);
  const byLimit = limitsWh.map((l, i) => ({ l, i })).sort((a, b) => b.l - a.l || a.i - b.i);
  while (left > 0n) {
    for (const { l, i } of byLimit) {
      if (left === 0n) break;
      const room = BigInt(l) - shares[i]!;
      if (room <= 0n) continue;
      const give = room < left ? room : left;
      shares[i]! += give;
      left -= give;
    }
  }
  return shares.map(Number);
}

export function planActions(params: PlanActionsParameters): ActionPlan {
  const seconds = params.intervalSeconds ?? DEFAULT_INTERVAL_SECONDS;
  const batteries = params.batteries ?? [];
  const evs = (params.evs ?? []).filter((e) => e.pluggedIn && e.energyNeededWh > 0);
  const loads = (params.loads ?? []).filter((l) => !l.essential && l.flexibleW > 0);
  const { balance } = params;
  if (params.island) return critical(params, "island", seconds, batteries, evs, loads);
  switch (balance.state) {
    case "balanced":
      return {
        state: "balanced", handledWh: 0, residualWh: 0,
        actions: [{ kind: "maintain", resourceId: null, energyWh: null, reason: `ratio ${balance.ratio} is within 0.8 to 1.2 (supply ${kwhText(balance.supplyWh)}, demand ${kwhText(balance.demandWh)}): no intervention` }],
      };
    case "surplus":
      return surplus(balance, seconds, batteries, evs);
    case "deficit":
      return deficit(params, seconds, batteries, evs, loads);
    case "critical_deficit":
      return critical(params, "critical_deficit", seconds, batteries, evs, loads);
  }
}

function surplus(balance: GridBalance, seconds: number, batteries: readonly PlanBattery[], evs: readonly PlanEv[]): ActionPlan {
  const actions: PlannedAction[] = [];
  let left = balance.curtailmentWh;
  const head = `surplus ${kwhText(balance.curtailmentWh)} (supply ${kwhText(balance.supplyWh)} - 1.1 x demand ${kwhText(balance.demandWh)})`;
  // Parked EVs first (the guide's solar soak): their charging is load the owners want anyway,
  // where storing in a battery costs a cycle and is paid back later with losses. Soonest departure first.
  const byDeparture = [...evs].sort((a, b) => (a.departureMs ?? Infinity) - (b.departureMs ?? Infinity) || a.resourceId.localeCompare(b.resourceId));
  for (const ev of byDeparture) {
    if (left <= 0) break;
    const powerCap = energyOver(whole("maxChargeW", ev.maxChargeW), seconds);
    const wh = Math.min(ev.energyNeededWh, powerCap, left);
    if (wh <= 0) continue;
    left -= wh;
    actions.push({
      kind: "ev_charge", resourceId: ev.resourceId, energyWh: wh, powerW: ev.maxChargeW, device: ev.device ?? null,
      reason: `${head}: charge ${kwhText(wh)} = min(needed ${kwhText(ev.energyNeededWh)}, ${ev.maxChargeW / 1000} kW x ${seconds / 60} min = ${kwhText(powerCap)}, surplus left ${kwhText(wh + left)})`,
    });
  }
  for (const b of batteries) {
    if (left <= 0) break;
    const room = headroom(b);
    const powerCap = energyOver(whole("maxChargeW", b.maxChargeW), seconds);
    const wh = Math.min(room, powerCap, left);
    if (wh <= 0) continue;
    left -= wh;
    actions.push({
      kind: "battery_charge", resourceId: b.resourceId, energyWh: wh, powerW: b.maxChargeW, device: b.device ?? null,
      reason: `${head}: charge ${kwhText(wh)} = min(headroom ${kwhText(room)} at ${b.socPct}% of ${kwhText(b.capacityWh)}, ${b.maxChargeW / 1000} kW x ${seconds / 60} min = ${kwhText(powerCap)}, surplus left ${kwhText(wh + left)})`,
    });
  }
  const handled = balance.curtailmentWh - left;
  if (left > 0) {
    actions.push({
      kind: "p2p_offer", resourceId: null, energyWh: left,
      reason: `${head}: ${kwhText(handled)} absorbed by EVs and batteries, the remaining ${kwhText(left)} offered for P2P sale`,
    });
  }
  return { state: "surplus", actions, handledWh: handled, residualWh: left };
}

/** Energy the EV would draw this interval, and whether it can wait: the rest of the window at full power still covers its need. */
function evThisInterval(ev: PlanEv, intervalEndMs: number, seconds: number) {
  const nowWh = Math.min(ev.energyNeededWh, energyOver(whole("maxChargeW", ev.maxChargeW), seconds));
  const laterWh = ev.departureMs === null || ev.departureMs === undefined ? Infinity : energyOver(ev.maxChargeW, Math.max(0, Math.floor((ev.departureMs - intervalEndMs) / 1000)));
  return { nowWh, laterWh, canWait: laterWh >= ev.energyNeededWh };
}

function dischargeBatteries(needWh: number, seconds: number, batteries: readonly PlanBattery[], why: string): { actions: PlannedAction[]; totalWh: number } {
  const limits = batteries.map((b) => Math.min(availableAboveReserve(b), energyOver(whole("maxDischargeW", b.maxDischargeW), seconds)));
  const total = limits.reduce((s, x) => s + x, 0);
  const shares = splitProportionally(needWh, limits);
  const actions: PlannedAction[] = [];
  batteries.forEach((b, i) => {
    const wh = shares[i]!;
    if (wh <= 0) return;
    const reserve = b.reservePct ?? DEFAULT_RESERVE_PCT;
    actions.push({
      kind: "battery_discharge", resourceId: b.resourceId, energyWh: wh, powerW: b.maxDischargeW, device: b.device ?? null,
      reason: `${why}: discharge ${kwhText(wh)} of the ${kwhText(limits[i]!)} it can give this interval (${kwhText(availableAboveReserve(b))} above the ${reserve}% reserve at ${b.socPct}% of ${kwhText(b.capacityWh)}, ` +
        `at most ${b.maxDischargeW / 1000} kW x ${seconds / 60} min); ${wh === limits[i] ? "all of it" : `its share ${kwhText(limits[i]!)} / ${kwhText(total)} of ${kwhText(Math.min(needWh, total))}`}`,
    });
  });
  return { actions, totalWh: shares.reduce((s, x) => s + x, 0) };
}

/**
 * What a V2G EV can give this interval without breaking its owner's minimum at departure: energy
 * given now must be charged back later, so need + given must still fit in the window after this
 * interval at full charging power; and never below the reserve of its battery, nor faster than
 * its discharge power. 0 for an EV without V2G permission or a reported state of charge.
 */
export function v2gAvailable(ev: PlanEv, intervalEndMs: number, seconds: number): number {
  if (!ev.v2g || !ev.pluggedIn || ev.capacityWh === undefined || ev.socPct === undefined) return 0;
  if (ev.departureMs === null || ev.departureMs === undefined) return 0;
  const later = energyOver(whole("maxChargeW", ev.maxChargeW), Math.max(0, Math.floor((ev.departureMs - intervalEndMs) / 1000)));
  const stored = availableAboveReserve({ resourceId: ev.resourceId, capacityWh: ev.capacityWh, socPct: ev.socPct, maxChargeW: 0, maxDischargeW: 0 });
  const power = energyOver(whole("maxDischargeW", ev.maxDischargeW ?? ev.maxChargeW), seconds);
  return Math.max(0, Math.min(later - ev.energyNeededWh, stored, power));
}

/** V2G discharges after the batteries, split by what each EV can give; returns the EVs used. */
function dischargeV2g(needWh: number, endMs: number, seconds: number, evs: readonly PlanEv[], why: string): { actions: PlannedAction[]; totalWh: number; used: Set<string> } {
  const limits = evs.map((ev) => v2gAvailable(ev, endMs, seconds));
  const shares = splitProportionally(needWh, limits);
  const actions: PlannedAction[] = [];
  const used = new Set<string>();
  evs.forEach((ev, i) => {
    const wh = shares[i]!;
    if (wh <= 0) return;
    used.add(ev.resourceId);
    actions.push({
      kind: "ev_discharge", resourceId: ev.resourceId, energyWh: wh, powerW: ev.maxDischargeW ?? ev.maxChargeW, device: ev.device ?? null,
      reason: `${why}: vehicle-to-grid ${kwhText(wh)} of the ${kwhText(limits[i]!)} it can give and still charge the ${kwhText(ev.energyNeededWh)} needed (+ what it gives now) before departure`,
    });
  });
  return { actions, totalWh: shares.reduce((s, x) => s + x, 0), used };
}

function deficit(params: PlanActionsParameters, seconds: number, batteries: readonly PlanBattery[], evs: readonly PlanEv[], loads: readonly PlanLoad[]): ActionPlan {
  const { balance } = params;
  const need = balance.importNeededWh;
  const why = `deficit: ratio ${balance.ratio}, import needed ${kwhText(need)} (demand ${kwhText(balance.demandWh)} - supply ${kwhText(balance.supplyWh)})`;
  const { actions, totalWh } = dischargeBatteries(need, seconds, batteries, why);
  const endMs = params.intervalStartMs + seconds * 1000;
  const v2g = dischargeV2g(need - totalWh, endMs, seconds, evs, why);
  actions.push(...v2g.actions);
  let left = need - totalWh - v2g.totalWh;
  if (left > 0) {
    for (const l of loads) {
      const wh = energyOver(whole("flexibleW", l.flexibleW), seconds);
      left = Math.max(0, left - wh);
      actions.push({
        kind: "load_defer", resourceId: l.resourceId, energyWh: wh, powerW: l.flexibleW, device: l.device ?? null,
        reason: `${why}; batteries${v2g.totalWh > 0 ? " and V2G" : ""} cover ${kwhText(totalWh + v2g.totalWh)}: defer ${l.flexibleW / 1000} kW of non-essential load (${kwhText(wh)} this interval), ${kwhText(left)} still short`,
      });
    }
    for (const ev of evs) {
      if (v2g.used.has(ev.resourceId)) continue;
      const e = evThisInterval(ev, endMs, seconds);
      if (!e.canWait) {
        actions.push({
          kind: "ev_charge", resourceId: ev.resourceId, energyWh: e.nowWh, powerW: ev.maxChargeW, device: ev.device ?? null,
          reason: `${why}: keeps charging ${kwhText(e.nowWh)}: after this interval only ${kwhText(e.laterWh)} fit before departure, it needs ${kwhText(ev.energyNeededWh)}`,
        });
        continue;
      }
      left = Math.max(0, left - e.nowWh);
      actions.push({
        kind: "ev_defer", resourceId: ev.resourceId, energyWh: e.nowWh, powerW: ev.maxChargeW, device: ev.device ?? null,
        reason: `${why}: defer ${kwhText(e.nowWh)} of charging; ${e.laterWh === Infinity ? "no departure given" : `${kwhText(e.laterWh)} still fit before departure`} for the ${kwhText(ev.energyNeededWh)} needed; ${kwhText(left)} still short`,
      });
    }
  }
  if (left > 0) actions.push({ kind: "p2p_bid", resourceId: null, energyWh: left, reason: `${why}: ${kwhText(need - left)} covered by batteries${v2g.totalWh > 0 ? ", V2G" : ""} and deferrals, bid for the remaining ${kwhText(left)}` });
  return { state: "deficit", actions, handledWh: need - left, residualWh: left };
}

function critical(params: PlanActionsParameters, state: "critical_deficit" | "island", seconds: number, batteries: readonly PlanBattery[], evs: readonly PlanEv[], loads: readonly PlanLoad[]): ActionPlan {
  const { balance } = params;
  const need = balance.importNeededWh;
  const actions: PlannedAction[] = [];
  const why = state === "island"
    ? `island mode (${params.island!.reason}): shortfall ${kwhText(need)} (demand ${kwhText(balance.demandWh)} - supply ${kwhText(balance.supplyWh)})`
    : `critical deficit: ratio ${balance.ratio} < 0.5, import needed ${kwhText(need)} (demand ${kwhText(balance.demandWh)} - supply ${kwhText(balance.supplyWh)})`;
  if (state === "island") actions.push({ kind: "island", resourceId: null, energyWh: null, reason: `${why}: disconnected from the main grid; critical plan runs at once` });
  // Every battery to its maximum safe discharge (energy above reserve, capped by power over the
  // interval); only when that exceeds the shortfall is it shared out, never exported for nothing.
  const discharged = dischargeBatteries(need, seconds, batteries, why);
  actions.push(...discharged.actions);
  const endMs = params.intervalStartMs + seconds * 1000;
  const v2g = dischargeV2g(need - discharged.totalWh, endMs, seconds, evs, why);
  actions.push(...v2g.actions);
  let left = need - discharged.totalWh - v2g.totalWh;
  let shedW = 0;
  for (const l of loads) {
    const wh = energyOver(whole("flexibleW", l.flexibleW), seconds);
    shedW += l.flexibleW;
    left = Math.max(0, left - wh);
    actions.push({
      kind: "load_shed", resourceId: l.resourceId, energyWh: wh, powerW: l.flexibleW, device: l.device ?? null,
      reason: `${why}: shed ${l.flexibleW / 1000} kW of non-essential load (${kwhText(wh)} this interval)`,
    });
  }
  for (const ev of evs) {
    if (v2g.used.has(ev.resourceId)) continue;
    const e = evThisInterval(ev, endMs, seconds);
    left = Math.max(0, left - e.nowWh);
    actions.push({
      kind: "ev_defer", resourceId: ev.resourceId, energyWh: e.nowWh, powerW: ev.maxChargeW, device: ev.device ?? null,
      reason: `${why}: charging halted (${kwhText(e.nowWh)} this interval)` +
        (e.canWait ? `; ${e.laterWh === Infinity ? "no departure given" : `${kwhText(e.laterWh)} still fit before departure`}` : `; departure at risk: only ${kwhText(e.laterWh)} fit after this interval for ${kwhText(ev.energyNeededWh)} needed`),
    });
  }
  if (loads.length > 0) {
    const shedWh = energyOver(shedW, seconds);
    actions.push({
      kind: "dr_event", resourceId: null, energyWh: shedWh, powerW: shedW, targets: loads.map((l) => l.resourceId),
      reason: `${why}: demand response on ${loads.length} non-essential load${loads.length === 1 ? "" : "s"}, ${shedW / 1000} kW reduction (${kwhText(shedWh)} this interval)`,
    });
  }
  if (left > 0) actions.push({ kind: "p2p_bid", resourceId: null, energyWh: left, reason: `${why}: ${kwhText(need - left)} covered by batteries${v2g.totalWh > 0 ? ", V2G" : ""}, shed loads and halted charging, bid for the remaining ${kwhText(left)}` });
  return { state, actions, handledWh: need - left, residualWh: left };
}
