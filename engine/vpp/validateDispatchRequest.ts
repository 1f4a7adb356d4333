// Checks a dispatch request and expands it to per-interval arrays, so the model builder, the
// checker and the GA baseline all read the same normalized numbers. Bad input throws a
// ValidationError naming the field and the rule; a request that is valid but cannot be met is
// not an error here (optimizeDispatch answers "infeasible").
import { ValidationError } from "../../lib/errors.js";
import {
  DEFAULT_EFFICIENCY,
  DEFAULT_WEAR_COST_PER_KWH,
  MAX_ENERGY_KWH,
  MAX_HORIZON,
  MAX_POWER_KW,
  MAX_PRICE_PER_KWH,
  type DispatchRequest,
  type PerInterval,
  type VppResourceType,
} from "./types.js";

export interface NormalizedGenerator { id: string; type: "solar" | "wind"; position: number; maxKw: Float64Array; cost: Float64Array }
export interface NormalizedGrid { id: string; position: number; importKw: number; importCost: Float64Array; exportKw: number; exportPrice: Float64Array }
export interface NormalizedStorage {
  id: string;
  position: number;
  energyCapacityKwh: number;
  initialKwh: number;
  /** Lower bound on the planned state of charge: min(reserve, initial). */
  floorKwh: number;
  /** Required state of charge at the end (kWh), 0 when none. */
  finalKwh: number;
  chargeKw: number;
  dischargeKw: number;
  chargeEfficiency: number;
  dischargeEfficiency: number;
  wearCost: number;
  initialRenewableKwh: number;
}
export interface NormalizedFlexibleLoad { id: string; position: number; maxKw: number; energyKwh: number; arrival: number; departure: number }

export interface NormalizedDispatch {
  horizon: number;
  intervalHours: number;
  demandKw: Float64Array;
  generators: NormalizedGenerator[];
  grids: NormalizedGrid[];
  storages: NormalizedStorage[];
  flexibleLoads: NormalizedFlexibleLoad[];
  /** Resource ids and types in request order (the order of the answer's allocation). */
  order: { id: string; type: VppResourceType }[];
  minRenewable: number;
  maxCost: number | undefined;
}

export type ValidateDispatchRequestErrorType = ValidationError;

const TYPES: readonly VppResourceType[] = ["solar", "wind", "storage", "grid", "flexibleLoad"];

function num(field: string, value: unknown, rule: { min?: number; max?: number; above?: number } = {}): number {
  const describe = () => {
    const parts: string[] = [];
    if (rule.above !== undefined) parts.push(`> ${rule.above}`);
    if (rule.min !== undefined) parts.push(`>= ${rule.min}`);
    if (rule.max !== undefined) parts.push(`<= ${rule.max}`);
    return `must be a finite number${parts.length ? " " + parts.join(" and ") : ""}`;
  };
  if (typeof value !== "number" || !Number.isFinite(value)) throw new ValidationError(field, describe());
  if (rule.min !== undefined && value < rule.min) throw new ValidationError(field, describe());
  if (rule.max !== undefined && value > rule.max) throw new ValidationError(field, describe());
  if (rule.above !== undefined && value <= rule.above) throw new ValidationError(field, describe());
  return value;
}

