// Seeded random dispatch requests shaped like a community VPP (rooftop solar, a few wind
// turbines, home batteries, EVs, one grid connection with time-of-use prices), for the benchmark
// and the solver cross-check tests. The same seed always gives the same request.
import type { DispatchRequest, VppResource } from "./types.js";
import { mulberry32 } from "../../lib/random.js";

/** mulberry32: small, fast, good enough for test data; returns floats in [0, 1). */
export const seededRandom = mulberry32;

export interface RandomDispatchOptions {
  seed: number;
  resources: number;
  horizon: number;
  intervalHours?: number;
  /** Share of resources of each kind besides the one grid connection (normalised). */
  mix?: { solar: number; wind: number; storage: number; flexibleLoad: number };
  /** Probability that minRenewable / maxCost are set, default 0.5 / 0.3. */
  minRenewableChance?: number;
  maxCostChance?: number;
  /** Round numbers to this many decimals (small instances stay readable), default 3. */
  decimals?: number;
}

export function randomDispatchRequest(options: RandomDispatchOptions): DispatchRequest {
  const rnd = seededRandom(options.seed);
  const T = options.horizon;
  const dt = options.intervalHours ?? (T > 24 ? 24 / T : 1);
  const digits = 10 ** (options.decimals ?? 3);
  const round = (x: number) => Math.round(x * digits) / digits;
  const between = (lo: number, hi: number) => round(lo + (hi - lo) * rnd());
  const mix = options.mix ?? { solar: 0.45, wind: 0.1, storage: 0.25, flexibleLoad: 0.2 };
  const startHour = Math.floor(rnd() * 24);
  const hourOf = (t: number) => (startHour + t * dt) % 24;
  const solarShape = (t: number) => Math.max(0, Math.sin(((hourOf(t) - 6) / 12) * Math.PI));

  const resources: VppResource[] = [];
  let renewableKw = 0;
  const kinds = ["solar", "wind", "storage", "flexibleLoad"] as const;
  const weights = kinds.map((k) => mix[k]);
  const totalWeight = weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < options.resources - 1; i++) {
    let pick = rnd() * totalWeight;
    let kind: (typeof kinds)[number] = "solar";
    for (let k = 0; k < kinds.length; k++) {
      pick -= weights[k]!;
      if (pick < 0) { kind = kinds[k]!; break; }
    }
    const id = `${kind}-${i}`;
    if (kind === "solar") {
      const capacityKw = between(3, 30);
      const cloud = 0.5 + 0.5 * rnd();
      renewableKw += capacityKw * 0.5;
      resources.push({ id, type: "solar", capacityKw, costPerKWh: between(0, 0.08), availability: Array.from({ length: T }, (_, t) => round(Math.min(1, solarShape(t) * cloud))) });
    } else if (kind === "wind") {
      const capacityKw = between(50, 300);
      let a = rnd();
      renewableKw += capacityKw * 0.5;
      const availability = Array.from({ length: T }, () => (a = Math.min(1, Math.max(0, a + 0.2 * (rnd() - 0.5)))));
      resources.push({ id, type: "wind", capacityKw, costPerKWh: between(0.02, 0.15), availability: availability.map(round) });
    } else if (kind === "storage") {
      const energyCapacityKwh = between(5, 20);
      resources.push({
        id, type: "storage", capacityKw: between(2, 6), energyCapacityKwh, soc: between(0.1, 0.9), chargeEfficiency: between(0.9, 0.98),
        dischargeEfficiency: between(0.9, 0.98), minReserve: between(0, 0.2), costPerKWh: between(0.0005, 0.003), renewableFraction: between(0, 1),
        ...(rnd() < 0.3 ? { minFinalSoc: between(0.2, 0.5) } : {}),
      });
    } else {
      const arrival = Math.floor(rnd() * Math.max(1, T / 2));
      const departure = Math.min(T, arrival + 1 + Math.floor(rnd() * T));
      const capacityKw = between(3, 11);
      resources.push({ id, type: "flexibleLoad", capacityKw, energyKwh: round(capacityKw * (departure - arrival) * dt * between(0.1, 0.8)), arrival, departure });
    }
  }
  const demandKw = Array.from({ length: T }, (_, t) => {
    const h = hourOf(t);
    const shape = 0.6 + 0.3 * Math.exp(-((h - 8) ** 2) / 4) + 0.5 * Math.exp(-((h - 19) ** 2) / 6);
    return round((20 + renewableKw) * shape * (0.8 + 0.4 * rnd()));
  });
  const peak = Math.max(...demandKw);
  const flexibleKw = resources.reduce((a, r) => a + (r.type === "flexibleLoad" ? r.capacityKw : 0), 0);
  // Off-peak grid energy is sometimes cheaper than wind, so minRenewable can bind.
  const base = between(0.08, 0.2);
  resources.unshift({
    id: "grid-0", type: "grid", capacityKw: round(1.1 * peak + flexibleKw + 10),
    costPerKWh: Array.from({ length: T }, (_, t) => round(hourOf(t) >= 17 && hourOf(t) < 21 ? base * 1.6 : hourOf(t) < 6 ? base * 0.6 : base)),
    ...(rnd() < 0.5 ? { exportCapacityKw: round(0.3 * peak), exportPricePerKWh: round(base * 0.4) } : {}),
  });
  const constraints: DispatchRequest["constraints"] = {};
  if (rnd() < (options.minRenewableChance ?? 0.5)) constraints.minRenewable = between(0.05, 0.6);
  if (rnd() < (options.maxCostChance ?? 0.3)) constraints.maxCost = between(0.1, 0.3);
  return { resources, demandKw, horizon: T, intervalHours: dt, constraints };
}
