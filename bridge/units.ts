// Unit conversion at the edge: devices speak W, kW, Wh and kWh as JSON numbers; inside the
// bridge energy is an integer number of watt-hours and power an integer number of watts.
// Rounding is to the nearest unit, once, here; the chain only ever sees the integers.

export const energyUnits = ["Wh", "kWh"] as const;
export const powerUnits = ["W", "kW"] as const;
export type EnergyUnit = (typeof energyUnits)[number];
export type PowerUnit = (typeof powerUnits)[number];
export type ReadingUnit = EnergyUnit | PowerUnit;

const unitFactor: Record<ReadingUnit, number> = { Wh: 1, kWh: 1000, W: 1, kW: 1000 };

export function isEnergyUnit(unit: string): unit is EnergyUnit {
  return unit === "Wh" || unit === "kWh";
}

export function isPowerUnit(unit: string): unit is PowerUnit {
  return unit === "W" || unit === "kW";
}

/**
 * `value` in `unit` as an integer of the base unit (Wh or W), rounded to the nearest.
 * Multiplying a float by 1000 and rounding is exact for every value a meter can hold
 * (registers below 10^9 kWh keep 6 decimals of a double's 15-16 significant digits).
 */
export function toBaseUnits(value: number, unit: ReadingUnit): number {
  return Math.round(value * unitFactor[unit]);
}

/** kWh (a device-facing number) to integer Wh. */
export function kwhToWh(kwh: number): number {
  return Math.round(kwh * 1000);
}

/** Integer Wh to the kWh a device expects; exact for any Wh below 2^53. */
export function whToKwh(wh: number | bigint): number {
  return Number(wh) / 1000;
}

/** The most energy (Wh) a connection limited to `limitW` can move in `seconds`, rounded up. */
export function maxEnergyWh(limitW: bigint, seconds: number): bigint {
  if (seconds <= 0) return 0n;
  return (limitW * BigInt(Math.ceil(seconds)) + 3599n) / 3600n;
}
