// Commands to devices on `{root}/{region}/{deviceType}/{deviceId}/command` (battery charge or
// discharge, EV charge schedules, demand-response events) and their acknowledgements on
// `.../status`. Every command is recorded before it is published; a device answers with
// `{ command_id, status: "accepted" | "rejected" | "completed", reason? }`, and a command with
// no answer by its deadline is marked unacknowledged. Energy and power are integers (Wh, W)
// here and kWh / kW on the wire, converted once when the payload is built.
import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import type { Logger } from "../lib/logger.js";
import type { BridgeDatabase } from "./database.js";
import { DeviceCommandError } from "./errors.js";
import type { BridgeMetrics } from "./metrics.js";
import { commandTopic, parseDeviceTopic } from "./topics.js";
import { whToKwh } from "./units.js";

export type DeviceCommand =
  | { type: "battery"; action: "charge" | "discharge"; energyWh: bigint; maxPowerW?: bigint }
  | { type: "ev_charge_schedule"; slots: { startMs: number; endMs: number; powerW: bigint }[]; targetEnergyWh?: bigint; departureMs?: number }
  | { type: "demand_response"; eventId: string; startMs: number; endMs: number; targetReductionW: bigint; signalLevel?: "moderate" | "high" | "special" };

export interface DeviceAddress {
  region: string;
  deviceType: string;
  deviceId: string;
}

export interface CommandDependencies {
  db: Kysely<BridgeDatabase>;
  publish: (topic: string, payload: string) => Promise<void>;
  clock: () => number;
  topicRoot: string;
  ackSeconds: number;
  metrics: BridgeMetrics;
  logger: Logger;
}

export interface SentCommand {
  commandId: string;
  topic: string;
  payload: Record<string, unknown>;
}

export type CommandState = "sent" | "accepted" | "completed" | "rejected" | "unacknowledged";

export interface CommandAck {
  commandId: string;
  state: CommandState;
  deviceId: string;
}

/** The device-facing payload; throws DeviceCommandError naming the field and rule. */
export function buildCommandPayload(command: DeviceCommand, commandId: string, nowMs: number, ackSeconds: number): Record<string, unknown> {
  const base = { command_id: commandId, type: command.type, issued_at: new Date(nowMs).toISOString(), ack_by: new Date(nowMs + ackSeconds * 1000).toISOString() };
  switch (command.type) {
    case "battery": {
      if (command.action !== "charge" && command.action !== "discharge") {
        throw new DeviceCommandError("action", `"${String(command.action)}" is not allowed: must be "charge" or "discharge"`);
      }
      if (command.energyWh <= 0n) throw new DeviceCommandError("energyWh", "must be a positive number of Wh");
      if (command.maxPowerW !== undefined && command.maxPowerW <= 0n) throw new DeviceCommandError("maxPowerW", "must be a positive number of W");
      return { ...base, action: command.action, energy_kwh: whToKwh(command.energyWh), ...(command.maxPowerW !== undefined ? { max_power_kw: whToKwh(command.maxPowerW) } : {}) };
    }
    case "ev_charge_schedule": {
      if (command.slots.length === 0) throw new DeviceCommandError("slots", "must hold at least one charging slot");
      command.slots.forEach((s, i) => {
        if (!(s.endMs > s.startMs)) throw new DeviceCommandError(`slots[${i}]`, "must end after it starts");
        if (s.powerW <= 0n) throw new DeviceCommandError(`slots[${i}].powerW`, "must be a positive number of W");
        if (i > 0 && s.startMs < command.slots[i - 1]!.endMs) throw new DeviceCommandError(`slots[${i}]`, "must not overlap the previous slot");
      });
      if (command.targetEnergyWh !== undefined && command.targetEnergyWh <= 0n) throw new DeviceCommandError("targetEnergyWh", "must be a positive number of Wh");
      return {
        ...base,
        schedule: command.slots.map((s) => ({ start: new Date(s.startMs).toISOString(), end: new Date(s.endMs).toISOString(), power_kw: whToKwh(s.powerW) })),
        ...(command.targetEnergyWh !== undefined ? { target_kwh: whToKwh(command.targetEnergyWh) } : {}),
        ...(command.departureMs !== undefined ? { departure: new Date(command.departureMs).toISOString() } : {}),
      };
    }
    case "demand_response": {
      if (!command.eventId) throw new DeviceCommandError("eventId", "is required");
      if (!(command.endMs > command.startMs)) throw new DeviceCommandError("endMs", "must be after startMs");
      if (command.targetReductionW <= 0n) throw new DeviceCommandError("targetReductionW", "must be a positive number of W");
      return {
        ...base, event_id: command.eventId, start: new Date(command.startMs).toISOString(), end: new Date(command.endMs).toISOString(),
        target_reduction_kw: whToKwh(command.targetReductionW), signal_level: command.signalLevel ?? "moderate",
      };
    }
    default:
      throw new DeviceCommandError("type", `"${(command as { type: string }).type}" is not one of battery, ev_charge_schedule, demand_response`);
  }
}

