// Deletes rows whose job is done, per the retention policy, so the data folder stops growing
// with history nobody reads. Each table has one rule, written next to the code that tells it is
// safe (which states are final, who reads old rows). Rows go in batches of `batchSize` per
// statement, each statement its own short transaction, up to a cap per run: the node's writers
// never wait long behind the pruner, and a backlog is worked off over several runs.
//
// Never pruned: indexer_* (the auditor's history), bridge_decisions and bridge_evidence (verdicts
// and the signed readings they used), device_credentials, engine_ops, and tables no rule names.
//
// Plain SQL that PGlite and PostgreSQL both run. A part whose tables this database does not
// have (no keeper, no engine) is skipped.
import { sql, type Kysely, type RawBuilder } from "kysely";
import type { RetentionPolicy } from "./retentionPolicy.js";

export type PrunedTable =
  | "bridge_readings" | "bridge_slot_usage" | "bridge_dead_letters" | "bridge_outbox" | "bridge_report_txs" | "bridge_commands"
  | "engine_batches" | "keeper_actions" | "keeper_txs";

const prunedTables: readonly PrunedTable[] = [
  "bridge_readings", "bridge_slot_usage", "bridge_dead_letters", "bridge_outbox", "bridge_report_txs", "bridge_commands",
  "engine_batches", "keeper_actions", "keeper_txs",
];

/** Tables a rule reads without pruning them. */
const consultedTables = ["bridge_decisions", "indexer_trades", "indexer_checkpoints", "vpp_commands", "vpp_applies"] as const;

export interface PruneOnceParameters<DB> {
  db: Kysely<DB>;
  /** Unix milliseconds: the node's clock. */
  now: number;
  policy: RetentionPolicy;
  /** Rows per DELETE statement (default 5,000). */
  batchSize?: number;
  /** Statements per table and run (default 100): a larger backlog waits for the next run. */
  maxBatchesPerTable?: number;
}

