// Virtual power plants: an operator groups a zone's resources (solar, wind, storage, the grid
// connection, flexible loads) into a VPP, optimises their dispatch against a demand (the exact
// LP of engine/vpp), and applies the first interval of the last completed plan as device
// commands through the meter bridge. Status changes go out on `vpp.{id}.status`. VPPs, runs
// and applies live in the node's database, so a restart keeps them.
import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import type { CommandAck } from "../../bridge/deviceCommands.js";
import { loadLpSolver, optimizeDispatch, validateDispatchRequest, MAX_ENERGY_KWH, MAX_HORIZON, MAX_POWER_KW, MAX_PRICE_PER_KWH, type DispatchRequest, type DispatchResult, type VppResource, type VppResourceType } from "../../engine/vpp/index.js";
import { BaseError, ValidationError } from "../../lib/errors.js";
import { requireAccount, requireOperator } from "../auth/authenticate.js";
import { ApiError, bearer, problem } from "../problems.js";
import { planDeviceCommands } from "../vpp/planDeviceCommands.js";
import {
  addResource, commandOwner, deleteResource, deleteVpp, getVpp, insertApply, insertRun, insertVpp, lastApply, lastRun, listVpps, migrateVppStore, updateVpp,
  type VppApply, type VppCommandRecord, type VppDatabase, type VppResourceRecord, type VppRun,
} from "../vpp/vppStore.js";

const RESOURCE_TYPES: readonly VppResourceType[] = ["solar", "wind", "storage", "grid", "flexibleLoad"];
/** Ids go into channel names (`vpp.{id}.status`) and URLs: the hub's id alphabet. */
const ID_PATTERN = "^[A-Za-z0-9_-]{1,64}$";
const MAX_RESOURCES = 200;

// ---------------------------------------------------------------- schemas

type Range = { minimum?: number; maximum?: number };

const perInterval = (description: string, range: Range) => ({
  anyOf: [{ type: "number", ...range }, { type: "array", items: { type: "number", ...range }, minItems: 1, maxItems: MAX_HORIZON }],
  description: `${description}; one number for every interval, or one per interval (an array as long as the optimisation's horizon)`,
});

const topicLevel = { type: "string", pattern: "^[A-Za-z0-9._-]{1,64}$" } as const;
const deviceSchema = {
  type: "object",
  additionalProperties: false,
  required: ["region", "deviceType", "deviceId"],
  properties: { region: topicLevel, deviceType: topicLevel, deviceId: topicLevel },
  description: "where the bridge sends this resource's commands: {root}/{region}/{deviceType}/{deviceId}/command",
} as const;

/** Ranges of the per-interval fields, for the schema and for checkIntervalArray. */
const RANGES = {
  demand: { minimum: 0, maximum: MAX_POWER_KW }, availability: { minimum: 0, maximum: 1 }, costPerKWh: { minimum: 0, maximum: MAX_PRICE_PER_KWH },
  exportPricePerKWh: { minimum: -MAX_PRICE_PER_KWH, maximum: MAX_PRICE_PER_KWH },
} as const satisfies Record<string, Range>;

/**
 * The array form of a per-interval field, element by element, before the schema runs: anyOf
 * reports its first branch's complaint ("must be number") for a bad element, which would send
 * the caller looking in the wrong place; this names the element (`demand[1] must be >= 0`).
 */
function checkIntervalArray(value: unknown, field: string, range: Range) {
  if (!Array.isArray(value)) return;
  if (value.length === 0 || value.length > MAX_HORIZON) throw new ApiError("invalid_request", `${field} must hold 1 to ${MAX_HORIZON} numbers (one per interval)`, { field });
  value.forEach((x, i) => {
    const rule = [range.minimum !== undefined ? `>= ${range.minimum}` : "", range.maximum !== undefined ? `<= ${range.maximum}` : ""].filter(Boolean).join(" and ");
    if (typeof x !== "number" || !Number.isFinite(x) || (range.minimum !== undefined && x < range.minimum) || (range.maximum !== undefined && x > range.maximum)) {
      throw new ApiError("invalid_request", `${field}[${i}] must be a number${rule ? ` ${rule}` : ""}`, { field: `${field}[${i}]` });
    }
  });
}

function checkResourceArrays(json: unknown, prefix: string) {
  if (json === null || typeof json !== "object") return;
  const r = json as Record<string, unknown>;
  checkIntervalArray(r.availability, `${prefix}availability`, RANGES.availability);
  checkIntervalArray(r.costPerKWh, `${prefix}costPerKWh`, RANGES.costPerKWh);
  checkIntervalArray(r.exportPricePerKWh, `${prefix}exportPricePerKWh`, RANGES.exportPricePerKWh);
}

async function checkVppArrays(request: FastifyRequest) {
  const resources = (request.body as { resources?: unknown } | null)?.resources;
  if (Array.isArray(resources)) resources.forEach((r, i) => checkResourceArrays(r, `resources[${i}].`));
}

