// Bulk inserts and upserts as `INSERT … SELECT … FROM json_to_recordset($1)`: the whole batch
// travels as one JSON document, serialised by the engine's native JSON.stringify and parsed by
// Postgres's C JSON parser, instead of one bound parameter per value (which costs more in the
// driver than in the database). bigints go as decimal strings and come back exactly, through the
// column's own input function. Column types come from the database's catalogue, read once per
// database, so this module never restates the migrations.
import { sql, type Kysely, type RawBuilder } from "kysely";

const columnTypeCache = new WeakMap<object, Map<string, Promise<Map<string, string>>>>();

/** A value as JSON carries it: bigints as decimal strings (JSON numbers would lose digits). */
function jsonValue(v: unknown): unknown {
  return typeof v === "bigint" ? v.toString() : v === undefined ? null : v;
}

async function columnTypes(db: Kysely<any>, cacheKey: object, table: string): Promise<Map<string, string>> {
  let perDb = columnTypeCache.get(cacheKey);
  if (!perDb) columnTypeCache.set(cacheKey, (perDb = new Map()));
  let types = perDb.get(table);
  if (!types) {
    types = sql<{ column_name: string; udt_name: string }>`
      select column_name, format_type(a.atttypid, a.atttypmod) as udt_name
      from information_schema.columns c
      join pg_attribute a on a.attrelid = (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass and a.attname = c.column_name
      where c.table_schema = current_schema() and c.table_name = ${table}`
      .execute(db)
      .then((r) => new Map(r.rows.map((c) => [c.column_name, c.udt_name])));
    perDb.set(table, types);
  }
  return types;
}

export interface BulkWriteOptions {
  /** Columns of the unique key to resolve conflicts on. */
  conflict: readonly string[];
  /** On conflict: skip, overwrite every other column, or overwrite only rows whose `last_event_seq` is older. */
  onConflict: "nothing" | "overwrite" | "overwrite-older";
  /** The same object for every call on one database: the key of the column-type cache. */
  cacheKey: object;
  chunkRows?: number;
}

export async function bulkWrite(db: Kysely<any>, table: string, rows: readonly Record<string, unknown>[], options: BulkWriteOptions): Promise<void> {
  if (rows.length === 0) return;
  const types = await columnTypes(db, options.cacheKey, table);
  const columns = Object.keys(rows[0]!);
  for (const c of columns) if (!types.has(c)) throw new Error(`bulkWrite: ${table} has no column ${c}`);
  const chunk = options.chunkRows ?? 5_000;
  const updatable = columns.filter((c) => !options.conflict.includes(c));
  let conflictClause: RawBuilder<unknown>;
  if (options.onConflict === "nothing" || updatable.length === 0) {
    conflictClause = sql`on conflict (${sql.join(options.conflict.map((c) => sql.id(c)))}) do nothing`;
  } else {
    const set = sql.join(updatable.map((c) => sql`${sql.id(c)} = excluded.${sql.id(c)}`));
    const guard = options.onConflict === "overwrite-older" ? sql` where ${sql.id(table)}.last_event_seq < excluded.last_event_seq` : sql``;
    conflictClause = sql`on conflict (${sql.join(options.conflict.map((c) => sql.id(c)))}) do update set ${set}${guard}`;
  }
  const recordType = sql.join(columns.map((c) => sql`${sql.id(c)} ${sql.raw(types.get(c)!)}`));
  for (let i = 0; i < rows.length; i += chunk) {
    const slice = rows.slice(i, i + chunk).map((r) => {
      // A key left out reads as NULL in json_to_recordset: nulls need not travel.
      const out: Record<string, unknown> = {};
      for (const c of columns) {
        const v = jsonValue(r[c]);
        if (v !== null) out[c] = v;
      }
      return out;
    });
    await sql`insert into ${sql.id(table)} (${sql.join(columns.map((c) => sql.id(c)))})
      select ${sql.join(columns.map((c) => sql.id(c)))} from json_to_recordset(${JSON.stringify(slice)}::json) as r(${recordType}) ${conflictClause}`.execute(db);
  }
}