export interface PruneOnceReturnType {
  /** Rows deleted per table (0 for a table that is not there). */
  deleted: Record<PrunedTable, number>;
  /** Tables this database does not have: their part is not migrated here. */
  notMigrated: PrunedTable[];
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** EnergyMarket.MAX_WINDOW: no delivery window is longer. */
const MAX_WINDOW_MS = 90 * DAY_MS;
/**
 * How far before a window's start its decision reads: the register reading at or before the
 * first interval's start, at most one interval earlier, and an interval is at most a day
 * (BRIDGE_INTERVAL_MINUTES ≤ 1440). See bridge/measureMeterEnergy.ts.
 */
const WINDOW_LEAD_MS = DAY_MS;

export async function pruneOnce<DB>({ db, now, policy, batchSize = 5_000, maxBatchesPerTable = 100 }: PruneOnceParameters<DB>): Promise<PruneOnceReturnType> {
  const present = await presentTables(db, [...prunedTables, ...consultedTables]);
  const has = (t: string) => present.has(t);
  const deleted = Object.fromEntries(prunedTables.map((t) => [t, 0])) as Record<PrunedTable, number>;
  const drain = async (table: PrunedTable, statement: (limit: number) => RawBuilder<unknown>) => {
    deleted[table] += await deleteInBatches(db, statement, batchSize, maxBatchesPerTable);
  };
  // A time bound as an int8 of unix ms, typed so that PGlite and pg compare it as a number;
  // -Infinity (hold everything) becomes 0, before any stored row.
  const before = (ms: number) => sql<bigint>`${String(Math.max(0, Math.floor(ms)))}::int8`;

  // ---- bridge: readings and the energy credited per interval, both needed to decide deliveries.
  // Cut at a UTC midnight, so the check for undecided windows runs once a day something is due,
  // not every run.
  const readingsCutoff = startOfUtcDay(now - policy.readingsDays * DAY_MS);
  const slotsCutoff = startOfUtcDay(now - policy.doneActionsDays * DAY_MS);
  const powerCutoff = now - policy.powerSamplesDays * DAY_MS;
  if (has("bridge_readings") || has("bridge_slot_usage")) {
    const readingsSeries = { table: "bridge_readings", series: ["meter_id", "metric", "stream"], time: "reading_at" };
    const slotSeries = { table: "bridge_slot_usage", series: ["meter_id", "direction"], time: "slot_start" };
    const oldestReading = has("bridge_readings") ? await oldestPerSeries(db, readingsSeries) : undefined;
    const oldestSlot = has("bridge_slot_usage") ? await oldestPerSeries(db, slotSeries) : undefined;
    const due = (oldest: number | undefined, cutoff: number) => oldest !== undefined && oldest < cutoff;
    // The undecided-window check only when energy or credits are old enough to go.
    const hold = due(oldestReading, readingsCutoff) || due(oldestSlot, slotsCutoff)
      ? await undecidedWindowsHold(db, has, Math.min(oldestReading ?? Infinity, oldestSlot ?? Infinity), Math.max(readingsCutoff, slotsCutoff))
      : Infinity;
    if (oldestReading !== undefined && (due(oldestReading, powerCutoff) || due(oldestReading, readingsCutoff))) {
      // Power samples are never delivery evidence (measureMeterEnergy reads registers and
      // interval readings), so only energy readings wait for undecided windows. One bound per
      // series, so each is one index range: power samples are their own streams
      // ("<source>/power", bridge/ingestReadings.ts); rows from before streams ("legacy") are
      // told apart row by row.
      const energyBefore = before(Math.min(readingsCutoff, hold));
      const powerBefore = before(powerCutoff);
      await drain("bridge_readings", (limit) => deleteOldestPerSeries(readingsSeries, {
        before: sql`(case when s.stream like '%/power' then ${powerBefore} when s.stream = 'legacy' then greatest(${powerBefore}, ${energyBefore}) else ${energyBefore} end)`,
        rowFilter: sql`b.reading_at < (case when b.kind = 'power' then ${powerBefore} else ${energyBefore} end)`,
        limit,
      }));
    }
    if (due(oldestSlot, slotsCutoff)) {
      await drain("bridge_slot_usage", (limit) => deleteOldestPerSeries(slotSeries, { before: before(Math.min(slotsCutoff, hold)), limit }));
    }
  }

  if (has("bridge_dead_letters")) {
    // Ids grow with arrival, so the first row young enough to stay bounds the walk: a run reads
    // the rows it deletes, not the whole table. (A row stamped earlier than the one before it,
    // after the clock stepped back, goes in the run after that one's.)
    const cutoff = before(now - policy.deadLettersDays * DAY_MS);
    await drain("bridge_dead_letters", (limit) => sql`
      delete from bridge_dead_letters where id in (
        select id from bridge_dead_letters
        where received_at < ${cutoff}
          and id < coalesce((select min(id) from bridge_dead_letters where received_at >= ${cutoff}), 9223372036854775807)
        order by id limit ${limit})`);
  }

  if (has("bridge_outbox")) {
    // done and failed are final (bridge/outbox.ts: markDone only moves pending and in_flight
    // rows). The decision and its evidence stay (bridge_decisions, bridge_evidence). A refused
    // report (failed) stays as long as a dead letter, for someone to look into. A row is sent only once due,
    // so next_attempt_at <= updated_at: that bound lets the (state, next_attempt_at) index find them.
    for (const [state, cutoffMs] of [["done", now - policy.sentTxHours * HOUR_MS], ["failed", now - policy.deadLettersDays * DAY_MS]] as const) {
      const cutoff = before(cutoffMs);
      await drain("bridge_outbox", (limit) => sql`
        delete from bridge_outbox where trade_id in (
          select trade_id from bridge_outbox
          where state = ${state} and next_attempt_at < ${cutoff} and updated_at < ${cutoff}
          limit ${limit})`);
    }
  }

  if (has("bridge_report_txs") && has("bridge_outbox")) {
    // The signed bytes are re-broadcast only for in_flight rows (listInFlight); a pending row
    // that still names a hash keeps it too. Anything else is on chain, replaced or given up.
    const cutoff = before(now - policy.sentTxHours * HOUR_MS);
    await drain("bridge_report_txs", (limit) => sql`
      delete from bridge_report_txs where tx_hash in (
        select t.tx_hash from bridge_report_txs t
        where t.created_at < ${cutoff}
          and not exists (select 1 from bridge_outbox o where o.tx_hash = t.tx_hash and o.state in ('pending', 'in_flight'))
        limit ${limit})`);
  }

  if (has("bridge_commands")) {
    // Answered (accepted, completed, rejected) or expired (unacknowledged): a device answering
    // a week late changes nothing. The commands of each VPP's latest apply stay, as
    // GET /v1/vpp/... shows their state (server/vpp/vppStore.ts lastApply).
    const cutoff = before(now - policy.doneActionsDays * DAY_MS);
    const latestApply = has("vpp_commands") && has("vpp_applies")
      ? sql`and not exists (
          select 1 from vpp_commands v where v.command_id = c.command_id
            and v.apply_id = (select max(a.id) from vpp_applies a where a.vpp_id = v.vpp_id))`
      : sql``;
    await drain("bridge_commands", (limit) => sql`
      delete from bridge_commands where command_id in (
        select c.command_id from bridge_commands c
        where c.state in ('accepted', 'completed', 'rejected', 'unacknowledged') and c.sent_at < ${cutoff} ${latestApply}
        limit ${limit})`);
  }

  if (has("engine_batches")) {
    // "done" is final (engineStore.appendOps); start-up (createSettler init) reads only "sent"
    // rows, and takes the next batch id from the largest stored one: the newest row always
    // stays, so ids never repeat. Ids grow with time, which bounds the walk as for dead letters.
    const cutoff = sql`to_timestamp(${now - policy.sentTxHours * HOUR_MS}::float8 / 1000)`;
    await drain("engine_batches", (limit) => sql`
      delete from engine_batches where id in (
        select id from engine_batches
        where status = 'done' and created_at < ${cutoff}
          and id < coalesce((select min(id) from engine_batches where created_at >= ${cutoff}), (select max(id) from engine_batches))
        order by id limit ${limit})`);
  }

  if (has("keeper_actions")) {
    // done and failed are final (actionStore.markDone). The planner reads a trade's rows while
    // the trade is not final on chain (a done row stops it planning twice until the index
    // catches up; a superseded or rejected one says which way out was tried): those stay.
    const cutoff = before(now - policy.doneActionsDays * DAY_MS);
    const tradeNotFinal = has("indexer_trades")
      ? sql`and not exists (
          select 1 from indexer_trades t where t.chain_id = a.chain_id and t.trade_id = a.trade_id and t.chain_status in ('open', 'proposed', 'contested'))`
      : sql``;
    await drain("keeper_actions", (limit) => sql`
      delete from keeper_actions where ctid = any(array(
        select a.ctid from keeper_actions a
        where a.state in ('done', 'failed') and a.updated_at < ${cutoff} ${tradeNotFinal}
        limit ${limit}))`);
  }

  if (has("keeper_txs") && has("keeper_actions")) {
    // As for report transactions: kept while a pending or in_flight action names the hash.
    const cutoff = before(now - policy.sentTxHours * HOUR_MS);
    await drain("keeper_txs", (limit) => sql`
      delete from keeper_txs where tx_hash in (
        select x.tx_hash from keeper_txs x
        where x.created_at < ${cutoff}
          and not exists (select 1 from keeper_actions a where a.tx_hash = x.tx_hash and a.state in ('pending', 'in_flight'))
        limit ${limit})`);
  }

  return { deleted, notMigrated: prunedTables.filter((t) => !has(t)) };
}

/** Runs `statement` until it deletes fewer than `batchSize` rows or `maxBatches` ran; returns the rows deleted. */
async function deleteInBatches<DB>(db: Kysely<DB>, statement: (limit: number) => RawBuilder<unknown>, batchSize: number, maxBatches: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < maxBatches; i++) {
    const result = await statement(batchSize).execute(db);
    const n = Number(result.numAffectedRows ?? 0n);
    total += n;
    if (n < batchSize) break;
  }
  return total;
}

