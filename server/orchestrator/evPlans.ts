// EV charging plans: the cheapest intervals before departure (engine/orchestrator/planEvCharging),
// a buy order by the community's aggregator for each chosen interval whose book is still open,
// and the charge schedule sent to the charger when the EV is a coordination resource with a
// device. Re-planning keeps the intervals already started, cancels the aggregator's open orders
// for intervals dropped and places orders for the new ones. It happens on request, and by
// review() whenever the zone's prices move (an orchestrator run sets new market conditions).
//
// The aggregator is the community's wallet: what a plan makes it buy is limited per owner (open
// plans, kWh asked in 24 hours) and in total (the worst-case cost, energy x limit price, of every
// plan's orders placed in the last 24 hours: AGGREGATOR_MAX_SPEND_PER_DAY). A plan or re-plan
// that would pass a limit is refused before anything is placed. Creating, re-planning and
// reviewing run one at a time, so two requests cannot both pass a check that only one fits.
import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import type { Bridge } from "../../bridge/startBridge.js";
import type { DeviceAddress } from "../../bridge/deviceCommands.js";
import type { Engine } from "../../engine/createEngine.js";
import { EV_INTERVAL_SECONDS, planEvCharging, replanEvCharging, type EvChargeSlot, type EvChargingPlan, type IntervalPrice, type PlanEvChargingParameters } from "../../engine/orchestrator/planEvCharging.js";
import { amountFor } from "../../contracts/client/amount.js";
import { BaseError, ValidationError } from "../../lib/errors.js";
import type { Logger } from "../../lib/logger.js";
import type { AggregatorSigner } from "./aggregatorAccount.js";
import { AggregatorSpendLimitError, EvPlanLimitError } from "./errors.js";
import {
  aggregatorSpendSince, countOpenEvPlans, evPlanEnergySince, getEvPlan, listEvPlans, recordAggregatorSpend, saveEvPlan, settleAggregatorSpend,
  type OrchestratorDatabase, type StoredEvPlan,
} from "./orchestratorStore.js";
import { placeAggregatorOrder } from "./placeAggregatorOrder.js";

export interface EvPlanRequest extends PlanEvChargingParameters {
  zone: string;
  resourceId: string | null;
  /** "given" by the caller, or the zone's dynamic reference price per interval. */
  priceSource: "given" | "reference";
}

export interface EvPlanOrder {
  intervalStart: number;
  energyWh: number;
  pricePerKWh: number;
  orderId: string | null;
  outcome: "done" | "skipped" | "failed" | "cancelled";
  detail: string | null;
}

export interface EvPlanCommand {
  outcome: "done" | "skipped" | "failed";
  commandId: string | null;
  detail: string | null;
}

export type EvPlanRecord = StoredEvPlan<EvPlanRequest, EvChargingPlan & { kept?: EvChargeSlot[] }, EvPlanOrder[], EvPlanCommand> & { device: DeviceAddress | null };

/** What prosumers can make the community wallet buy (server/config.ts `aggregatorLimits`, in base units). */
export interface EvPlanLimits {
  maxOpenPerOwner: number;
  maxWhPerOwnerPerDay: number;
  /** Token base units in any 24 hours. */
  maxSpendPerDay: bigint;
  /** For messages: the token's symbol and decimals. */
  currency: { symbol: string; decimals: number };
}

export interface EvPlansDeps {
  db: Kysely<OrchestratorDatabase>;
  engine: Engine;
  bridge?: Pick<Bridge, "sendCommand"> | undefined;
  signer?: AggregatorSigner | undefined;
  clock: () => number;
  logger: Logger;
  limits: EvPlanLimits;
}

const DAY_MS = 86_400_000;

/** An order row decided but not yet placed: the book is open and the price fits. */
type Decided = EvPlanOrder & { place: boolean };

