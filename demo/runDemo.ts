// A simulated community day through the real node, end to end: the node starts in-process on a
// simulated clock that the embedded chain follows; the community is registered on-chain; every
// 15 minutes each home's wallet agent plans its interval, prices an order from the engine's
// dynamic reference price and places it over the HTTP API under its own SIWE session; gate
// closure clears the books and the settler puts the fills on-chain; after the interval the
// meters publish their readings over MQTT and the meter bridge reports deliveries (shortfalls
// open disputes); after the day the clock moves past each dispute window and confirmation
// deadline and the node's keeper closes those escrows by itself, and the report and a
// cross-check of chain, indexer, engine, bridge and keeper close the run.
//
// Simulated time advances in steps; in the step of interval k (start S(k)):
//   S(k) - 11 min  plan and place the orders for k;
//                  then interval k - 2 (ended 4 minutes ago): its fills are settled (waited for:
//                  its orders expire with it), the chain moves to its end, the homes deliver
//                  and their meters publish (the bridge's 5-minute grace period is still open)
//   S(k) - 5 min   gate closure of k: the engine clears its books and the settler settles them;
//                  the bridge decides k - 2 (its grace is over) and reports it on-chain
// so the settlement of k - 2 has two steps of wall time to be mined, and the node's main thread
// (order intake, meter readings) and the chain (settlement, delivery reports) work side by side.
// The chain trails the node's clock by up to one interval: nothing on-chain needs it closer
// (orders expire at the end of their interval; reports need the interval to have ended).
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { Engine } from "../engine/createEngine.js";
import { zoneLabel } from "../engine/markets.js";
import { BaseError, ValidationError } from "../lib/errors.js";
import { createLogger, type Logger } from "../lib/logger.js";
import { hardhatKey } from "../scripts/localChain.js";
import { readNodeConfig } from "../server/config.js";
import { nodePlugins } from "../server/plugins.js";
import { startNode, type RunningNode } from "../server/startNode.js";
import { agentOrderFor, orderEnergyWh, type AgentOrder } from "./agentPricing.js";
import { createApiClient, mapConcurrent, signIn, ApiRequestError, type ApiClient, type Session } from "./apiClient.js";
import { prepareChainGenesis } from "./chainGenesis.js";
import { createChainLedger } from "./chainLedger.js";
import { closeTrades, CLOSE_STEP_SECONDS } from "./closeTrades.js";
import { createCommunity, type CommunityShares, type Household } from "./community.js";
import { crossCheck, type CrossCheck } from "./crossCheck.js";
import { deriveHouseholdWallets, roleWallet } from "./householdWallets.js";
import { deliverHouseholdInterval, initialHouseholdState, intervalOf, planHouseholdInterval, type HouseholdIntervalPlan, type HouseholdState } from "./household.js";
import { meterReadingsFor, type MeterReadings } from "./meterReadings.js";
import { onboardHouseholds } from "./onboardHouseholds.js";
import { createOrderPlacer, type PlacedOrder } from "./placeOrders.js";
import { connectMeterPublishers, type MeterLogin, type MeterPublisher } from "./publishReadings.js";
import { writeTradeReport, type TradeRecord, type TradeReportJson } from "./report.js";
import { createSimClock, type SimClock } from "./simClock.js";
import type { SkyCondition } from "./solar.js";
import { createTransactionSender } from "./sendTransactions.js";