async function presentTables<DB>(db: Kysely<DB>, names: readonly string[]): Promise<Set<string>> {
  const { rows } = await sql<{ name: string }>`
    select name from unnest(${names as string[]}::text[]) as name where to_regclass(name) is not null`.execute(db);
  return new Set(rows.map((r) => r.name));
}

function startOfUtcDay(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

// ---- tables keyed (series..., time) with no index on time alone: bridge_readings is keyed
// (meter_id, metric, stream, reading_at), bridge_slot_usage (meter_id, direction, slot_start).
// A plain `where time < X` would read the whole table every run; instead the key is walked one
// series at a time (a recursive "skip scan": one index probe per series), and each series'
// old rows are an index range.

interface SeriesTable {
  table: string;
  /** The key's leading columns: one series per distinct combination. */
  series: string[];
  /** The key's last column, a time in unix ms. */
  time: string;
}

/** Every series of `t` (the distinct values of its leading key columns), in key order. */
function seriesOf(t: SeriesTable): RawBuilder<unknown> {
  const cols = sql.join(t.series.map((c) => sql.ref(c)));
  const row = (alias: string) => sql.join(t.series.map((c) => sql.ref(`${alias}.${c}`)));
  return sql`series as (
    (select ${cols} from ${sql.table(t.table)} order by ${cols} limit 1)
    union all
    select n.* from series s cross join lateral (
      select ${cols} from ${sql.table(t.table)} b where (${row("b")}) > (${row("s")}) order by ${cols} limit 1
    ) n)`;
}

const sameSeries = (t: SeriesTable) => sql.join(t.series.map((c) => sql`${sql.ref(`b.${c}`)} = ${sql.ref(`s.${c}`)}`), sql` and `);

/** The oldest time in `t`, or undefined when it is empty. */
async function oldestPerSeries<DB>(db: Kysely<DB>, t: SeriesTable): Promise<number | undefined> {
  const time = sql.ref(`b.${t.time}`);
  const { rows } = await sql<{ oldest: string | null }>`
    with recursive ${seriesOf(t)}
    select min(f.at)::text as oldest from series s cross join lateral (
      select ${time} as at from ${sql.table(t.table)} b where ${sameSeries(t)} order by ${time} limit 1) f`.execute(db);
  return rows[0]?.oldest == null ? undefined : Number(rows[0].oldest);
}

/** Deletes up to `limit` rows older than `before` (which may read the series, `s`) and matching `rowFilter`, oldest of each series first. */
function deleteOldestPerSeries(t: SeriesTable, p: { before: RawBuilder<unknown>; rowFilter?: RawBuilder<unknown>; limit: number }): RawBuilder<unknown> {
  const time = sql.ref(`b.${t.time}`);
  // ctid = any(array(...)) is a TID scan on PostgreSQL and PGlite alike.
  return sql`
    with recursive ${seriesOf(t)}
    delete from ${sql.table(t.table)} where ctid = any(array(
      select o.ctid from series s cross join lateral (
        select b.ctid from ${sql.table(t.table)} b
        where ${sameSeries(t)} and ${time} < ${p.before} ${p.rowFilter ? sql`and ${p.rowFilter}` : sql``}
        order by ${time} limit ${p.limit}) o
      limit ${p.limit}))`;
}

/**
 * The instant (unix ms) before which no delivery still to be decided can need a reading or a
 * slot's credited energy; Infinity when none holds anything back, -Infinity when it cannot be
 * told (no indexer here, or it has indexed nothing yet).
 *
 * A trade still needs its window's readings while the bridge has not decided it (no
 * bridge_decisions row) and the market would still take a report: chain status open, or
 * contested without a report (EnergyMarket._recordDelivery). A settled or refunded trade can no
 * longer be reported, so it holds nothing. Only trades that could use a stored row are looked
 * at: windows starting before `untilMs` + a day, ending after the oldest stored row (a window is
 * at most 90 days). Trades the indexer has not seen yet are covered by never cutting past the
 * checkpoint's block time, nor past the oldest settlement batch still in flight.
 *
 * Cost: the trades still open or contested, through the indexer's partial index on them
 * (indexer_trades_reclaim_deadline_idx); the settled and refunded history is never read. The
 * cut at a UTC midnight makes this a few runs a day, not every run.
 */
async function undecidedWindowsHold<DB>(db: Kysely<DB>, has: (t: string) => boolean, oldestMs: number, untilMs: number): Promise<number> {
  if (!has("indexer_trades") || !has("indexer_checkpoints") || !has("bridge_decisions")) return -Infinity;
  const { rows: checkpoints } = await sql<{ chain_id: number; block_timestamp: bigint }>`
    select chain_id, block_timestamp from indexer_checkpoints`.execute(db);
  if (checkpoints.length === 0) return -Infinity;
  let hold = Math.min(...checkpoints.map((c) => Number(c.block_timestamp) * 1000)) - WINDOW_LEAD_MS;

  const fromS = String(Math.floor((oldestMs - WINDOW_LEAD_MS - MAX_WINDOW_MS) / 1000));
  const untilS = String(Math.ceil((untilMs + WINDOW_LEAD_MS) / 1000));
  const { rows } = await sql<{ start: bigint | null }>`
    select min(t.delivery_start) as start from indexer_trades t
    where t.chain_id = any(${checkpoints.map((c) => c.chain_id)}::int4[])
      and t.delivery_start >= ${fromS}::numeric and t.delivery_start < ${untilS}::numeric
      and (t.chain_status = 'open' or (t.chain_status = 'contested' and t.delivered_tx is null))
      and not exists (select 1 from bridge_decisions d where d.trade_id = t.trade_id)`.execute(db);
  const start = rows[0]?.start;
  if (start !== null && start !== undefined) hold = Math.min(hold, Number(start) * 1000 - WINDOW_LEAD_MS);

  // Fills in a settlement batch not yet on chain become trades later, for windows starting after
  // the batch was cut (an order closes before its interval starts).
  if (has("engine_batches")) {
    const { rows: sent } = await sql<{ at: string | null }>`
      select (extract(epoch from min(created_at)) * 1000)::int8::text as at from engine_batches where status = 'sent'`.execute(db);
    if (sent[0]?.at != null) hold = Math.min(hold, Number(sent[0].at) - WINDOW_LEAD_MS);
  }
  return hold;
}
