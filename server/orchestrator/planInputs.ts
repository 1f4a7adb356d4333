// Coordination resources (kWh/kW on the wire, last reported state) as the planner's inputs
// (Wh/W integers), converted once here. A resource that lacks what planning it needs (a battery
// without a reported state of charge, an EV without a charger rating) is left out with the
// reason, so the run can say what it did not use.
import type { PlanBattery, PlanEv, PlanLoad } from "../../engine/orchestrator/planActions.js";
import type { Resource } from "../coordination/types.js";

export interface PlanInputs {
  batteries: PlanBattery[];
  evs: PlanEv[];
  loads: PlanLoad[];
  ignored: { resourceId: string; reason: string }[];
}

const wh = (kwh: number) => Math.round(kwh * 1000);
const ok = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x) && x >= 0;

export function planInputsFrom(resources: readonly Resource[]): PlanInputs {
  const out: PlanInputs = { batteries: [], evs: [], loads: [], ignored: [] };
  for (const r of resources) {
    const c = r.capabilities ?? {};
    const s = r.lastReport?.state ?? {};
    const device = r.device ?? null;
    if (r.type === "battery") {
      if (!ok(c.capacityKwh) || !ok(s.socPct) || s.socPct > 100) {
        out.ignored.push({ resourceId: r.resourceId, reason: "battery without capacityKwh or a reported socPct (0..100)" });
        continue;
      }
      out.batteries.push({
        resourceId: r.resourceId, capacityWh: wh(c.capacityKwh), socPct: s.socPct, ...(ok(c.reservePct) && c.reservePct <= 100 ? { reservePct: c.reservePct } : {}),
        maxChargeW: wh(c.maxChargeKw ?? 0), maxDischargeW: wh(c.maxDischargeKw ?? c.maxChargeKw ?? 0), device,
      });
    } else if (r.type === "ev") {
      if (!ok(c.maxChargeKw)) {
        out.ignored.push({ resourceId: r.resourceId, reason: "EV without maxChargeKw" });
        continue;
      }
      const departureMs = s.departure ? Date.parse(s.departure) : NaN;
      out.evs.push({
        resourceId: r.resourceId, energyNeededWh: ok(s.energyNeededKwh) ? wh(s.energyNeededKwh) : 0, maxChargeW: wh(c.maxChargeKw), pluggedIn: s.pluggedIn === true,
        departureMs: Number.isFinite(departureMs) ? departureMs : null, v2g: c.v2g === true, device,
        ...(ok(c.capacityKwh) ? { capacityWh: wh(c.capacityKwh) } : {}), ...(ok(s.socPct) && s.socPct <= 100 ? { socPct: s.socPct } : {}),
        ...(ok(c.maxDischargeKw) ? { maxDischargeW: wh(c.maxDischargeKw) } : {}),
      });
    } else if (r.type === "flexible_load") {
      if (!ok(c.flexibleKw)) {
        out.ignored.push({ resourceId: r.resourceId, reason: "flexible load without flexibleKw" });
        continue;
      }
      out.loads.push({ resourceId: r.resourceId, flexibleW: wh(c.flexibleKw), essential: c.essential === true, device });
    }
  }
  return out;
}
