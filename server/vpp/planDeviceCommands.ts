// From an optimised dispatch to the device commands that carry out its first interval: a
// battery charges or discharges the planned energy, a flexible load (an EV) charges at the
// planned power. Solar, wind and the grid connection have no command in the bridge's set
// (battery, ev_charge_schedule, demand_response), and a resource without a device address
// cannot be told anything: those are skipped with the reason, never silently dropped.
import type { DeviceAddress, DeviceCommand } from "../../bridge/deviceCommands.js";
import type { VppResourceType } from "../../engine/vpp/types.js";

/** Below this (kW) a planned output is solver noise, not a dispatch. */
const IDLE_KW = 1e-6;

export interface PlannedDispatch {
  resourceId: string;
  type: VppResourceType;
  /** kW in the first interval: supply positive, consumption negative. */
  outputKw: number;
  device: DeviceAddress | null;
}

export type PlannedCommand =
  | { resourceId: string; type: VppResourceType; device: DeviceAddress; command: DeviceCommand }
  | { resourceId: string; type: VppResourceType; skipped: string };

export interface PlanDeviceCommandsParameters {
  dispatch: readonly PlannedDispatch[];
  /** Length of the interval the commands cover. */
  intervalHours: number;
  /** When the interval starts (unix ms): the EV schedule's slot. */
  startMs: number;
}

/** kW over `hours` as whole Wh, and kW as whole W; never a float past this point. */
const wh = (kw: number, hours: number) => BigInt(Math.round(Math.abs(kw) * hours * 1000));
const watts = (kw: number) => BigInt(Math.round(Math.abs(kw) * 1000));

export function planDeviceCommands({ dispatch, intervalHours, startMs }: PlanDeviceCommandsParameters): PlannedCommand[] {
  return dispatch.map((d): PlannedCommand => {
    const { resourceId, type } = d;
    const kw = Math.abs(d.outputKw) < IDLE_KW ? 0 : d.outputKw;
    switch (type) {
      case "solar":
      case "wind":
        return { resourceId, type, skipped: `${type} follows its forecast availability (planned ${formatKw(kw)}); the bridge has no curtailment command` };
      case "grid":
        return { resourceId, type, skipped: `the grid connection is not a device (planned ${kw >= 0 ? "import" : "export"} ${formatKw(Math.abs(kw))})` };
      case "storage": {
        if (!d.device) return { resourceId, type, skipped: "no device address: add one to the resource to send it commands" };
        if (kw === 0 || wh(kw, intervalHours) === 0n) return { resourceId, type, skipped: "idle in the first interval (0 kW): no command needed" };
        return { resourceId, type, device: d.device, command: { type: "battery", action: kw > 0 ? "discharge" : "charge", energyWh: wh(kw, intervalHours), maxPowerW: watts(kw) } };
      }
      case "flexibleLoad": {
        if (!d.device) return { resourceId, type, skipped: "no device address: add one to the resource to send it commands" };
        // A flexible load's output is minus what it draws.
        if (kw >= 0 || watts(kw) === 0n || wh(kw, intervalHours) === 0n) return { resourceId, type, skipped: "draws nothing in the first interval: no command needed" };
        const endMs = startMs + Math.round(intervalHours * 3_600_000);
        return {
          resourceId, type, device: d.device,
          command: { type: "ev_charge_schedule", slots: [{ startMs, endMs, powerW: watts(kw) }], targetEnergyWh: wh(kw, intervalHours) },
        };
      }
    }
  });
}

function formatKw(kw: number): string {
  return `${Number(kw.toFixed(3))} kW`;
}
