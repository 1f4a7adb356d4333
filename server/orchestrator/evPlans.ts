// EV charging plans: the cheapest intervals before departure (engine/orchestrator/planEvCharging),
// a buy order by the community's aggregator for each chosen interval whose book is still open,
// and the charge schedule sent to the charger when the EV is a coordination resource with a
// device. Re-planning keeps the intervals already started, cancels the aggregator's open orders
// for intervals dropped and places orders for the new ones. It happens on request, and by
// review() whenever the zone's prices move (an orchestrator run sets new market conditions).
import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import type { Bridge } from "../../bridge/startBridge.js";
import type { DeviceAddress } from "../../bridge/deviceCommands.js";
import type { Engine } from "../../engine/createEngine.js";
import { EV_INTERVAL_SECONDS, planEvCharging, replanEvCharging, type EvChargeSlot, type EvChargingPlan, type IntervalPrice, type PlanEvChargingParameters } from "../../engine/orchestrator/planEvCharging.js";
import { BaseError, ValidationError } from "../../lib/errors.js";
import type { Logger } from "../../lib/logger.js";
import type { AggregatorSigner } from "./aggregatorAccount.js";
import { getEvPlan, listEvPlans, saveEvPlan, type OrchestratorDatabase, type StoredEvPlan } from "./orchestratorStore.js";
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

export interface EvPlansDeps {
  db: Kysely<OrchestratorDatabase>;
  engine: Engine;
  bridge?: Pick<Bridge, "sendCommand"> | undefined;
  signer?: AggregatorSigner | undefined;
  clock: () => number;
  logger: Logger;
}

