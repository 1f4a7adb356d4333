// The microgrid orchestrator of a zone: for one interval it takes the balance (what the caller
// says, else the meters' interval readings), plans with engine/orchestrator/planActions, and
// carries the plan out — battery, EV and demand-response commands through the meter bridge,
// offers and bids signed by the community's aggregator wallet into the engine, a demand-response
// event through coordination — then stores every action and publishes it on
// `orchestrator.actions`. A step that cannot be carried out is stored as skipped or failed with
// the reason; it never stops the others.
import { randomUUID } from "node:crypto";
import { sql, type Kysely } from "kysely";
import { readingPreferenceSql } from "../../bridge/database.js";
import type { DeviceCommand } from "../../bridge/deviceCommands.js";
import type { Bridge } from "../../bridge/startBridge.js";
import type { Engine } from "../../engine/createEngine.js";
import { INTERVAL_SECONDS } from "../../engine/markets.js";
import { gridBalance, type GridBalance } from "../../engine/orchestrator/balance.js";
import { planActions, type PlannedAction, type PlanState } from "../../engine/orchestrator/planActions.js";
import { BaseError, ValidationError } from "../../lib/errors.js";
import type { Logger } from "../../lib/logger.js";
import type { Coordination } from "../coordination/types.js";
import type { Hub } from "../realtime/hub.js";
import type { AggregatorSigner } from "./aggregatorAccount.js";
import { clearIsland, getIsland, insertActions, listActions, listBalances, setIsland, upsertBalance, type OrchestratorDatabase, type StoredAction } from "./orchestratorStore.js";
import { placeAggregatorOrder } from "./placeAggregatorOrder.js";
import { planInputsFrom } from "./planInputs.js";

export const ACTIONS_CHANNEL = "orchestrator.actions";
const DAY_MS = 86_400_000;
/** How far back a run looks for the zone's latest complete interval of readings (by its end). */
const MEASURED_LOOKBACK_MS = 3_600_000;
/** Outside this band the grid is taken as lost and the zone islands (continental Europe starts
 *  under-frequency load shedding at 49.0 Hz; 51.0 Hz is the matching over-frequency limit). */
export const FREQUENCY_BAND_HZ = { min: 49.0, max: 51.0 } as const;

interface ReadingsDatabase {
  bridge_readings: { meter_id: string; kind: string; reading_at: bigint; export_wh: bigint | null; import_wh: bigint | null; payload: string; source: string; evidence: boolean };
}
export type OrchestratorDb = Kysely<OrchestratorDatabase & ReadingsDatabase>;

export interface OrchestratorDeps {
  db: OrchestratorDb;
  engine: Engine;
  /** Read at each run: the node may wire these after the orchestrator is made. */
  bridge?: Pick<Bridge, "sendCommand"> | undefined;
  signer?: AggregatorSigner | undefined;
  hub?: Pick<Hub, "publish"> | undefined;
  coordination?: Coordination | undefined;
  /** The meters of a zone (the registry, as indexed). */
  metersOf: (zone: string) => Promise<string[]>;
  clock: () => number;
  logger: Logger;
}

export interface RunInput {
  zone: string;
  /** Unix seconds; default the zone's next interval still taking orders. */
  intervalStart?: number;
  supplyWh?: number;
  demandWh?: number;
  frequencyHz?: number;
  /** An operator's island call. */
  island?: { reason: string };
}

export interface MeasuredBalance {
  supplyWh: number;
  demandWh: number;
  /** The interval the readings are of. */
  intervalStart: number;
  meters: number;
}

export interface RunResult {
  runId: string;
  zone: string;
  intervalStart: number;
  balance: GridBalance;
  source: "measured" | "forecast";
  measuredIntervalStart: number | null;
  state: PlanState;
  actions: StoredAction[];
  ignored: { resourceId: string; reason: string }[];
}

