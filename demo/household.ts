// One home through one delivery interval: PV covers the home's load first, the EV takes what it
// needs by its departure (preferring surplus and cheap intervals), the battery stores surplus and
// covers the home's own deficit down to its reserve, and the rest goes to or comes from the grid.
// What goes to the grid is what the home offers for sale; what comes from it is what it bids for.
//
// Two phases per interval, because the market sits in between: planHouseholdInterval says what
// the home will offer and bid (before gate closure), deliverHouseholdInterval takes what was sold
// and gives the meter readings (after the interval). stepHousehold does both when the sale is
// known up front. All energy is integer Wh, and for every interval exactly
//   generationWh + importWh + batteryDischargeWh = loadWh + exportWh + batteryChargeWh + evChargeWh.
import { timeOfDayPeriod } from "../engine/pricing/dynamicPrice.js";
import { ValidationError } from "../lib/errors.js";
import type { Community, Household } from "./community.js";
import { INTERVAL_SECONDS } from "./dayIntervals.js";

const SECONDS_PER_HOUR = 3600;

/** What changes over the day; everything else is fixed in the Household. */
export interface HouseholdState {
  /** The interval index the next step must be for (steps go in order, each once). */
  nextInterval: number;
  /** Battery state of charge, Wh (0 without a battery). */
  batterySocWh: number;
  /** Energy charged into the EV so far today, Wh. */
  evChargedWh: number;
  /** Meter export register (cumulative since installation), Wh, at the end of the last step. */
  exportRegisterWh: number;
  /** Meter import register (cumulative since installation), Wh, at the end of the last step. */
  importRegisterWh: number;
}

export interface PlanHouseholdIntervalOptions {
  /**
   * Whether energy is cheap this interval, so a parked EV charges at full power rather than only
   * from surplus or when its deadline forces it. Default: the local hour is not a peak hour of
   * the dynamic price (peak: 07-09 and 17-21). A runner may pass its own test on the zone's price.
   */
  cheap?: boolean;
  /** Interval length, seconds. Default the community's 900. */
  intervalSeconds?: number;
}

/** The home's flows for one interval if it delivers everything it offers. All Wh for this interval. */
export interface HouseholdIntervalPlan {
  householdId: string;
  zone: string;
  intervalIndex: number;
  /** Interval start, unix seconds. */
  intervalStart: number;
  /** Appliance consumption, Wh. */
  loadWh: number;
  /** PV output before any curtailment, Wh. */
  potentialGenerationWh: number;
  /** Energy into the EV, Wh (AC side). */
  evChargeWh: number;
  /** Energy into the battery, Wh (AC side; stored energy is less by the charge efficiency). */
  batteryChargeWh: number;
  /** Energy out of the battery, Wh (AC side). */
  batteryDischargeWh: number;
  /** Battery state of charge at the end of the interval, Wh (0 without a battery). */
  batterySocWh: number;
  /** Energy the home would export, Wh: what it offers for sale. */
  surplusWh: number;
  /** Energy the home imports, Wh: what it bids for. At most one of surplusWh, deficitWh is > 0. */
  deficitWh: number;
}

/** The interval as it happened and as the home's meter reports it. All energy Wh for this interval unless named a register. */
export interface HouseholdInterval extends HouseholdIntervalPlan {
  /** Energy the market sold for this home in this interval, Wh (input; <= surplusWh). */
  soldWh: number;
  /** PV output that reached the home, Wh: potentialGenerationWh - curtailedWh. */
  generationWh: number;
  /** PV output a cheating seller switched off instead of delivering, Wh (0 for honest homes). */
  curtailedWh: number;
  /** Meter: energy exported in the interval, Wh. */
  exportWh: number;
  /** Meter: energy imported in the interval, Wh (= deficitWh). */
  importWh: number;
  /** Meter: export register at the end of the interval, Wh (cumulative, never decreases). */
  exportRegisterWh: number;
  /** Meter: import register at the end of the interval, Wh (cumulative, never decreases). */
  importRegisterWh: number;
  /** Energy delivered against the sale, Wh: min(soldWh, exportWh); below soldWh only for a cheat. */
  deliveredWh: number;
  /** Meter: appliance load plus EV charging, Wh (the meter's consumption_kwh). */
  consumptionWh: number;
  /** Battery state of charge at the end, percent of capacity with one decimal; null without a battery. */
  batterySocPct: number | null;
  /** EV energy still needed before departure, Wh (0 without an EV or once met). */
  evRemainingWh: number;
}