/** Fields each type takes (the dispatch model's, engine/vpp/types.ts); id, type, name and device are common. */
const TYPE_FIELDS: Record<VppResourceType, { required: string[]; optional: string[] }> = {
  solar: { required: ["capacityKw"], optional: ["availability", "costPerKWh"] },
  wind: { required: ["capacityKw"], optional: ["availability", "costPerKWh"] },
  grid: { required: ["capacityKw", "costPerKWh"], optional: ["exportCapacityKw", "exportPricePerKWh"] },
  storage: {
    required: ["capacityKw", "energyCapacityKwh", "soc"],
    optional: ["chargeLimitKw", "dischargeLimitKw", "chargeEfficiency", "dischargeEfficiency", "minReserve", "minFinalSoc", "costPerKWh", "renewableFraction"],
  },
  flexibleLoad: { required: ["capacityKw", "energyKwh"], optional: ["arrival", "departure"] },
};
const COMMON_FIELDS = new Set(["id", "type", "name", "device"]);

const resourceFields = {
  id: { type: "string", pattern: ID_PATTERN, description: "unique in the VPP; generated when absent" },
  type: { type: "string", enum: RESOURCE_TYPES },
  name: { type: "string", minLength: 1, maxLength: 120 },
  capacityKw: { type: "number", minimum: 0, maximum: MAX_POWER_KW, description: "kW: generator rating, grid import limit, battery inverter rating, or a flexible load's largest draw" },
  availability: perInterval("solar/wind: forecast fraction of capacity available (0..1), default 1", RANGES.availability),
  costPerKWh: perInterval("solar/wind: running cost per kWh, default 0; grid: import price per kWh (required); storage: wear cost per kWh discharged (one number)", RANGES.costPerKWh),
  exportCapacityKw: { type: "number", minimum: 0, maximum: MAX_POWER_KW, description: "grid: export limit (kW), default 0" },
  exportPricePerKWh: perInterval("grid: revenue per kWh exported, at most the import price, default 0", RANGES.exportPricePerKWh),
  energyCapacityKwh: { type: "number", exclusiveMinimum: 0, maximum: MAX_ENERGY_KWH, description: "storage: usable energy (kWh)" },
  soc: { type: "number", minimum: 0, maximum: 1, description: "storage: state of charge now, fraction of energyCapacityKwh" },
  chargeLimitKw: { type: "number", minimum: 0, maximum: MAX_POWER_KW, description: "storage: charge limit (kW), default capacityKw" },
  dischargeLimitKw: { type: "number", minimum: 0, maximum: MAX_POWER_KW, description: "storage: discharge limit (kW), default capacityKw" },
  chargeEfficiency: { type: "number", exclusiveMinimum: 0, maximum: 1, description: "storage: share of the energy drawn that is stored, default 0.95" },
  dischargeEfficiency: { type: "number", exclusiveMinimum: 0, maximum: 1, description: "storage: share of the energy released that reaches the grid side, default 0.95" },
  minReserve: { type: "number", minimum: 0, maximum: 1, description: "storage: state of charge never planned below this fraction, default 0" },
  minFinalSoc: { type: "number", minimum: 0, maximum: 1, description: "storage: state of charge required at the end of the horizon" },
  renewableFraction: { type: "number", minimum: 0, maximum: 1, description: "storage: share of the stored energy that came from renewables, default 0" },
  energyKwh: { type: "number", minimum: 0, maximum: MAX_ENERGY_KWH, description: "flexibleLoad: energy to draw over [arrival, departure) (kWh)" },
  arrival: { type: "integer", minimum: 0, maximum: MAX_HORIZON - 1, description: "flexibleLoad: first interval it can draw, default 0" },
  departure: { type: "integer", minimum: 1, maximum: MAX_HORIZON, description: "flexibleLoad: interval by which it must be done (exclusive), default the horizon" },
  device: deviceSchema,
} as const;

const resourceInputSchema = {
  type: "object",
  additionalProperties: false,
  required: ["type", "capacityKw"],
  properties: resourceFields,
  description: "A resource of the dispatch model. Fields by type: solar/wind capacityKw, availability, costPerKWh; grid capacityKw, costPerKWh, exportCapacityKw, exportPricePerKWh; " +
    "storage capacityKw, energyCapacityKwh, soc, chargeLimitKw, dischargeLimitKw, chargeEfficiency, dischargeEfficiency, minReserve, minFinalSoc, costPerKWh, renewableFraction; " +
    "flexibleLoad capacityKw, energyKwh, arrival, departure. Batteries and flexible loads with a device address receive commands on apply.",
} as const;

const resourceSchema = { ...resourceInputSchema, required: ["id", "type", "capacityKw"] } as const;

const vppStatuses = ["idle", "optimized", "infeasible", "applied"] as const;
type VppStatus = (typeof vppStatuses)[number];

const vppSummaryProperties = {
  id: { type: "string" },
  name: { type: "string" },
  zone: { type: "string" },
  description: { type: ["string", "null"] },
  capacityKw: { type: "number", description: "sum of the supply ratings: solar, wind and storage (the grid connection and flexible loads not counted)" },
  resourceCount: { type: "integer" },
  createdAt: { type: "string", format: "date-time" },
  updatedAt: { type: "string", format: "date-time" },
} as const;

