// A live community on a running node: N simulated homes trade in real time against a node
// someone started with `npm start`, through its API, chain and MQTT broker like any household.
// Everything is read from the node (discoverNode.ts); the homes are registered, funded and
// signed in over the API, their meters keyed and given MQTT logins (onboardLiveHouseholds.ts,
// connectLiveMeters.ts); then, interval by interval on the node's clock (interval k starts at
// S(k), its book closes at S(k) - gate):
//
//   start          the homes live the day from local midnight up to now with no market (their
//                  batteries and EVs where the day left them), then plan and place orders for the
//                  first interval whose book closes more than a minimum lead from now
//   S(k) - gate + 10 s   k's book is closed (a call auction has cleared, the settler is at work):
//                  each home's sold energy is read from its orders, the home lives k as sold
//                  (liveHousehold.ts: an under-deliverer exports less), its meter reading is kept;
//                  then every home plans k + 1 and places its order (15 minutes before that gate)
//   S(k + 1) + 5 s the meters publish k's signed interval readings on MQTT; the node's meter bridge
//                  reports deliveries after its grace period (5 minutes), shortfalls as disputes
//   S(k + 1) + grace + 5 s   an empty block is mined (evm_mine): the bridge checks a window's end
//                  against the latest block, and an idle embedded chain mines none, so without it
//                  the reports wait for the next transaction (the next gate closure, 5 min later)
//
// Continuous zones trade as soon as orders cross (asks sit below the reference price, bids above
// it; the interval's under-deliverers, chooseUnderDeliverers.ts, undercut further), call-auction
// zones at their gate closure. Stopping (the signal) ends the loop at once: readings of intervals
// that have ended are published, orders still open are cancelled, MQTT and HTTP connections are
// closed. Trades already struck for an interval that has not happened yet stay, and with no meter
// reading the bridge reports them undelivered; a run started again within that interval (same
// seed and size) finds them (GET /v1/trading/orders) and delivers them.
import { createPublicClient, http, type Hex, type PublicClient } from "viem";
import type { HourlySeries } from "../engine/forecast/hourlySeries.js";
import { BaseError } from "../lib/errors.js";
import { hardhatKey } from "../scripts/localChain.js";
import { EnergySource } from "../contracts/client/order.js";
import { agentOrderFor } from "./agentPricing.js";
import { ApiRequestError, createApiClient, mapConcurrent, signIn, type ApiClient, type Session } from "./apiClient.js";
import type { CommunityShares } from "./community.js";
import { chooseUnderDeliverers } from "./chooseUnderDeliverers.js";
import { connectLiveMeters, type LiveMeters } from "./connectLiveMeters.js";
import { localClock } from "./dayIntervals.js";
import { discoverNode } from "./discoverNode.js";
import { initialHouseholdState, type HouseholdState } from "./household.js";
import { createLiveClock, delay, type LiveClock } from "./liveClock.js";
import { createLiveCommunity, type LiveDay } from "./liveCommunity.js";
import { deliverLiveInterval, LIVE_MIN_ORDER_WH, planLiveInterval, type LiveIntervalPlan } from "./liveHousehold.js";
import { meterReadingsFor, type MeterReadings } from "./meterReadings.js";
import { METER_REGION, onboardLiveHouseholds } from "./onboardLiveHouseholds.js";
import { createOrderPlacer, type PlacedOrder } from "./placeOrders.js";
import type { SkyCondition } from "./solar.js";