export interface HouseholdStepReturnType {
  state: HouseholdState;
  interval: HouseholdInterval;
}

/** The state at local midnight: battery at its initial charge, EV empty-handed, registers as installed. */
export function initialHouseholdState(household: Household): HouseholdState {
  return {
    nextInterval: 0,
    batterySocWh: household.battery?.initialSocWh ?? 0,
    evChargedWh: 0,
    exportRegisterWh: household.initialExportRegisterWh,
    importRegisterWh: household.initialImportRegisterWh,
  };
}

/**
 * The home's flows for interval `intervalIndex` (which must be state.nextInterval). Pure: the
 * state is not changed. `intervalStart` is the interval's start, unix seconds (community.intervals.startUnixSeconds[i]),
 * `localMinute` its wall-clock minute (for the default "cheap" rule).
 */
export function planHouseholdInterval(
  household: Household,
  state: HouseholdState,
  interval: { index: number; start: number; localMinute: number },
  options: PlanHouseholdIntervalOptions = {},
): HouseholdIntervalPlan {
  const i = interval.index;
  if (i !== state.nextInterval) {
    throw new ValidationError("intervalIndex", `must be ${state.nextInterval} for ${household.id} (intervals are stepped in order, once each), got ${i}`, { code: "interval_out_of_order" });
  }
  if (i >= household.loadWh.length) throw new ValidationError("intervalIndex", `must be below ${household.loadWh.length}, got ${i}`);
  const hours = (options.intervalSeconds ?? INTERVAL_SECONDS) / SECONDS_PER_HOUR;
  const load = household.loadWh[i]!;
  const gen = household.generationWh[i]!;

  // EV first: it has a deadline. Charge at least what the deadline forces (least laxity), more
  // when there is PV surplus or energy is cheap, never beyond the need or the charger.
  let evCharge = 0;
  const ev = household.ev;
  if (ev !== null && i >= ev.arrivalInterval && i < ev.departureInterval && state.evChargedWh < ev.neededWh) {
    const remaining = ev.neededWh - state.evChargedWh;
    const perInterval = Math.floor(ev.chargerW * hours);
    const forced = Math.max(0, remaining - (ev.departureInterval - i - 1) * perInterval);
    const cheap = options.cheap ?? timeOfDayPeriod(Math.floor(interval.localMinute / 60)) !== "peak";
    const wanted = cheap ? perInterval : Math.max(0, gen - load);
    evCharge = Math.min(remaining, perInterval, Math.max(forced, wanted));
  }

  const net = gen - load - evCharge;
  let charge = 0;
  let discharge = 0;
  let soc = state.batterySocWh;
  const battery = household.battery;
  if (battery !== null && net > 0) {
    // Stored = floor(charge x eff); charge <= floor(headroom / eff) keeps stored <= headroom.
    const headroomAc = Math.floor(((battery.capacityWh - soc) * 1000) / battery.chargeEfficiencyPermille);
    charge = Math.min(net, Math.floor(battery.maxChargeW * hours), headroomAc);
    soc += Math.floor((charge * battery.chargeEfficiencyPermille) / 1000);
  } else if (battery !== null && net < 0) {
    // The battery serves the home's own load, not the EV: stored energy is worth more at peak
    // than in a cheap charging slot.
    const homeDeficit = Math.min(-net, Math.max(0, load - gen));
    const availableAc = Math.floor((Math.max(0, soc - battery.reserveWh) * battery.dischargeEfficiencyPermille) / 1000);
    discharge = Math.min(homeDeficit, Math.floor(battery.maxDischargeW * hours), availableAc);
    // Drawn = ceil(discharge / eff) <= soc - reserve, because discharge <= floor((soc - reserve) x eff).
    soc -= Math.ceil((discharge * 1000) / battery.dischargeEfficiencyPermille);
  }
  const surplus = net > 0 ? net - charge : 0;
  const deficit = net < 0 ? -net - discharge : 0;
  return {
    householdId: household.id,
    zone: household.zone,
    intervalIndex: i,
    intervalStart: interval.start,
    loadWh: load,
    potentialGenerationWh: gen,
    evChargeWh: evCharge,
    batteryChargeWh: charge,
    batteryDischargeWh: discharge,
    batterySocWh: soc,
    surplusWh: surplus,
    deficitWh: deficit,
  };
}