export function createEvPlans(deps: EvPlansDeps) {
  const { db, engine, clock } = deps;

  /** Prices for every interval touching [arrival, departure): the given ones, else the zone's reference price. */
  function pricesFor(zone: string, arrivalMs: number, departureMs: number, given: readonly IntervalPrice[] | undefined): IntervalPrice[] {
    const stepMs = EV_INTERVAL_SECONDS * 1000;
    const nowS = Math.floor(clock() / 1000);
    if (given) return [...given];
    const out: IntervalPrice[] = [];
    for (let s = Math.floor(arrivalMs / stepMs) * stepMs; s < departureMs; s += stepMs) out.push({ intervalStart: s / 1000, pricePerKWh: engine.referencePrice(zone, s / 1000, nowS) });
    return out;
  }

  async function placeOrders(zone: string, slots: readonly EvChargeSlot[], maxPrice: number): Promise<EvPlanOrder[]> {
    const market = engine.markets.find((m) => m.zone === zone)!;
    const nowS = Math.floor(clock() / 1000);
    // Never bid above the owner's cap; the corridor's ceiling caps it too.
    const limit = Math.min(maxPrice, market.retailPrice);
    const out: EvPlanOrder[] = [];
    for (const s of slots) {
      const row: EvPlanOrder = { intervalStart: s.intervalStart, energyWh: s.energyWh, pricePerKWh: limit, orderId: null, outcome: "skipped", detail: null };
      if (nowS >= s.intervalStart - market.gateClosureSeconds) row.detail = `the book for ${new Date(s.intervalStart * 1000).toISOString()} has closed (gate closure): this interval is charged at the supplier's tariff`;
      else if (limit < market.feedInTariff) row.detail = `the owner's cap ${maxPrice} per kWh is below the market's floor ${market.feedInTariff}: no order can be placed`;
      else {
        const placed = await placeAggregatorOrder(engine, deps.signer, { zone, side: "buy", intervalStart: s.intervalStart, energyWh: s.energyWh, pricePerKWh: limit }, nowS);
        if (placed.outcome === "done") Object.assign(row, { outcome: "done", orderId: placed.orderId });
        else Object.assign(row, { outcome: placed.outcome, detail: placed.detail });
      }
      out.push(row);
    }
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
  async function replan(record: EvPlanRecord, prices: IntervalPrice[] | undefined): Promise<EvPlanRecord> {
    const nowMs = clock();
    const nowS = Math.floor(nowMs / 1000);
    const newPrices = pricesFor(record.zone, record.request.arrivalMs, record.request.departureMs, prices);
    const oldSlots = record.plan.status === "feasible" ? record.plan.slots : [];
    const next = replanEvCharging(record.request, oldSlots, newPrices, nowMs);
    const keptStarts = new Set(next.kept.map((s) => s.intervalStart));
    // Orders for intervals no longer planned are cancelled while their book is open.
    const orders: EvPlanOrder[] = [];
    for (const o of record.orders) {
      if (keptStarts.has(o.intervalStart) || o.outcome !== "done" || !o.orderId) {
        if (keptStarts.has(o.intervalStart)) orders.push(o);
        continue;
      }
      try {
        if (deps.signer) await engine.cancelOrder(o.orderId as `0x${string}`, deps.signer.address, nowS);
        orders.push({ ...o, outcome: "cancelled", detail: "re-planned" });
      } catch (err) {
        // Filled or past its gate: it stays what it is.
        orders.push({ ...o, detail: `not cancelled on re-plan: ${err instanceof BaseError ? err.shortMessage : (err as Error).message}` });
      }
    }
    const fresh = next.status === "feasible" ? next.slots.filter((s) => !keptStarts.has(s.intervalStart)) : [];
    orders.push(...(await placeOrders(record.zone, fresh, record.request.maxPricePerKWh)));
    const upcoming = next.status === "feasible" ? next.slots.filter((s) => s.endMs > nowMs) : [];
    const command = next.status === "feasible" ? await sendSchedule(record.device, upcoming, upcoming.reduce((s, x) => s + x.energyWh, 0) || 1, record.request.departureMs) : record.command;
    const updated: EvPlanRecord = { ...record, request: { ...record.request, prices: newPrices, priceSource: prices ? "given" : "reference" }, plan: next, orders, command, replans: record.replans + 1, updatedAt: nowMs };
    await saveEvPlan(db, { ...updated, request: { ...updated.request, device: record.device } });
    return updated;
  }

  return {
    pricesFor,

    async create(owner: string, request: Omit<EvPlanRequest, "prices" | "priceSource"> & { prices?: IntervalPrice[] }, device: DeviceAddress | null): Promise<EvPlanRecord> {
      if (!engine.markets.some((m) => m.zone === request.zone)) throw new ValidationError("zone", `no market for zone ${request.zone}; known: ${engine.markets.map((m) => m.zone).join(", ")}`);
      const prices = pricesFor(request.zone, request.arrivalMs, request.departureMs, request.prices);
      const full: EvPlanRequest = { ...request, prices, priceSource: request.prices ? "given" : "reference" };
      const plan = planEvCharging(full);
      const orders = plan.status === "feasible" ? await placeOrders(request.zone, plan.slots, request.maxPricePerKWh) : [];
      const command = plan.status === "feasible" ? await sendSchedule(device, plan.slots, plan.energyWh, request.departureMs) : null;
      const now = clock();
      const record: EvPlanRecord = { id: randomUUID(), owner, zone: request.zone, resourceId: request.resourceId, request: full, plan, orders, command, replans: 0, createdAt: now, updatedAt: now, device };
      await saveEvPlan(db, { ...record, request: { ...full, device } });
      deps.logger.info({ msg: "ev plan", id: record.id, zone: request.zone, status: plan.status, orders: orders.filter((o) => o.outcome === "done").length });
      return record;
    },

    get,

    /**
     * Re-plans every plan of `zone` still before departure whose prices are the zone's reference
     * prices (given prices are the caller's to change) and whose outcome the current prices
     * would change: other intervals, or a plan the price cap made infeasible that now fits (or
     * the reverse). Returns the ids re-planned.
     */
    async review(zone: string): Promise<string[]> {
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
          await replan(record, undefined);
          replanned.push(record.id);
        } catch (err) {
          deps.logger.warn({ msg: "ev plan review: re-plan failed", id: record.id, err: (err as Error).message });
        }
      }
      if (replanned.length > 0) deps.logger.info({ msg: "ev plans re-planned after a price change", zone, plans: replanned.length });
      return replanned;
    },

    replan,
  };
}

export type EvPlans = ReturnType<typeof createEvPlans>;

function sameSlots(a: readonly EvChargeSlot[], b: readonly EvChargeSlot[]): boolean {
  return a.length === b.length && a.every((s, i) => s.intervalStart === b[i]!.intervalStart && s.energyWh === b[i]!.energyWh);
}
