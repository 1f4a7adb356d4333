// The microgrid's balance for one interval (DESIGN.md "Savings, balance and compliance
// helpers", the trading guide's balance_grid_load): ratio = supply / demand decides the state,
// and the state decides what the orchestrator does. States are decided on exact integers
// (5·supply >= 6·demand is "ratio >= 1.2"), so a boundary never depends on float rounding.
import { ValidationError } from "../../lib/errors.js";

export type GridState = "surplus" | "balanced" | "deficit" | "critical_deficit";
export type BalanceAction = "export_or_store" | "maintain" | "import" | "emergency_import";

export interface GridBalanceParameters {
  /** Energy produced in the interval, Wh (>= 0, whole). */
  supplyWh: number;
  /** Energy consumed in the interval, Wh (>= 0, whole). */
  demandWh: number;
}

export interface GridBalance {
  supplyWh: number;
  demandWh: number;
  /** supply / demand rounded half up to 2 decimals, as the guide prints it; null when demand is 0. The state is decided on the exact ratio. */
  ratio: number | null;
  state: GridState;
  action: BalanceAction;
  /** surplus: supply - 1.1 x demand, rounded down to whole Wh (the 10 % kept as margin); 0 otherwise. */
  curtailmentWh: number;
  /** deficit and critical_deficit: demand - supply; 0 otherwise. */
  importNeededWh: number;
}

const ACTION: Record<GridState, BalanceAction> = { surplus: "export_or_store", balanced: "maintain", deficit: "import", critical_deficit: "emergency_import" };

function wholeWh(field: string, value: number): bigint {
  if (!Number.isSafeInteger(value) || value < 0) throw new ValidationError(field, `must be a whole number of Wh >= 0, got ${value}`);
  return BigInt(value);
}

/**
 * Thresholds: surplus at ratio >= 1.2, balanced from 0.8 up to 1.2, deficit from 0.5 up to 0.8,
 * critical_deficit below 0.5 (each boundary belongs to the state above it). Demand 0: supply > 0
 * is a surplus with all of it to absorb (nothing to keep a margin for); 0 / 0 is balanced.
 */
export function gridBalance({ supplyWh, demandWh }: GridBalanceParameters): GridBalance {
  const supply = wholeWh("supplyWh", supplyWh);
  const demand = wholeWh("demandWh", demandWh);
  let state: GridState;
  if (demand === 0n) state = supply > 0n ? "surplus" : "balanced";
  else if (5n * supply >= 6n * demand) state = "surplus";
  else if (5n * supply >= 4n * demand) state = "balanced";
  else if (2n * supply >= demand) state = "deficit";
  else state = "critical_deficit";

  // supply - 1.1 demand = (10 supply - 11 demand) / 10, rounded down: never plan to absorb a
  // fraction of a Wh more than the formula gives. Positive whenever the state is surplus.
  const curtailmentWh = state === "surplus" ? Number((10n * supply - 11n * demand) / 10n) : 0;
  const importNeededWh = state === "deficit" || state === "critical_deficit" ? Number(demand - supply) : 0;
  // Half up at 2 decimals in integers: floor((200 supply + demand) / (2 demand)) / 100.
  const ratio = demand === 0n ? null : Number((200n * supply + demand) / (2n * demand)) / 100;
  return { supplyWh, demandWh, ratio, state, action: ACTION[state], curtailmentWh, importNeededWh };
}