export interface RunDemoOptions {
  /** Homes in the community. Default 200 (2,200 is the guide's Wilhelmsburg size). */
  households?: number;
  /** Hours of trading. Default 24 (the whole day). */
  hours?: number;
  /** Local clock time trading starts, "HH:MM" on the 15-minute grid. Default "00:00". */
  start?: string;
  /** Local calendar day, "YYYY-MM-DD". Default 2026-06-21. */
  date?: string;
  seed?: number;
  /** Where trades.csv, report.html, report.json and demo.json go. Default .data/demo/<timestamp>. */
  outDir?: string;
  /** The node's data folder (chain journal, PGlite), kept afterwards. Default a temp folder, removed. */
  dataDir?: string;
  /** Force the kind of day (default drawn from the seed). */
  dayKind?: SkyCondition;
  /** Asset shares of the community (see community.ts). */
  shares?: Partial<CommunityShares>;
  /** The community's fee, basis points of what sellers are paid. Default 100 (1 %). */
  communityFeeBps?: number;
  /** The grid operator's network fee, tEUR base units per delivered kWh. Default 10,000 (0.01 tEUR). */
  networkFeePerKWh?: number;
  /** Under-delivering sellers ask this many basis points below the reference (default: as every agent). */
  underDelivererMarginBps?: number;
  /**
   * Fills per settlement transaction (SETTLEMENT_MAX_FILLS). Default 130. A transaction may use
   * at most 2^24 gas on the embedded chain's hardfork (EIP-7825) and the settler asks for 1.2 x
   * its estimate, so a batch must stay under ~14M gas: 130 fills leave room for 107k gas a fill
   * (the demo's batches average 66-72k, the worst seen 81k; a fill whose two orders are both new
   * to the chain and whose buyer pays for the first time costs ~128k). A batch over the cap is
   * never sent and the settler retries it forever, so this errs on the safe side.
   */
  settlementMaxFills?: number;
  /**
   * HTTP requests in flight. Default 256: order intake reads each maker's registry entry from the
   * chain, so a request may wait behind settlement work on the chain; many in flight keep the
   * API busy meanwhile.
   */
  httpConcurrency?: number;
  /** The node's log level. Default LOG_LEVEL or "warn". */
  logLevel?: string;
  /** One line per progress step (stderr in the CLI). */
  progress?: (line: string) => void;
  /** Funded, registered test accounts the node adds on its chain (TEST_ACCOUNTS). Default 0. */
  testAccounts?: number;
  /**
   * Called once the day is done and checked, before the node stops: a caller (the dashboard's
   * browser test) looks at the running node with the demo's data in it and may move the clock on.
   */
  beforeStop?: (running: { node: RunningNode; clock: SimClock; result: RunDemoResult }) => Promise<void>;
}

export interface RunDemoResult {
  ok: boolean;
  options: Required<Pick<RunDemoOptions, "households" | "hours" | "start" | "date" | "seed" | "communityFeeBps" | "networkFeePerKWh">> & { outDir: string; dayKind: SkyCondition };
  counts: {
    households: number;
    intervals: number;
    ordersPlaced: number;
    ordersRefused: number;
    /** Orders agents did not place: no counterpart expected in their zone (no offers at night). */
    ordersHeldBack: number;
    fills: number;
    fillsFailed: number;
    trades: number;
    readingsPublished: number;
    disputesFinalized: number;
    disputesArbitrated: number;
    tradesReclaimed: number;
    /** Fees the community treasury and the grid operator claimed, tEUR base units. */
    feesClaimed: bigint;
    blocks: number;
  };
  report: TradeReportJson;
  reportText: string;
  files: { csv: string; html: string; json: string; demo: string };
  checks: CrossCheck[];
  bench: {
    totalMs: number;
    /** Wall time per phase, ms; the trading loop's phases add up to its wall time. */
    phases: Record<string, number>;
    maxChainLeadSeconds: number;
    /** Settlement transactions: how many, fills per transaction, gas per trade (receipts). */
    settlement: { transactions: number; tradesPerTransaction: number; gasPerTrade: number; maxGas: number };
  };
}

const INTERVAL = 900;
const GATE_LEAD = 300;
const ORDER_LEAD = 660;
/** Seconds after an interval's start when its meters publish: S(k + 2) - ORDER_LEAD, 4 minutes after its end. */
const METERS_PUBLISH_AFTER_START = 2 * INTERVAL - ORDER_LEAD;
const FUNDING_PER_HOUSEHOLD = 500n * 1_000_000n;
const METER_REGION = "wbg";
const INTERVAL_METRIC = ["interval"] as const;
const ALL_METRICS = ["interval", "export", "import"] as const;
const WAIT_TIMEOUT_MS = 300_000;

/** Wall time spent per named phase. */
function createStopwatch() {
  const phases: Record<string, number> = {};
  return {
    phases,
    async time<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
      const t = performance.now();
      try {
        return await fn();
      } finally {
        phases[name] = (phases[name] ?? 0) + (performance.now() - t);
      }
    },
  };
}

