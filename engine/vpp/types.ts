// The shapes of a VPP dispatch request and its answer. Units are in the field names: power in kW
// (the average over one interval), energy in kWh, interval length in hours, prices in currency
// units per kWh. Costs are floats: this is an optimisation, not on-chain money.

/** A value that is either the same in every interval or given per interval (length = horizon). */
export type PerInterval = number | readonly number[];

/** Solar or wind: produces 0..capacityKw x availability[t] kW in interval t; curtailment is free. */
export interface GeneratorResource {
  id: string;
  type: "solar" | "wind";
  capacityKw: number;
  /** Forecast fraction of capacity available (0..1), default 1. */
  availability?: PerInterval;
  /** Running cost per kWh produced, default 0. */
  costPerKWh?: PerInterval;
}

/** Connection to the public grid: import up to capacityKw, optionally export up to exportCapacityKw. */
export interface GridResource {
  id: string;
  type: "grid";
  /** Import limit (kW). */
  capacityKw: number;
  /** Import price per kWh. */
  costPerKWh: PerInterval;
  /** Export limit (kW), default 0 (no export). */
  exportCapacityKw?: number;
  /** Revenue per kWh exported, default 0; must not exceed the import price of the same interval. */
  exportPricePerKWh?: PerInterval;
}

/** A battery. `output` is discharge minus charge, seen from the grid side of the inverter. */
export interface StorageResource {
  id: string;
  type: "storage";
  /** Inverter rating (kW): the charge and discharge limit unless those are given. */
  capacityKw: number;
  energyCapacityKwh: number;
  /** Initial state of charge, fraction of energyCapacityKwh (0..1). */
  soc: number;
  chargeLimitKw?: number;
  dischargeLimitKw?: number;
  /** Fraction of the energy drawn that is stored (0..1], default 0.95. */
  chargeEfficiency?: number;
  /** Fraction of the stored energy released that reaches the grid side (0..1], default 0.95. */
  dischargeEfficiency?: number;
  /** State of charge never planned below this fraction (0..1), default 0. A battery that starts
   *  below its reserve may not discharge below where it starts, and is not forced to charge. */
  minReserve?: number;
  /** State of charge required at the end of the horizon (fraction 0..1), default none. */
  minFinalSoc?: number;
  /** Wear cost per kWh discharged (grid side), default DEFAULT_WEAR_COST_PER_KWH. */
  costPerKWh?: number;
  /** Share of the initial stored energy that came from renewables (0..1), default 0: energy of
   *  unknown origin never counts as renewable. */
  renewableFraction?: number;
}

/** A deferrable load, e.g. an EV: draws energyKwh in total, 0..capacityKw in each interval of
 *  [arrival, departure). Its consumption is load, served like demand. */
export interface FlexibleLoadResource {
  id: string;
  type: "flexibleLoad";
  capacityKw: number;
  energyKwh: number;
  /** First interval it can draw power (index), default 0. */
  arrival?: number;
  /** Interval index by which it must be done (exclusive), default the horizon. */
  departure?: number;
}

export type VppResource = GeneratorResource | GridResource | StorageResource | FlexibleLoadResource;
export type VppResourceType = VppResource["type"];

export interface DispatchConstraints {
  /** Minimum share (0..1) of the load's energy over the horizon that comes from solar or wind,
   *  directly or through storage (only the renewable energy a battery stored counts). */
  minRenewable?: number;
  /** Maximum average cost per kWh of load over the horizon (total cost / load energy). */
  maxCost?: number;
}

export interface DispatchRequest {
  resources: readonly VppResource[];
  /** Inflexible demand (kW) in each interval. */
  demandKw: PerInterval;
  /** Number of intervals, 1..96; default the length of demandKw, or 1. */
  horizon?: number;
  /** Length of one interval in hours, default 1 (0.25 for 15-minute intervals). */
  intervalHours?: number;
  constraints?: DispatchConstraints;
}

export interface ResourceDispatch {
  resourceId: string;
  type: VppResourceType;
  /** kW per interval: supply positive, consumption negative (grid: import - export,
   *  storage: discharge - charge, flexible load: -consumption). */
  output: number[];
  /** Storage: state of charge (kWh) at the end of each interval. */
  socKwh?: number[];
}

export interface DispatchCompleted {
  status: "completed";
  horizon: number;
  intervalHours: number;
  allocation: ResourceDispatch[];
  /** Currency over the horizon: generation, import and wear costs minus export revenue. */
  totalCost: number;
  /** totalCost / loadKwh (0 when there is no load). */
  averageCost: number;
  /** Energy served to demand and flexible loads over the horizon (kWh). */
  loadKwh: number;
  /** Share of loadKwh that is renewable, attributed as favourably as the dispatch allows
   *  (0 when there is no load). */
  renewableShare: number;
  /** Per interval, the cost of one more kWh of demand in that interval (dual of its power
   *  balance), currency per kWh. */
  marginalPrice: number[];
  /** How it was solved: "lp" (the cheapest dispatch already met minRenewable), "lp-origin"
   *  (the LP with energy tracked by origin), or with "+mip" when batteries needed an explicit
   *  charge-or-discharge state (see optimizeDispatch). */
  method: "lp" | "lp-origin" | "lp+mip" | "lp-origin+mip";
}

/** Which constraint could not be met, checked in this order: physical ones first, then
 *  minRenewable given those, then maxCost given all the others. */
export type InfeasibleConstraint = "demand" | "flexibleLoad" | "minFinalSoc" | "minRenewable" | "maxCost";

export interface DispatchInfeasible {
  status: "infeasible";
  constraint: InfeasibleConstraint;
  /** One sentence with the numbers, e.g. "minRenewable 0.8 needs 1,600 kW of renewables; 1,200 kW available". */
  reason: string;
  /** What is missing, in `unit`. */
  shortfall: number;
  unit: "kW" | "kWh" | "per kWh";
  /** The resource at fault (flexibleLoad, minFinalSoc) or the interval (demand), when there is one. */
  resourceId?: string;
  interval?: number;
}

export type DispatchResult = DispatchCompleted | DispatchInfeasible;

export const DEFAULT_WEAR_COST_PER_KWH = 0.001;
export const DEFAULT_EFFICIENCY = 0.95;
export const MAX_HORIZON = 96;
/** Largest power a resource or the demand may have, kW (1 GW): a community's plant and far above, and well inside the LP solver's numeric range. */
export const MAX_POWER_KW = 1_000_000;
/** Largest energy a storage or flexible load may hold or need, kWh (10 GWh). */
export const MAX_ENERGY_KWH = 10_000_000;
/** Largest |price or cost| per kWh (currency units). */
export const MAX_PRICE_PER_KWH = 10_000;