/** Action JSON of the API contract (CONTEXT.md OrchestratorAction), plus outcome and detail. */
export function actionJson(a: StoredAction) {
  return {
    id: a.id, at: new Date(a.at).toISOString(), zone: a.zone, intervalStart: a.intervalStart, state: a.state, kind: a.kind, resourceId: a.resourceId,
    energyKwh: a.energyWh === null ? null : a.energyWh / 1000, reason: a.reason, commandId: a.commandId, orderId: a.orderId, eventId: a.eventId,
    outcome: a.outcome, detail: a.detail,
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** kWh in a reading payload as Wh; undefined when absent or not a number. */
function payloadWh(payload: Record<string, unknown>, field: string): number | undefined {
  const v = payload[field];
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.round(v * 1000) : undefined;
}

/** One interval reading's supply and demand: generation_kwh and consumption_kwh of its payload,
 *  or the meter's export and import when those are absent. */
function readingEnergy(r: { payload: string; export_wh: bigint | string | null; import_wh: bigint | string | null }): { supplyWh: number; demandWh: number } {
  let payload: Record<string, unknown> = {};
  try {
    payload = JSON.parse(r.payload) as Record<string, unknown>;
  } catch {
    // Stored payloads passed the bridge's validation; an unreadable one falls back to the columns.
  }
  return {
    supplyWh: payloadWh(payload, "generation_kwh") ?? Number(r.export_wh ?? 0),
    demandWh: payloadWh(payload, "consumption_kwh") ?? Number(r.import_wh ?? 0),
  };
}

export function createOrchestrator(deps: OrchestratorDeps) {
  const { db, engine, clock, logger } = deps;
  const store = db as unknown as Kysely<OrchestratorDatabase>;

  function marketOf(zone: string) {
    const market = engine.markets.find((m) => m.zone === zone);
    if (!market) throw new ValidationError("zone", `no market for zone ${zone}; known: ${engine.markets.map((m) => m.zone).join(", ")}`);
    return market;
  }

  function nextTradableInterval(zone: string, nowMs: number): number {
    const market = marketOf(zone);
    return (Math.floor((Math.floor(nowMs / 1000) + market.gateClosureSeconds) / INTERVAL_SECONDS) + 1) * INTERVAL_SECONDS;
  }

  /**
   * Supply and demand of the zone's meters in one interval, summed by readingEnergy: the readings
   * of the interval starting at exactly `atMs` when `exact`, else of the latest interval that
   * ended in the hour before `atMs`. (Readings are stored by interval start; counting by start
   * instead would drop an interval that ended 45 minutes before `atMs`, and with it every run
   * planned two intervals ahead from a meter that missed one report.)
   */
  async function measured(zone: string, atMs: number, exact: boolean): Promise<MeasuredBalance | undefined> {
    const meters = await deps.metersOf(zone);
    if (meters.length === 0) return undefined;
    // One reading per meter and interval where several streams hold one (bridge/database.ts).
    let q = db.selectFrom("bridge_readings").distinctOn(["meter_id", "reading_at"]).select(["meter_id", "reading_at", "export_wh", "import_wh", "payload"])
      .where("kind", "=", "interval").where("meter_id", "in", meters).orderBy("meter_id").orderBy("reading_at").orderBy(readingPreferenceSql);
    const intervalMs = INTERVAL_SECONDS * 1000;
    q = exact
      ? q.where("reading_at", "=", BigInt(atMs))
      : q.where("reading_at", "<=", BigInt(atMs - intervalMs)).where("reading_at", ">", BigInt(atMs - intervalMs - MEASURED_LOOKBACK_MS));
    const rows = await q.execute();
    if (rows.length === 0) return undefined;
    const latest = rows.reduce((m, r) => (Number(r.reading_at) > m ? Number(r.reading_at) : m), 0);
    let supplyWh = 0;
    let demandWh = 0;
    let n = 0;
    for (const r of rows) {
      if (Number(r.reading_at) !== latest) continue;
      const e = readingEnergy(r);
      supplyWh += e.supplyWh;
      demandWh += e.demandWh;
      n++;
    }
    return { supplyWh, demandWh, intervalStart: latest / 1000, meters: n };
  }

  async function sendCommand(device: PlannedAction["device"], command: DeviceCommand): Promise<{ outcome: "done" | "skipped" | "failed"; commandId: string | null; detail: string | null }> {
    const bridge = deps.bridge;
    if (!device) return { outcome: "skipped", commandId: null, detail: "the resource has no device address" };
    if (!bridge) return { outcome: "skipped", commandId: null, detail: "this node runs no meter bridge" };
    try {
      const sent = await bridge.sendCommand(device, command);
      return { outcome: "done", commandId: sent.commandId, detail: null };
    } catch (err) {
      return { outcome: "failed", commandId: null, detail: err instanceof BaseError ? err.shortMessage : "the broker did not take the command" };
    }
  }

  async function publish(actions: readonly StoredAction[]) {
    const hub = deps.hub;
    if (!hub) return;
    for (const a of actions) hub.publish(ACTIONS_CHANNEL, "action", actionJson(a));
  }

  async function run(input: RunInput): Promise<RunResult> {
    const market = marketOf(input.zone);
    const nowMs = clock();
    const nowS = Math.floor(nowMs / 1000);
    const intervalStart = input.intervalStart ?? nextTradableInterval(input.zone, nowMs);
    if (intervalStart % INTERVAL_SECONDS !== 0) throw new ValidationError("intervalStart", `must start a 15-minute interval (a multiple of ${INTERVAL_SECONDS} s)`);
    if ((input.supplyWh === undefined) !== (input.demandWh === undefined)) {
      throw new ValidationError(input.supplyWh === undefined ? "supplyKwh" : "demandKwh", "supplyKwh and demandKwh go together: send both, or neither to use the zone's readings");
    }
    let source: RunResult["source"];
    let supplyWh: number;
    let demandWh: number;
    let measuredIntervalStart: number | null = null;
    if (input.supplyWh !== undefined) {
      source = "forecast";
      supplyWh = input.supplyWh;
      demandWh = input.demandWh!;
    } else {
      const m = await measured(input.zone, intervalStart * 1000, false);
      // Meters that have not reported for an hour: forecast the interval as the same interval
      // yesterday (a daily seasonal-naive forecast; PV and household load both follow the day).
      const yesterday = m ? undefined : await measured(input.zone, intervalStart * 1000 - DAY_MS, true);
      if (!m && !yesterday) {
        throw new ValidationError("supplyKwh", `zone ${input.zone} has no interval readings in the hour before ${iso(intervalStart * 1000)}, nor of the same interval yesterday: send supplyKwh and demandKwh (a forecast)`, { code: "no_balance_data" });
      }
      source = m ? "measured" : "forecast";
      ({ supplyWh, demandWh } = (m ?? yesterday)!);
      measuredIntervalStart = (m ?? yesterday)!.intervalStart;
    }
    const balance = gridBalance({ supplyWh, demandWh });
    // The zone's prices follow its balance: the engine's reference price (market orders, EV
    // plans) is the dynamic pricing formula over these conditions. The meters' generation is
    // rooftop PV, so all of the supply counts as renewable.
    engine.setMarketConditions(input.zone, { supplyWh, demandWh, renewableWh: supplyWh });

    // Island: an operator call, a frequency outside the band, or a zone still islanded.
    let island = input.island;
    if (!island && input.frequencyHz !== undefined && (input.frequencyHz < FREQUENCY_BAND_HZ.min || input.frequencyHz > FREQUENCY_BAND_HZ.max)) {
      island = { reason: `frequency excursion: ${input.frequencyHz} Hz is outside ${FREQUENCY_BAND_HZ.min}..${FREQUENCY_BAND_HZ.max} Hz` };
    }
    if (island) await setIsland(store, input.zone, island.reason, nowMs);
    else {
      const stored = await getIsland(store, input.zone);
      if (stored) island = { reason: `${stored.reason} (islanded since ${iso(stored.since)})` };
    }

    const coordination = deps.coordination;
    let resources: Awaited<ReturnType<Coordination["listResources"]>> = [];
    if (coordination) {
      try {
        resources = await coordination.listResources({ zone: input.zone });
      } catch (err) {
        logger.warn({ msg: "orchestrator: resources not read", zone: input.zone, err: (err as Error).message });
      }
    }
    const inputs = planInputsFrom(resources);
    const plan = planActions({ balance, ...(island ? { island } : {}), intervalStartMs: intervalStart * 1000, batteries: inputs.batteries, evs: inputs.evs, loads: inputs.loads });

    const runId = randomUUID();
    const startMs = intervalStart * 1000;
    const endMs = startMs + INTERVAL_SECONDS * 1000;
    const stored: StoredAction[] = [];
    const base = (a: PlannedAction) => ({
      id: randomUUID(), runId, at: nowMs, zone: input.zone, intervalStart, state: plan.state, kind: a.kind, resourceId: a.resourceId, energyWh: a.energyWh, reason: a.reason,
      commandId: null as string | null, orderId: null as string | null, eventId: null as string | null,
    });

    // The demand-response event first: the shed loads' commands carry its id.
    const drAction = plan.actions.find((a) => a.kind === "dr_event");
    let drEventId: string | null = null;
    let drDetail: string | null = null;
    if (drAction) {
      if (!coordination) drDetail = "no coordination service on this node: the loads get the orchestrator's own demand-response commands, no event is stored";
      else {
        try {
          const event = await coordination.createEvent({
            active_period: { dtstart: iso(startMs), duration: "PT15M" },
            event_signals: [{ signal_name: "SIMPLE", signal_type: "level", intervals: [{ dtstart: iso(startMs), duration: "PT15M", signal_payload: plan.state === "island" ? 3 : 2 }] }],
            targets: (drAction.targets ?? []).map((id) => ({ resource_id: id })),
            reason: `orchestrator: ${plan.state} ${input.zone} ${iso(startMs)}`,
          }, "orchestrator");
          drEventId = event.event_id;
        } catch (err) {
          drDetail = `the demand-response event was not created: ${err instanceof BaseError ? err.shortMessage : (err as Error).message}`;
          logger.warn({ msg: "orchestrator: event not created", zone: input.zone, err: (err as Error).message });
        }
      }
    }
    // Devices need an event id even when no coordination event exists: the run's own.
    const deviceEventId = drEventId ?? `orchestrator-${runId}`;

    for (const a of plan.actions) {
      const row: StoredAction = { ...base(a), outcome: "done", detail: null };
      const energy = BigInt(a.energyWh ?? 0);
      switch (a.kind) {
        case "battery_charge":
        case "battery_discharge":
        case "ev_discharge": {
          // A V2G charger takes the battery command: it is the car's battery that discharges.
          const r = await sendCommand(a.device, { type: "battery", action: a.kind === "battery_charge" ? "charge" : "discharge", energyWh: energy, ...(a.powerW ? { maxPowerW: BigInt(a.powerW) } : {}) });
          Object.assign(row, { outcome: r.outcome, commandId: r.commandId, detail: r.detail });
          break;
        }
        case "ev_charge": {
          const power = a.powerW ?? 0;
          const slotEnd = power > 0 ? Math.min(endMs, startMs + Math.ceil(((a.energyWh ?? 0) * 3_600_000) / power)) : endMs;
          const r = power > 0
            ? await sendCommand(a.device, { type: "ev_charge_schedule", slots: [{ startMs, endMs: slotEnd, powerW: BigInt(power) }], targetEnergyWh: energy })
            : { outcome: "skipped" as const, commandId: null, detail: "no charger power" };
          Object.assign(row, { outcome: r.outcome, commandId: r.commandId, detail: r.detail });
          break;
        }
        case "load_shed":
          if (drEventId) {
            // The event went to the load's device through coordination (its demand_response
            // command); a second command of ours would only duplicate it.
            Object.assign(row, { eventId: drEventId, detail: "delivered by the demand-response event" });
            break;
          }
        // falls through: no event, so the orchestrator tells the device itself
        case "ev_defer":
        case "load_defer": {
          const shed = a.kind === "load_shed" || plan.state === "critical_deficit" || plan.state === "island";
          const r = a.powerW
            ? await sendCommand(a.device, {
              type: "demand_response", eventId: a.kind === "load_shed" ? deviceEventId : `orchestrator-${runId}`, startMs, endMs, targetReductionW: BigInt(a.powerW),
              signalLevel: plan.state === "island" ? "special" : shed ? "high" : "moderate",
            })
            : { outcome: "skipped" as const, commandId: null, detail: "no power to reduce" };
          Object.assign(row, { outcome: r.outcome, commandId: r.commandId, detail: r.detail });
          break;
        }
        case "dr_event":
          Object.assign(row, { eventId: drEventId, outcome: drEventId ? "done" : "skipped", detail: drDetail });
          break;
        case "p2p_offer":
        case "p2p_bid": {
          // Offers at the feed-in floor (anything a neighbour pays beats exporting to the grid);
          // bids up to the retail price (anything cheaper beats importing from the grid).
          const sell = a.kind === "p2p_offer";
          const r = await placeAggregatorOrder(engine, deps.signer, { zone: input.zone, side: sell ? "sell" : "buy", intervalStart, energyWh: a.energyWh ?? 0, pricePerKWh: sell ? market.feedInTariff : market.retailPrice }, nowS);
          if (r.outcome === "done") Object.assign(row, { orderId: r.orderId, reason: `${a.reason}; ${sell ? "sell" : "buy"} order at ${sell ? market.feedInTariff : market.retailPrice} per kWh for ${iso(startMs)}` });
          else Object.assign(row, { outcome: r.outcome, detail: r.detail });
          break;
        }
        case "island":
        case "maintain":
          break;
      }
      stored.push(row);
    }

    await insertActions(store, stored);
    await upsertBalance(store, { zone: input.zone, intervalStart, supplyWh, demandWh, source, state: plan.state, at: nowMs });
    await publish(stored);
    logger.info({ msg: "orchestrator run", zone: input.zone, intervalStart, state: plan.state, source, actions: stored.length, failed: stored.filter((s) => s.outcome === "failed").length });
    return { runId, zone: input.zone, intervalStart, balance, source, measuredIntervalStart, state: plan.state, actions: stored, ignored: inputs.ignored };
  }

  return {
    run,
    measured,
    nextTradableInterval,

    /** Islands the zone and runs the critical plan for its next interval at once. */
    async island(input: Omit<RunInput, "island"> & { reason: string }): Promise<RunResult> {
      return run({ ...input, island: { reason: input.reason } });
    },

    /** Back on the main grid: normal planning from the next run; the reconnect is recorded. */
    async reconnect(zone: string): Promise<{ zone: string; islandedSince: number | null; action: StoredAction | null }> {
      marketOf(zone);
      const was = await clearIsland(store, zone);
      if (!was) return { zone, islandedSince: null, action: null };
      const nowMs = clock();
      const action: StoredAction = {
        id: randomUUID(), runId: randomUUID(), at: nowMs, zone, intervalStart: nextTradableInterval(zone, nowMs), state: "island", kind: "maintain", resourceId: null, energyWh: null,
        reason: `reconnected to the main grid after island mode since ${iso(was.since)} (${was.reason}): normal operation resumes`, outcome: "done", detail: null,
        commandId: null, orderId: null, eventId: null,
      };
      await insertActions(store, [action]);
      await publish([action]);
      return { zone, islandedSince: was.since, action };
    },

    async isIslanded(zone: string) {
      return getIsland(store, zone);
    },

    async actions(filter: { zone?: string; limit: number }) {
      return listActions(store, filter);
    },

    /** Per interval in [fromS, toS): measured from readings, else the balance a run used. */
    async balances(zone: string, fromS: number, toS: number) {
      marketOf(zone);
      const meters = await deps.metersOf(zone);
      const readings = meters.length === 0 ? [] : (await sql<{ reading_at: string; export_wh: string | null; import_wh: string | null; payload: string }>`
        select distinct on (meter_id, reading_at) reading_at::text, export_wh::text, import_wh::text, payload from bridge_readings
        where kind = 'interval' and meter_id = any(${meters}::text[]) and reading_at >= ${String(fromS * 1000)}::int8 and reading_at < ${String(toS * 1000)}::int8
        order by meter_id, reading_at, ${readingPreferenceSql}`.execute(db)).rows;
      const byInterval = new Map<number, { supplyWh: number; demandWh: number }>();
      for (const r of readings) {
        const start = Number(r.reading_at) / 1000;
        if (start % INTERVAL_SECONDS !== 0) continue;
        const e = readingEnergy(r);
        const t = byInterval.get(start) ?? { supplyWh: 0, demandWh: 0 };
        t.supplyWh += e.supplyWh;
        t.demandWh += e.demandWh;
        byInterval.set(start, t);
      }
      const out = new Map<number, { intervalStart: number; supplyWh: number; demandWh: number; source: "measured" | "forecast" }>();
      for (const b of await listBalances(store, zone, fromS, toS)) out.set(b.intervalStart, { intervalStart: b.intervalStart, supplyWh: b.supplyWh, demandWh: b.demandWh, source: b.source });
      // Readings of the interval itself beat what a run assumed for it.
      for (const [start, t] of byInterval) out.set(start, { intervalStart: start, ...t, source: "measured" });
      return [...out.values()].sort((a, b) => a.intervalStart - b.intervalStart).map((x) => ({ ...x, balance: gridBalance({ supplyWh: x.supplyWh, demandWh: x.demandWh }) }));
    },
  };
}

export type Orchestrator = ReturnType<typeof createOrchestrator>;