const vppSchema = {
  type: "object",
  required: ["id", "name", "zone", "capacityKw", "resourceCount", "status", "resources", "createdAt", "updatedAt"],
  properties: {
    ...vppSummaryProperties,
    status: { type: "string", enum: vppStatuses, description: "idle: never optimised; optimized / infeasible: the latest run; applied: the latest completed run was sent to the devices" },
    resources: { type: "array", items: resourceSchema },
  },
} as const;

const vppInputSchema = {
  type: "object",
  additionalProperties: false,
  required: ["name", "zone"],
  properties: {
    name: { type: "string", minLength: 1, maxLength: 120 },
    zone: { type: "string", minLength: 1, maxLength: 32, description: "the grid zone of the node's markets, e.g. ZONE-A" },
    description: { type: "string", maxLength: 1000 },
    resources: { type: "array", maxItems: MAX_RESOURCES, items: resourceInputSchema },
  },
} as const;

const allocationSchema = {
  type: "object",
  required: ["resourceId", "type", "output", "outputs"],
  properties: {
    resourceId: { type: "string" },
    type: { type: "string", enum: RESOURCE_TYPES },
    output: { type: "number", description: "kW in the first interval (what apply sends): supply positive, consumption negative (grid: import - export, storage: discharge - charge, flexible load: -draw)" },
    outputs: { type: "array", items: { type: "number" }, description: "kW in every interval of the horizon" },
    socKwh: { type: "array", items: { type: "number" }, description: "storage: state of charge (kWh) at the end of each interval" },
  },
} as const;

const optimizationSchema = {
  type: "object",
  required: ["runId", "vppId", "status", "allocation", "totalCost", "renewableShare", "marginalPrice", "createdAt"],
  properties: {
    runId: { type: "integer" },
    vppId: { type: "string" },
    status: { type: "string", enum: ["completed", "infeasible"] },
    horizon: { type: "integer" },
    intervalMinutes: { type: "integer" },
    allocation: { type: "array", items: allocationSchema },
    totalCost: { type: ["number", "null"], description: "currency over the horizon (generation, import and wear minus export revenue); null when infeasible" },
    averageCost: { type: ["number", "null"], description: "totalCost per kWh of load" },
    loadKwh: { type: ["number", "null"] },
    renewableShare: { type: ["number", "null"], description: "share of the load's energy from solar or wind (0..1); null when infeasible" },
    marginalPrice: { type: "array", items: { type: "number" }, description: "per interval, the cost of one more kWh of demand (the balance constraint's dual)" },
    method: { type: "string" },
    reason: { type: "string", description: "infeasible: which constraint cannot be met, with the amounts" },
    constraint: { type: "string", enum: ["demand", "flexibleLoad", "minFinalSoc", "minRenewable", "maxCost"] },
    shortfall: { type: "number" },
    unit: { type: "string" },
    createdAt: { type: "string", format: "date-time" },
  },
} as const;

const commandSchema = {
  type: "object",
  required: ["resourceId", "type", "outcome"],
  properties: {
    resourceId: { type: "string" },
    type: { type: "string", enum: RESOURCE_TYPES },
    outcome: { type: "string", enum: ["sent", "skipped", "failed"] },
    commandId: { type: "string" },
    topic: { type: "string" },
    command: { type: "object", additionalProperties: true, description: "the payload as published to the device" },
    reason: { type: "string" },
    state: { type: "string", enum: ["sent", "accepted", "completed", "rejected", "unacknowledged"], description: "the device's acknowledgement so far" },
    ackedAt: { type: "string", format: "date-time" },
  },
} as const;

const applySchema = {
  type: "object",
  required: ["vppId", "applyId", "runId", "appliedAt", "success", "sent", "skipped", "failed", "commands"],
  properties: {
    vppId: { type: "string" },
    applyId: { type: "integer" },
    runId: { type: "integer" },
    appliedAt: { type: "string", format: "date-time" },
    success: { type: "boolean", description: "no command failed to go out" },
    sent: { type: "integer" },
    skipped: { type: "integer" },
    failed: { type: "integer" },
    commands: { type: "array", items: commandSchema },
  },
} as const;

const idParams = { type: "object", required: ["id"], properties: { id: { type: "string", pattern: ID_PATTERN } } } as const;

// ---------------------------------------------------------------- JSON in and out

interface ResourceJson {
  id?: string;
  type: VppResourceType;
  name?: string;
  device?: { region: string; deviceType: string; deviceId: string };
  [field: string]: unknown;
}

interface VppJson {
  name: string;
  zone: string;
  description?: string;
  resources?: ResourceJson[];
}

interface OptimizeJson {
  demand: number | number[];
  constraints?: { minRenewable?: number; maxCost?: number };
  horizon?: number;
  intervalMinutes?: number;
}

