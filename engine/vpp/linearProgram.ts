// A sparse linear program assembled column by column and row by row, handed to HiGHS as CSC
// arrays (no LP text to generate or parse), and the one place that talks to the solver.
// HiGHS is loaded once per process; each solve gets a fresh native model that is disposed after.
import * as highsModule from "highs";
import type { Highs, ModelData } from "highs";
import { BaseError } from "../../lib/errors.js";

export type { Highs };

let highsPromise: Promise<Highs> | undefined;

// The package's types are CommonJS-shaped (TypeScript reads the namespace's default as the
// whole module) while Node loads its ESM build (whose default is the loader); accept both.
type LoadHighs = () => Promise<Highs>;
const exported: unknown = highsModule.default;
const loadHighs = (typeof exported === "function" ? exported : (exported as { default: unknown }).default) as LoadHighs;

/** The HiGHS WASM runtime, loaded on first use and shared afterwards. */
export function loadLpSolver(): Promise<Highs> {
  highsPromise ??= loadHighs();
  return highsPromise;
}

export class LinearProgram {
  readonly colCost: number[] = [];
  readonly colLower: number[] = [];
  readonly colUpper: number[] = [];
  readonly rowLower: number[] = [];
  readonly rowUpper: number[] = [];
  private entryRow: number[] = [];
  private entryCol: number[] = [];
  private entryValue: number[] = [];

  get numCols(): number { return this.colCost.length; }
  get numRows(): number { return this.rowLower.length; }

  addCol(cost: number, lower: number, upper: number): number {
    this.colCost.push(cost);
    this.colLower.push(lower);
    this.colUpper.push(upper);
    return this.colCost.length - 1;
  }

  addRow(lower: number, upper: number): number {
    this.rowLower.push(lower);
    this.rowUpper.push(upper);
    return this.rowLower.length - 1;
  }

  /** Adds value to A[row][col]; a pair set twice would be a modelling bug, so it is not merged. */
  set(row: number, col: number, value: number): void {
    if (value === 0) return;
    this.entryRow.push(row);
    this.entryCol.push(col);
    this.entryValue.push(value);
  }

  /** Entries as (row, col, value) triplets, for a second solver in the tests. */
  entries(): { row: number; col: number; value: number }[] {
    return this.entryRow.map((row, k) => ({ row, col: this.entryCol[k]!, value: this.entryValue[k]! }));
  }

  toModelData(): ModelData {
    const n = this.numCols;
    const starts = new Int32Array(n + 1);
    for (const c of this.entryCol) starts[c + 1]!++;
    for (let j = 0; j < n; j++) starts[j + 1]! += starts[j]!;
    const next = starts.slice(0, n);
    const indices = new Int32Array(this.entryRow.length);
    const values = new Float64Array(this.entryRow.length);
    for (let k = 0; k < this.entryRow.length; k++) {
      const at = next[this.entryCol[k]!]!++;
      indices[at] = this.entryRow[k]!;
      values[at] = this.entryValue[k]!;
    }
    return {
      numCols: n,
      numRows: this.numRows,
      colCost: this.colCost,
      colLower: this.colLower,
      colUpper: this.colUpper,
      rowLower: this.rowLower,
      rowUpper: this.rowUpper,
      matrix: { format: "csc", numRows: this.numRows, numCols: n, starts, indices, values },
    };
  }
}

export interface LpSolution {
  status: "optimal" | "infeasible";
  objective: number;
  colValue: Float64Array;
  /** d(objective)/d(row bound) for each row (HiGHS sign convention for minimisation). */
  rowDual: Float64Array;
}

export class LpSolverError extends BaseError {
  override name = "LpSolverError";
  constructor(status: string) {
    super(`the LP solver stopped without an answer (${status})`, { code: "lp_solver_failed", retryable: false });
  }
}

// Tighter than HiGHS's 1e-7 defaults: the answers are compared with a second solver to 1e-6.
// Presolve off: on these models (many bound-only columns, block-diagonal batteries) HiGHS's
// presolve costs more than it saves (96 x 1,000 resources: 6.2 s with it, 1.5 s without).
const SOLVER_OPTIONS = { output_flag: false, presolve: "off", primal_feasibility_tolerance: 1e-9, dual_feasibility_tolerance: 1e-9 } as const;

export interface SolveOptions {
  sense?: "minimize" | "maximize";
  /** Columns that must take integer values (a MIP; its row duals are not meaningful). */
  integer?: readonly number[];
  /** A known good primal point to start from (e.g. the MIP's answer when re-solving it as an LP). */
  start?: Float64Array;
}

/** Solves the program. Every column here is bounded, so "unbounded or infeasible" means infeasible. */
export function solveLinearProgram(highs: Highs, lp: LinearProgram, options: SolveOptions = {}): LpSolution {
  let data = lp.toModelData();
  if (options.sense === "maximize") data = { ...data, sense: highs.constants.objectiveSense.maximize };
  if (options.integer && options.integer.length > 0) {
    const integrality = new Int32Array(data.numCols);
    for (const c of options.integer) integrality[c] = highs.constants.variableType.integer;
    data = { ...data, integrality };
  }
  const model = highs.createModel(data);
  try {
    // Branch and bound leans on presolve, so a MIP keeps HiGHS's default.
    model.options.set(options.integer && options.integer.length > 0 ? { ...SOLVER_OPTIONS, presolve: "choose" } : SOLVER_OPTIONS);
    if (options.start) model.setSolution({ colValue: options.start });
    model.run();
    const status = model.getModelStatus();
    const codes = highs.constants.modelStatus;
    if (status === codes.infeasible || status === codes.unboundedOrInfeasible) {
      return { status: "infeasible", objective: NaN, colValue: new Float64Array(0), rowDual: new Float64Array(0) };
    }
    if (status !== codes.optimal && status !== codes.empty) {
      const name = Object.entries(codes).find(([, v]) => v === status)?.[0] ?? String(status);
      throw new LpSolverError(name);
    }
    const solution = model.getSolution();
    return { status: "optimal", objective: model.getObjectiveValue(), colValue: solution.colValue, rowDual: solution.rowDual };
  } finally {
    model.dispose();
  }
}
