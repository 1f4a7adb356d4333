// One home through one interval of the live simulation: the demo's model (household.ts) plus two
// battery rules, so a small community trades at night too:
//
// - Storage seller: a home with a battery that has no PV surplus, no deficit left and is not
//   charging offers its neighbours a quarter of its charge above the reserve (AC side, after
//   losses), at most what its inverter has left after serving the home, in whole Wh: a sell order
//   of source "storage". A quarter a quarter-hour tapers, so a battery drains over hours.
// - Grid recharge: a home whose PV has no surplus for its battery this interval (at night, or on a
//   dull winter day) and whose battery holds less than 30 % of its capacity charges the battery
//   from the grid (its supplier, outside the market) at full charging power instead of serving
//   the home from it; the home bids for its own load only. So batteries come back above 30 %
//   within an interval or two and sell again: there are sellers all night and all winter.
//
// By day PV surplus refills batteries (household.ts). Unlike PV surplus, which an honest home
// exports whether sold or not, a battery discharges only what was sold: unsold energy stays
// stored. An under-delivering storage seller discharges its delivery share of what it sold.
import { orderEnergyWh } from "./agentPricing.js";
import type { Household } from "./community.js";
import { INTERVAL_SECONDS } from "./dayIntervals.js";
import { deliverHouseholdInterval, planHouseholdInterval, type HouseholdIntervalPlan, type HouseholdState, type HouseholdStepReturnType } from "./household.js";

/** Share of the charge above reserve a storage seller offers per interval. */
export const STORAGE_OFFER_SHARE = 0.25;
/** A battery below this share of its capacity recharges from the grid when PV does not charge it. */
export const GRID_RECHARGE_BELOW = 0.3;
/**
 * Smallest order the live agents place, Wh. The demo's 100 Wh would keep most homes out of the
 * market at night and in the working-day morning (they draw 20-80 Wh a quarter-hour).
 */
export const LIVE_MIN_ORDER_WH = 20;

export type LiveOrderSource = "solar" | "storage";

export interface LiveIntervalPlan {
  /** The home's own flows (household.ts), before any sale from storage. */
  plan: HouseholdIntervalPlan;
  /** What the battery offers beyond the home's own use, Wh (0 unless the home sells from storage). */
  storageOfferWh: number;
  /** Energy the battery takes from the grid this interval (grid recharge), Wh; part of plan.deficitWh and plan.batteryChargeWh. */
  gridChargeWh: number;
  /**
   * What the agent prices: `plan` with surplusWh = storageOfferWh for a storage seller
   * (agentPricing.agentOrderFor takes surplus as the sale, deficit as the bid).
   */
  orderPlan: HouseholdIntervalPlan;
  /** The source a sale names: the PV surplus is solar, a sale from the battery is storage. */
  source: LiveOrderSource;
}

export interface PlanLiveIntervalOptions {
  /** Share of the charge above reserve offered per interval. Default STORAGE_OFFER_SHARE. */
  storageOfferShare?: number;
  /** Smallest order, Wh. Default LIVE_MIN_ORDER_WH. */
  minOrderWh?: number;
  intervalSeconds?: number;
}

/** What the battery can offer on top of `plan`, whole Wh (0 when the home is no storage seller this interval). */
export function storageOfferWh(household: Household, plan: HouseholdIntervalPlan, options: PlanLiveIntervalOptions = {}): number {
  const battery = household.battery;
  if (battery === null || plan.surplusWh > 0 || plan.deficitWh > 0 || plan.batteryChargeWh > 0) return 0;
  const hours = (options.intervalSeconds ?? INTERVAL_SECONDS) / 3600;
  const inverterLeft = Math.floor(battery.maxDischargeW * hours) - plan.batteryDischargeWh;
  // AC energy the stored charge above reserve gives: floor(stored x eff), so drawing
  // ceil(offer / eff) never takes the battery below its reserve.
  const availableAc = Math.floor((Math.max(0, plan.batterySocWh - battery.reserveWh) * battery.dischargeEfficiencyPermille) / 1000);
  const offer = Math.min(inverterLeft, Math.floor(availableAc * (options.storageOfferShare ?? STORAGE_OFFER_SHARE)));
  return offer > 0 ? orderEnergyWh(offer, options.minOrderWh ?? LIVE_MIN_ORDER_WH) : 0;
}

