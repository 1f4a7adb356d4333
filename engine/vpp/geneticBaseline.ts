// The spec's genetic algorithm (seeds/000: VPPOptimizer), kept ONLY as the benchmark's baseline:
// optimizeDispatch never uses it. Population 100, 50 generations, tournament selection,
// crossover, mutation, and the spec's fitness:
//   fitness = -cost + renewableRatio x 1000 - unmetDemand x 10,
//   renewableRatio = solar+wind output / demand.
// The spec's individual is one output per resource; over a horizon it is one output per resource
// per interval (kW), bounded by the resource's limits, and the fitness sums over the horizon
// (energies in kWh). What the spec leaves open, chosen here and held fixed:
// - tournaments of 3; uniform crossover on 90% of pairs; each gene mutates with probability 5%
//   by a Gaussian step of 10% of its range; the best individual so far is carried over (elitism
//   of one), which only helps the baseline;
// - device rules the spec's fitness ignores are repaired in decoding, so the GA is not charged
//   for them: a battery's net output is clipped to what its state of charge allows, and a
//   flexible load's draw is rescaled to its energy within its window.
import { seededRandom } from "./randomDispatchRequest.js";
import type { DispatchRequest, ResourceDispatch } from "./types.js";
import { validateDispatchRequest, type NormalizedDispatch } from "./validateDispatchRequest.js";

export interface GeneticBaselineOptions {
  seed?: number;
  populationSize?: number;
  generations?: number;
  tournamentSize?: number;
  crossoverRate?: number;
  mutationRate?: number;
}

export interface GeneticBaselineReturnType {
  allocation: ResourceDispatch[];
  fitness: number;
}

interface Gene { lo: number; hi: number }

export function geneticBaseline(request: DispatchRequest, options: GeneticBaselineOptions = {}): GeneticBaselineReturnType {
  const n = validateDispatchRequest(request);
  const rnd = seededRandom(options.seed ?? 1);
  const populationSize = options.populationSize ?? 100;
  const generations = options.generations ?? 50;
  const tournamentSize = options.tournamentSize ?? 3;
  const crossoverRate = options.crossoverRate ?? 0.9;
  const mutationRate = options.mutationRate ?? 0.05;
  const T = n.horizon;
  const R = n.order.length;
  const bounds = geneBounds(n);
  const size = R * T;
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());

  let population = Array.from({ length: populationSize }, () => {
    const x = new Float64Array(size);
    for (let i = 0; i < size; i++) x[i] = bounds[i]!.lo + rnd() * (bounds[i]!.hi - bounds[i]!.lo);
    repair(n, x);
    return x;
  });
  let fitness = population.map((x) => evaluateFitness(n, x));
  let bestIndex = fitness.indexOf(Math.max(...fitness));
  let best = { x: population[bestIndex]!.slice(), fitness: fitness[bestIndex]! };

  const tournament = () => {
    let winner = Math.floor(rnd() * populationSize);
    for (let k = 1; k < tournamentSize; k++) {
      const other = Math.floor(rnd() * populationSize);
      if (fitness[other]! > fitness[winner]!) winner = other;
    }
    return population[winner]!;
  };

  for (let gen = 0; gen < generations; gen++) {
    const next: Float64Array<ArrayBuffer>[] = [best.x.slice()];
    while (next.length < populationSize) {
      const a = tournament().slice();
      const b = tournament().slice();
      if (rnd() < crossoverRate) {
        for (let i = 0; i < size; i++) {
          if (rnd() < 0.5) {
            const tmp = a[i]!;
            a[i] = b[i]!;
            b[i] = tmp;
          }
        }
      }
      for (const child of [a, b]) {
        for (let i = 0; i < size; i++) {
          if (rnd() < mutationRate) {
            const { lo, hi } = bounds[i]!;
            child[i] = Math.min(hi, Math.max(lo, child[i]! + 0.1 * (hi - lo) * gaussian()));
          }
        }
        repair(n, child);
        if (next.length < populationSize) next.push(child);
      }
    }
    population = next;
    fitness = population.map((x) => evaluateFitness(n, x));
    bestIndex = fitness.indexOf(Math.max(...fitness));
    if (fitness[bestIndex]! > best.fitness) best = { x: population[bestIndex]!.slice(), fitness: fitness[bestIndex]! };
  }

  const allocation: ResourceDispatch[] = n.order.map((r, k) => ({ resourceId: r.id, type: r.type, output: Array.from(best.x.subarray(k * T, (k + 1) * T)) }));
  return { allocation, fitness: best.fitness };
}