/** A resource body as a record: only its type's fields, those the type needs, and what the dispatch model accepts. */
function resourceFromJson(json: ResourceJson, prefix: string, taken: ReadonlySet<string>): VppResourceRecord {
  const { type } = json;
  const fields = TYPE_FIELDS[type];
  for (const key of Object.keys(json)) {
    if (COMMON_FIELDS.has(key) || fields.required.includes(key) || fields.optional.includes(key)) continue;
    throw new ApiError("invalid_request", `${prefix}${key} is not a field of a ${type} resource (its fields: ${[...fields.required, ...fields.optional].join(", ")})`, { field: `${prefix}${key}` });
  }
  for (const key of fields.required) {
    if (json[key] === undefined) throw new ApiError("invalid_request", `${prefix}${key} is required for a ${type} resource`, { field: `${prefix}${key}` });
  }
  if (type === "storage" && Array.isArray(json.costPerKWh)) {
    throw new ApiError("invalid_request", `${prefix}costPerKWh must be one number for storage (wear cost per kWh discharged)`, { field: `${prefix}costPerKWh` });
  }
  let id = json.id;
  if (id !== undefined && taken.has(id)) throw new ApiError("vpp_resource_exists", `${prefix}id "${id}" is already a resource of this VPP`, { field: `${prefix}id` });
  while (id === undefined || taken.has(id)) id = `${type}-${randomBytes(3).toString("hex")}`;
  const spec: Record<string, unknown> = {};
  for (const key of [...fields.required, ...fields.optional]) if (json[key] !== undefined) spec[key] = json[key];

  // The dispatch model's own rules (export price <= import price, departure after arrival, ...),
  // checked now so a bad resource is refused when added, not at the next optimisation.
  const lengths = Object.values(spec).filter(Array.isArray).map((a) => (a as unknown[]).length);
  if (lengths.some((n) => n !== lengths[0])) throw new ApiError("invalid_request", `${prefix}: per-interval arrays must all have the same length`, { field: prefix.replace(/\.$/, "") || "resource" });
  try {
    validateDispatchRequest({ resources: [{ id, type, ...spec } as VppResource], demandKw: 0, horizon: lengths[0] ?? MAX_HORIZON });
  } catch (err) {
    if (err instanceof ValidationError) {
      const field = `${prefix}${(err.field ?? "").replace(/^resources\[0\]\.?/, "")}`;
      throw new ApiError("invalid_request", `${field} ${err.shortMessage.slice((err.field ?? "").length).replace(/^:\s*/, "")}`, { field });
    }
    throw err;
  }
  return { id, type, name: json.name ?? null, spec, device: json.device ?? null };
}

const iso = (ms: number) => new Date(ms).toISOString();

function capacityKw(resources: readonly VppResourceRecord[]): number {
  return resources.reduce((sum, r) => (r.type === "solar" || r.type === "wind" || r.type === "storage" ? sum + Number(r.spec.capacityKw ?? 0) : sum), 0);
}

const resourceToJson = (r: VppResourceRecord) => ({ id: r.id, type: r.type, ...(r.name !== null ? { name: r.name } : {}), ...r.spec, ...(r.device ? { device: r.device } : {}) });

/** Rounds away solver noise (1e-12 kW) for people; `digits` decimals. */
function round(x: number, digits: number): number {
  const f = 10 ** digits;
  const r = Math.round(x * f) / f;
  return Object.is(r, -0) ? 0 : r;
}

interface StoredRequest {
  demand: number | number[];
  constraints: { minRenewable?: number; maxCost?: number };
  horizon: number;
  intervalMinutes: number;
}

function optimizationJson(run: VppRun<StoredRequest, DispatchResult>) {
  const r = run.result;
  const common = { runId: run.id, vppId: run.vppId, status: r.status, horizon: run.request.horizon, intervalMinutes: run.request.intervalMinutes, createdAt: iso(run.createdAt) };
  if (r.status === "infeasible") {
    return { ...common, allocation: [], totalCost: null, averageCost: null, loadKwh: null, renewableShare: null, marginalPrice: [], reason: r.reason, constraint: r.constraint, shortfall: round(r.shortfall, 6), unit: r.unit };
  }
  return {
    ...common,
    allocation: r.allocation.map((a) => ({
      resourceId: a.resourceId, type: a.type, output: round(a.output[0] ?? 0, 6), outputs: a.output.map((x) => round(x, 6)),
      ...(a.socKwh ? { socKwh: a.socKwh.map((x) => round(x, 6)) } : {}),
    })),
    totalCost: round(r.totalCost, 9), averageCost: round(r.averageCost, 9), loadKwh: round(r.loadKwh, 6), renewableShare: round(r.renewableShare, 9),
    marginalPrice: r.marginalPrice.map((p) => round(p, 9)), method: r.method,
  };
}

