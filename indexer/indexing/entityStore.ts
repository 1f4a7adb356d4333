// The derived rows one indexing transaction reads and writes, held in memory so that handlers
// stay synchronous and the database sees a few bulk statements instead of one per event.
// Rows are replaced, never mutated, so the row an update replaced is a faithful before-image:
// for unfinalised blocks the first change of a row in each block records that image in the
// undo log, and a reorg puts the images back newest first.
import type { Kysely, Selectable } from "kysely";
import type { IndexerDatabase } from "../store/schema.js";

export const entityTables = {
  trades: { table: "indexer_trades", key: "trade_id" },
  batches: { table: "indexer_batches", key: "batch_id" },
  listings: { table: "indexer_listings", key: "listing_id" },
  cancelledOrders: { table: "indexer_cancelled_orders", key: "order_hash" },
  nonceFloors: { table: "indexer_nonce_floors", key: "maker" },
  prosumers: { table: "indexer_prosumers", key: "account" },
} as const;

export type EntityName = keyof typeof entityTables;
export type EntityTableName = (typeof entityTables)[EntityName]["table"];
export type EntityRow<E extends EntityName> = Selectable<IndexerDatabase[(typeof entityTables)[E]["table"]]>;
export type EntityKey = bigint | string;

/** A row an event will read or write; `creates` when the event brings it into being. */
export interface EntityRef {
  entity: EntityName;
  key: EntityKey;
  creates?: boolean;
}

export interface UndoRecord {
  table: EntityTableName;
  blockNumber: bigint;
  rowKey: string;
  /** The row before the block changed it; null when the block created it. */
  before: Record<string, unknown> | null;
}

export interface EntityTableStore<Row> {
  get(key: EntityKey): Row | undefined;
  /** Stores `row` as changed by an event of block `blockNumber`. */
  put(row: Row, blockNumber: bigint): void;
}

export type EntityStore = { [E in EntityName]: EntityTableStore<EntityRow<E>> } & {
  /** Rows changed since the store was made, per entity. */
  changed(): { entity: EntityName; rows: Record<string, unknown>[] }[];
  undoRecords(): UndoRecord[];
  /** Seeds rows read from the database. */
  preload(entity: EntityName, rows: readonly Record<string, unknown>[]): void;
};

export function keyString(key: EntityKey): string {
  return typeof key === "bigint" ? key.toString() : key;
}

export function createEntityStore({ recordUndo }: { recordUndo: boolean }): EntityStore {
  const undo: UndoRecord[] = [];
  const tables = {} as Record<EntityName, { rows: Map<string, Record<string, unknown>>; dirty: Set<string>; undoneIn: Map<string, bigint> }>;
  const store = {} as EntityStore;
  for (const entity of Object.keys(entityTables) as EntityName[]) {
    const spec = entityTables[entity];
    const state = { rows: new Map<string, Record<string, unknown>>(), dirty: new Set<string>(), undoneIn: new Map<string, bigint>() };
    tables[entity] = state;
    (store as Record<string, unknown>)[entity] = {
      get: (key: EntityKey) => state.rows.get(keyString(key)),
      put: (row: Record<string, unknown>, blockNumber: bigint) => {
        const k = keyString(row[spec.key] as EntityKey);
        if (recordUndo && state.undoneIn.get(k) !== blockNumber) {
          undo.push({ table: spec.table, blockNumber, rowKey: k, before: state.rows.get(k) ?? null });
          state.undoneIn.set(k, blockNumber);
        }
        state.rows.set(k, row);
        state.dirty.add(k);
      },
    } satisfies EntityTableStore<Record<string, unknown>>;
  }
  store.changed = () =>
    (Object.keys(tables) as EntityName[])
      .map((entity) => ({ entity, rows: [...tables[entity].dirty].map((k) => tables[entity].rows.get(k)!) }))
      .filter((t) => t.rows.length > 0);
  store.undoRecords = () => undo;
  store.preload = (entity, rows) => {
    const spec = entityTables[entity];
    for (const row of rows) tables[entity].rows.set(keyString(row[spec.key] as EntityKey), row);
  };
  return store;
}

/** Reads the rows `refs` name that are not created within the same batch of events. */
export async function loadEntities(db: Kysely<IndexerDatabase>, chainId: number, keys: Map<EntityName, Set<string>>, store: EntityStore): Promise<void> {
  for (const [entity, set] of keys) {
    if (set.size === 0) continue;
    const spec = entityTables[entity];
    const all = [...set];
    for (let i = 0; i < all.length; i += 5_000) {
      const chunk = all.slice(i, i + 5_000);
      const rows = await (db as Kysely<any>)
        .selectFrom(spec.table)
        .selectAll()
        .where("chain_id", "=", chainId)
        .where(spec.key, "in", chunk)
        .execute();
      store.preload(entity, rows);
    }
  }
}

/** Row images as JSON for the undo log: bigints are tagged so that they come back as bigints. */
export function encodeRowImage(row: Record<string, unknown> | null): string | null {
  if (row === null) return null;
  return JSON.stringify(row, (_k, v) => (typeof v === "bigint" ? { $bigint: v.toString() } : v));
}

export function decodeRowImage(json: unknown): Record<string, unknown> | null {
  if (json === null || json === undefined) return null;
  const text = typeof json === "string" ? json : JSON.stringify(json);
  return JSON.parse(text, (_k, v) => (v && typeof v === "object" && !Array.isArray(v) && typeof v.$bigint === "string" && Object.keys(v).length === 1 ? BigInt(v.$bigint) : v));
}
