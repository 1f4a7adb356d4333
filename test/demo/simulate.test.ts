// The live simulation against a real node in-process (chain, engine and settler, indexer, meter
// bridge and its broker, API), as `npm run simulate` runs against `npm start`. Node and
// simulation share one clock that starts at 11:50 on 2026-06-21 in Berlin (a clear day for the
// homes) on a chain whose genesis is there too, and runs at wall speed; the test moves clock and
// chain time forward together instead of waiting for real intervals. So nothing depends on the
// wall clock: the same homes trade the same interval at noon every run.
import { expect } from "chai";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { erc20Abi, maxUint256, type PublicClient } from "viem";
import { meterIdToBytes32 } from "../../bridge/meterDirectory.js";
import { prosumerRegistryAbi } from "../../contracts/client/abi.js";
import { agentOrderFor } from "../../demo/agentPricing.js";
import { prepareChainGenesis } from "../../demo/chainGenesis.js";
import { initialHouseholdState } from "../../demo/household.js";
import { chooseUnderDeliverers } from "../../demo/chooseUnderDeliverers.js";
import { createLiveClock } from "../../demo/liveClock.js";
import { createLiveCommunity } from "../../demo/liveCommunity.js";
import { deliverLiveInterval, LIVE_MIN_ORDER_WH, planLiveInterval } from "../../demo/liveHousehold.js";
import { simulateLive, type LiveStep, type SimulateLiveResult } from "../../demo/simulateLive.js";
import { syntheticLoadSeries } from "../../demo/syntheticLoadSeries.js";
import { createLogger } from "../../lib/logger.js";
import { readNodeConfig } from "../../server/config.js";
import { nodePlugins } from "../../server/plugins.js";
import { startNode, type RunningNode } from "../../server/startNode.js";
import { testLoadSeries } from "./fixtures.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** 2026-06-21 11:50:00 in Berlin (CEST, UTC+2). */
const GENESIS = Date.UTC(2026, 5, 21, 9, 50) / 1000;
/** The first interval the homes can trade: 12:00-12:15, its book closing at 11:55. */
const NOON = Date.UTC(2026, 5, 21, 10, 0) / 1000;
const GATE = 300;
const GRACE = 300;

