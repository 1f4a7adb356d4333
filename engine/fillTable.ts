// The engine's fills by id. Ids are dense and only grow (a fill's id is its position in the log's
// history), but the table holds only the fills of books still in memory: a book forgotten once
// settled and final (EngineState.forget) takes its fills with it, so memory follows the open
// market, not the market's whole history.
import type { FillRecord } from "./engineState.js";

export class FillTable {
  private readonly byId = new Map<number, FillRecord>();
  /** The id the next fill gets: every fill ever made has a smaller one. */
  private nextId = 0;

  /** The next fill id (not the number held: forgotten fills leave gaps). */
  get length(): number {
    return this.nextId;
  }

  /** Fills held in memory. */
  get size(): number {
    return this.byId.size;
  }

  /** The fill with `id`, or undefined when it was never made or its book was forgotten. */
  get(id: number): FillRecord | undefined {
    return this.byId.get(id);
  }

  /** Adds `fill`, whose fillId must be `length`. */
  push(fill: FillRecord): void {
    if (fill.fillId !== this.nextId) throw new Error(`engine: fill ${fill.fillId} made out of order (next ${this.nextId})`);
    this.byId.set(fill.fillId, fill);
    this.nextId++;
  }

  /** Drops the fills from id `mark` on (a contained step rolled back): `length` is `mark` again. */
  truncate(mark: number): void {
    for (let id = mark; id < this.nextId; id++) this.byId.delete(id);
    this.nextId = mark;
  }

  /** Fills with ids from `from` on, in id order. */
  since(from: number): FillRecord[] {
    const out: FillRecord[] = [];
    for (let id = from; id < this.nextId; id++) {
      const f = this.byId.get(id);
      if (f) out.push(f);
    }
    return out;
  }

  delete(id: number): void {
    this.byId.delete(id);
  }

  /** Held fills in id order (insertion order is id order: a truncate only drops the tail). */
  values(): IterableIterator<FillRecord> {
    return this.byId.values();
  }

  [Symbol.iterator](): IterableIterator<FillRecord> {
    return this.byId.values();
  }

  /** Held fills that pass `test`, in id order. */
  filter(test: (fill: FillRecord) => boolean): FillRecord[] {
    const out: FillRecord[] = [];
    for (const f of this.byId.values()) if (test(f)) out.push(f);
    return out;
  }

  /** Restores the table from a snapshot: its fills, and the next id. */
  static from(fills: readonly FillRecord[], nextId: number): FillTable {
    const table = new FillTable();
    for (const f of fills) table.byId.set(f.fillId, f);
    table.nextId = nextId;
    return table;
  }
}