/**
 * Completes the planned interval once the market has sold `soldWh` of the home's surplus (0 to
 * plan.surplusWh; default all of it). An honest home exports its whole surplus. A cheating home
 * (household.underDelivers) that sold something exports only floor(soldWh x deliveryShareBps /
 * 10,000) and curtails the rest of its surplus, so its meter shows less than it sold.
 */
export function deliverHouseholdInterval(household: Household, state: HouseholdState, plan: HouseholdIntervalPlan, soldWh: number = plan.surplusWh): HouseholdStepReturnType {
  if (plan.intervalIndex !== state.nextInterval || plan.householdId !== household.id) {
    throw new ValidationError("plan", `must be ${household.id}'s plan for interval ${state.nextInterval}, got ${plan.householdId} interval ${plan.intervalIndex}`, { code: "interval_out_of_order" });
  }
  if (!Number.isSafeInteger(soldWh) || soldWh < 0 || soldWh > plan.surplusWh) {
    throw new ValidationError("soldWh", `must be an integer from 0 to the offered surplus ${plan.surplusWh} Wh for ${household.id}, got ${String(soldWh)}`, { code: "sold_exceeds_surplus" });
  }
  const exportWh = household.underDelivers && soldWh > 0 ? Math.min(plan.surplusWh, Math.floor((soldWh * household.deliveryShareBps) / 10_000)) : plan.surplusWh;
  const curtailed = plan.surplusWh - exportWh;
  const importWh = plan.deficitWh;
  const next: HouseholdState = {
    nextInterval: state.nextInterval + 1,
    batterySocWh: plan.batterySocWh,
    evChargedWh: state.evChargedWh + plan.evChargeWh,
    exportRegisterWh: state.exportRegisterWh + exportWh,
    importRegisterWh: state.importRegisterWh + importWh,
  };
  const battery = household.battery;
  return {
    state: next,
    // Spelled out rather than spread: one fixed object shape is markedly faster at 200k a day.
    interval: {
      householdId: plan.householdId,
      zone: plan.zone,
      intervalIndex: plan.intervalIndex,
      intervalStart: plan.intervalStart,
      loadWh: plan.loadWh,
      potentialGenerationWh: plan.potentialGenerationWh,
      evChargeWh: plan.evChargeWh,
      batteryChargeWh: plan.batteryChargeWh,
      batteryDischargeWh: plan.batteryDischargeWh,
      batterySocWh: plan.batterySocWh,
      surplusWh: plan.surplusWh,
      deficitWh: plan.deficitWh,
      soldWh,
      generationWh: plan.potentialGenerationWh - curtailed,
      curtailedWh: curtailed,
      exportWh,
      importWh,
      exportRegisterWh: next.exportRegisterWh,
      importRegisterWh: next.importRegisterWh,
      deliveredWh: Math.min(soldWh, exportWh),
      consumptionWh: plan.loadWh + plan.evChargeWh,
      batterySocPct: battery === null ? null : Math.round((plan.batterySocWh * 1000) / battery.capacityWh) / 10,
      evRemainingWh: household.ev === null ? 0 : Math.max(0, household.ev.neededWh - next.evChargedWh),
    },
  };
}