/**
 * The grid recharge (see the top of the file) applied to `plan`, or `plan` itself when it does
 * not apply. The battery stops serving the home and charges from the grid up to its charging
 * power: plan.deficitWh (the meter's import) grows by both.
 */
export function withGridRecharge(household: Household, state: HouseholdState, plan: HouseholdIntervalPlan, intervalSeconds = INTERVAL_SECONDS): { plan: HouseholdIntervalPlan; gridChargeWh: number } {
  const battery = household.battery;
  const pvCharges = plan.batteryChargeWh > 0 || plan.surplusWh > 0;
  if (battery === null || pvCharges || state.batterySocWh >= battery.capacityWh * GRID_RECHARGE_BELOW) return { plan, gridChargeWh: 0 };
  const headroomAc = Math.floor(((battery.capacityWh - state.batterySocWh) * 1000) / battery.chargeEfficiencyPermille);
  const charge = Math.min(Math.floor((battery.maxChargeW * intervalSeconds) / 3600), headroomAc);
  return {
    plan: {
      ...plan,
      batteryChargeWh: charge,
      batteryDischargeWh: 0,
      batterySocWh: state.batterySocWh + Math.floor((charge * battery.chargeEfficiencyPermille) / 1000),
      deficitWh: plan.deficitWh + plan.batteryDischargeWh + charge,
    },
    gridChargeWh: charge,
  };
}

/** The home's plan for `interval` (which must be state.nextInterval), with its storage offer if any. */
export function planLiveInterval(
  household: Household,
  state: HouseholdState,
  interval: { index: number; start: number; localMinute: number },
  options: PlanLiveIntervalOptions = {},
): LiveIntervalPlan {
  const own = planHouseholdInterval(household, state, interval, options.intervalSeconds ? { intervalSeconds: options.intervalSeconds } : {});
  const { plan, gridChargeWh } = withGridRecharge(household, state, own, options.intervalSeconds);
  const offer = storageOfferWh(household, plan, options);
  return {
    plan,
    storageOfferWh: offer,
    gridChargeWh,
    // The agent bids for the home's own deficit: the recharge comes from the supplier.
    orderPlan: offer > 0 ? { ...plan, surplusWh: offer } : gridChargeWh > 0 ? { ...plan, deficitWh: plan.deficitWh - gridChargeWh } : plan,
    source: offer > 0 ? "storage" : "solar",
  };
}

/**
 * Completes the interval once the market has sold `soldWh` of the home's offer (clamped to the
 * offer). PV surplus goes as household.ts says; a storage sale discharges the battery by what
 * the home exports: all it sold, or an under-deliverer's share of it.
 */
export function deliverLiveInterval(household: Household, state: HouseholdState, live: LiveIntervalPlan, soldWh: number): HouseholdStepReturnType {
  if (live.storageOfferWh === 0) return deliverHouseholdInterval(household, state, live.plan, Math.max(0, Math.min(soldWh, live.plan.surplusWh)));
  const battery = household.battery!;
  const sold = Math.max(0, Math.min(soldWh, live.storageOfferWh));
  const exported = household.underDelivers && sold > 0 ? Math.floor((sold * household.deliveryShareBps) / 10_000) : sold;
  const plan: HouseholdIntervalPlan = {
    ...live.plan,
    batteryDischargeWh: live.plan.batteryDischargeWh + exported,
    batterySocWh: live.plan.batterySocWh - Math.ceil((exported * 1000) / battery.dischargeEfficiencyPermille),
    surplusWh: exported,
  };
  // Exported is decided above; household.ts must not curtail it again (it would take it from PV).
  const done = deliverHouseholdInterval({ ...household, underDelivers: false }, state, plan, exported);
  return { state: done.state, interval: { ...done.interval, soldWh: sold, deliveredWh: Math.min(sold, exported) } };
}
