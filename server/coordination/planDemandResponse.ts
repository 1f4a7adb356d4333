// What an event asks of one resource, as the bridge's demand_response command and as the
// per-interval target its performance is judged against. The mapping:
//  - LOAD_DISPATCH (any signal_type, e.g. "delta"): the payload is the kW the resource should
//    shed in that interval; a negative payload (OpenADR's "change of load") counts by its size.
//  - a "level" signal (e.g. SIMPLE) without a LOAD_DISPATCH: levels 0..3 = normal / moderate /
//    high / special; the resource should shed a share of its shiftable power: 0, 50%, 100%, 100%.
//    Shiftable power: capabilities.flexibleKw, else a battery's maxDischargeKw, an EV's maxChargeKw.
//  - signalLevel: the highest level of a level signal in the event, else "moderate".
//  - targetReductionW: the largest per-interval target; startMs..endMs: from the first to the
//    last interval with a target above zero.
// Other signals (prices, ...) carry no device command: the event still goes out on WebSocket.
import type { DeviceCommand } from "../../bridge/deviceCommands.js";
import { isLevelSignal, isLoadDispatch, type EventSchedule, type ScheduledSignal } from "./checkNewEvent.js";
import type { Resource } from "./types.js";

export type SignalLevel = "moderate" | "high" | "special";
const LEVEL_NAMES: Record<number, SignalLevel> = { 1: "moderate", 2: "high", 3: "special" };
/** Share (percent) of the shiftable power a level asks for. */
const LEVEL_SHARE_PCT: Record<number, bigint> = { 0: 0n, 1: 50n, 2: 100n, 3: 100n };

export interface IntervalTarget {
  startMs: number;
  endMs: number;
  targetW: bigint;
}

export type DemandResponsePlan =
  | { kind: "dispatch"; targets: IntervalTarget[]; command: Extract<DeviceCommand, { type: "demand_response" }> }
  | { kind: "none"; targets: IntervalTarget[]; reason: string };

const kwToW = (kw: number): bigint => BigInt(Math.round(kw * 1000));

/** The power a resource can shed, in W; undefined when it declared none. */
export function shiftablePowerW(resource: Pick<Resource, "type" | "capabilities">): bigint | undefined {
  const c = resource.capabilities;
  const kw = c.flexibleKw ?? (resource.type === "battery" ? c.maxDischargeKw : resource.type === "ev" ? c.maxChargeKw : undefined);
  return kw === undefined || kw <= 0 ? undefined : kwToW(kw);
}

function highestLevel(signals: readonly ScheduledSignal[]): number {
  let level = 0;
  for (const s of signals) if (isLevelSignal({ signal_type: s.type })) for (const i of s.intervals) level = Math.max(level, i.payload);
  return level;
}

export function planDemandResponse(eventId: string, schedule: EventSchedule, resource: Pick<Resource, "type" | "capabilities" | "device">): DemandResponsePlan {
  const dispatch = schedule.signals.find((s) => isLoadDispatch({ signal_name: s.name }));
  const level = schedule.signals.find((s) => isLevelSignal({ signal_type: s.type }));
  let targets: IntervalTarget[];
  if (dispatch) {
    targets = dispatch.intervals.map((i) => ({ startMs: i.startMs, endMs: i.endMs, targetW: kwToW(Math.abs(i.payload)) }));
  } else if (level) {
    const power = shiftablePowerW(resource);
    if (power === undefined) return { kind: "none", targets: [], reason: "a level signal needs the resource's shiftable power (capabilities.flexibleKw, a battery's maxDischargeKw or an EV's maxChargeKw)" };
    targets = level.intervals.map((i) => ({ startMs: i.startMs, endMs: i.endMs, targetW: (power * LEVEL_SHARE_PCT[i.payload]!) / 100n }));
  } else {
    return { kind: "none", targets: [], reason: `no LOAD_DISPATCH or level signal (signals: ${schedule.signals.map((s) => s.name).join(", ")}): nothing to command` };
  }
  const active = targets.filter((t) => t.targetW > 0n);
  if (active.length === 0) return { kind: "none", targets, reason: "the signal asks for no reduction in any interval" };
  if (!resource.device) return { kind: "none", targets, reason: "the resource has no device address to command" };
  const peak = active.reduce((max, t) => (t.targetW > max ? t.targetW : max), 0n);
  return {
    kind: "dispatch", targets,
    command: {
      type: "demand_response", eventId, startMs: Math.min(...active.map((t) => t.startMs)), endMs: Math.max(...active.map((t) => t.endMs)),
      targetReductionW: peak, signalLevel: LEVEL_NAMES[highestLevel(schedule.signals)] ?? "moderate",
    },
  };
}