export interface StepHouseholdOptions extends PlanHouseholdIntervalOptions {
  /** Energy sold, Wh; default the whole surplus. */
  soldWh?: number;
}

/** planHouseholdInterval then deliverHouseholdInterval, for interval `intervalIndex` of `community`. */
export function stepHousehold(community: Community, household: Household, state: HouseholdState, intervalIndex: number, options: StepHouseholdOptions = {}): HouseholdStepReturnType {
  const plan = planHouseholdInterval(household, state, intervalOf(community, intervalIndex), { intervalSeconds: community.intervalSeconds, ...options });
  return deliverHouseholdInterval(household, state, plan, options.soldWh);
}

/** The `{ index, start, localMinute }` of interval `intervalIndex` of the community's day. */
export function intervalOf(community: Community, intervalIndex: number): { index: number; start: number; localMinute: number } {
  const start = community.intervals.startUnixSeconds[intervalIndex];
  if (start === undefined) throw new ValidationError("intervalIndex", `must be from 0 to ${community.intervals.startUnixSeconds.length - 1}, got ${intervalIndex}`);
  return { index: intervalIndex, start, localMinute: community.intervals.localMinute[intervalIndex]! };
}

export interface StepCommunityOptions {
  /** Per-zone cheap flag (see PlanHouseholdIntervalOptions.cheap); default the time-of-day rule. */
  cheap?: (zone: string) => boolean | undefined;
  /** Energy sold per home, Wh; default each home's whole surplus. */
  soldWh?: (plan: HouseholdIntervalPlan, household: Household) => number;
}

export interface StepCommunityReturnType {
  states: HouseholdState[];
  intervals: HouseholdInterval[];
}

/** Steps every home through interval `intervalIndex`; `states[k]` belongs to community.households[k]. */
export function stepCommunity(community: Community, states: readonly HouseholdState[], intervalIndex: number, options: StepCommunityOptions = {}): StepCommunityReturnType {
  const homes = community.households;
  if (states.length !== homes.length) throw new ValidationError("states", `must hold one state per household (${homes.length}), got ${states.length}`);
  const at = intervalOf(community, intervalIndex);
  const nextStates: HouseholdState[] = new Array(homes.length);
  const intervals: HouseholdInterval[] = new Array(homes.length);
  for (let k = 0; k < homes.length; k++) {
    const home = homes[k]!;
    const state = states[k]!;
    const plan = planHouseholdInterval(home, state, at, { intervalSeconds: community.intervalSeconds, cheap: options.cheap?.(home.zone) });
    const done = deliverHouseholdInterval(home, state, plan, options.soldWh ? options.soldWh(plan, home) : plan.surplusWh);
    nextStates[k] = done.state;
    intervals[k] = done.interval;
  }
  return { states: nextStates, intervals };
}

export interface SimulateCommunityDayReturnType {
  /** intervals[i][k]: interval i of community.households[k]. */
  intervals: HouseholdInterval[][];
  /** Each home's state after the last interval. */
  finalStates: HouseholdState[];
}

/** The whole day, every home, with no market in between (each home sells all or per `options.soldWh`). */
export function simulateCommunityDay(community: Community, options: StepCommunityOptions = {}): SimulateCommunityDayReturnType {
  let states = community.households.map(initialHouseholdState);
  const intervals: HouseholdInterval[][] = [];
  for (let i = 0; i < community.intervals.startUnixSeconds.length; i++) {
    const step = stepCommunity(community, states, i, options);
    states = step.states;
    intervals.push(step.intervals);
  }
  return { intervals, finalStates: states };
}