export interface SimulateLiveOptions {
  /** The node's API, e.g. http://127.0.0.1:8080. */
  url: string;
  /** Homes in the community. Default 20. */
  households?: number;
  /** With `households`, names the community: its wallets, meters and assets. Default 1. */
  seed?: number;
  /** Default: this machine's clock, shifted to the node's if that runs elsewhere (NODE_CLOCK=chain). */
  clock?: LiveClock;
  /** The node bridge's broker. Default: the one the node names with its device credentials, else in GET /healthz. */
  mqttUrl?: string;
  /** The bridge's topic root (BRIDGE_TOPIC_ROOT). Default energy-cloud. */
  topicRoot?: string;
  /** Share of each zone's sellers that under-deliver in an interval (at least one per zone when > 0). Default 0.2. */
  underDeliveringShare?: number;
  /** Force the kind of day (default drawn per date from the seed). */
  dayKind?: SkyCondition;
  /** Asset shares (default liveCommunity.LIVE_SHARES). */
  shares?: Partial<Omit<CommunityShares, "underDeliveringOfPv">>;
  /** The household load series (default the measured one in data/, see demo/loadProfile.ts). */
  loadSeries?: HourlySeries;
  /** Stops the simulation (Ctrl-C); the promise then resolves once it has cleaned up. */
  signal?: AbortSignal;
  /** One line per step for people (stderr in the CLI). */
  progress?: (line: string) => void;
  /** Each step as data, for callers that wait on it (tests). */
  onStep?: (step: LiveStep) => void;
  /** An interval's orders are placed only while its book closes more than this many seconds ahead. Default 30. */
  minLeadSeconds?: number;
  /** Seconds after a gate closure its fills are read. Default 10. */
  afterGateSeconds?: number;
  /** Seconds after an interval's end its meters publish. Default 5. */
  publishAfterSeconds?: number;
  /** The bridge's grace period after an interval (BRIDGE_GRACE_SECONDS; the node does not say). Default 300. */
  bridgeGraceSeconds?: number;
}

export type LiveStep =
  | { kind: "onboarded"; households: number; registered: number; funded: number; approved: number }
  | { kind: "placed"; intervalStart: number; orders: number; refused: number; underDelivering: number[] }
  | { kind: "closed"; intervalStart: number; sold: number; trades: number }
  | { kind: "published"; intervalStart: number; readings: number };

export interface SimulateLiveResult {
  households: number;
  /** Intervals the homes placed orders for. */
  intervalsTraded: number;
  ordersPlaced: number;
  ordersRefused: number;
  /** Refusals by HTTP status and problem code. */
  refusals: Record<string, number>;
  /** Fills of the homes' orders seen after their gate closure, not refused on-chain. */
  trades: number;
  readingsPublished: number;
  ordersCancelledOnStop: number;
}

export class SimulationSetupError extends BaseError {
  override name = "SimulationSetupError";
}

/** Under-deliverers undercut: they sell first in any book, so their shortfalls surely show. */
const UNDER_DELIVERER_MARGIN_BPS = 1_500;
const CONCURRENCY = 8;
/** A session is renewed when it has less than this left. */
const SESSION_MARGIN_MS = 120_000;
/** Half-second looks for a book's orders to leave "open" after its gate closure: 30 s at most. */
const CLOSE_WAIT_TRIES = 60;

/** What GET /v1/trading/orders/:id says that the simulation reads. */
interface OrderRecord {
  status: string;
  filledWh: number;
  fills: { fillId: number; status: string }[];
}

/** The fields of GET /v1/trading/orders the simulation reads. */
interface EarlierOrder {
  orderId: Hex;
  side: "buy" | "sell";
  intervalStart: number;
  status: string;
  sizeWh: number;
  filledWh: number;
  limitPricePerKWh: number;
}

interface PendingInterval {
  start: number;
  day: LiveDay;
  plans: LiveIntervalPlan[];
  /** Homes that deliver only part of what they sell in this interval. */
  underDelivering: Set<number>;
  placed: (PlacedOrder & { home: number })[];
}