function int(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(field, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

function series(field: string, value: PerInterval | undefined, horizon: number, fallback: number, rule: { min?: number; max?: number }): Float64Array {
  const out = new Float64Array(horizon);
  if (value === undefined) return out.fill(fallback);
  if (typeof value === "number") return out.fill(num(field, value, rule));
  if (!Array.isArray(value) || value.length !== horizon) {
    throw new ValidationError(field, `must be a number or an array of ${horizon} numbers (one per interval)`);
  }
  for (let t = 0; t < horizon; t++) out[t] = num(`${field}[${t}]`, value[t], rule);
  return out;
}

export function validateDispatchRequest(request: DispatchRequest): NormalizedDispatch {
  if (request === null || typeof request !== "object") throw new ValidationError("request", "must be an object");
  const { demandKw } = request;
  let horizon: number;
  if (request.horizon !== undefined) horizon = int("horizon", request.horizon, 1, MAX_HORIZON);
  else if (Array.isArray(demandKw)) horizon = int("demandKw.length", demandKw.length, 1, MAX_HORIZON);
  else horizon = 1;
  const intervalHours = request.intervalHours === undefined ? 1 : num("intervalHours", request.intervalHours, { above: 0, max: 24 });
  if (demandKw === undefined) throw new ValidationError("demandKw", "is required (kW per interval)");
  const demand = series("demandKw", demandKw, horizon, 0, { min: 0, max: MAX_POWER_KW });

  const c = request.constraints ?? {};
  if (typeof c !== "object" || c === null) throw new ValidationError("constraints", "must be an object");
  const minRenewable = c.minRenewable === undefined ? 0 : num("constraints.minRenewable", c.minRenewable, { min: 0, max: 1 });
  const maxCost = c.maxCost === undefined ? undefined : num("constraints.maxCost", c.maxCost, { min: -MAX_PRICE_PER_KWH, max: MAX_PRICE_PER_KWH });

  if (!Array.isArray(request.resources)) throw new ValidationError("resources", "must be an array");
  if (request.resources.length === 0) throw new ValidationError("resources", "must list at least one resource");
  const out: NormalizedDispatch = {
    horizon, intervalHours, demandKw: demand, generators: [], grids: [], storages: [], flexibleLoads: [], order: [], minRenewable, maxCost,
  };
  const seen = new Set<string>();
  request.resources.forEach((r, position) => {
    const f = `resources[${position}]`;
    if (r === null || typeof r !== "object") throw new ValidationError(f, "must be an object");
    if (typeof r.id !== "string" || r.id.length === 0) throw new ValidationError(`${f}.id`, "must be a non-empty string");
    if (seen.has(r.id)) throw new ValidationError(`${f}.id`, `must be unique ("${r.id}" appears twice)`);
    seen.add(r.id);
    if (!TYPES.includes(r.type)) throw new ValidationError(`${f}.type`, `must be one of ${TYPES.join(", ")}`);
    out.order.push({ id: r.id, type: r.type });
    const capacityKw = num(`${f}.capacityKw`, r.capacityKw, { min: 0, max: MAX_POWER_KW });
    switch (r.type) {
      case "solar":
      case "wind": {
        const availability = series(`${f}.availability`, r.availability, horizon, 1, { min: 0, max: 1 });
        const maxKw = availability.map((a) => a * capacityKw);
        out.generators.push({ id: r.id, type: r.type, position, maxKw, cost: series(`${f}.costPerKWh`, r.costPerKWh, horizon, 0, { min: 0, max: MAX_PRICE_PER_KWH }) });
        break;
      }
      case "grid": {
        if (r.costPerKWh === undefined) throw new ValidationError(`${f}.costPerKWh`, "is required for a grid connection (import price per kWh)");
        const importCost = series(`${f}.costPerKWh`, r.costPerKWh, horizon, 0, { min: 0, max: MAX_PRICE_PER_KWH });
        const exportKw = r.exportCapacityKw === undefined ? 0 : num(`${f}.exportCapacityKw`, r.exportCapacityKw, { min: 0, max: MAX_POWER_KW });
        const exportPrice = series(`${f}.exportPricePerKWh`, r.exportPricePerKWh, horizon, 0, { min: -MAX_PRICE_PER_KWH, max: MAX_PRICE_PER_KWH });
        for (let t = 0; t < horizon; t++) {
          // A higher export price than import price would let the plan buy energy only to sell it.
          if (exportPrice[t]! > importCost[t]!) {
            throw new ValidationError(`${f}.exportPricePerKWh`, `must not exceed the import price (interval ${t}: ${exportPrice[t]} > ${importCost[t]})`);
          }
        }
        out.grids.push({ id: r.id, position, importKw: capacityKw, importCost, exportKw, exportPrice });
        break;
      }
      case "storage": {
        const energyCapacityKwh = num(`${f}.energyCapacityKwh`, r.energyCapacityKwh, { above: 0, max: MAX_ENERGY_KWH });
        const soc = num(`${f}.soc`, r.soc, { min: 0, max: 1 });
        const reserve = r.minReserve === undefined ? 0 : num(`${f}.minReserve`, r.minReserve, { min: 0, max: 1 });
        const final = r.minFinalSoc === undefined ? 0 : num(`${f}.minFinalSoc`, r.minFinalSoc, { min: 0, max: 1 });
        const initialKwh = soc * energyCapacityKwh;
        out.storages.push({
          id: r.id,
          position,
          energyCapacityKwh,
          initialKwh,
          floorKwh: Math.min(reserve * energyCapacityKwh, initialKwh),
          finalKwh: final * energyCapacityKwh,
          chargeKw: r.chargeLimitKw === undefined ? capacityKw : num(`${f}.chargeLimitKw`, r.chargeLimitKw, { min: 0, max: MAX_POWER_KW }),
          dischargeKw: r.dischargeLimitKw === undefined ? capacityKw : num(`${f}.dischargeLimitKw`, r.dischargeLimitKw, { min: 0, max: MAX_POWER_KW }),
          chargeEfficiency: r.chargeEfficiency === undefined ? DEFAULT_EFFICIENCY : num(`${f}.chargeEfficiency`, r.chargeEfficiency, { above: 0, max: 1 }),
          dischargeEfficiency: r.dischargeEfficiency === undefined ? DEFAULT_EFFICIENCY : num(`${f}.dischargeEfficiency`, r.dischargeEfficiency, { above: 0, max: 1 }),
          wearCost: r.costPerKWh === undefined ? DEFAULT_WEAR_COST_PER_KWH : num(`${f}.costPerKWh`, r.costPerKWh, { min: 0, max: MAX_PRICE_PER_KWH }),
          initialRenewableKwh: initialKwh * (r.renewableFraction === undefined ? 0 : num(`${f}.renewableFraction`, r.renewableFraction, { min: 0, max: 1 })),
        });
        break;
      }
      case "flexibleLoad": {
        const energyKwh = num(`${f}.energyKwh`, r.energyKwh, { min: 0, max: MAX_ENERGY_KWH });
        const arrival = r.arrival === undefined ? 0 : int(`${f}.arrival`, r.arrival, 0, horizon - 1);
        const departure = r.departure === undefined ? horizon : int(`${f}.departure`, r.departure, arrival + 1, horizon);
        out.flexibleLoads.push({ id: r.id, position, maxKw: capacityKw, energyKwh, arrival, departure });
        break;
      }
    }
  });
  return out;
}
