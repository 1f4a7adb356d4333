// `sh scripts/with-node.sh tsx demo/household.bench.ts [--households N] [--runs N]`: how long the
// model half of the demo takes for a community day: building the community (CSV already read),
// stepping every home through every interval, and the runner's path per interval (plan, agent
// order with its limit price, delivery). Prints median and worst of the runs, after one cold run
// reported on its own (JIT warm-up, first CSV read).
import { agentOrderFor } from "./agentPricing.js";
import { createCommunity, type Community } from "./community.js";
import { readHouseholdLoadSeries } from "./loadProfile.js";
import { deliverHouseholdInterval, initialHouseholdState, intervalOf, planHouseholdInterval, simulateCommunityDay } from "./household.js";

/** The runner's loop without the network: plan, price an order, deliver what was offered. */
function runnerDay(community: Community): number {
  let states = community.households.map(initialHouseholdState);
  let orders = 0;
  for (let i = 0; i < community.intervals.startUnixSeconds.length; i++) {
    const at = intervalOf(community, i);
    states = community.households.map((home, k) => {
      const plan = planHouseholdInterval(home, states[k]!, at);
      const order = agentOrderFor(plan, { referencePricePerKWh: 200_000, corridor: { floorPerKWh: 80_000, ceilingPerKWh: 320_000 }, seed: community.seed });
      if (order !== null) orders++;
      return deliverHouseholdInterval(home, states[k]!, plan, order?.side === "sell" ? order.energyWh : 0).state;
    });
  }
  return orders;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const households = arg("--households", 2_200);
const runs = arg("--runs", 20);
const date = "2024-06-21";

let t = performance.now();
const loadSeries = readHouseholdLoadSeries();
const readMs = performance.now() - t;
t = performance.now();
const cold = createCommunity({ households, seed: 1, date, loadSeries });
const coldCreateMs = performance.now() - t;
t = performance.now();
simulateCommunityDay(cold);
const coldStepMs = performance.now() - t;

const create: number[] = [];
const step: number[] = [];
const runner: number[] = [];
let orders = 0;
let homeIntervals = 0;
for (let r = 0; r < runs; r++) {
  t = performance.now();
  const community = createCommunity({ households, seed: 100 + r, date, loadSeries });
  create.push(performance.now() - t);
  t = performance.now();
  const day = simulateCommunityDay(community);
  step.push(performance.now() - t);
  homeIntervals = day.intervals.length * households;
  t = performance.now();
  orders = runnerDay(community);
  runner.push(performance.now() - t);
}
const stat = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)]!.toFixed(1)} ms, worst ${s[s.length - 1]!.toFixed(1)} ms`;
};
console.log(`community day: ${households} households x ${homeIntervals / households} intervals (${homeIntervals} home-intervals), ${runs} runs, Node ${process.version}`);
console.log(`  read CSV once            ${readMs.toFixed(1)} ms`);
console.log(`  cold: create ${coldCreateMs.toFixed(1)} ms, step day ${coldStepMs.toFixed(1)} ms`);
console.log(`  createCommunity          ${stat(create)}`);
console.log(`  step the whole day       ${stat(step)}`);
console.log(`  plan + order + deliver   ${stat(runner)} (${orders} orders in the last run)`);