export async function simulateLive(options: SimulateLiveOptions): Promise<SimulateLiveResult> {
  const signal = options.signal ?? new AbortController().signal;
  const progress = options.progress ?? (() => {});
  const onStep = options.onStep ?? (() => {});
  const seed = options.seed ?? 1;
  const minLead = options.minLeadSeconds ?? 30;
  const afterGate = options.afterGateSeconds ?? 10;
  const publishAfter = options.publishAfterSeconds ?? 5;
  const grace = options.bridgeGraceSeconds ?? 300;
  const api = createApiClient(options.url, { maxSockets: 16 });
  let meters: LiveMeters | undefined;
  const result: SimulateLiveResult = { households: 0, intervalsTraded: 0, ordersPlaced: 0, ordersRefused: 0, refusals: {}, trades: 0, readingsPublished: 0, ordersCancelledOnStop: 0 };
  try {
    // ---- the node
    const node = await discoverNode(api, options.url);
    if (!node.local) throw new SimulationSetupError("the node runs on a configured chain: the simulation needs its embedded chain (faucet and registrar key)", { code: "chain_not_local" });
    const clock = options.clock ?? createLiveClock(() => Date.now() + node.clockOffsetMs);
    if (!options.clock && node.clockOffsetMs !== 0) progress(`the node's clock is ${(node.clockOffsetMs / 1000).toFixed(0)} s off this machine's (NODE_CLOCK=chain?): following the node's`);
    const I = node.intervalSeconds;
    const gate = Math.max(...node.markets.map((m) => m.gateClosureMinutes)) * 60;
    const markets = new Map(node.markets.map((m) => [m.zone, m]));
    // The homes replay the measured household series in data/ unless a test gives its own.
    const loadSeries = options.loadSeries;
    const community = createLiveCommunity({
      households: options.households ?? 20, seed, zones: node.markets.map((m) => m.zone), timeZone: node.timeZone,
      date: "2026-01-01",
      ...(options.shares ? { shares: options.shares } : {}), ...(options.dayKind ? { dayKind: options.dayKind } : {}), ...(loadSeries ? { loadSeries } : {}),
    });
    const homes = community.homes;
    result.households = homes.length;
    const underDeliveringShare = options.underDeliveringShare ?? 0.2;
    progress(
      `community: ${homes.length} homes in ${node.markets.map((m) => `${m.zone} (${m.mode})`).join(", ")}: ${homes.filter((h) => h.hasPv).length} with PV, ` +
        `${homes.filter((h) => h.hasBattery).length} with a battery, ${homes.filter((h) => h.hasEv).length} with an EV; ` +
        (underDeliveringShare > 0 ? `${Math.round(underDeliveringShare * 100)} % of each zone's sellers (at least one) deliver 50-80 % of what they sold, new ones each interval` : "nobody under-delivers"),
    );

    // ---- onboarding, then the meters
    const started = clock.now();
    const client = createPublicClient({ transport: http(node.rpcUrl, { retryCount: 2 }), pollingInterval: 100 }) as PublicClient;
    const onboarded = await onboardLiveHouseholds({ api, node, client, homes, operatorKey: hardhatKey(0), now: clock.now });
    const sessions: Session[] = onboarded.sessions;
    progress(
      `onboarded in ${((clock.now() - started) / 1000).toFixed(1)} s: ${onboarded.registered} registered (${onboarded.alreadyRegistered} were already), ` +
        `${onboarded.funded} funded, ${onboarded.approved} approved the market; ${homes.length} signed in`,
    );
    onStep({ kind: "onboarded", households: homes.length, registered: onboarded.registered, funded: onboarded.funded, approved: onboarded.approved });
    if (signal.aborted) return result;
    // The broker: as asked, else as the node's device credentials name it, else its health check.
    const mqttUrl = options.mqttUrl ?? onboarded.mqttUrl ?? node.mqttUrl;
    if (!mqttUrl) throw new SimulationSetupError("the node does not say where its MQTT broker is: pass --mqtt mqtt://host:port", { code: "mqtt_unknown" });
    const topicRoot = options.topicRoot ?? "energy-cloud";
    meters = await connectLiveMeters({
      url: mqttUrl, topicRoot, region: METER_REGION, homes, credentials: onboarded.credentials, sign: onboarded.signedReadings, clientIdPrefix: `live-meters-${seed}-${homes.length}-${process.pid}`,
    });
    progress(
      `meters: ${mqttUrl}, topic ${topicRoot}/${METER_REGION}/smart-meter/<meter>/interval; ` +
        `${onboarded.credentials.some(Boolean) ? "one login per meter" : "one shared connection (the broker asks for no login)"}, ` +
        `${onboarded.signedReadings ? `readings signed with the meters' registered keys (${onboarded.keysSet} set now)` : "readings unsigned (the registry keeps no meter keys)"}`,
    );

    // ---- the homes' day so far, without a market
    const closesAt = (k: number) => k - gate;
    const nowSeconds = () => Math.floor(clock.now() / 1000);
    /** "HH:MM", the community's local time of an interval start. */
    const clockLabel = (unixSeconds: number) => {
      const c = localClock(unixSeconds, node.timeZone);
      return `${String(c.hour).padStart(2, "0")}:${String(c.minute).padStart(2, "0")}`;
    };
    const current = Math.floor(nowSeconds() / I) * I;
    let first = current + I;
    while (closesAt(first) - nowSeconds() < minLead) first += I;
    let stateDay = community.day(community.dateOf(current));
    let states: HouseholdState[] = stateDay.households.map(initialHouseholdState);
    /** Interval k in its day, the homes' states moved into that day if k starts a new one. */
    const enter = (k: number) => {
      const day = community.day(community.dateOf(k));
      if (day.date !== stateDay.date) {
        // Midnight: the same homes, a new day's load and PV; batteries and meters carry on.
        states = states.map((s) => ({ ...s, nextInterval: 0, evChargedWh: 0 }));
        stateDay = day;
      }
      const index = (k - day.intervals.startUnixSeconds[0]!) / I;
      return { day, at: { index, start: k, localMinute: day.intervals.localMinute[index]! } };
    };
    const plan = (k: number): PendingInterval => {
      const { day, at } = enter(k);
      return { start: k, day, plans: day.households.map((h, i) => planLiveInterval(h, states[i]!, at, { intervalSeconds: I })), underDelivering: new Set(), placed: [] };
    };
    const queue: { end: number; start: number; readings: MeterReadings[] }[] = [];
    const live = (p: PendingInterval, sold: (home: number) => number, keepReadings: boolean) => {
      const readings = p.day.households.map((h, i) => {
        const done = deliverLiveInterval(p.underDelivering.has(i) ? { ...h, underDelivers: true } : h, states[i]!, p.plans[i]!, sold(i));
        states[i] = done.state;
        return meterReadingsFor(h, done.interval, I);
      });
      if (keepReadings) queue.push({ start: p.start, end: p.start + I, readings });
    };
    // Orders an earlier run of this community left from `current` on (a restart): what they sold
    // is what the homes deliver, and a home is not put in the same book twice.
    const earlier = await mapConcurrent(homes, CONCURRENCY, async (_, i) => {
      const res = await api.request("GET", "/v1/trading/orders?limit=20", { token: sessions[i]!.token }).catch(() => undefined);
      const orders = res?.status === 200 ? (res.json.orders as EarlierOrder[]) : [];
      return orders.filter((o) => o.intervalStart >= current && o.status !== "rejected");
    });
    const soldEarlier = (k: number) => (i: number) => earlier[i]!.reduce((s, o) => s + (o.side === "sell" && o.intervalStart === k ? o.filledWh : 0), 0);
    for (let k = stateDay.intervals.startUnixSeconds[0]!; k < first; k += I) live(plan(k), k >= current ? soldEarlier(k) : () => 0, k >= current);

    // ---- trading
    const placeOrders = createOrderPlacer(node.domain);
    const runStamp = BigInt(nowSeconds() % 2 ** 32);
    const fills = new Map<number, string>();
    const forgetSession = (home: number) => (sessions[home] = { ...sessions[home]!, expiresAtMs: 0 });
    const ensureSessions = () =>
      mapConcurrent(homes, CONCURRENCY, async (h, i) => {
        if (sessions[i]!.expiresAtMs - clock.now() < SESSION_MARGIN_MS) sessions[i] = await signIn(api, h.wallet.address, h.wallet.privateKey, clock.now());
      });

    const place = async (p: PendingInterval) => {
      const reference = new Map<string, number>();
      for (const m of node.markets) {
        const res = await api.request("GET", `/v1/trading/markets?zone=${encodeURIComponent(m.zone)}&status=open`);
        if (res.status !== 200) throw new ApiRequestError(res.status, res.json, "GET /v1/trading/markets");
        const book = (res.json.markets as { intervalStart: number; referencePricePerKWh: number }[]).find((b) => b.intervalStart === p.start);
        reference.set(m.zone, book?.referencePricePerKWh ?? m.basePrice);
      }
      await ensureSessions();
      const inBook = new Set(p.placed.map((o) => o.home));
      const agentOrder = (i: number, underDelivers: boolean) => {
        const m = markets.get(homes[i]!.zone)!;
        return agentOrderFor(p.plans[i]!.orderPlan, {
          referencePricePerKWh: reference.get(m.zone)!, corridor: { floorPerKWh: m.feedInTariff, ceilingPerKWh: m.retailPrice }, seed, minOrderWh: LIVE_MIN_ORDER_WH,
          ...(underDelivers ? { marginBps: UNDER_DELIVERER_MARGIN_BPS } : {}),
        });
      };
      const sellers = p.plans.flatMap((_, i) => (!inBook.has(i) && agentOrder(i, false)?.side === "sell" ? [{ home: i, zone: homes[i]!.zone }] : []));
      p.underDelivering = chooseUnderDeliverers({ seed, intervalStart: p.start, share: underDeliveringShare, sellers });
      const orders = p.plans.flatMap((lp, i) => {
        const home = homes[i]!;
        if (inBook.has(i)) return [];
        const agent = agentOrder(i, p.underDelivering.has(i));
        if (!agent) return [];
        return [{
          home: i, agent, maker: home.wallet.address, privateKey: home.wallet.privateKey, token: sessions[i]!.token,
          // Unique per home, interval and run: a second run in the same interval signs other orders.
          nonce: (BigInt(p.start) << 32n) + runStamp, expiry: p.start + I, source: EnergySource[lp.source],
        }];
      });
      // Offers first, then bids: in a continuous book every bid then meets the cheapest offers
      // (the under-deliverers' among them), whatever order the requests finish in.
      orders.sort((a, b) => (a.agent.side === b.agent.side ? 0 : a.agent.side === "sell" ? -1 : 1));
      const sells = orders.filter((o) => o.agent.side === "sell");
      const placed = [
        ...(await placeOrders({ api, concurrency: CONCURRENCY, intervalSeconds: I, orders: sells })),
        ...(await placeOrders({ api, concurrency: CONCURRENCY, intervalSeconds: I, orders: orders.slice(sells.length) })),
      ];
      const mine = placed.map((o, j) => ({ ...o, home: orders[j]!.home }));
      p.placed.push(...mine);
      const refused = placed.filter((o) => !o.orderId);
      // A node restarted since sign-in knows no session: sign in again at the next step.
      mine.forEach((o) => o.error?.startsWith("401") && forgetSession(o.home));
      for (const o of refused) result.refusals[o.error ?? "?"] = (result.refusals[o.error ?? "?"] ?? 0) + 1;
      result.ordersPlaced += placed.length - refused.length;
      result.ordersRefused += refused.length;
      if (placed.length > refused.length) result.intervalsTraded++;
      onStep({ kind: "placed", intervalStart: p.start, orders: placed.length - refused.length, refused: refused.length, underDelivering: [...p.underDelivering] });
      return { orders: placed.length - refused.length, refused: refused.length, storage: orders.filter((o) => o.source === EnergySource.storage).length, sells: orders.filter((o) => o.agent.side === "sell").length };
    };

    /** Reads what each home sold of k, lives k, and returns the counts for the progress line. */
    const close = async (p: PendingInterval) => {
      let records: (OrderRecord | undefined)[] = [];
      const read = () =>
        mapConcurrent(p.placed, CONCURRENCY, async (o) => {
          if (!o.orderId) return undefined;
          const res = await api.request("GET", `/v1/trading/orders/${o.orderId}`, { token: sessions[o.home]!.token }).catch(() => undefined);
          if (res?.status === 401) forgetSession(o.home);
          return res?.status === 200 ? (res.json as OrderRecord) : undefined;
        });
      try {
        await ensureSessions();
        records = await read();
        // An order still open has not seen its gate closure yet (the node closes books on its own
        // tick, a call auction clears then): what it sold is not final until it has.
        for (let tries = 0; tries < CLOSE_WAIT_TRIES && records.some((r) => r?.status === "open") && !signal.aborted; tries++) {
          await delay(500, signal);
          records = await read();
        }
      } catch (err) {
        progress(`${clockLabel(p.start)}: reading the fills failed (${message(err)}); homes deliver as if they sold all they offered`);
      }
      const sold = new Map<number, number>();
      let traded = 0;
      p.placed.forEach((o, j) => {
        if (!o.orderId) return;
        const r = records[j];
        // Not knowing, a home delivers all it offered: honest homes never fall short.
        const filled = r ? r.filledWh : o.agent.energyWh;
        if (o.agent.side === "sell") sold.set(o.home, filled);
        if (filled > 0) traded++;
        for (const f of r?.fills ?? []) fills.set(f.fillId, f.status);
      });
      live(p, (i) => sold.get(i) ?? 0, true);
      result.trades = [...fills.values()].filter((s) => s !== "failed").length;
      onStep({ kind: "closed", intervalStart: p.start, sold: traded, trades: result.trades });
      return traded;
    };

    /** When to mine an empty block for the bridge, unix seconds, earliest first. */
    const nudges: number[] = [];
    const publishDue = async (upTo: number) => {
      while (queue.length > 0 && queue[0]!.end <= upTo) {
        const q = queue.shift()!;
        result.readingsPublished += await meters!.publish(q.readings);
        nudges.push(q.end + grace + publishAfter);
        onStep({ kind: "published", intervalStart: q.start, readings: q.readings.length });
      }
    };
    const nudgeChain = async () => {
      nudges.shift();
      await client.request({ method: "evm_mine" as never, params: [] as never }).catch(() => undefined);
    };

    const onChain = async (): Promise<string> => {
      try {
        const [stats, unreported] = await Promise.all([
          api.request("GET", `/v1/stats?from=${first}&interval=1d`),
          api.request("GET", `/v1/trades?from=${first}&status=executed&limit=1000`),
        ]);
        if (stats.status !== 200 || unreported.status !== 200) return "on-chain figures unavailable";
        const t = stats.json.totals as { trades: string; disputes: { opened: string } };
        const reported = Number(t.trades) - (unreported.json.items as unknown[]).length;
        return `on-chain since ${clockLabel(first)}: ${t.trades} trades, ${reported} delivery reports, ${t.disputes.opened} disputes`;
      } catch (err) {
        return `on-chain figures unavailable (${message(err)})`;
      }
    };

    let pending = plan(first);
    earlier.forEach((orders, i) => {
      // Still in the book or partly sold: the home keeps it; withdrawn unsold: it orders anew.
      for (const o of orders.filter((e) => e.intervalStart === first && (e.status === "open" || e.filledWh > 0))) {
        pending.placed.push({
          home: i, maker: homes[i]!.wallet.address, orderId: o.orderId, status: o.status,
          agent: { householdId: homes[i]!.id, zone: homes[i]!.zone, side: o.side, intervalStart: o.intervalStart, energyWh: o.sizeWh, limitPricePerKWh: o.limitPricePerKWh },
        });
      }
    });
    try {
      const r = await place(pending);
      progress(`${clockLabel(first)}: ${r.orders} orders placed (${r.sells} sell, ${r.storage} of them from batteries; ${r.orders + r.refused - r.sells} buy; ${r.refused} refused), book closes at ${clockLabel(closesAt(first))}`);
    } catch (err) {
      progress(`${clockLabel(first)}: placing orders failed (${message(err)})`);
    }
    await reportFirstTrades(api, first, clock, signal, progress, started);

    while (!signal.aborted) {
      const closeAt = (closesAt(pending.start) + afterGate) * 1000;
      const publishAt = queue.length > 0 ? (queue[0]!.end + publishAfter) * 1000 : Infinity;
      const nudgeAt = nudges.length > 0 ? nudges[0]! * 1000 : Infinity;
      await clock.sleepUntil(Math.min(closeAt, publishAt, nudgeAt), signal);
      if (signal.aborted) break;
      const now = clock.now();
      if (now >= nudgeAt) await nudgeChain();
      if (now >= publishAt) {
        try {
          await publishDue(Math.floor(now / 1000) - publishAfter);
        } catch (err) {
          progress(`publishing meter readings failed (${message(err)}); trying again with the next`);
        }
      }
      if (now < closeAt) continue;
      const traded = await close(pending);
      const closed = pending;
      pending = plan(closed.start + I);
      let placedLine: string;
      if (closesAt(pending.start) - nowSeconds() < minLead) {
        placedLine = `${clockLabel(pending.start)}: too late to order (its book closes at ${clockLabel(closesAt(pending.start))})`;
      } else {
        try {
          const r = await place(pending);
          placedLine = `${clockLabel(pending.start)}: ${r.orders} orders (${r.sells} sell, ${r.storage} from batteries; ${r.refused} refused)`;
        } catch (err) {
          placedLine = `${clockLabel(pending.start)}: placing orders failed (${message(err)})`;
        }
      }
      progress(
        `${clockLabel(closed.start)} closed: ${traded} of ${closed.placed.filter((o) => o.orderId).length} orders traded | ${placedLine} | ` +
          `so far ${result.trades} trades, ${result.readingsPublished} meter readings | ${await onChain()}`,
      );
    }

    // ---- stopping: what has happened is reported, what has not is withdrawn
    await publishDue(Math.floor(clock.now() / 1000)).catch((err: unknown) => progress(`publishing the last readings failed (${message(err)})`));
    if (nowSeconds() < closesAt(pending.start)) {
      const open = pending.placed.filter((o) => o.orderId);
      const cancelled = await mapConcurrent(open, CONCURRENCY, async (o) => {
        const res = await api.request("DELETE", `/v1/trading/orders/${o.orderId}`, { token: sessions[o.home]!.token }).catch(() => undefined);
        return res?.status === 200;
      });
      result.ordersCancelledOnStop = cancelled.filter(Boolean).length;
    }
    progress(`stopped: ${result.ordersPlaced} orders over ${result.intervalsTraded} intervals, ${result.trades} trades, ${result.readingsPublished} meter readings; ${result.ordersCancelledOnStop} open orders cancelled`);
    return result;
  } finally {
    await meters?.close().catch(() => {});
    api.close();
  }
}

/** Polls the indexer until the first trade of `first` is on-chain (at most 30 s), to say so. */
async function reportFirstTrades(api: ApiClient, first: number, clock: LiveClock, signal: AbortSignal, progress: (line: string) => void, started: number): Promise<void> {
  const deadline = clock.now() + 30_000;
  while (!signal.aborted && clock.now() < deadline) {
    const res = await api.request("GET", `/v1/stats?from=${first}&interval=1d`).catch(() => undefined);
    const trades = Number(res?.json?.totals?.trades ?? 0);
    if (trades > 0) {
      progress(`first trades on-chain: ${trades}, ${((clock.now() - started) / 1000).toFixed(1)} s after the start (the dashboard shows them now)`);
      return;
    }
    await delay(1_000, signal);
  }
}

function message(err: unknown): string {
  return err instanceof BaseError ? err.shortMessage : err instanceof Error ? err.message.split("\n")[0]! : String(err);
}