/** Records, then publishes a command (QoS 1). */
export async function sendDeviceCommand(deps: CommandDependencies, device: DeviceAddress, command: DeviceCommand): Promise<SentCommand> {
  const nowMs = deps.clock();
  const commandId = randomUUID();
  const payload = buildCommandPayload(command, commandId, nowMs, deps.ackSeconds);
  const topic = commandTopic(deps.topicRoot, device);
  await deps.db
    .insertInto("bridge_commands")
    .values({
      command_id: commandId, topic, device_id: device.deviceId, command: JSON.stringify(payload), state: "sent",
      sent_at: BigInt(nowMs), ack_deadline: BigInt(nowMs + deps.ackSeconds * 1000), acked_at: null, ack: null,
    })
    .execute();
  await deps.publish(topic, JSON.stringify(payload));
  deps.metrics.commands.sent++;
  deps.logger.info({ msg: "device command sent", commandId, topic, type: command.type });
  return { commandId, topic, payload };
}

/** A message on a `.../status` topic; returns the acknowledgement it carried, if any. */
export async function recordCommandStatus(deps: CommandDependencies, topic: string, payload: Uint8Array): Promise<CommandAck | undefined> {
  const device = parseDeviceTopic(deps.topicRoot, topic);
  let body: { command_id?: unknown; status?: unknown };
  try {
    body = JSON.parse(Buffer.from(payload).toString("utf8"));
  } catch {
    deps.logger.warn({ msg: "device status is not JSON", topic });
    return undefined;
  }
  // Status messages also carry plain device state; only those naming a command are acknowledgements.
  if (typeof body?.command_id !== "string") return undefined;
  const status = body.status;
  if (status !== "accepted" && status !== "rejected" && status !== "completed") {
    deps.logger.warn({ msg: "command acknowledgement with an unknown status", topic, commandId: body.command_id, status });
    return undefined;
  }
  const nowMs = deps.clock();
  const updated = await deps.db
    .updateTable("bridge_commands")
    .set({ state: status, acked_at: BigInt(nowMs), ack: Buffer.from(payload).toString("utf8").slice(0, 4_096) })
    .where("command_id", "=", body.command_id)
    // Only from the device it was sent to, and never back from a final answer.
    .where("device_id", "=", device?.deviceId ?? "")
    .where("state", "not in", status === "completed" ? ["completed", "rejected"] : ["accepted", "completed", "rejected"])
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) return undefined;
  deps.metrics.commands[status]++;
  return { commandId: body.command_id, state: status, deviceId: device?.deviceId ?? "" };
}

/** Marks commands whose deadline passed without an answer. */
export async function expireUnacknowledgedCommands(deps: CommandDependencies): Promise<number> {
  const r = await deps.db
    .updateTable("bridge_commands")
    .set({ state: "unacknowledged" })
    .where("state", "=", "sent")
    .where("ack_deadline", "<", BigInt(deps.clock()))
    .executeTakeFirst();
  const n = Number(r.numUpdatedRows);
  deps.metrics.commands.unacknowledged += n;
  return n;
}

export async function commandState(db: Kysely<BridgeDatabase>, commandId: string): Promise<CommandState | undefined> {
  const r = await db.selectFrom("bridge_commands").select("state").where("command_id", "=", commandId).executeTakeFirst();
  return r?.state as CommandState | undefined;
}
