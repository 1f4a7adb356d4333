// The coordination service on `app.node.coordination`: resources and their reports, and
// demand-response events, whether an operator posts them or the orchestrator creates them.
// An event's targets are resolved to registered resources once, when it is created (a resource
// registered later in a targeted zone is not part of it), and the event is pushed to each of
// them: WebSocket `events.{resourceId}` and, when the event asks for a reduction the resource
// can make, a demand_response command on its device's MQTT command topic (planDemandResponse).
import { randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import type { Address } from "viem";
import type { BridgeDatabase } from "../../bridge/database.js";
import type { Bridge } from "../../bridge/startBridge.js";
import type { Logger } from "../../lib/logger.js";
import { ApiError } from "../problems.js";
import type { Hub } from "../realtime/hub.js";
import { checkNewEvent, scheduleOf, type EventSchedule } from "./checkNewEvent.js";
import {
  cancelEvent, findEvent, findEvents, findPerformance, findReports, findResource, findResources, insertEvent, insertReport, recordCommand, savePerformance, saveResource,
  saveResponse, type CoordinationDatabase, type EventRecord, type EventTargetRecord, type EventWithDetails, type ResourceFilter, type ResourceRecord,
} from "./coordinationStore.js";
import { eventStatus } from "./eventStatus.js";
import { measureEventPerformance, type EventPerformance } from "./measureEventPerformance.js";
import { planDemandResponse } from "./planDemandResponse.js";
import { DEFAULT_POLL_SECONDS, pollHint, type PollHint } from "./pollHint.js";
import type { Coordination, NewEvent, Resource, ResourceReport, ResourceType, StoredEvent } from "./types.js";

/** Target keys that resolve to resources; others (group_id, party_id, ...) are kept as sent. */
export const RESOLVED_TARGET_KEYS = ["resource_id", "zone", "resource_type", "ven_id"] as const;

export interface EventResponseJson {
  resourceId: string;
  response: "optIn" | "optOut";
  at: string;
}

export interface EventDeliveryJson {
  resourceId: string;
  command: "sent" | "skipped" | "failed" | "pending";
  commandId?: string;
  topic?: string;
  reason?: string;
}

export type EventJson = StoredEvent & { responses: EventResponseJson[]; deliveries: EventDeliveryJson[] };

export interface Viewer {
  address: Address;
  operator: boolean;
}

export interface ResourcePerformance {
  resourceId: string;
  meterId: string | null;
  response: "optIn" | "optOut" | null;
  performance: EventPerformance | null;
  /** Why nothing was measured (no meter). */
  detail?: string;
  /** The result is final and stored: later requests read it back unchanged. */
  final: boolean;
}

export interface CoordinationService extends Coordination {
  registerResource(record: ResourceRecord): Promise<{ outcome: "created" | "updated"; resource: Resource & { updatedAtMs: number } }>;
  findResource(resourceId: string): Promise<(Resource & { updatedAtMs: number }) | undefined>;
  findResources(filter: ResourceFilter): Promise<(Resource & { updatedAtMs: number })[]>;
  addReport(report: ResourceReport): Promise<void>;
  reports(resourceId: string, limit: number): Promise<(ResourceReport & { receivedAtMs: number })[]>;
  /** The event as `viewer` may see it; undefined when it does not exist or targets none of the viewer's resources. */
  eventFor(eventId: string, viewer: Viewer): Promise<{ json: EventJson; details: EventWithDetails } | undefined>;
  eventsFor(viewer: Viewer, options: { includeEnded: boolean; limit: number }): Promise<{ events: EventJson[]; poll: PollHint }>;
  cancel(eventId: string): Promise<EventJson>;
  respond(eventId: string, viewer: Viewer, resourceId: string, response: "optIn" | "optOut"): Promise<EventJson>;
  performance(eventId: string, viewer: Viewer): Promise<{ event: EventJson; resources: ResourcePerformance[] }>;
}

export interface CoordinationDependencies {
  /** The node's database: the coordination tables, and the bridge's readings for performance. */
  db: Kysely<CoordinationDatabase>;
  clock: () => number;
  logger: Logger;
  hub?: Hub;
  bridge?: Bridge;
  /** [0, 1) for the poll hint's jitter (Math.random unless a test pins it). */
  random?: () => number;
  pollSeconds?: number;
  /** The community's time zone: baselines compare the same local clock hours of similar local days. */
  timeZone?: string;
}

const iso = (ms: number) => new Date(ms).toISOString();
export const sameAddress = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
const eventNotFound = (eventId: string) => new ApiError("event_not_found", `no event ${eventId} targets a resource of yours`, { field: "eventId" });

function groupTargets(targets: readonly Record<string, string>[]): Record<string, string[]> {
  const byType: Record<string, string[]> = {};
  for (const t of targets) for (const [k, v] of Object.entries(t)) (byType[k] ??= []).push(v);
  return byType;
}

export function createCoordination(deps: CoordinationDependencies): CoordinationService {
  const { db, clock, logger } = deps;
  const readingsDb = db as unknown as Kysely<BridgeDatabase>;
  const random = deps.random ?? Math.random;
  const pollSeconds = deps.pollSeconds ?? DEFAULT_POLL_SECONDS;

  /**
   * The event as JSON for a set of resources: an owner sees the resource_id targets, answers
   * and deliveries of their own resources only (other owners' resource ids are not theirs to
   * learn); `visible` undefined means everything (operators).
   */
  function toJson(d: EventWithDetails, visible: ReadonlySet<string> | undefined, nowMs: number): EventJson {
    const { event } = d;
    const show = (resourceId: string) => !visible || visible.has(resourceId);
    const targets = event.body.targets.filter((t) => t.resource_id === undefined || show(t.resource_id));
    return {
      event_id: event.eventId, active_period: event.body.active_period, event_signals: event.body.event_signals, targets, targets_by_type: groupTargets(targets),
      created_by: event.createdBy, created_at: iso(event.createdAtMs), ...(event.body.reason !== undefined ? { reason: event.body.reason } : {}),
      status: eventStatus(event, nowMs),
      responses: d.responses.filter((r) => show(r.resourceId)).map((r) => ({ resourceId: r.resourceId, response: r.response, at: iso(r.atMs) })),
      deliveries: d.targets.filter((t) => show(t.resourceId)).map((t) => ({
        resourceId: t.resourceId, command: t.commandOutcome, ...(t.commandId ? { commandId: t.commandId } : {}), ...(t.topic ? { topic: t.topic } : {}), ...(t.reason ? { reason: t.reason } : {}),
      })),
    };
  }

  /** The viewer's resources among the event's targets; undefined for operators (all). */
  function visibleTo(d: EventWithDetails, viewer: Viewer): Set<string> | undefined {
    if (viewer.operator) return undefined;
    return new Set(d.targets.filter((t) => sameAddress(t.owner, viewer.address)).map((t) => t.resourceId));
  }

  function push(d: EventWithDetails, nowMs: number) {
    const hub = deps.hub;
    if (!hub) return;
    for (const t of d.targets) {
      const channel = `events.${t.resourceId}`;
      // Each resource's channel gets the event as that resource's owner sees it.
      if (hub.hasSubscribers(channel)) hub.publish(channel, "event", toJson(d, new Set([t.resourceId]), nowMs));
    }
  }

  async function resolveTargets(targets: readonly Record<string, string>[]): Promise<Resource[]> {
    const found = new Map<string, Resource>();
    for (const [i, target] of targets.entries()) {
      for (const [key, value] of Object.entries(target)) {
        let resources: Resource[] = [];
        if (key === "resource_id") {
          const r = await findResource(db, value);
          if (!r) throw new ApiError("validation_failed", `targets[${i}].resource_id: no resource ${value} is registered`, { field: `targets[${i}].resource_id` });
          resources = [r];
        } else if (key === "zone") resources = await findResources(db, { zone: value });
        else if (key === "resource_type") resources = await findResources(db, { type: value as ResourceType });
        else if (key === "ven_id") resources = /^0x[0-9a-fA-F]{40}$/.test(value) ? await findResources(db, { owner: value as Address }) : [];
        for (const r of resources) found.set(r.resourceId, r);
      }
    }
    if (found.size === 0) {
      throw new ApiError("validation_failed", `targets: none resolves to a registered resource (resolved: ${RESOLVED_TARGET_KEYS.join(", ")}; others are kept but name no resource)`, { field: "targets" });
    }
    return [...found.values()].sort((a, b) => (a.resourceId < b.resourceId ? -1 : 1));
  }

  async function sendCommands(eventId: string, schedule: EventSchedule, resources: readonly Resource[]) {
    for (const resource of resources) {
      const plan = planDemandResponse(eventId, schedule, resource);
      let outcome: Pick<EventTargetRecord, "commandOutcome" | "commandId" | "topic" | "reason">;
      if (plan.kind === "none") outcome = { commandOutcome: "skipped", commandId: null, topic: null, reason: plan.reason };
      else if (!deps.bridge) outcome = { commandOutcome: "skipped", commandId: null, topic: null, reason: "this node runs no meter bridge" };
      else {
        try {
          const sent = await deps.bridge.sendCommand(resource.device!, plan.command);
          outcome = { commandOutcome: "sent", commandId: sent.commandId, topic: sent.topic, reason: null };
        } catch (err) {
          logger.warn({ msg: "coordination: demand-response command failed", eventId, resourceId: resource.resourceId, err: (err as Error).message });
          outcome = { commandOutcome: "failed", commandId: null, topic: null, reason: (err as Error).message.slice(0, 500) };
        }
      }
      await recordCommand(db, eventId, resource.resourceId, outcome);
    }
  }

  async function createEvent(input: NewEvent, createdBy: string): Promise<StoredEvent> {
    const nowMs = clock();
    const schedule = checkNewEvent(input, nowMs);
    const resources = await resolveTargets(input.targets);
    const eventId = input.event_id ?? `evt-${randomBytes(8).toString("hex")}`;
    const record: EventRecord = {
      eventId, startMs: schedule.startMs, endMs: schedule.endMs, createdBy, createdAtMs: nowMs, cancelledAtMs: null,
      body: {
        active_period: input.active_period, event_signals: input.event_signals, targets: input.targets, targets_by_type: groupTargets(input.targets),
        ...(input.reason !== undefined ? { reason: input.reason } : {}),
      },
    };
    const targets = resources.map((r): EventTargetRecord => ({ resourceId: r.resourceId, owner: r.owner, commandOutcome: "pending", commandId: null, topic: null, reason: null }));
    if (!(await insertEvent(db, record, targets))) throw new ApiError("event_exists", `event ${eventId} exists: choose another event_id`, { field: "event_id" });
    // Stored first: a device that answers at once finds the event. Commands before the
    // WebSocket push, so the pushed event already says what each device was sent.
    await sendCommands(eventId, schedule, resources);
    const d = (await findEvent(db, eventId))!;
    push(d, clock());
    logger.info({ msg: "coordination: event created", eventId, createdBy, resources: resources.length });
    return toJson(d, undefined, nowMs);
  }

  async function visibleEvent(eventId: string, viewer: Viewer) {
    const d = await findEvent(db, eventId);
    if (!d) return undefined;
    const visible = visibleTo(d, viewer);
    if (visible && visible.size === 0) return undefined;
    return { details: d, visible };
  }

  return {
    listResources: (filter = {}) => findResources(db, filter),
    getResource: (resourceId) => findResource(db, resourceId),
    findResource: (resourceId) => findResource(db, resourceId),
    findResources: (filter) => findResources(db, filter),
    createEvent,

    async registerResource(record) {
      const outcome = await saveResource(db, record, clock());
      if (outcome === "taken") throw new ApiError("resource_taken", `resource id ${record.resourceId} is registered by another account: choose another id`, { field: "resourceId" });
      return { outcome, resource: (await findResource(db, record.resourceId))! };
    },

    addReport: (report) => insertReport(db, report, clock()),
    reports: (resourceId, limit) => findReports(db, resourceId, limit),

    async eventFor(eventId, viewer) {
      const v = await visibleEvent(eventId, viewer);
      return v ? { json: toJson(v.details, v.visible, clock()), details: v.details } : undefined;
    },

    async eventsFor(viewer, options) {
      const nowMs = clock();
      const list = await findEvents(db, { ...(viewer.operator ? {} : { owner: viewer.address }), ...(options.includeEnded ? {} : { endedAfterMs: nowMs }), limit: options.limit });
      return { events: list.map((d) => toJson(d, visibleTo(d, viewer), nowMs)), poll: pollHint(nowMs, pollSeconds, random) };
    },

    async cancel(eventId) {
      const nowMs = clock();
      const d = await findEvent(db, eventId);
      if (!d) throw new ApiError("event_not_found", `no event ${eventId}`, { field: "eventId" });
      const status = eventStatus(d.event, nowMs);
      if (status === "completed" || status === "cancelled") throw new ApiError("event_closed", `event ${eventId} is ${status}: there is nothing to cancel`, { field: "eventId" });
      await cancelEvent(db, eventId, nowMs);
      const after = (await findEvent(db, eventId))!;
      push(after, nowMs);
      // Devices that were told to shed load hear that they may stop. Not a bridge command (the
      // bridge's command set has no cancellation): published as is, not tracked for an answer.
      const link = deps.bridge?.mqtt;
      if (link) {
        for (const t of after.targets) {
          if (t.commandOutcome !== "sent" || !t.topic) continue;
          const payload = { type: "demand_response_cancel", event_id: eventId, cancels: t.commandId, issued_at: iso(nowMs) };
          await link.publish(t.topic, JSON.stringify(payload)).catch((err: Error) => logger.warn({ msg: "coordination: cancellation not published", eventId, topic: t.topic, err: err.message }));
        }
      }
      logger.info({ msg: "coordination: event cancelled", eventId });
      return toJson(after, undefined, nowMs);
    },

    async respond(eventId, viewer, resourceId, response) {
      const v = await visibleEvent(eventId, viewer);
      if (!v) throw eventNotFound(eventId);
      const target = v.details.targets.find((t) => t.resourceId === resourceId);
      if (!target) {
        const resource = await findResource(db, resourceId);
        // Someone else's resource (or none at all) is not the caller's to answer for.
        if (!resource || !sameAddress(resource.owner, viewer.address)) throw new ApiError("not_resource_owner", `resource ${resourceId} is not yours: only its owner answers for it`, { field: "resourceId" });
        throw new ApiError("resource_not_targeted", `event ${eventId} does not target resource ${resourceId}`, { field: "resourceId" });
      }
      if (!sameAddress(target.owner, viewer.address)) throw new ApiError("not_resource_owner", `resource ${resourceId} is not yours: only its owner answers for it`, { field: "resourceId" });
      const nowMs = clock();
      const status = eventStatus(v.details.event, nowMs);
      if (status === "cancelled") throw new ApiError("event_closed", `event ${eventId} was cancelled`, { field: "eventId" });
      if (nowMs >= v.details.event.startMs) throw new ApiError("event_started", `event ${eventId} started at ${iso(v.details.event.startMs)}: answers may change only before it starts`, { field: "response" });
      await saveResponse(db, eventId, { resourceId, response, respondedBy: viewer.address, atMs: nowMs });
      const after = (await findEvent(db, eventId))!;
      return toJson(after, visibleTo(after, viewer), nowMs);
    },

    async performance(eventId, viewer) {
      const v = await visibleEvent(eventId, viewer);
      if (!v) throw eventNotFound(eventId);
      const nowMs = clock();
      const { event } = v.details;
      const schedule = scheduleOf(event.body);
      const stored = await findPerformance(db, eventId);
      const intervalMs = (deps.bridge?.intervalSeconds ?? 900) * 1000;
      const ids = v.details.targets.map((t) => t.resourceId).filter((id) => !v.visible || v.visible.has(id));
      const resources = new Map((await findResources(db, { resourceIds: ids })).map((r) => [r.resourceId, r]));
      const results: ResourcePerformance[] = [];
      for (const resourceId of ids) {
        const kept = stored.get(resourceId) as ResourcePerformance | undefined;
        if (kept) {
          results.push(kept);
          continue;
        }
        const resource = resources.get(resourceId);
        const response = v.details.responses.find((r) => r.resourceId === resourceId)?.response ?? null;
        if (!resource?.meterId) {
          results.push({ resourceId, meterId: null, response, performance: null, detail: "the resource has no meter: nothing to measure", final: false });
          continue;
        }
        const plan = planDemandResponse(eventId, schedule, resource);
        // A cancelled event is measured up to its cancellation.
        const endMs = event.cancelledAtMs !== null ? Math.max(event.startMs, Math.min(event.endMs, event.cancelledAtMs)) : event.endMs;
        const performance = await measureEventPerformance(readingsDb, { meterId: resource.meterId, startMs: event.startMs, endMs, targets: plan.targets, intervalMs, nowMs, ...(deps.timeZone ? { timeZone: deps.timeZone } : {}) });
        const final = performance.status === "measured";
        const result: ResourcePerformance = { resourceId, meterId: resource.meterId, response, performance, final };
        // Once every interval is over and measured, the result is kept: late readings change nothing.
        if (final) await savePerformance(db, eventId, resourceId, jsonSafe(result), nowMs);
        results.push(result);
      }
      return { event: toJson(v.details, v.visible, nowMs), resources: results.map(revive) };
    },
  };
}

/** Stored results are JSON: bigints as strings, read back by `revive`. */
function jsonSafe(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? { $wh: v.toString() } : v)));
}

function revive(result: ResourcePerformance): ResourcePerformance {
  return JSON.parse(JSON.stringify(result, (_k, v) => (typeof v === "bigint" ? { $wh: v.toString() } : v)), (_k, v) =>
    v !== null && typeof v === "object" && typeof v.$wh === "string" && Object.keys(v).length === 1 ? BigInt(v.$wh) : v) as ResourcePerformance;
}