interface Trade {
  tradeId: string;
  seller: string;
  buyer: string;
  deliveryStart: string;
  energyWh: string;
  status: string;
  executed: { txHash: string };
  delivery: { deliveredWh: string | null; withinTolerance: boolean | null } | null;
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("simulate: a live community on a running node", function () {
  this.timeout(240_000);
  let dir: string;
  let node: RunningNode;
  const steps: LiveStep[] = [];
  const lines: string[] = [];
  const stop = new AbortController();
  let run: Promise<SimulateLiveResult>;
  const params = { households: 8, seed: 3, loadSeries: testLoadSeries() };
  /** The homes the simulation runs: the same function of its parameters and the node's zones. */
  const community = createLiveCommunity({ ...params, zones: ["ZONE-A", "ZONE-B"], timeZone: "Europe/Berlin", date: "2026-06-21" });

  const get = async (pathname: string) => {
    const res = await fetch(`${node.url}${pathname}`);
    return { status: res.status, json: (await res.json()) as any };
  };
  const trades = async (): Promise<Trade[]> => (await get("/v1/trades?limit=1000")).json.items as Trade[];
  let failure: Error | undefined;
  const step = (kind: LiveStep["kind"], intervalStart?: number) =>
    until(`the simulation's ${kind} step${intervalStart ? ` for ${new Date(intervalStart * 1000).toISOString()}` : ""}`, () => {
      if (failure) throw failure;
      return steps.find((s) => s.kind === kind && (intervalStart === undefined || ("intervalStart" in s && s.intervalStart === intervalStart)));
    });
  // The shared clock: wall speed from GENESIS on, moved forward by moveTo.
  let offsetMs = GENESIS * 1000 - Date.now();
  const now = () => Date.now() + offsetMs;
  /** Moves the chain, then the node's and the simulation's clock, forward to `unixSeconds`. */
  const moveTo = async (unixSeconds: number) => {
    const client = node.services.chain.publicClient as PublicClient;
    const latest = Number((await client.getBlock({ blockTag: "latest" })).timestamp);
    // Blocks mined one per transaction may have run ahead of the clock: never set time back.
    if (latest < unixSeconds) {
      await client.request({ method: "evm_setNextBlockTimestamp" as never, params: [`0x${unixSeconds.toString(16)}`] as never });
      await client.request({ method: "evm_mine" as never, params: [] as never });
    }
    offsetMs += Math.max(0, unixSeconds * 1000 - now());
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "simulate-test-"));
    const dataDir = path.join(dir, "data");
    await prepareChainGenesis(dataDir, GENESIS);
    const config = readNodeConfig({
      PORT: "0", CHAIN_PORT: "0", MQTT_PORT: "0", DATA_DIR: dataDir, DEPLOYMENTS_DIR: path.join(dir, "deployments"),
      TEST_ACCOUNTS: "0", TIME_ZONE: "Europe/Berlin", SETTLEMENT_MAX_LATENCY_MS: "100",
    }, {});
    offsetMs = GENESIS * 1000 - Date.now();
    node = await startNode({ config, clock: now, logger: createLogger("simulate-test", process.env.LOG_LEVEL ?? "warn"), plugins: nodePlugins, indexerPollMs: 100 });
    run = simulateLive({
      ...params, url: node.url, dayKind: "clear",
      clock: createLiveClock(now, { pollMs: 100 }), signal: stop.signal, afterGateSeconds: 2, publishAfterSeconds: 1,
      onStep: (s) => steps.push(s), progress: (line) => lines.push(line),
    });
    // A failure surfaces in the test that waits for a step.
    run.catch((err: unknown) => (failure = err as Error));
  });

  after(async () => {
    stop.abort();
    await run?.catch(() => undefined);
    await node?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.error(`simulation said:\n  ${lines.join("\n  ")}`);
  });

  it("onboards the homes through the API: registered in their zones with their meters and meter keys, funded, approved", async () => {
    const onboarded = await step("onboarded");
    expect(onboarded).to.deep.include({ kind: "onboarded", households: 8, registered: 8, funded: 8, approved: 8 });
    const { chain } = node.services;
    for (const home of community.homes) {
      const profile = (await get(`/v1/prosumers/${home.wallet.address}`)).json;
      expect(profile).to.deep.include({ status: "active", zone: home.zone, meterId: home.meterId });
      const signer = await chain.publicClient.readContract({ address: chain.contracts.ProsumerRegistry, abi: prosumerRegistryAbi, functionName: "meterSignerOf", args: [meterIdToBytes32(home.meterId)!] });
      expect(signer).to.equal(home.meterKey.signer);
      expect(await chain.publicClient.readContract({ address: chain.contracts.PaymentToken, abi: erc20Abi, functionName: "allowance", args: [home.wallet.address, chain.contracts.EnergyMarket] })).to.equal(maxUint256);
    }
  });

  it("fills the next interval's books and settles trades on-chain within seconds", async () => {
    const placed = await step("placed", NOON);
    expect(placed).to.deep.include({ refused: 0 });
    if (placed.kind === "placed") expect(placed.orders).to.be.at.least(4);
    // ZONE-B clears by call auction at the gate: until then its book shows every order.
    const book = (await get(`/v1/trading/markets/ZONE-B/${NOON}/book`)).json as { status: string; bids: unknown[]; asks: unknown[] };
    expect(book.status).to.equal("open");
    expect(book.bids.length + book.asks.length).to.be.at.least(2);
    // ZONE-A is continuous: offers and bids that cross trade at once, and the settler puts them on-chain.
    const settled = await until("a trade on-chain, indexed", async () => {
      const items = (await trades()).filter((t) => Number(t.deliveryStart) === NOON);
      return items.length > 0 ? items : undefined;
    }, 30_000);
    expect(settled[0]!.status).to.equal("executed");
    expect(settled[0]!.executed.txHash).to.match(/^0x[0-9a-f]{64}$/);
    expect(now()).to.be.below((NOON - GATE) * 1000);
  });

  it("after the interval, the meters' readings make the bridge report deliveries, and the under-deliverers' shortfalls disputes", async () => {
    await moveTo(NOON - GATE + 1);
    const closed = await step("closed", NOON);
    if (closed.kind === "closed") expect(closed.trades).to.be.greaterThan(0);
    await moveTo(NOON + 900 + 1);
    const published = await step("published", NOON);
    if (published.kind === "published") expect(published.readings).to.equal(8);
    // Every reading was taken: none dead-lettered.
    await until("the bridge to store the readings", () => (node.bridge.metrics().accepted >= 16 ? true : undefined));
    expect(node.bridge.metrics().deadLettered).to.deep.equal({});
    await moveTo(NOON + 900 + GRACE + 2);
    const reported = await until("a delivery report for every trade of 12:00", async () => {
      const items = (await trades()).filter((t) => Number(t.deliveryStart) === NOON);
      return items.length > 0 && items.every((t) => t.delivery !== null) ? items : undefined;
    }, 60_000);
    const disputed = reported.filter((t) => t.status === "disputed");
    const delivered = reported.filter((t) => t.status !== "disputed");
    expect(disputed.length, "disputed trades").to.be.at.least(1);
    expect(delivered.length, "delivered trades").to.be.at.least(1);
    for (const t of disputed) expect(BigInt(t.delivery!.deliveredWh!)).to.be.below(BigInt(t.energyWh));
    for (const t of delivered) expect(t.delivery!.deliveredWh).to.equal(t.energyWh);
    // The shortfalls are those of the interval's under-deliverers and nobody else's.
    const placed = await step("placed", NOON);
    const cheats = new Set(placed.kind === "placed" ? placed.underDelivering.map((i) => community.homes[i]!.wallet.address) : []);
    expect(cheats.size, "under-deliverers, one per zone").to.equal(2);
    for (const t of disputed) expect(cheats.has(t.seller as `0x${string}`), `seller of disputed trade ${t.tradeId}`).to.equal(true);
  });

  it("stops on the signal: the promise resolves, open orders are cancelled", async () => {
    // The simulation has moved on to the next intervals meanwhile.
    await step("placed", NOON + 1800);
    const started = Date.now();
    stop.abort();
    const result = await run;
    expect(Date.now() - started, "ms to stop").to.be.below(10_000);
    expect(result.households).to.equal(8);
    expect(result.ordersRefused, JSON.stringify(result.refusals)).to.equal(0);
    expect(result.ordersPlaced).to.be.greaterThan(0);
    expect(result.trades).to.be.greaterThan(0);
    expect(result.readingsPublished).to.be.at.least(16);
    const makers = new Set(community.homes.map((h) => h.wallet.address));
    const open = [...node.engine.state.orders.values()].filter((o) => o.status === "open" && makers.has(o.accepted.order.maker));
    expect(open, "orders left open").to.deep.equal([]);
    expect(lines.at(-1)).to.match(/^stopped: /);
  });

  it("runs again against the same node: the homes are found registered, funded and approved, their meters log in anew", async () => {
    const again: LiveStep[] = [];
    const halt = new AbortController();
    const second = simulateLive({
      ...params, url: node.url, dayKind: "clear", clock: createLiveClock(now, { pollMs: 100 }), signal: halt.signal, afterGateSeconds: 2, publishAfterSeconds: 1,
      onStep: (s) => again.push(s),
    });
    try {
      const onboarded = await until("the second run to onboard", () => again.find((s) => s.kind === "onboarded"));
      expect(onboarded).to.deep.include({ registered: 0, funded: 0, approved: 0 });
      const placed = await until("the second run to place orders", () => again.find((s) => s.kind === "placed"));
      expect(placed).to.deep.include({ refused: 0 });
    } finally {
      halt.abort();
      await second;
    }
  });

  it("npm run simulate: discovers the node, trades, and exits 0 by itself on SIGINT", async () => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(MQTT_URL|BRIDGE_TOPIC_ROOT)$/.test(k)) env[k] = v;
    const child = spawn(process.execPath, ["--import", "tsx", "demo/simulate.ts", "--url", node.url, "--households", "4", "--seed", "9"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout!.resume();
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      await until("the child to place its first orders", () => (/orders placed/.test(err) ? true : /simulate: (?!\[)/.test(err) ? Promise.reject(new Error(err)) : undefined), 90_000);
      child.kill("SIGINT");
      // It exits without process.exit: only once nothing (timer, socket, MQTT client) is left.
      const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("still running after 20 s"), 20_000))]);
      expect(code, err).to.equal(0);
      expect(err).to.match(/SIGINT: stopping/).and.to.match(/stopped: /);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});

