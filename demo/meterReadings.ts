// What a home's smart meter publishes for a stepped interval, in the shapes the meter bridge
// parses (bridge/parseReading.ts): the 15-minute interval reading (IEEE 2030.5 style, kWh) on
// `.../{meterId}/interval`, and the export and import registers (cumulative Wh) at the interval's
// end on `.../{meterId}/export` and `.../import`. The runner adds the topic root and region.
import { INTERVAL_SECONDS } from "./dayIntervals.js";
import type { Household } from "./community.js";
import type { HouseholdInterval } from "./household.js";

export interface MeterIntervalPayload {
  meter_id: string;
  /** ISO 8601, UTC, the interval's start. */
  interval_start: string;
  interval_minutes: number;
  /** kWh = Wh / 1000 exactly (the bridge rounds back to the same Wh). */
  export_kwh: number;
  import_kwh: number;
  generation_kwh: number;
  consumption_kwh: number;
  battery_charge_kwh: number;
  battery_discharge_kwh: number;
  /** Present only for homes with a battery, 0-100. */
  battery_soc_pct?: number;
}

export interface MeterRegisterPayload {
  meter_id: string;
  /** ISO 8601, UTC, the interval's end (when the register was read). */
  timestamp: string;
  /** Cumulative Wh. */
  value: number;
  unit: "Wh";
}

export interface MeterReadings {
  /** Device id for the topic: household.meterId. */
  meterId: string;
  interval: MeterIntervalPayload;
  export: MeterRegisterPayload;
  import: MeterRegisterPayload;
}

/** The meter's messages for one stepped interval of `household`. */
export function meterReadingsFor(household: Household, interval: HouseholdInterval, intervalSeconds: number = INTERVAL_SECONDS): MeterReadings {
  const meterId = household.meterId;
  const end = new Date((interval.intervalStart + intervalSeconds) * 1000).toISOString();
  const payload: MeterIntervalPayload = {
    meter_id: meterId,
    interval_start: new Date(interval.intervalStart * 1000).toISOString(),
    interval_minutes: intervalSeconds / 60,
    export_kwh: interval.exportWh / 1000,
    import_kwh: interval.importWh / 1000,
    generation_kwh: interval.generationWh / 1000,
    consumption_kwh: interval.consumptionWh / 1000,
    battery_charge_kwh: interval.batteryChargeWh / 1000,
    battery_discharge_kwh: interval.batteryDischargeWh / 1000,
  };
  if (interval.batterySocPct !== null) payload.battery_soc_pct = interval.batterySocPct;
  return {
    meterId,
    interval: payload,
    export: { meter_id: meterId, timestamp: end, value: interval.exportRegisterWh, unit: "Wh" },
    import: { meter_id: meterId, timestamp: end, value: interval.importRegisterWh, unit: "Wh" },
  };
}