function applyJson(apply: VppApply | (Omit<VppApply, "commands"> & { commands: (VppCommandRecord & { state?: string | null; ackedAt?: number | null })[] })) {
  const count = (o: string) => apply.commands.filter((c) => c.outcome === o).length;
  return {
    vppId: apply.vppId, applyId: apply.id, runId: apply.runId, appliedAt: iso(apply.appliedAt), success: count("failed") === 0,
    sent: count("sent"), skipped: count("skipped"), failed: count("failed"),
    commands: apply.commands.map((c) => ({
      resourceId: c.resourceId, type: c.resourceType, outcome: c.outcome,
      ...(c.commandId !== null ? { commandId: c.commandId } : {}), ...(c.topic !== null ? { topic: c.topic } : {}), ...(c.command !== null ? { command: c.command } : {}),
      ...(c.reason !== null ? { reason: c.reason } : {}), ...(c.state ? { state: c.state } : {}), ...(c.ackedAt ? { ackedAt: iso(c.ackedAt) } : {}),
    })),
  };
}

function statusOf(last: VppRun | undefined, lastCompleted: VppRun | undefined, apply: { runId: number } | undefined): VppStatus {
  if (!last) return "idle";
  if (last.status === "infeasible") return "infeasible";
  return apply && lastCompleted && apply.runId === lastCompleted.id ? "applied" : "optimized";
}

// ---------------------------------------------------------------- routes

