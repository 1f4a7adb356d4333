// The coordination API's shapes (seeds/001: resources, reports, events), shared by the routes
// that store them and by the orchestrator that reads resources and issues demand-response
// events. Events follow the OpenADR shape of seeds/002 (snake_case fields as in that document);
// times on the wire are ISO 8601 (dtstart) and ISO 8601 durations ("PT30M").
import type { Address } from "viem";

export type ResourceType = "battery" | "ev" | "solar" | "flexible_load" | "meter";

/** Where the bridge sends a resource's commands: {root}/{region}/{deviceType}/{deviceId}/command. */
export interface ResourceDevice {
  region: string;
  deviceType: string;
  deviceId: string;
}

/** What a resource can do; kWh/kW on the wire (converted to Wh/W once, where energy is computed). */
export interface ResourceCapabilities {
  /** battery / ev: usable capacity */
  capacityKwh?: number;
  maxChargeKw?: number;
  maxDischargeKw?: number;
  /** battery: state of charge kept back, percent of capacity (orchestrator default 10) */
  reservePct?: number;
  /** ev: may discharge to the grid */
  v2g?: boolean;
  /** flexible_load: power that can be shifted or shed */
  flexibleKw?: number;
  /** flexible_load / meter: never shed */
  essential?: boolean;
  /** solar: peak power */
  peakKw?: number;
}

/** A resource's last reported state (POST /v1/reports). */
export interface ResourceState {
  socPct?: number;
  powerKw?: number;
  /** ev */
  pluggedIn?: boolean;
  energyNeededKwh?: number;
  departure?: string;
}

export interface ResourceReport {
  resourceId: string;
  /** Unix ms the report describes. */
  atMs: number;
  state: ResourceState;
  /** How events affected the resource: e.g. { eventId, reductionKw }. */
  events?: { eventId: string; reductionKw?: number; note?: string }[];
}

export interface Resource {
  resourceId: string;
  type: ResourceType;
  owner: Address;
  meterId?: string;
  zone?: string;
  device?: ResourceDevice;
  capabilities: ResourceCapabilities;
  registeredAtMs: number;
  lastReport?: ResourceReport;
}

export interface EventInterval {
  dtstart: string;
  duration: string;
  signal_payload: number;
}

export interface EventSignal {
  signal_name: string;
  signal_type: string;
  intervals: EventInterval[];
}

/** targets: [{ resource_id } | { group_id } | …]; targets_by_type groups the same by key. */
export type EventTarget = Record<string, string>;

export interface NewEvent {
  /** Chosen by the server when absent. */
  event_id?: string;
  active_period: { dtstart: string; duration: string };
  event_signals: EventSignal[];
  targets: EventTarget[];
  /** e.g. "operator" or "orchestrator: critical_deficit ZONE-A 2026-11-22T18:00Z" */
  reason?: string;
}

export interface StoredEvent extends Required<Omit<NewEvent, "reason">> {
  targets_by_type: Record<string, string[]>;
  created_by: string;
  created_at: string;
  reason?: string;
  status: "far" | "near" | "active" | "completed" | "cancelled";
}

/** The coordination store and event service, on `app.node.coordination` (server/context.ts). */
export interface Coordination {
  listResources(filter?: { type?: ResourceType; zone?: string; owner?: Address }): Promise<Resource[]>;
  getResource(resourceId: string): Promise<Resource | undefined>;
  /** Stores the event and pushes it to every targeted resource (WebSocket events.{id}, MQTT command topic). */
  createEvent(input: NewEvent, createdBy: string): Promise<StoredEvent>;
}