/** Polls `done` (cheaply, every few ms) until true; throws after the timeout with `what()`. */
async function until(done: () => boolean | Promise<boolean>, what: () => string, timeoutMs = WAIT_TIMEOUT_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await done())) {
    if (performance.now() > deadline) throw new BaseError(`timed out after ${timeoutMs / 1000} s waiting for ${what()}`, { code: "demo_timeout" });
    await new Promise((r) => setTimeout(r, 2));
  }
}

function parseStart(start: string, localMinutes: readonly number[]): number {
  const m = /^(\d{2}):(\d{2})$/.exec(start);
  const minute = m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  const index = localMinutes.indexOf(minute);
  if (index < 0) throw new ValidationError("start", `must be a local time "HH:MM" on the 15-minute grid of the day, got ${JSON.stringify(start)}`);
  return index;
}

export async function runDemo(options: RunDemoOptions = {}): Promise<RunDemoResult> {
  const households = options.households ?? 200;
  const hours = options.hours ?? 24;
  const date = options.date ?? "2026-06-21";
  const seed = options.seed ?? 1;
  const start = options.start ?? "00:00";
  const progress = options.progress ?? (() => {});
  if (!Number.isFinite(hours) || hours <= 0 || !Number.isInteger(hours * 4)) throw new ValidationError("hours", `must be a positive number of quarter hours, got ${hours}`);
  const outDir = path.resolve(options.outDir ?? path.join(".data", "demo", new Date().toISOString().replace(/[:.]/g, "-")));
  const clockStarted = performance.now();
  const watch = createStopwatch();

  // ---- the community (pure: a function of seed, date and options)
  const community = await watch.time("setup: community", () =>
    createCommunity({ households, seed, date, ...(options.dayKind ? { dayKind: options.dayKind } : {}), ...(options.shares ? { shares: options.shares } : {}) }),
  );
  const starts = community.intervals.startUnixSeconds;
  const first = parseStart(start, community.intervals.localMinute);
  const last = Math.min(starts.length, first + hours * 4) - 1;
  const homes = community.households;
  const homeIndex = new Map(homes.map((h) => [h.id, h.index]));
  const wallets = deriveHouseholdWallets(seed, households);
  const treasury = roleWallet(seed, "community-treasury");
  const gridOperator = roleWallet(seed, "grid-operator");
  const fees = {
    communityFeeBps: options.communityFeeBps ?? 100, communityFeeRecipient: treasury.address,
    networkFeePerKWh: BigInt(options.networkFeePerKWh ?? 10_000), networkFeeRecipient: gridOperator.address,
  };
  const underDeliverers = new Set(homes.filter((h) => h.underDelivers).map((h) => wallets[h.index]!.address.toLowerCase()));
  progress(`community: ${households} homes (${homes.filter((h) => h.pv).length} PV, ${homes.filter((h) => h.battery).length} batteries, ${homes.filter((h) => h.ev).length} EVs, ${underDeliverers.size} under-delivering), ${community.dayKind} day ${date}, trading ${start} for ${last - first + 1} intervals`);

  // ---- the node, on a clock that starts the day before the first traded interval
  const sim = createSimClock(starts[first]! - 86_400);
  if (options.dataDir && existsSync(options.dataDir) && readdirSync(options.dataDir).length > 0) {
    throw new ValidationError("dataDir", `must be an empty or new folder (the demo starts a fresh node), ${options.dataDir} is not empty`);
  }
  const dataDir = options.dataDir ? path.resolve(options.dataDir) : await mkdtemp(path.join(scratchDir(), "p2p-demo-"));
  const logger: Logger = createLogger("demo-node", options.logLevel ?? process.env.LOG_LEVEL ?? "warn");
  let node: RunningNode | undefined;
  let api: ApiClient | undefined;
  let meters: MeterPublisher | undefined;
  try {
    await watch.time("setup: chain genesis", () => prepareChainGenesis(dataDir, sim.nowSeconds()));
    const config = readNodeConfig({
      PORT: "0", CHAIN_PORT: "0", MQTT_PORT: "0", DATA_DIR: dataDir, DEPLOYMENTS_DIR: path.join(dataDir, "deployments"),
      RATE_LIMIT_PER_IP: "0", RATE_LIMIT_PER_ADDRESS: "0", TEST_ACCOUNTS: String(options.testAccounts ?? 0), TOKEN_TTL_SECONDS: "86400", TIME_ZONE: community.timeZone,
      SETTLEMENT_MAX_FILLS: String(options.settlementMaxFills ?? 130), SETTLEMENT_MAX_LATENCY_MS: "100",
      // The keeper looks at the chain's latest block every 100 ms (one read when nothing is due):
      // each move of the clock past a deadline is acted on at once.
      KEEPER_TICK_MS: "100",
      // The day's cross-checks read every order and fill from the engine's memory: keep them there.
      ENGINE_RETAIN_CLOSED_SECONDS: String(366 * 86_400),
    }, {});
    for (const zone of community.zoneIds) {
      if (!config.markets.some((m) => m.zone === zone)) throw new ValidationError("zones", `the node has no market for zone ${zone}`);
    }
    const n = (node = await watch.time("setup: start node", () => startNode({ config, logger, clock: sim.now, plugins: nodePlugins })));
    const client = n.services.chain.publicClient;
    sim.attachChain(client);
    const contracts = n.services.chain.contracts;
    const engine = n.engine;
    const markets = new Map(engine.markets.map((m) => [m.zone, m]));
    progress(`node: API ${n.url}, chain ${n.rpcUrl} (id ${n.chainId}), MQTT ${n.mqttUrl}, ${n.database}`);

    // ---- homes on-chain (registered, funded, market approved) and signed in to the API: the
    // day before, side by side (sign-in needs no registration; both wait mostly on the chain)
    const operator = await createTransactionSender(client, n.operatorKey!, n.chainId);
    const a = (api = createApiClient(n.url, { maxSockets: options.httpConcurrency ?? 256 }));
    const [onboarded, sessions] = await watch.time("setup: register, fund, sign in households", () =>
      Promise.all([
        onboardHouseholds({ client, operator, chainId: n.chainId, contracts, households: homes, wallets, fundingPerHousehold: FUNDING_PER_HOUSEHOLD, fees }),
        mapConcurrent(wallets, options.httpConcurrency ?? 256, (w) => signIn(a, w.address, w.privateKey, sim.now())),
      ]),
    );
    // Each meter gets its own broker credential from the node's operator (as `POST /v1/devices`
    // would give it) and signs its readings with its own key: the demo's meters are held to the
    // same rules as real ones.
    const devices = n.services.devices;
    if (!devices) throw new Error("the node has no device credentials: its broker would refuse the meters");
    const logins = new Map<string, MeterLogin>();
    await mapConcurrent(homes, 32, async (h) => {
      // A kept data folder (--data) already holds the meter's credential: a new password then.
      const issued = await devices.issue({ deviceId: h.meterId, deviceType: "smart-meter", region: METER_REGION, issuedBy: "demo" })
        .catch((err: unknown) => ((err as { code?: string }).code === "device_exists" ? devices.rotate(h.meterId) : Promise.reject(err)));
      logins.set(h.meterId, { username: issued.username, password: issued.password });
    });
    meters = await connectMeterPublishers({
      url: n.mqttUrl, topicRoot: n.bridge.topicRoot, region: METER_REGION, logins,
      keys: new Map([...onboarded.meterKeys].map(([meterId, key]) => [meterId, key.privateKey])),
    });
    progress(`onboarded: ${households} prosumers registered, funded and approved in ${onboarded.transactions} transactions; ${sessions.length} wallets signed in; meters connected`);

    // ---- the homes' day before trading opens: no market, all surplus to the grid
    let trueStates: HouseholdState[] = homes.map(initialHouseholdState);
    for (let i = 0; i < first; i++) {
      const at = intervalOf(community, i);
      trueStates = homes.map((h, k) => deliverHouseholdInterval(h, trueStates[k]!, planHouseholdInterval(h, trueStates[k]!, at), 0).state);
    }
    let planStates = trueStates;
    await sim.advanceTo(starts[first]! - ORDER_LEAD - 60);

    // ---- the trading day
    const placeOrders = createOrderPlacer(n.services.chain.domain);
    const plans = new Map<number, HouseholdIntervalPlan[]>();
    const placedByInterval = new Map<number, PlacedOrder[]>();
    const acceptedOrderIds: Hex[] = [];
    let refused = 0;
    let heldBack = 0;
    const refusals: Record<string, number> = {};
    let readingsPublished = 0;
    const kickBridge = () => void n.bridge.tick().then(() => n.bridge.tick());

    const placeIntervalOrders = async (k: number) => {
      const at = intervalOf(community, k);
      // The node's clock only: no contract looks at the time until this interval's fills settle.
      await watch.time("day: advance clock", () => sim.advanceTo(at.start - ORDER_LEAD, { chain: false }));
      const now = sim.nowSeconds();
      const intervalPlans = await watch.time("day: plan homes", () => {
        const planned = homes.map((h, i) => planHouseholdInterval(h, planStates[i]!, at));
        // A plan depends on the battery and the EV, not on what earlier intervals sold (only the
        // meter registers do), so planning runs ahead of delivery on states stepped as if nothing
        // sold; delivery later steps the true states with what each home did sell.
        planStates = homes.map((h, i) => deliverHouseholdInterval(h, planStates[i]!, planned[i]!, 0).state);
        return planned;
      });
      plans.set(k, intervalPlans);
      const orders = await watch.time("day: price orders", () => {
        // What each home would trade (whole Wh, tiny amounts skipped), per zone: the operator's
        // view of the interval, which drives the zone's dynamic price. An agent only bids where
        // its zone expects offers (and only offers where it expects bids): at night nobody has
        // PV to sell, and a bid into an empty book would only be closed unfilled at the gate.
        const intents = intervalPlans.map((p) =>
          p.surplusWh > 0 ? { side: "sell" as const, wh: orderEnergyWh(p.surplusWh) } : p.deficitWh > 0 ? { side: "buy" as const, wh: orderEnergyWh(p.deficitWh) } : undefined,
        );
        const zoneTotals = new Map(community.zoneIds.map((z) => [z, { demandWh: 0, supplyWh: 0 }]));
        intents.forEach((x, i) => {
          if (!x || x.wh === 0) return;
          const t = zoneTotals.get(homes[i]!.zone)!;
          if (x.side === "sell") t.supplyWh += x.wh;
          else t.demandWh += x.wh;
        });
        for (const [zone, t] of zoneTotals) engine.setMarketConditions(zone, { ...t, renewableWh: t.supplyWh });
        const reference = new Map(community.zoneIds.map((z) => [z, engine.referencePrice(z, at.start, now)]));
        const list: { agent: AgentOrder; home: Household }[] = [];
        intervalPlans.forEach((plan, i) => {
          const home = homes[i]!;
          const m = markets.get(home.zone)!;
          const agent = agentOrderFor(plan, {
            referencePricePerKWh: reference.get(home.zone)!, corridor: { floorPerKWh: m.feedInTariff, ceilingPerKWh: m.retailPrice }, seed,
            ...(home.underDelivers && options.underDelivererMarginBps !== undefined ? { marginBps: options.underDelivererMarginBps } : {}),
          });
          if (!agent) return;
          const t = zoneTotals.get(home.zone)!;
          if ((agent.side === "buy" ? t.supplyWh : t.demandWh) === 0) heldBack++;
          else list.push({ agent, home });
        });
        return list;
      });
      // Sessions signed in the day before run out on the morning of the day: renew them in time.
      await watch.time("day: refresh sessions", () => refreshSessions(a, sessions, sim.now()));
      const placed = await watch.time("day: sign and place orders", () =>
        placeOrders({
          api: a, concurrency: options.httpConcurrency ?? 256, intervalSeconds: INTERVAL,
          orders: orders.map(({ agent, home }) => ({
            agent, maker: wallets[home.index]!.address, privateKey: wallets[home.index]!.privateKey, token: sessions[home.index]!.token,
            nonce: BigInt(at.start), expiry: at.start + INTERVAL,
          })),
        }),
      );
      for (const p of placed) {
        if (p.orderId) acceptedOrderIds.push(p.orderId);
        else (refused++, (refusals[p.error ?? "?"] = (refusals[p.error ?? "?"] ?? 0) + 1));
      }
      placedByInterval.set(k, placed);
    };

    const closeGate = async (k: number) => {
      await watch.time("day: advance clock", () => sim.advanceTo(starts[k]! - GATE_LEAD, { chain: false }));
      await watch.time("day: gate closure", () => engine.advance(sim.nowSeconds()));
      // The grace period of k - 2 is over: the bridge decides and reports it.
      kickBridge();
    };

    const deliverInterval = async (k: number) => {
      const placed = placedByInterval.get(k)!;
      const ids = placed.flatMap((p) => (p.orderId ? [p.orderId] : []));
      await watch.time("day: wait for settlement", () => waitForSettlement(engine, ids));
      // The chain follows here, once per interval: k's fills are all settled, so its orders may
      // expire, and the bridge may report k's deliveries (after its end) from now on. The node's
      // clock is already 4 minutes past k's end, inside the bridge's grace period. The move is
      // queued, not waited for: it takes its turn behind the node's transactions meanwhile.
      sim.moveChainTo(starts[k]! + INTERVAL);
      const intervalPlans = plans.get(k)!;
      const sold = new Map<number, number>();
      for (const p of placed) {
        if (p.orderId && p.agent.side === "sell") sold.set(homeIndex.get(p.agent.householdId)!, engine.getOrder(p.orderId)!.filledWh);
      }
      const readings: MeterReadings[] = await watch.time("day: deliver", () =>
        homes.map((h, i) => {
          const done = deliverHouseholdInterval(h, trueStates[i]!, intervalPlans[i]!, sold.get(i) ?? 0);
          trueStates[i] = done.state;
          return meterReadingsFor(h, done.interval, community.intervalSeconds);
        }),
      );
      // Interval readings every 15 minutes; the export and import registers on the full hour.
      const endsHour = (community.intervals.localMinute[k]! + INTERVAL / 60) % 60 === 0;
      readingsPublished += await watch.time("day: publish meter readings", () => meters!.publish(readings, endsHour ? ALL_METRICS : INTERVAL_METRIC));
      await watch.time("day: wait for bridge intake", () =>
        until(() => {
          const m = n.bridge.metrics();
          return m.accepted + m.duplicates + Object.values(m.deadLettered).reduce((x, y) => x + (y ?? 0), 0) >= readingsPublished;
        }, () => `the bridge to store ${readingsPublished} readings (has ${n.bridge.metrics().accepted})`),
      );
      plans.delete(k);
      placedByInterval.delete(k);
      return { orders: placed.length, trades: ids.reduce((s, id) => s + engine.getOrder(id)!.fillIds.filter((f) => engine.state.fills.get(f)!.status === "executed").length, 0) / 2 };
    };

    const dayStarted = performance.now();
    let dayOrders = 0;
    let dayTrades = 0;
    for (let k = first; k <= last + 2; k++) {
      if (k <= last) await placeIntervalOrders(k);
      if (k - 2 >= first) {
        // The node's clock at S(k) - 11 min = end of k - 2 + 4 min: its meters may publish.
        if (k > last) await sim.advanceTo(starts[k - 2]! + METERS_PUBLISH_AFTER_START, { chain: false });
        const r = await deliverInterval(k - 2);
        dayOrders += r.orders;
        dayTrades += r.trades;
        reportInterval(k - 2, r);
      }
      if (k <= last) await closeGate(k);
    }
    function reportInterval(k: number, r: { orders: number; trades: number }) {
      const minute = community.intervals.localMinute[k]!;
      if ((k - first) % 4 === 3 || k === last) {
        progress(`${String(Math.floor(minute / 60)).padStart(2, "0")}:${String(minute % 60).padStart(2, "0")}  orders ${dayOrders}, trades ${Math.round(dayTrades)}, wall ${((performance.now() - dayStarted) / 1000).toFixed(1)} s`);
      }
    }

    // ---- the bridge's last windows, then the disputes and anything unreported
    const ledger = createChainLedger(client, contracts.EnergyMarket, BigInt(n.deployment.blockNumber));
    await watch.time("close: bridge reports", async () => {
      await sim.chainSettled();
      await sim.advanceTo(starts[last]! + INTERVAL + 300, { chain: false });
      const executed = engine.state.fills.filter((f) => f.status === "executed").length;
      const unreported = () => [...ledger.trades.values()].filter((t) => t.deliveries.length === 0).length;
      try {
        // Done when the chain shows every trade with its delivery report.
        await until(async () => {
          await n.bridge.tick();
          await ledger.sync();
          return ledger.trades.size === executed && unreported() === 0;
        }, () => `the bridge to report all ${executed} trades (${unreported()} of ${ledger.trades.size} on-chain still unreported)`, 120_000);
      } catch (err) {
        if (!(err instanceof BaseError && err.code === "demo_timeout")) throw err;
        progress(`${err.shortMessage}; the node's keeper will reclaim them for their buyers`);
      }
    });
    // The arbiter decides contests; the node's keeper closes the rest as their deadlines pass.
    if (!n.keeper) throw new ValidationError("keeper", "the node runs no keeper: nobody would close the day's escrows (KEEPER_ENABLED=0?)");
    const keeper = n.keeper;
    const closed = await watch.time("close: deadlines (the node's keeper)", () =>
      closeTrades({
        client, chainId: n.chainId, market: contracts.EnergyMarket, ledger, clock: sim, keeper: keeper.address,
        feeRecipientKeys: [treasury.privateKeyHex, gridOperator.privateKeyHex], progress,
      }),
    );
    progress(`closed: the keeper finalised ${closed.finalized} disputes and reclaimed ${closed.reclaimed} trades over ${closed.steps.length} deadline steps (longest wait ${Math.round(closed.maxKeeperWaitMs)} ms); ${closed.arbitrated} arbitrated; ${closed.feesClaimed} tEUR base units of fees claimed`);
    await watch.time("close: indexer catch-up", () => n.indexedBlock());

    // ---- the books, and the report
    const bridgeMetrics = n.bridge.metrics();
    const checks = await watch.time("check: cross-check", () =>
      crossCheck({
        client, chainId: n.chainId, contracts, multicall: onboarded.multicall, ledger, engine, db: n.services.indexer.db as never, api: a,
        households: wallets.map((w) => w.address), feeRecipients: [treasury.address, gridOperator.address], fundingPerHousehold: FUNDING_PER_HOUSEHOLD, underDeliverers,
        otherHolders: [...(n.services.aggregator ? [n.services.aggregator.address] : []), ...n.testAccounts.map((t) => t.address)],
        acceptedOrderIds, refusedOrders: refused, readingsPublished,
        bridgeCounts: { accepted: bridgeMetrics.accepted, duplicates: bridgeMetrics.duplicates, deadLettered: Object.values(bridgeMetrics.deadLettered).reduce((x, y) => x + (y ?? 0), 0) },
        reportPeriod: date.slice(0, 4),
        keeper: { address: keeper.address, arbiter: privateKeyToAccount(hardhatKey(3)).address, steps: closed.steps, stepSeconds: CLOSE_STEP_SECONDS },
      }),
    );
    const rows = await n.services.indexer.db.selectFrom("indexer_trades").select(["trade_id", "status"]).where("chain_id", "=", n.chainId).execute();
    const indexedStatus = new Map(rows.map((row) => [BigInt(row.trade_id), row.status as string]));
    const records: TradeRecord[] = [...ledger.trades.values()].map((t) => ({
      tradeId: t.trade.tradeId, zone: zoneLabel(t.trade.zone), intervalStart: Number(t.trade.deliveryStart), energyWh: t.trade.energyWh,
      pricePerKWh: t.trade.pricePerKWh, amount: t.trade.amount, buyer: t.trade.buyer, seller: t.trade.seller, state: indexedStatus.get(t.trade.tradeId) ?? "unindexed",
    }));
    const retail = engine.markets[0]!.retailPrice;
    const written = await watch.time("check: report files", () =>
      writeTradeReport(outDir, {
        trades: records, disputes: { opened: ledger.disputesOpened, resolved: ledger.disputesResolved }, retailPricePerKWh: retail,
        intervals: starts.slice(first, last + 1), title: `P2P energy market: ${households} homes, ${date}`, timeZone: community.timeZone,
      }),
    );
    const blocks = Number(await client.getBlockNumber());
    const settlement = await watch.time("check: settlement gas", async () => {
      const batches = [...ledger.batches.values()];
      const receipts = await mapConcurrent(batches, 16, (b) => client.getTransactionReceipt({ hash: b.tx }));
      const gas = receipts.reduce((s, r) => s + r.gasUsed, 0n);
      const traded = batches.reduce((s, b) => s + b.trades, 0);
      return {
        transactions: batches.length, tradesPerTransaction: batches.length ? traded / batches.length : 0, gasPerTrade: traded ? Number(gas) / traded : 0,
        maxGas: receipts.reduce((m, r) => Math.max(m, Number(r.gasUsed)), 0),
      };
    });
    const fills = engine.state.fills;
    const result: RunDemoResult = {
      ok: checks.every((c) => c.ok),
      options: { households, hours, start, date, seed, communityFeeBps: fees.communityFeeBps, networkFeePerKWh: Number(fees.networkFeePerKWh), outDir, dayKind: community.dayKind },
      counts: {
        households, intervals: last - first + 1, ordersPlaced: acceptedOrderIds.length, ordersRefused: refused, ordersHeldBack: heldBack, fills: fills.length,
        fillsFailed: fills.filter((f) => f.status === "failed").length, trades: ledger.trades.size, readingsPublished,
        disputesFinalized: closed.finalized, disputesArbitrated: closed.arbitrated, tradesReclaimed: closed.reclaimed, feesClaimed: closed.feesClaimed, blocks,
      },
      report: written.report.json,
      reportText: written.report.text,
      files: { ...written.files, demo: path.join(outDir, "demo.json") },
      checks,
      bench: { totalMs: 0, phases: watch.phases, maxChainLeadSeconds: sim.maxChainLeadSeconds(), settlement },
    };
    if (refused > 0) progress(`orders refused by the API: ${JSON.stringify(refusals)}`);
    if (options.beforeStop) await options.beforeStop({ node: n, clock: sim, result });
    await watch.time("close: stop node", async () => {
      await meters?.close();
      meters = undefined;
      a.close();
      api = undefined;
      await n.close();
      node = undefined;
    });
    result.bench.totalMs = performance.now() - clockStarted;
    await writeFile(result.files.demo, `${JSON.stringify(result, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2)}\n`);
    return result;
  } finally {
    await meters?.close().catch(() => {});
    api?.close();
    await node?.close().catch(() => {});
    if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * Where a throwaway node data folder goes: memory-backed /dev/shm where there is one (the chain
 * journal and PGlite sync every write; on tmpfs that costs nothing and the run is gone anyway),
 * else the system's temp folder.
 */
function scratchDir(): string {
  try {
    if (statSync("/dev/shm").isDirectory()) return "/dev/shm";
  } catch {
    // no /dev/shm: not Linux
  }
  return tmpdir();
}

/** Resolves once every fill of these orders has the chain's verdict (executed or refused). */
async function waitForSettlement(engine: Engine, orderIds: readonly Hex[]): Promise<void> {
  const fillIds = new Set<number>();
  for (const id of orderIds) for (const f of engine.getOrder(id)!.fillIds) fillIds.add(f);
  const ids = [...fillIds];
  let next = 0;
  await until(() => {
    // A fill's verdict never changes back, so a cursor need not look at a settled fill again.
    while (next < ids.length && ["executed", "failed"].includes(engine.state.fills.get(ids[next]!)!.status)) next++;
    if (next < ids.length) return false;
    // A refused fill may have given an order its volume back before gate closure.
    for (const id of orderIds) for (const f of engine.getOrder(id)!.fillIds) if (!fillIds.has(f)) return (fillIds.add(f), ids.push(f), false);
    return true;
  }, () => `${ids.length - next} of ${ids.length} fills to settle (settler stuck? first waiting: ${JSON.stringify(engine.state.fills.get(ids[next]!), (_k, v) => (typeof v === "bigint" ? v.toString() : v))})`);
}

/** Renews the sessions that would expire within half an hour of `nowMs`. */
async function refreshSessions(api: ApiClient, sessions: Session[], nowMs: number): Promise<void> {
  const due = sessions.flatMap((s, i) => (s.expiresAtMs - nowMs < 1_800_000 ? [i] : []));
  await mapConcurrent(due, 32, async (i) => {
    const res = await api.request("POST", "/v1/auth/refresh", { token: sessions[i]!.token });
    if (res.status !== 200) throw new ApiRequestError(res.status, res.json, "POST /v1/auth/refresh");
    sessions[i] = { token: res.json.token as string, expiresAtMs: nowMs + (res.json.expiresIn as number) * 1000 };
  });
}