describe("simulate: the homes' models, without a node (battery rules, under-deliverers, load profile)", () => {
  const date = "2026-12-07";
  const community = createLiveCommunity({ households: 20, seed: 1, zones: ["ZONE-A", "ZONE-B"], timeZone: "Europe/Berlin", date, loadSeries: testLoadSeries() });
  const day = community.day(date);
  const reference = 200_000;
  const corridor = { floorPerKWh: 80_000, ceilingPerKWh: 350_000 };

  /** The winter day from midnight, each interval's offers sold up to its zone's bids (pro rata). */
  function liveTheDay() {
    let states = day.households.map(initialHouseholdState);
    const intervals: { localMinute: number; zones: Map<string, { asks: number[]; bids: number[]; storage: number }>; balanced: boolean[] }[] = [];
    day.intervals.startUnixSeconds.forEach((start, index) => {
      const at = { index, start, localMinute: day.intervals.localMinute[index]! };
      const plans = day.households.map((h, i) => planLiveInterval(h, states[i]!, at));
      const zones = new Map(["ZONE-A", "ZONE-B"].map((z) => [z, { asks: [] as number[], bids: [] as number[], storage: 0, offered: 0, wanted: 0 }]));
      const orders = plans.map((p, i) => {
        const o = agentOrderFor(p.orderPlan, { referencePricePerKWh: reference, corridor, seed: 1, minOrderWh: LIVE_MIN_ORDER_WH });
        const z = zones.get(day.households[i]!.zone)!;
        if (o?.side === "sell") (z.asks.push(o.limitPricePerKWh), (z.offered += o.energyWh), p.source === "storage" && z.storage++);
        if (o?.side === "buy") (z.bids.push(o.limitPricePerKWh), (z.wanted += o.energyWh));
        return o;
      });
      const balanced: boolean[] = [];
      states = day.households.map((h, i) => {
        const z = zones.get(h.zone)!;
        const o = orders[i];
        const sold = o?.side === "sell" ? Math.floor((o.energyWh * Math.min(z.offered, z.wanted)) / z.offered) : 0;
        const { state, interval: m } = deliverLiveInterval(h, states[i]!, plans[i]!, sold);
        balanced.push(m.generationWh + m.importWh + m.batteryDischargeWh === m.loadWh + m.exportWh + m.batteryChargeWh + m.evChargeWh && m.batterySocWh >= (h.battery?.reserveWh ?? 0));
        return state;
      });
      intervals.push({ localMinute: at.localMinute, zones, balanced });
    });
    return intervals;
  }

  it("every zone has offers and bids that cross in nearly every interval of a December day, most at night from batteries", () => {
    const intervals = liveTheDay();
    const crossing = intervals.filter((iv) => [...iv.zones.values()].every((z) => z.asks.length > 0 && z.bids.length > 0 && Math.min(...z.asks) <= Math.max(...z.bids)));
    expect(crossing.length, "intervals where every zone can trade").to.be.at.least(Math.floor(intervals.length * 0.85));
    const night = intervals.filter((iv) => iv.localMinute < 6 * 60 || iv.localMinute >= 20 * 60);
    const fromBatteries = night.filter((iv) => [...iv.zones.values()].every((z) => z.storage > 0));
    expect(fromBatteries.length, "night intervals with battery offers in every zone").to.be.at.least(Math.floor(night.length * 0.85));
  });

  it("keeps every home's energy balance and batteries above their reserve", () => {
    for (const iv of liveTheDay()) expect(iv.balanced.every(Boolean), `interval at minute ${iv.localMinute}`).to.equal(true);
  });

  it("an under-delivering storage seller exports its share of what it sold and keeps the rest stored", () => {
    const home = day.households.find((h) => h.battery && !h.ev)!;
    const cheat = { ...home, underDelivers: true };
    const state = { ...initialHouseholdState(cheat), batterySocWh: cheat.battery!.capacityWh };
    const at = { index: 0, start: day.intervals.startUnixSeconds[0]!, localMinute: 0 };
    const plan = planLiveInterval(cheat, state, at);
    expect(plan.source).to.equal("storage");
    expect(plan.storageOfferWh).to.be.greaterThan(0);
    const sold = plan.storageOfferWh;
    const { interval } = deliverLiveInterval(cheat, state, plan, sold);
    expect(interval.exportWh).to.equal(Math.floor((sold * cheat.deliveryShareBps) / 10_000));
    expect(interval.deliveredWh).to.equal(interval.exportWh);
    expect(interval.curtailedWh).to.equal(0);
    const honest = deliverLiveInterval({ ...cheat, underDelivers: false }, state, plan, sold).interval;
    expect(honest.exportWh).to.equal(sold);
    expect(interval.batterySocWh).to.be.greaterThan(honest.batterySocWh);
  });

  it("picks a share of each zone's sellers to under-deliver, at least one, the same for the same interval", () => {
    const sellers = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((home) => ({ home, zone: home < 6 ? "ZONE-A" : "ZONE-B" }));
    const chosen = chooseUnderDeliverers({ seed: 1, intervalStart: 1_796_626_800, share: 0.2, sellers });
    expect([...chosen].filter((h) => h < 6)).to.have.length(1);
    expect([...chosen].filter((h) => h >= 6)).to.have.length(1);
    expect(chooseUnderDeliverers({ seed: 1, intervalStart: 1_796_626_800, share: 0.2, sellers: [...sellers].reverse() })).to.deep.equal(chosen);
    expect(chooseUnderDeliverers({ seed: 1, intervalStart: 1_796_626_800, share: 0, sellers }).size).to.equal(0);
    expect(chooseUnderDeliverers({ seed: 1, intervalStart: 1_796_626_800, share: 1, sellers }).size).to.equal(10);
  });

  it("where the real household series is missing, a synthetic day stands in at German levels", () => {
    for (const date of ["2026-12-07", "2026-06-20"]) {
      const homes = createLiveCommunity({ households: 20, seed: 1, zones: ["ZONE-A", "ZONE-B"], timeZone: "Europe/Berlin", date, loadSeries: syntheticLoadSeries() }).day(date).households;
      const daily = homes.map((h) => h.loadWh.reduce((a, b) => a + b, 0));
      const mean = daily.reduce((a, b) => a + b, 0) / daily.length;
      expect(mean, `mean daily load on ${date}, Wh`).to.be.within(6_000, 15_000);
      expect(Math.min(...daily)).to.be.greaterThan(0);
    }
  });
});