export async function vppRoutes(app: FastifyInstance): Promise<void> {
  const db = app.node.indexer.db as unknown as Kysely<VppDatabase>;
  const { clock, engine, logger } = app.node;
  await migrateVppStore(db);

  const publish = (vppId: string, type: string, data: Record<string, unknown>) => {
    const hub = app.node.hub;
    const channel = `vpp.${vppId}.status`;
    if (hub?.hasSubscribers(channel)) hub.publish(channel, type, { vppId, ...data });
  };

  // Device answers to commands a VPP sent go out on that VPP's channel.
  const bridge = app.node.bridge;
  const onAck = (ack: CommandAck) => {
    commandOwner(db, ack.commandId)
      .then((owner) => {
        if (owner) publish(owner.vppId, "commandAck", { applyId: owner.applyId, resourceId: owner.resourceId, commandId: ack.commandId, state: ack.state });
      })
      .catch((err: unknown) => logger.warn({ msg: "vpp: command acknowledgement not published", commandId: ack.commandId, err: (err as Error).message }));
  };
  bridge?.events.on("commandAck", onAck);
  app.addHook("onClose", async () => {
    bridge?.events.off("commandAck", onAck);
  });

  function checkZone(zone: string) {
    if (!engine.markets.some((m) => m.zone === zone)) {
      throw new ApiError("validation_failed", `zone: no market for zone ${zone}; known: ${engine.markets.map((m) => m.zone).join(", ")}`, { field: "zone" });
    }
  }

  function resourcesFromJson(list: readonly ResourceJson[]): VppResourceRecord[] {
    const taken = new Set<string>();
    const given = new Set<string>();
    list.forEach((json, i) => {
      if (json.id === undefined) return;
      if (given.has(json.id)) throw new ApiError("invalid_request", `resources[${i}].id must be unique in the VPP ("${json.id}" appears twice)`, { field: `resources[${i}].id` });
      given.add(json.id);
    });
    return list.map((json, i) => {
      const r = resourceFromJson(json, `resources[${i}].`, taken);
      taken.add(r.id);
      return r;
    });
  }

  async function mustGet(id: string) {
    const found = await getVpp(db, id);
    if (!found) throw new ApiError("vpp_not_found", `no VPP ${id}`, { field: "id" });
    return found;
  }

  async function vppJson(found: { vpp: { id: string; name: string; zone: string; description: string | null; createdAt: number; updatedAt: number }; resources: VppResourceRecord[] }) {
    const [last, lastCompleted, apply] = await Promise.all([lastRun(db, found.vpp.id), lastRun(db, found.vpp.id, { completed: true }), lastApply(db, found.vpp.id)]);
    return {
      ...summaryJson(found), status: statusOf(last, lastCompleted, apply), resources: found.resources.map(resourceToJson),
    };
  }

  function summaryJson({ vpp, resources }: { vpp: { id: string; name: string; zone: string; description: string | null; createdAt: number; updatedAt: number }; resources: VppResourceRecord[] }) {
    return {
      id: vpp.id, name: vpp.name, zone: vpp.zone, description: vpp.description, capacityKw: capacityKw(resources), resourceCount: resources.length,
      createdAt: iso(vpp.createdAt), updatedAt: iso(vpp.updatedAt),
    };
  }

  app.post<{ Body: VppJson & { id?: string } }>("/v1/vpp", {
    preValidation: checkVppArrays,
    preHandler: requireOperator,
    schema: {
      tags: ["vpp"],
      summary: "Create a VPP (operator only)",
      security: bearer,
      body: { ...vppInputSchema, properties: { id: { type: "string", pattern: ID_PATTERN, description: "e.g. VPP-001; generated when absent" }, ...vppInputSchema.properties } },
      response: { 201: vppSchema, 400: problem, 401: problem, 403: problem, 409: problem, 422: problem },
    },
  }, async (request, reply) => {
    const b = request.body;
    const resources = resourcesFromJson(b.resources ?? []);
    checkZone(b.zone);
    const now = clock();
    const id = b.id ?? `vpp-${randomBytes(6).toString("hex")}`;
    const vpp = { id, name: b.name, zone: b.zone, description: b.description ?? null, createdAt: now, updatedAt: now };
    if (!(await insertVpp(db, vpp, resources))) throw new ApiError("vpp_exists", `a VPP with id ${id} exists already`, { field: "id" });
    request.log.info({ msg: "vpp created", vppId: id, resources: resources.length });
    return reply.code(201).send({ ...summaryJson({ vpp, resources }), status: "idle", resources: resources.map(resourceToJson) });
  });

  app.get("/v1/vpp", {
    preHandler: requireAccount,
    schema: {
      tags: ["vpp"],
      summary: "Every VPP of this node",
      security: bearer,
      response: { 200: { type: "object", required: ["vpps"], properties: { vpps: { type: "array", items: { type: "object", properties: vppSummaryProperties } } } }, 401: problem },
    },
  }, async () => ({ vpps: (await listVpps(db)).map(summaryJson) }));

  app.get<{ Params: { id: string } }>("/v1/vpp/:id", {
    preHandler: requireAccount,
    schema: { tags: ["vpp"], summary: "One VPP with its resources and status", security: bearer, params: idParams, response: { 200: vppSchema, 400: problem, 401: problem, 404: problem } },
  }, async (request) => vppJson(await mustGet(request.params.id)));

  app.put<{ Params: { id: string }; Body: VppJson }>("/v1/vpp/:id", {
    preValidation: checkVppArrays,
    preHandler: requireOperator,
    schema: {
      tags: ["vpp"],
      summary: "Replace a VPP's name, zone and description (operator only); `resources`, when given, replaces the whole list",
      security: bearer,
      params: idParams,
      body: vppInputSchema,
      response: { 200: vppSchema, 400: problem, 401: problem, 403: problem, 404: problem, 422: problem },
    },
  }, async (request) => {
    const b = request.body;
    const resources = b.resources ? resourcesFromJson(b.resources) : undefined;
    checkZone(b.zone);
    const updated = await updateVpp(db, request.params.id, { name: b.name, zone: b.zone, description: b.description ?? null }, resources, clock());
    if (!updated) throw new ApiError("vpp_not_found", `no VPP ${request.params.id}`, { field: "id" });
    const json = await vppJson(await mustGet(request.params.id));
    publish(request.params.id, "updated", { status: json.status, resourceCount: json.resourceCount });
    return json;
  });

  app.delete<{ Params: { id: string } }>("/v1/vpp/:id", {
    preHandler: requireOperator,
    schema: {
      tags: ["vpp"], summary: "Delete a VPP with its resources and history (operator only)", security: bearer, params: idParams,
      response: { 204: { type: "null" }, 400: problem, 401: problem, 403: problem, 404: problem },
    },
  }, async (request, reply) => {
    if (!(await deleteVpp(db, request.params.id))) throw new ApiError("vpp_not_found", `no VPP ${request.params.id}`, { field: "id" });
    request.log.info({ msg: "vpp deleted", vppId: request.params.id });
    publish(request.params.id, "deleted", { status: "deleted" });
    return reply.code(204).send();
  });

  app.get<{ Params: { id: string } }>("/v1/vpp/:id/resources", {
    preHandler: requireAccount,
    schema: {
      tags: ["vpp"], summary: "A VPP's resources, in the order they were added", security: bearer, params: idParams,
      response: { 200: { type: "object", required: ["vppId", "resources"], properties: { vppId: { type: "string" }, resources: { type: "array", items: resourceSchema } } }, 400: problem, 401: problem, 404: problem },
    },
  }, async (request) => {
    const found = await mustGet(request.params.id);
    return { vppId: found.vpp.id, resources: found.resources.map(resourceToJson) };
  });

  app.post<{ Params: { id: string }; Body: ResourceJson }>("/v1/vpp/:id/resources", {
    preValidation: async (request) => checkResourceArrays(request.body, ""),
    preHandler: requireOperator,
    schema: {
      tags: ["vpp"], summary: "Add a resource to a VPP (operator only)", security: bearer, params: idParams, body: resourceInputSchema,
      response: { 201: resourceSchema, 400: problem, 401: problem, 403: problem, 404: problem, 409: problem },
    },
  }, async (request, reply) => {
    const found = await mustGet(request.params.id);
    if (found.resources.length >= MAX_RESOURCES) throw new ApiError("validation_failed", `a VPP holds at most ${MAX_RESOURCES} resources`, { field: "id" });
    const resource = resourceFromJson(request.body, "", new Set(found.resources.map((r) => r.id)));
    const added = await addResource(db, request.params.id, resource, clock());
    if (added === "no_vpp") throw new ApiError("vpp_not_found", `no VPP ${request.params.id}`, { field: "id" });
    if (added === "exists") throw new ApiError("vpp_resource_exists", `id "${resource.id}" is already a resource of this VPP`, { field: "id" });
    publish(request.params.id, "resourceAdded", { resourceId: resource.id, type: resource.type });
    return reply.code(201).send(resourceToJson(resource));
  });

  app.delete<{ Params: { id: string; resourceId: string } }>("/v1/vpp/:id/resources/:resourceId", {
    preHandler: requireOperator,
    schema: {
      tags: ["vpp"], summary: "Remove a resource from a VPP (operator only)", security: bearer,
      params: { type: "object", required: ["id", "resourceId"], properties: { id: { type: "string", pattern: ID_PATTERN }, resourceId: { type: "string", pattern: ID_PATTERN } } },
      response: { 204: { type: "null" }, 400: problem, 401: problem, 403: problem, 404: problem },
    },
  }, async (request, reply) => {
    await mustGet(request.params.id);
    if (!(await deleteResource(db, request.params.id, request.params.resourceId, clock()))) {
      throw new ApiError("vpp_resource_not_found", `VPP ${request.params.id} has no resource ${request.params.resourceId}`, { field: "resourceId" });
    }
    publish(request.params.id, "resourceRemoved", { resourceId: request.params.resourceId });
    return reply.code(204).send();
  });

  app.post<{ Params: { id: string }; Body: OptimizeJson }>("/v1/vpp/:id/optimize", {
    preValidation: async (request) => checkIntervalArray((request.body as { demand?: unknown } | null)?.demand, "demand", RANGES.demand),
    preHandler: requireOperator,
    schema: {
      tags: ["vpp"],
      summary: "Optimise the VPP's dispatch against a demand (exact LP); an infeasible request answers 200 with status infeasible and the reason (operator only)",
      security: bearer,
      params: idParams,
      body: {
        type: "object",
        additionalProperties: false,
        required: ["demand"],
        properties: {
          demand: perInterval("inflexible demand (kW, the average over an interval)", RANGES.demand),
          constraints: {
            type: "object",
            additionalProperties: false,
            properties: {
              minRenewable: { type: "number", minimum: 0, maximum: 1, description: "least share of the load's energy from solar or wind, directly or through storage" },
              maxCost: { type: "number", minimum: 0, maximum: MAX_PRICE_PER_KWH, description: "highest average cost per kWh of load" },
            },
          },
          horizon: { type: "integer", minimum: 1, maximum: MAX_HORIZON, description: "intervals; default the length of demand, or 1" },
          intervalMinutes: { type: "integer", minimum: 1, maximum: 1440, default: 60, description: "length of one interval" },
        },
      },
      response: { 200: optimizationSchema, 400: problem, 401: problem, 403: problem, 404: problem, 422: problem },
    },
  }, async (request) => {
    const { id } = request.params;
    const { vpp, resources } = await mustGet(id);
    const b = request.body;
    const intervalMinutes = b.intervalMinutes ?? 60;
    const dispatch: DispatchRequest = {
      resources: resources.map((r) => ({ id: r.id, type: r.type, ...r.spec }) as VppResource),
      demandKw: b.demand,
      ...(b.horizon !== undefined ? { horizon: b.horizon } : {}),
      intervalHours: intervalMinutes / 60,
      constraints: b.constraints ?? {},
    };
    let result: DispatchResult;
    try {
      result = optimizeDispatch(await loadLpSolver(), dispatch);
    } catch (err) {
      throw dispatchError(err, resources);
    }
    const horizon = b.horizon ?? (Array.isArray(b.demand) ? b.demand.length : 1);
    const run = { vppId: vpp.id, status: result.status, request: { demand: b.demand, constraints: b.constraints ?? {}, horizon, intervalMinutes }, resources, result, createdAt: clock() };
    const runId = await insertRun(db, run);
    const json = optimizationJson({ ...run, id: runId });
    request.log.info({ msg: "vpp optimised", vppId: vpp.id, runId, status: result.status });
    publish(vpp.id, "optimized", {
      status: result.status === "completed" ? "optimized" : "infeasible", runId, result: result.status,
      ...(result.status === "completed" ? { totalCost: json.totalCost, renewableShare: json.renewableShare } : { reason: result.reason }),
    });
    return json;
  });

  app.post<{ Params: { id: string }; Body: { runId?: number } | undefined }>("/v1/vpp/:id/apply", {
    preHandler: requireOperator,
    schema: {
      tags: ["vpp"],
      summary: "Send the first interval of the last completed optimisation to the devices through the meter bridge (operator only); resources with no command or no device address are reported as skipped",
      security: bearer,
      params: idParams,
      body: { type: ["object", "null"], additionalProperties: false, properties: { runId: { type: "integer", minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: "must be the last completed run (the default); an older plan is never sent" } } },
      response: { 200: applySchema, 400: problem, 401: problem, 403: problem, 404: problem, 409: problem, 503: problem },
    },
  }, async (request) => {
    const { id } = request.params;
    const { vpp } = await mustGet(id);
    const run = (await lastRun(db, id, { completed: true })) as VppRun<StoredRequest, DispatchResult> | undefined;
    if (!run || run.result.status !== "completed") throw new ApiError("nothing_to_apply", `VPP ${id} has no completed optimisation to apply: POST /v1/vpp/${id}/optimize first`, { field: "id" });
    const wanted = request.body?.runId;
    if (wanted !== undefined && wanted !== run.id) throw new ApiError("nothing_to_apply", `run ${wanted} is not the last completed optimisation of VPP ${id} (that is run ${run.id})`, { field: "runId" });
    const bridge = app.node.bridge;
    if (!bridge) throw new ApiError("unavailable", "this node runs no meter bridge: device commands cannot be sent");

    const appliedAt = clock();
    const deviceOf = new Map(run.resources.map((r) => [r.id, r.device]));
    const plan = planDeviceCommands({
      dispatch: run.result.allocation.map((a) => ({ resourceId: a.resourceId, type: a.type, outputKw: a.output[0] ?? 0, device: deviceOf.get(a.resourceId) ?? null })),
      intervalHours: run.result.intervalHours,
      startMs: appliedAt,
    });
    const commands: VppCommandRecord[] = [];
    for (const p of plan) {
      if ("skipped" in p) {
        commands.push({ resourceId: p.resourceId, resourceType: p.type, outcome: "skipped", commandId: null, topic: null, command: null, reason: p.skipped });
        continue;
      }
      try {
        const sent = await bridge.sendCommand(p.device, p.command);
        commands.push({ resourceId: p.resourceId, resourceType: p.type, outcome: "sent", commandId: sent.commandId, topic: sent.topic, command: sent.payload, reason: null });
      } catch (err) {
        request.log.warn({ msg: "vpp: device command not sent", vppId: id, resourceId: p.resourceId, err: (err as Error).message });
        commands.push({ resourceId: p.resourceId, resourceType: p.type, outcome: "failed", commandId: null, topic: null, command: null, reason: err instanceof BaseError ? err.shortMessage : "the broker did not take the command" });
      }
    }
    const applyId = await insertApply(db, { vppId: vpp.id, runId: run.id, appliedAt }, commands);
    const json = applyJson({ id: applyId, vppId: vpp.id, runId: run.id, appliedAt, commands: commands.map((c) => ({ ...c, state: c.outcome === "sent" ? "sent" : null, ackedAt: null })) });
    request.log.info({ msg: "vpp applied", vppId: id, runId: run.id, applyId, sent: json.sent, skipped: json.skipped, failed: json.failed });
    publish(vpp.id, "applied", { status: "applied", applyId, runId: run.id, sent: json.sent, skipped: json.skipped, failed: json.failed, commands: json.commands });
    return json;
  });

  app.get<{ Params: { id: string } }>("/v1/vpp/:id/status", {
    preHandler: requireAccount,
    schema: {
      tags: ["vpp"],
      summary: "The VPP's status: its last optimisation and its last apply, with each command's acknowledgement state",
      security: bearer,
      params: idParams,
      response: {
        200: {
          type: "object",
          required: ["vppId", "status", "lastOptimization", "lastApply"],
          properties: {
            vppId: { type: "string" },
            status: { type: "string", enum: vppStatuses },
            lastOptimization: { anyOf: [{ type: "null" }, optimizationSchema] },
            lastApply: { anyOf: [{ type: "null" }, applySchema] },
          },
        },
        400: problem, 401: problem, 404: problem,
      },
    },
  }, async (request) => {
    const { id } = request.params;
    await mustGet(id);
    const [last, lastCompleted, apply] = await Promise.all([lastRun(db, id), lastRun(db, id, { completed: true }), lastApply(db, id)]);
    return {
      vppId: id, status: statusOf(last, lastCompleted, apply),
      lastOptimization: last ? optimizationJson(last as VppRun<StoredRequest, DispatchResult>) : null,
      lastApply: apply ? applyJson(apply) : null,
    };
  });
}

/**
 * The dispatch model's ValidationError as a problem: the request's own fields (demand, horizon,
 * constraints) are a 400; a stored resource that does not fit this request (an availability
 * array of another length than the horizon) is a 422 naming the resource.
 */
function dispatchError(err: unknown, resources: readonly VppResourceRecord[]): unknown {
  if (!(err instanceof ValidationError)) return err;
  const field = err.field ?? "request";
  const rule = err.shortMessage.slice(field.length).replace(/^:\s*/, "");
  const resource = /^resources\[(\d+)\]\.?(.*)$/.exec(field);
  if (resource) {
    const r = resources[Number(resource[1])];
    return new ApiError("validation_failed", `resource ${r?.id ?? resource[1]}: ${resource[2] || "resource"} ${rule}`, { field });
  }
  if (field === "resources") return new ApiError("validation_failed", `the VPP ${rule.replace(/^must list/, "must hold")} (POST its resources first)`, { field: "resources" });
  const renamed = field.replace(/^demandKw(\.length)?/, "demand");
  return new ApiError("invalid_request", `${renamed} ${rule}`, { field: renamed });
}