export function createEvPlans(deps: EvPlansDeps) {
  const { db, engine, clock, limits } = deps;
  const money = (base: bigint) => {
    const d = limits.currency.decimals;
    const whole = base / 10n ** BigInt(d);
    const frac = (base % 10n ** BigInt(d)).toString().padStart(d, "0").replace(/0+$/, "");
    return `${whole}${frac ? `.${frac}` : ""} ${limits.currency.symbol}`;
  };

  // One plan operation at a time: the limits are checked and the orders placed as one step.
  let tail: Promise<unknown> = Promise.resolve();
  function serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  }

  /** Prices for every interval touching [arrival, departure): the given ones, else the zone's reference price. */
  function pricesFor(zone: string, arrivalMs: number, departureMs: number, given: readonly IntervalPrice[] | undefined): IntervalPrice[] {
    const stepMs = EV_INTERVAL_SECONDS * 1000;
    const nowS = Math.floor(clock() / 1000);
    if (given) return [...given];
    const out: IntervalPrice[] = [];
    for (let s = Math.floor(arrivalMs / stepMs) * stepMs; s < departureMs; s += stepMs) out.push({ intervalStart: s / 1000, pricePerKWh: engine.referencePrice(zone, s / 1000, nowS) });
    return out;
  }

  /** Per slot: an order to place, or why none can be (the book closed, the cap under the floor). */
  function decideOrders(zone: string, slots: readonly EvChargeSlot[], maxPrice: number, nowS: number): Decided[] {
    const market = engine.markets.find((m) => m.zone === zone)!;
    // Never bid above the owner's cap; the corridor's ceiling caps it too.
    const limit = Math.min(maxPrice, market.retailPrice);
    return slots.map((s) => {
      const row: Decided = { intervalStart: s.intervalStart, energyWh: s.energyWh, pricePerKWh: limit, orderId: null, outcome: "skipped", detail: null, place: false };
      if (nowS >= s.intervalStart - market.gateClosureSeconds) row.detail = `the book for ${new Date(s.intervalStart * 1000).toISOString()} has closed (gate closure): this interval is charged at the supplier's tariff`;
      else if (limit < market.feedInTariff) row.detail = `the owner's cap ${maxPrice} per kWh is below the market's floor ${market.feedInTariff}: no order can be placed`;
      else row.place = true;
      return row;
    });
  }

  /** What an order can cost the aggregator at most: its energy at its limit price, as the contract rounds. */
  const worstCase = (o: Pick<EvPlanOrder, "energyWh" | "pricePerKWh">, energyWh = o.energyWh) => amountFor(BigInt(energyWh), BigInt(o.pricePerKWh));

  /**
   * Refuses, before anything is placed, orders that would take the aggregator's spending in the
   * last 24 hours (`released`: what orders about to be cancelled give back) past its cap.
   */
  async function checkSpend(rows: readonly Decided[], released: bigint, nowMs: number): Promise<void> {
    const cost = rows.filter((r) => r.place).reduce((sum, r) => sum + worstCase(r), 0n);
    if (cost === 0n) return;
    const spent = (await aggregatorSpendSince(db, nowMs - DAY_MS)).reduce((sum, r) => sum + r.committed, 0n) - released;
    if (spent + cost > limits.maxSpendPerDay) {
      throw new AggregatorSpendLimitError({
        field: "kwhNeeded",
        detail: `the plan's orders could cost the community wallet up to ${money(cost)} (energy x limit price), and its EV plans have committed ${money(spent)} in the last 24 hours: ` +
          `together over its cap of ${money(limits.maxSpendPerDay)} a day; nothing was placed`,
      });
    }
  }

  async function placeOrders(planId: string, owner: string, zone: string, rows: readonly Decided[], nowMs: number): Promise<EvPlanOrder[]> {
    const nowS = Math.floor(nowMs / 1000);
    const out: EvPlanOrder[] = [];
    const spend = [];
    for (const { place, ...row } of rows) {
      if (place) {
        const placed = await placeAggregatorOrder(engine, deps.signer, { zone, side: "buy", intervalStart: row.intervalStart, energyWh: row.energyWh, pricePerKWh: row.pricePerKWh }, nowS);
        if (placed.outcome === "done") {
          Object.assign(row, { outcome: "done", orderId: placed.orderId });
          spend.push({ orderId: placed.orderId, planId, owner, placedAt: nowMs, committed: worstCase(row) });
        } else Object.assign(row, { outcome: placed.outcome, detail: placed.detail });
      }
      out.push(row);
    }
    await recordAggregatorSpend(db, spend);
    return out;
  }

  async function sendSchedule(device: DeviceAddress | null, slots: readonly EvChargeSlot[], target: number, departureMs: number): Promise<EvPlanCommand | null> {
    if (!device) return null;
    if (!deps.bridge) return { outcome: "skipped", commandId: null, detail: "this node runs no meter bridge" };
    if (slots.length === 0) return { outcome: "skipped", commandId: null, detail: "nothing to charge" };
    try {
      const sent = await deps.bridge.sendCommand(device, {
        type: "ev_charge_schedule", slots: slots.map((s) => ({ startMs: s.startMs, endMs: s.endMs, powerW: BigInt(s.powerW) })), targetEnergyWh: BigInt(target), departureMs,
      });
      return { outcome: "done", commandId: sent.commandId, detail: null };
    } catch (err) {
      return { outcome: "failed", commandId: null, detail: err instanceof BaseError ? err.shortMessage : "the broker did not take the command" };
    }
  }

  function revive(stored: StoredEvPlan): EvPlanRecord {
    const { device, ...request } = stored.request as EvPlanRequest & { device: DeviceAddress | null };
    return { ...(stored as EvPlanRecord), request, device: device ?? null };
  }

  async function get(id: string): Promise<EvPlanRecord | undefined> {
    const stored = await getEvPlan(db, id);
    return stored ? revive(stored) : undefined;
  }

  /** New prices (given, or the reference prices now): keeps started intervals, re-plans the rest. */
  async function replanNow(stale: EvPlanRecord, prices: IntervalPrice[] | undefined): Promise<EvPlanRecord> {
    // Read again inside the queue: a re-plan that ran meanwhile placed orders this one must see.
    const record = (await get(stale.id)) ?? stale;
    const nowMs = clock();
    const nowS = Math.floor(nowMs / 1000);
    const newPrices = pricesFor(record.zone, record.request.arrivalMs, record.request.departureMs, prices);
    const oldSlots = record.plan.status === "feasible" ? record.plan.slots : [];
    const next = replanEvCharging(record.request, oldSlots, newPrices, nowMs);
    const keptStarts = new Set(next.kept.map((s) => s.intervalStart));
    const dropped = record.orders.filter((o) => !keptStarts.has(o.intervalStart) && o.outcome === "done" && o.orderId);
    const fresh = next.status === "feasible" ? next.slots.filter((s) => !keptStarts.has(s.intervalStart)) : [];
    const decided = decideOrders(record.zone, fresh, record.request.maxPricePerKWh, nowS);
    // What cancelling the dropped orders gives back: their worst case less what they filled
    // already, for those the last 24 hours count.
    const inWindow = new Map((await aggregatorSpendSince(db, nowMs - DAY_MS)).map((r) => [r.orderId, r.committed]));
    let released = 0n;
    for (const o of dropped) {
      const committed = inWindow.get(o.orderId!);
      if (committed !== undefined) released += committed - worstCase(o, engine.getOrder(o.orderId as `0x${string}`)?.filledWh ?? o.energyWh);
    }
    await checkSpend(decided, released, nowMs);
    // Orders for intervals no longer planned are cancelled while their book is open.
    const orders: EvPlanOrder[] = [];
    for (const o of record.orders) {
      if (keptStarts.has(o.intervalStart) || o.outcome !== "done" || !o.orderId) {
        if (keptStarts.has(o.intervalStart)) orders.push(o);
        continue;
      }
      try {
        if (deps.signer) {
          const cancelled = await engine.cancelOrder(o.orderId as `0x${string}`, deps.signer.address, nowS);
          await settleAggregatorSpend(db, o.orderId, worstCase(o, cancelled.filledWh));
        }
        orders.push({ ...o, outcome: "cancelled", detail: "re-planned" });
      } catch (err) {
        // Filled or past its gate: it stays what it is.
        orders.push({ ...o, detail: `not cancelled on re-plan: ${err instanceof BaseError ? err.shortMessage : (err as Error).message}` });
      }
    }
    orders.push(...(await placeOrders(record.id, record.owner, record.zone, decided, nowMs)));
    const upcoming = next.status === "feasible" ? next.slots.filter((s) => s.endMs > nowMs) : [];
    const command = next.status === "feasible" ? await sendSchedule(record.device, upcoming, upcoming.reduce((s, x) => s + x.energyWh, 0) || 1, record.request.departureMs) : record.command;
    const updated: EvPlanRecord = { ...record, request: { ...record.request, prices: newPrices, priceSource: prices ? "given" : "reference" }, plan: next, orders, command, replans: record.replans + 1, updatedAt: nowMs };
    await saveEvPlan(db, { ...updated, request: { ...updated.request, device: record.device } });
    return updated;
  }

  /** The owner's limits: plans still ahead of departure, and kWh asked for in the last 24 hours. */
  async function checkOwnerLimits(owner: string, energyNeededWh: number, nowMs: number): Promise<void> {
    const open = await countOpenEvPlans(db, owner, nowMs);
    if (open >= limits.maxOpenPerOwner) {
      throw new EvPlanLimitError({
        setting: "EV_PLAN_MAX_OPEN_PER_OWNER", limit: `${limits.maxOpenPerOwner} plans`, field: "resourceId",
        detail: `${owner} has ${open} EV charging plans before their departure already`,
      });
    }
    const used = await evPlanEnergySince(db, owner, nowMs - DAY_MS);
    if (used + energyNeededWh > limits.maxWhPerOwnerPerDay) {
      throw new EvPlanLimitError({
        setting: "EV_PLAN_MAX_KWH_PER_DAY", limit: `${limits.maxWhPerOwnerPerDay / 1000} kWh in 24 hours`, field: "kwhNeeded",
        detail: `${owner}'s plans of the last 24 hours asked for ${used / 1000} kWh; ${energyNeededWh / 1000} kWh more would pass it`,
      });
    }
  }

  return {
    pricesFor,

    /**
     * A plan for `owner` (the EV's owner: the caller, or the owner an operator plans for), its
     * orders placed. Throws EvPlanLimitError or AggregatorSpendLimitError, with nothing stored
     * or placed, when it would pass a limit.
     */
    create(owner: string, request: Omit<EvPlanRequest, "prices" | "priceSource"> & { prices?: IntervalPrice[] }, device: DeviceAddress | null): Promise<EvPlanRecord> {
      return serialized(async () => {
        if (!engine.markets.some((m) => m.zone === request.zone)) throw new ValidationError("zone", `no market for zone ${request.zone}; known: ${engine.markets.map((m) => m.zone).join(", ")}`);
        const now = clock();
        await checkOwnerLimits(owner, request.energyNeededWh, now);
        const prices = pricesFor(request.zone, request.arrivalMs, request.departureMs, request.prices);
        const full: EvPlanRequest = { ...request, prices, priceSource: request.prices ? "given" : "reference" };
        const plan = planEvCharging(full);
        const id = randomUUID();
        const decided = plan.status === "feasible" ? decideOrders(request.zone, plan.slots, request.maxPricePerKWh, Math.floor(now / 1000)) : [];
        await checkSpend(decided, 0n, now);
        const orders = await placeOrders(id, owner, request.zone, decided, now);
        const command = plan.status === "feasible" ? await sendSchedule(device, plan.slots, plan.energyWh, request.departureMs) : null;
        const record: EvPlanRecord = { id, owner, zone: request.zone, resourceId: request.resourceId, request: full, plan, orders, command, replans: 0, createdAt: now, updatedAt: now, device };
        await saveEvPlan(db, { ...record, request: { ...full, device }, departureAt: request.departureMs, energyNeededWh: request.energyNeededWh });
        deps.logger.info({ msg: "ev plan", id: record.id, zone: request.zone, status: plan.status, orders: orders.filter((o) => o.outcome === "done").length });
        return record;
      });
    },

    get,

    /**
     * Re-plans every plan of `zone` still before departure whose prices are the zone's reference
     * prices (given prices are the caller's to change) and whose outcome the current prices
     * would change: other intervals, or a plan the price cap made infeasible that now fits (or
     * the reverse). Returns the ids re-planned.
     */
    review: (zone: string): Promise<string[]> => serialized(async () => {
      const nowMs = clock();
      const replanned: string[] = [];
      for (const stored of await listEvPlans(db, zone)) {
        const record = revive(stored);
        if (record.request.priceSource !== "reference" || record.request.departureMs <= nowMs) continue;
        const prices = pricesFor(zone, record.request.arrivalMs, record.request.departureMs, undefined);
        const oldSlots = record.plan.status === "feasible" ? record.plan.slots : [];
        const next = replanEvCharging(record.request, oldSlots, prices, nowMs);
        // Unchanged: the same intervals still win, or a plan the cap made infeasible still is.
        if (next.status === "feasible" ? record.plan.status === "feasible" && sameSlots(next.slots, oldSlots) : record.plan.status !== "feasible") continue;
        try {
          await replanNow(record, undefined);
          replanned.push(record.id);
        } catch (err) {
          // A re-plan over the spending cap keeps the plan as it was; the next review tries again.
          deps.logger.warn({ msg: "ev plan review: re-plan failed", id: record.id, err: (err as Error).message });
        }
      }
      if (replanned.length > 0) deps.logger.info({ msg: "ev plans re-planned after a price change", zone, plans: replanned.length });
      return replanned;
    }),

    /** Throws AggregatorSpendLimitError, with nothing cancelled or placed, when the new orders would pass the cap. */
    replan: (record: EvPlanRecord, prices: IntervalPrice[] | undefined): Promise<EvPlanRecord> => serialized(() => replanNow(record, prices)),
  };
}

export type EvPlans = ReturnType<typeof createEvPlans>;

function sameSlots(a: readonly EvChargeSlot[], b: readonly EvChargeSlot[]): boolean {
  return a.length === b.length && a.every((s, i) => s.intervalStart === b[i]!.intervalStart && s.energyWh === b[i]!.energyWh);
}