/** Gene k * T + t is resource k's output (kW) in interval t, in request order. */
function geneBounds(n: NormalizedDispatch): Gene[] {
  const T = n.horizon;
  const genes: Gene[] = new Array(n.order.length * T);
  const put = (position: number, f: (t: number) => Gene) => { for (let t = 0; t < T; t++) genes[position * T + t] = f(t); };
  for (const g of n.generators) put(g.position, (t) => ({ lo: 0, hi: g.maxKw[t]! }));
  for (const g of n.grids) put(g.position, () => ({ lo: -g.exportKw, hi: g.importKw }));
  for (const s of n.storages) put(s.position, () => ({ lo: -s.chargeKw, hi: s.dischargeKw }));
  for (const f of n.flexibleLoads) put(f.position, (t) => (t >= f.arrival && t < f.departure ? { lo: -f.maxKw, hi: 0 } : { lo: 0, hi: 0 }));
  return genes;
}

function repair(n: NormalizedDispatch, x: Float64Array): void {
  const T = n.horizon;
  const dt = n.intervalHours;
  for (const s of n.storages) {
    let e = s.initialKwh;
    for (let t = 0; t < T; t++) {
      const i = s.position * T + t;
      if (x[i]! >= 0) x[i] = Math.min(x[i]!, Math.max(0, ((e - s.floorKwh) * s.dischargeEfficiency) / dt));
      else x[i] = -Math.min(-x[i]!, Math.max(0, (s.energyCapacityKwh - e) / (s.chargeEfficiency * dt)));
      e += x[i]! >= 0 ? (-x[i]! / s.dischargeEfficiency) * dt : -x[i]! * s.chargeEfficiency * dt;
    }
  }
  for (const f of n.flexibleLoads) {
    let kwh = 0;
    for (let t = f.arrival; t < f.departure; t++) kwh -= x[f.position * T + t]! * dt;
    if (kwh > f.energyKwh && kwh > 0) {
      for (let t = f.arrival; t < f.departure; t++) x[f.position * T + t]! *= f.energyKwh / kwh;
    } else {
      // Top up, earliest interval first, to the load's power limit.
      let missing = f.energyKwh - kwh;
      for (let t = f.arrival; t < f.departure && missing > 0; t++) {
        const i = f.position * T + t;
        const add = Math.min(missing / dt, f.maxKw + x[i]!);
        x[i]! -= add;
        missing -= add * dt;
      }
    }
  }
}

/** The spec's fitness, summed over the horizon. */
function evaluateFitness(n: NormalizedDispatch, x: Float64Array): number {
  const T = n.horizon;
  const dt = n.intervalHours;
  let cost = 0;
  let renewable = 0;
  let demand = 0;
  let unmet = 0;
  const supply = new Float64Array(T);
  const load = Float64Array.from(n.demandKw);
  for (const g of n.generators) {
    for (let t = 0; t < T; t++) {
      const kw = x[g.position * T + t]!;
      cost += kw * g.cost[t]! * dt;
      renewable += kw * dt;
      supply[t]! += kw;
    }
  }
  for (const g of n.grids) {
    for (let t = 0; t < T; t++) {
      const kw = x[g.position * T + t]!;
      cost += (kw >= 0 ? kw * g.importCost[t]! : kw * g.exportPrice[t]!) * dt;
      supply[t]! += kw;
    }
  }
  for (const s of n.storages) {
    for (let t = 0; t < T; t++) {
      const kw = x[s.position * T + t]!;
      if (kw > 0) cost += kw * s.wearCost * dt;
      supply[t]! += kw;
    }
  }
  for (const f of n.flexibleLoads) for (let t = 0; t < T; t++) load[t]! -= x[f.position * T + t]!;
  for (let t = 0; t < T; t++) {
    demand += load[t]! * dt;
    unmet += Math.max(0, load[t]! - supply[t]!) * dt;
  }
  const renewableRatio = demand > 0 ? renewable / demand : 0;
  return -cost + renewableRatio * 1000 - unmet * 10;
}
