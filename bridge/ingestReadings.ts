// From MQTT message to stored reading. Each message is parsed and checked against the meter's
// registry entry and its recent history in memory, then written with its neighbours in one
// group commit; the message's PUBACK waits for that commit (see connectMqtt), so a reading the
// broker considers delivered is on disk. Bad messages become dead letters in the same commit
// and on the dead-letter topic. Nothing here throws at the caller: a bad message never stops
// the next one. Readings sent over REST take this same path (submit), only their caller waits
// for the verdict instead of a PUBACK.
//
// Only the meter can prove a delivery: an energy reading (interval, or a Wh/kWh register) from
// MQTT must carry the meter's signature under the key the registry holds for it, or it is
// dead-lettered (signature_missing, signature_invalid, meter_signer_unset) before it touches the
// meter's history or the table, so a forged reading can never make an honest one a conflicting
// duplicate. Sources the node vouches for otherwise (see IngestOptions) may send unsigned
// readings: those are stored with evidence = false and never settle a trade.
import { createHash } from "node:crypto";
import { sql, type Kysely } from "kysely";
import { BaseError, ValidationError } from "../lib/errors.js";
import type { Logger } from "../lib/logger.js";
import type { BridgeDatabase } from "./database.js";
import { ReadingRejectedError, type RejectReason } from "./errors.js";
import type { MeterDirectory, MeterInfo } from "./meterDirectory.js";
import type { BridgeMetrics } from "./metrics.js";
import { isEnergyReading, parseReadingMessage, type MeterReading } from "./parseReading.js";
import { verifyReadingSignature } from "./readingSignature.js";
import { deadLetterTopic, parseDeviceTopic, type DeviceTopic } from "./topics.js";
import { maxEnergyWh } from "./units.js";

export interface IngestRules {
  topicRoot: string;
  maxPayloadBytes: number;
  intervalSeconds: number;
  graceSeconds: number;
  maxClockSkewSeconds: number;
  retentionSeconds: number;
  plausibilityMarginPct: number;
}

export interface IngestDependencies {
  db: Kysely<BridgeDatabase>;
  directory: MeterDirectory;
  /** Unix milliseconds. */
  clock: () => number;
  rules: IngestRules;
  metrics: BridgeMetrics;
  /** Publishes a dead letter (QoS 1); failures are logged by the caller's client. */
  publish: (topic: string, payload: string) => void;
  logger: Logger;
  onCommitted?: (summary: CommitSummary) => void;
  /** A group commit failed and will be retried; its messages stay unacknowledged meanwhile. */
  onCommitFailed?: (error: Error) => void;
  /** The readings a group commit stored (not duplicates, not dead letters), after the commit. */
  onReadings?: (readings: CommittedReading[]) => void;
  /** Rows per group commit and the longest a row waits for one. */
  maxBatchRows?: number;
  maxBatchDelayMs?: number;
}

export interface CommitSummary {
  accepted: number;
  duplicates: number;
  late: number;
  deadLetters: { reason: RejectReason; topic: string }[];
}

/** What became of one submitted reading, known once its group commit is done. */
export type ReadingVerdict =
  | { accepted: true; duplicate: boolean; evidence: boolean }
  | { accepted: false; reason: RejectReason; field: string; rule: string };

/**
 * Where a reading came from, which decides whether it must be signed and whether it can be
 * delivery evidence (power readings, W/kW, are never evidence and need no signature):
 * - `mqtt` (handleMessage's default): the broker vouches for nothing; an energy reading must be
 *   signed by the meter's registered key, and then it is evidence.
 * - `api` (submit's default) and `device` (a request authenticated with the meter's device
 *   credential): a signed reading is checked exactly like MQTT's and is evidence; an unsigned
 *   one is stored with evidence = false.
 * - `operator_correction`: an operator's correction, with a `reason`; stored, never evidence,
 *   whatever it carries.
 */
export const readingSources = ["mqtt", "api", "device", "operator_correction"] as const;
export type ReadingSource = (typeof readingSources)[number];

export interface IngestOptions {
  source?: ReadingSource;
  /** Required for `operator_correction` (at most 500 characters); stored with the reading. */
  reason?: string;
}

const CORRECTION_REASON_MAX = 500;

/** A stored reading as the listeners of onReadings see it. */
export interface CommittedReading {
  meterId: string;
  /** Signed by the meter's registered key: the only readings that settle trades. */
  evidence: boolean;
  source: ReadingSource;
  metric: "export" | "import" | "interval";
  kind: "counter" | "power" | "interval";
  /** Unix milliseconds; for interval readings the interval's start. */
  atMs: number;
  /** Wh for counters, W for power, null for interval readings. */
  value: number | null;
  exportWh: number | null;
  importWh: number | null;
}

export interface ReadingIngest {
  /**
   * Handles one message. Returns at once when the meter is known (or after one registry
   * lookup), with `committed`: settles once the message's outcome is in the database.
   */
  handleMessage(topic: string, payload: Uint8Array, options?: IngestOptions): HandleOutcome | Promise<HandleOutcome>;
  /**
   * The same path for a message that did not come over MQTT (the REST intake): resolves once
   * the reading is committed or dead-lettered, with the verdict. Source `api` unless `options`
   * says otherwise. Throws only when the ingest is closing or the commit was abandoned for
   * shutdown (code "unavailable"), or (code "validation_failed", field "reason") for an
   * operator correction without a reason.
   */
  submit(topic: string, payload: Uint8Array, options?: IngestOptions): Promise<ReadingVerdict>;
  /** Settles once everything handled so far is committed (at once when nothing is pending). */
  nextCommit(): Promise<void>;
  /** Commits everything handled so far. */
  flush(): Promise<void>;
  /** Rebuilds the counters' last values from the database after a restart. */
  load(): Promise<void>;
  close(): Promise<void>;
}

export interface HandleOutcome {
  committed: Promise<void>;
}

interface SeriesEntry {
  atMs: number;
  /** Wh for counters, W for power, export Wh for interval readings. */
  value: number;
  hash: string;
}

/** Evidence or not, or why the reading's signature is refused. */
type SignatureOutcome = { evidence: boolean } | ReadingRejectedError;

/** Where a submitted message's verdict is written; only submit() passes one. */
interface VerdictSlot {
  value?: ReadingVerdict;
}

interface ReadingRow {
  /** The MQTT topic, for a dead letter should the row turn out to conflict; not stored. */
  topic: string;
  verdict: VerdictSlot | undefined;
  meter_id: string;
  metric: string;
  kind: string;
  reading_at: number;
  value: number | null;
  export_wh: number | null;
  import_wh: number | null;
  payload_hash: string;
  payload: string;
  received_at: number;
  late: boolean;
  evidence: boolean;
  source: ReadingSource;
  correction_reason: string | null;
  stream: string;
}

interface DeadLetterRow {
  topic: string;
  reason: RejectReason;
  field: string;
  rule: string;
  payload: string;
  payload_encoding: "utf8" | "base64";
  payload_bytes: number;
  payload_truncated: boolean;
  received_at: number;
}

interface Batch {
  rows: ReadingRow[];
  deadLetters: DeadLetterRow[];
  duplicates: number;
  committed: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Recent readings kept per meter and metric for order, bounds and duplicate checks. */
const SERIES_LENGTH = 32;
/** Slack for the plausibility bound: a register shown in kWh with two decimals moves in 10 Wh steps. */
const SLACK_WH = 10;
const DEAD_LETTER_PAYLOAD_MAX = 65_536;

export function createReadingIngest(deps: IngestDependencies): ReadingIngest {
  const { db, directory, clock, rules, metrics, logger } = deps;
  const maxBatchRows = deps.maxBatchRows ?? 2_000;
  const maxBatchDelayMs = deps.maxBatchDelayMs ?? 20;
  const highWater = maxBatchRows * 8;
  const series = new Map<string, SeriesEntry[]>();
  let open: Batch = newBatch();
  let flushing: Promise<void> | undefined;
  /** The batch being written, if any: its commit promise is what a message with no row waits for. */
  let flushingBatch: Batch | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let closing = false;

  function newBatch(): Batch {
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const committed = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Nobody may be waiting on a batch of non-QoS-1 messages; its failure is logged in flush.
    committed.catch(() => {});
    return { rows: [], deadLetters: [], duplicates: 0, committed, resolve, reject };
  }

  function schedule() {
    const size = open.rows.length + open.deadLetters.length + open.duplicates;
    if (size >= maxBatchRows) void startFlush();
    else if (!timer && size > 0) timer = setTimeout(() => void startFlush(), maxBatchDelayMs);
  }

  function startFlush(): Promise<void> {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (flushing) return flushing;
    const batch = open;
    if (batch.rows.length + batch.deadLetters.length + batch.duplicates === 0) return Promise.resolve();
    open = newBatch();
    flushingBatch = batch;
    flushing = commitBatch(batch).finally(() => {
      flushing = undefined;
      flushingBatch = undefined;
      schedule();
    });
    return flushing;
  }

  async function commitBatch(batch: Batch) {
    // A database that is down must not lose what was received: retry the same batch. The
    // broker keeps the un-acknowledged messages meanwhile.
    for (let attempt = 0; ; attempt++) {
      try {
        const { summary, stored } = await writeBatch(batch);
        batch.resolve();
        for (const dl of summary.deadLetters) metrics.deadLettered[dl.reason] = (metrics.deadLettered[dl.reason] ?? 0) + 1;
        metrics.accepted += summary.accepted;
        metrics.duplicates += summary.duplicates;
        metrics.late += summary.late;
        deps.onCommitted?.(summary);
        if (stored.length > 0) deps.onReadings?.(stored);
        return;
      } catch (err) {
        if (closing) {
          // Shutting down: leave the messages unacknowledged; the broker redelivers them.
          batch.reject(err);
          return;
        }
        logger.error({ msg: "reading commit failed; retrying", err: (err as Error).message, attempt, rows: batch.rows.length });
        deps.onCommitFailed?.(err as Error);
        await new Promise((r) => setTimeout(r, Math.min(5_000, 100 * 2 ** attempt)));
      }
    }
  }

  async function writeBatch(batch: Batch): Promise<{ summary: CommitSummary; stored: CommittedReading[] }> {
    const conflicts: DeadLetterRow[] = [];
    const stored: CommittedReading[] = [];
    let accepted = 0;
    let late = 0;
    let dbDuplicates = 0;
    await db.transaction().execute(async (trx) => {
      if (batch.rows.length > 0) {
        const r = batch.rows;
        const inserted = await sql<{ meter_id: string; metric: string; stream: string; reading_at: bigint }>`
          insert into bridge_readings (meter_id, metric, kind, reading_at, value, export_wh, import_wh, payload_hash, payload, received_at, evidence, source, correction_reason, stream)
          select * from unnest(
            ${r.map((x) => x.meter_id)}::text[], ${r.map((x) => x.metric)}::text[], ${r.map((x) => x.kind)}::text[],
            ${r.map((x) => String(x.reading_at))}::int8[], ${r.map((x) => (x.value === null ? null : String(x.value)))}::int8[],
            ${r.map((x) => (x.export_wh === null ? null : String(x.export_wh)))}::int8[],
            ${r.map((x) => (x.import_wh === null ? null : String(x.import_wh)))}::int8[],
            ${r.map((x) => x.payload_hash)}::text[], ${r.map((x) => x.payload)}::text[], ${r.map((x) => String(x.received_at))}::int8[],
            ${r.map((x) => x.evidence)}::bool[], ${r.map((x) => x.source)}::text[], ${r.map((x) => x.correction_reason)}::text[],
            ${r.map((x) => x.stream)}::text[])
          on conflict do nothing
          returning meter_id, metric, stream, reading_at`.execute(trx);
        const insertedKeys = new Set(inserted.rows.map((x) => rowKey(x.meter_id, x.metric, x.stream, x.reading_at)));
        const existing = r.filter((x) => !insertedKeys.has(rowKey(x.meter_id, x.metric, x.stream, x.reading_at)));
        for (const x of r) {
          if (insertedKeys.has(rowKey(x.meter_id, x.metric, x.stream, x.reading_at))) {
            accepted++;
            if (x.late) late++;
            if (deps.onReadings) {
              stored.push({
                meterId: x.meter_id, evidence: x.evidence, source: x.source, metric: x.metric as CommittedReading["metric"], kind: x.kind as CommittedReading["kind"],
                atMs: x.reading_at, value: x.value, exportWh: x.export_wh, importWh: x.import_wh,
              });
            }
          }
        }
        if (existing.length > 0) {
          // Stored before (a redelivery after a restart, or older than the memory's reach):
          // identical is a duplicate, different is a conflict.
          const stored = await sql<{ meter_id: string; metric: string; stream: string; reading_at: bigint; payload_hash: string }>`
            select b.meter_id, b.metric, b.stream, b.reading_at, b.payload_hash from bridge_readings b
            join unnest(${existing.map((x) => x.meter_id)}::text[], ${existing.map((x) => x.metric)}::text[], ${existing.map((x) => x.stream)}::text[],
              ${existing.map((x) => String(x.reading_at))}::int8[]) as k(meter_id, metric, stream, reading_at)
            on b.meter_id = k.meter_id and b.metric = k.metric and b.stream = k.stream and b.reading_at = k.reading_at`.execute(trx);
          const hashes = new Map(stored.rows.map((s) => [rowKey(s.meter_id, s.metric, s.stream, s.reading_at), s.payload_hash]));
          for (const x of existing) {
            if (hashes.get(rowKey(x.meter_id, x.metric, x.stream, x.reading_at)) === x.payload_hash) {
              dbDuplicates++;
              if (x.verdict) x.verdict.value = { accepted: true, duplicate: true, evidence: x.evidence };
            } else {
              forgetSeriesEntry(x);
              const err = new ReadingRejectedError({ reason: "conflicting_duplicate", field: "payload", rule: "differs from the reading already stored for this meter, metric and time" });
              if (x.verdict) x.verdict.value = rejection(err);
              conflicts.push(deadLetter(x.topic, err, Buffer.from(x.payload), x.received_at));
            }
          }
        }
      }
      const dls = [...batch.deadLetters, ...conflicts];
      if (dls.length > 0) {
        await trx
          .insertInto("bridge_dead_letters")
          .values(dls.map((d) => ({ topic: d.topic, reason: d.reason, field: d.field, rule: d.rule, payload: d.payload, payload_encoding: d.payload_encoding, received_at: BigInt(d.received_at) })))
          .execute();
      }
    });
    const deadLetters = [...batch.deadLetters, ...conflicts];
    for (const d of deadLetters) {
      deps.publish(
        deadLetterTopic(rules.topicRoot, d.topic),
        JSON.stringify({
          reason: d.reason, field: d.field, rule: d.rule, topic: d.topic, received_at: new Date(d.received_at).toISOString(),
          payload: d.payload, payload_encoding: d.payload_encoding, payload_bytes: d.payload_bytes, payload_truncated: d.payload_truncated,
        }),
      );
    }
    return { summary: { accepted, duplicates: batch.duplicates + dbDuplicates, late, deadLetters: deadLetters.map((d) => ({ reason: d.reason, topic: d.topic })) }, stored };
  }

  function forgetSeriesEntry(row: ReadingRow) {
    const s = series.get(seriesKey(row.meter_id, row.metric, row.stream));
    if (!s) return;
    const i = s.findIndex((e) => e.atMs === row.reading_at && e.hash === row.payload_hash);
    if (i >= 0) s.splice(i, 1);
  }

  function deadLetter(topic: string, err: ReadingRejectedError, payload: Uint8Array, receivedAt: number): DeadLetterRow {
    const truncated = payload.byteLength > DEAD_LETTER_PAYLOAD_MAX;
    const kept = Buffer.from(truncated ? payload.subarray(0, DEAD_LETTER_PAYLOAD_MAX) : payload);
    const text = kept.toString("utf8");
    // Text columns and JSON strings hold any valid UTF-8 without NUL; anything else travels as base64.
    const utf8 = !text.includes("\u0000") && Buffer.from(text, "utf8").equals(kept);
    return {
      // The rule may quote the payload (JSON.parse does): no control characters into a text column.
      topic, reason: err.reason, field: err.field ?? "payload", rule: err.shortMessage.replace(/[\u0000-\u001f\u007f]/g, "?"),
      payload: utf8 ? text : kept.toString("base64"), payload_encoding: utf8 ? "utf8" : "base64",
      payload_bytes: payload.byteLength, payload_truncated: truncated, received_at: receivedAt,
    };
  }

  /** Checks against the registry entry and the recent series; returns the series entry to add. */
  function checkHistory(reading: MeterReading, meter: MeterInfo, hash: string, stream: string): { duplicate: boolean } {
    const key = seriesKey(reading.meterId, reading.metric, stream);
    const s = series.get(key) ?? [];
    const at = insertionIndex(s, reading.atMs);
    const same = s[at]?.atMs === reading.atMs ? s[at] : undefined;
    if (same) {
      if (same.hash === hash) return { duplicate: true };
      throw new ReadingRejectedError({ reason: "conflicting_duplicate", field: reading.kind === "interval" ? "interval_start" : "timestamp", rule: "another reading with different values exists for this meter, metric and time" });
    }
    // Wh and W fit a double exactly here (parseReading keeps them safe integers); limits are
    // uint64 on-chain but a household connection is far below 2^53 W.
    const margin = 1 + rules.plausibilityMarginPct / 100;
    const bound = (limitW: bigint, seconds: number) => Math.floor(Number(maxEnergyWh(limitW, seconds)) * margin) + SLACK_WH;
    if (reading.kind === "power") {
      const limit = reading.metric === "export" ? meter.exportLimitW : meter.importLimitW;
      if (reading.watts > Math.floor(Number(limit) * margin)) {
        throw new ReadingRejectedError({ reason: "implausible_value", field: "value", rule: `${reading.watts} W exceeds the connection's ${reading.metric} limit of ${limit} W (+${rules.plausibilityMarginPct}%)` });
      }
    } else if (reading.kind === "interval") {
      const exportMax = bound(meter.exportLimitW, rules.intervalSeconds);
      const importMax = bound(meter.importLimitW, rules.intervalSeconds);
      if (reading.exportWh > exportMax) {
        throw new ReadingRejectedError({ reason: "implausible_value", field: "export_kwh", rule: `${reading.exportWh} Wh in ${rules.intervalSeconds / 60} min exceeds what the export limit of ${meter.exportLimitW} W allows (${exportMax} Wh)` });
      }
      if (reading.importWh > importMax) {
        throw new ReadingRejectedError({ reason: "implausible_value", field: "import_kwh", rule: `${reading.importWh} Wh in ${rules.intervalSeconds / 60} min exceeds what the import limit of ${meter.importLimitW} W allows (${importMax} Wh)` });
      }
    } else {
      // A register only moves forward, and no faster than the connection allows.
      const limit = reading.metric === "export" ? meter.exportLimitW : meter.importLimitW;
      const i = insertionIndex(s, reading.atMs);
      const prev = s[i - 1];
      const next = s[i];
      if (prev && reading.wh < prev.value) {
        throw new ReadingRejectedError({ reason: "counter_decreased", field: "value", rule: `register fell from ${prev.value} Wh (at ${new Date(prev.atMs).toISOString()}) to ${reading.wh} Wh: counters never run backwards` });
      }
      if (next && reading.wh > next.value) {
        throw new ReadingRejectedError({ reason: "counter_decreased", field: "value", rule: `register ${reading.wh} Wh is above the later reading ${next.value} Wh (at ${new Date(next.atMs).toISOString()}): counters never run backwards` });
      }
      if (prev) {
        const max = bound(limit, (reading.atMs - prev.atMs) / 1000);
        if (reading.wh - prev.value > max) {
          throw new ReadingRejectedError({ reason: "implausible_value", field: "value", rule: `register rose ${reading.wh - prev.value} Wh in ${(reading.atMs - prev.atMs) / 1000}s, more than the ${reading.metric} limit of ${limit} W allows (${max} Wh)` });
        }
      }
      if (next) {
        const max = bound(limit, (next.atMs - reading.atMs) / 1000);
        if (next.value - reading.wh > max) {
          throw new ReadingRejectedError({ reason: "implausible_value", field: "value", rule: `register would have to rise ${next.value - reading.wh} Wh in ${(next.atMs - reading.atMs) / 1000}s to the next reading, more than the ${reading.metric} limit of ${limit} W allows (${max} Wh)` });
        }
      }
    }
    return { duplicate: false };
  }

  function remember(reading: MeterReading, hash: string, stream: string) {
    const key = seriesKey(reading.meterId, reading.metric, stream);
    let s = series.get(key);
    if (!s) series.set(key, (s = []));
    const value = reading.kind === "counter" ? reading.wh : reading.kind === "power" ? reading.watts : reading.exportWh;
    s.splice(insertionIndex(s, reading.atMs), 0, { atMs: reading.atMs, value, hash });
    if (s.length > SERIES_LENGTH) s.shift();
  }

  function isLate(reading: MeterReading, nowMs: number): boolean {
    const intervalMs = rules.intervalSeconds * 1000;
    const slotEnd = reading.kind === "interval" ? reading.atMs + intervalMs : Math.floor(reading.atMs / intervalMs) * intervalMs + intervalMs;
    return nowMs > slotEnd + rules.graceSeconds * 1000;
  }

  async function backpressure() {
    while (flushing && open.rows.length + open.deadLetters.length >= highWater) await flushing;
  }

  /**
   * Whether the reading is evidence, or the rejection its signature earns. Checked before the
   * meter's history: a forged reading must not move the counters' memory either.
   */
  function checkSignature(reading: MeterReading, body: Record<string, unknown>, meter: MeterInfo, source: ReadingSource): { evidence: boolean } {
    if (!isEnergyReading(reading) || source === "operator_correction") return { evidence: false };
    const signed = body.signature !== undefined;
    // A trusted non-MQTT source may send what the meter did not sign: kept, never evidence.
    if (!signed && source !== "mqtt") return { evidence: false };
    if (!meter.signer) {
      throw new ReadingRejectedError({ reason: "meter_signer_unset", field: "topic.deviceId", rule: `meter "${meter.meterId}" has no signing key in the prosumer registry, so none of its energy readings can be delivery evidence` });
    }
    const check = verifyReadingSignature({ meterId: reading.meterId, metric: reading.metric, payload: body, signer: meter.signer });
    if (!check.ok) throw new ReadingRejectedError({ reason: check.reason, field: "signature", rule: check.rule });
    return { evidence: true };
  }

  function settle(
    topic: DeviceTopic, topicName: string, payload: Uint8Array, nowMs: number, meter: MeterInfo | undefined,
    reading: MeterReading, body: Record<string, unknown>, options: Required<Pick<IngestOptions, "source">> & IngestOptions, slot?: VerdictSlot,
    signatureChecked?: SignatureOutcome,
  ): HandleOutcome {
    const batch = open;
    try {
      if (!meter) throw new ReadingRejectedError({ reason: "unknown_meter", field: "topic.deviceId", rule: `meter "${topic.deviceId}" is not in the prosumer registry` });
      const checked = signatureChecked ?? signatureOutcome(reading, body, meter, options.source);
      if (checked instanceof ReadingRejectedError) throw checked;
      const { evidence } = checked;
      const stream = evidence ? EVIDENCE_STREAM : `${options.source}/${reading.kind}`;
      const hash = createHash("sha256").update(payload).digest("hex");
      const { duplicate } = checkHistory(reading, meter, hash, stream);
      if (duplicate) {
        batch.duplicates++;
        if (slot) slot.value = { accepted: true, duplicate: true, evidence };
      } else {
        if (slot) slot.value = { accepted: true, duplicate: false, evidence };
        remember(reading, hash, stream);
        batch.rows.push({
          meter_id: reading.meterId, metric: reading.metric, kind: reading.kind, reading_at: reading.atMs,
          value: reading.kind === "counter" ? reading.wh : reading.kind === "power" ? reading.watts : null,
          export_wh: reading.kind === "interval" ? reading.exportWh : null,
          import_wh: reading.kind === "interval" ? reading.importWh : null,
          payload_hash: hash, payload: Buffer.from(payload).toString("utf8"), received_at: nowMs, late: isLate(reading, nowMs),
          evidence, source: options.source, correction_reason: options.source === "operator_correction" ? options.reason!.trim() : null, stream,
          topic: topicName, verdict: slot,
        });
      }
    } catch (err) {
      if (!(err instanceof ReadingRejectedError)) throw err;
      if (slot) slot.value = rejection(err);
      batch.deadLetters.push(deadLetter(topicName, err, payload, nowMs));
    }
    schedule();
    return { committed: batch.committed };
  }

  function signatureOutcome(reading: MeterReading, body: Record<string, unknown>, meter: MeterInfo, source: ReadingSource): SignatureOutcome {
    try {
      return checkSignature(reading, body, meter, source);
    } catch (err) {
      if (!(err instanceof ReadingRejectedError)) throw err;
      return err;
    }
  }

  function rejected(topicName: string, err: ReadingRejectedError, payload: Uint8Array, nowMs: number, slot?: VerdictSlot): HandleOutcome {
    const batch = open;
    if (slot) slot.value = rejection(err);
    batch.deadLetters.push(deadLetter(topicName, err, payload, nowMs));
    schedule();
    return { committed: batch.committed };
  }

  function handleMessage(topicName: string, payload: Uint8Array, options: IngestOptions = {}, slot?: VerdictSlot): HandleOutcome | Promise<HandleOutcome> {
    // After close nothing is stored: such a message is never acknowledged, so the broker keeps
    // it for the session and hands it to the next run.
    if (closed) return { committed: new Promise<void>(() => {}) };
    const source = options.source ?? "mqtt";
    if (!(readingSources as readonly string[]).includes(source)) throw new TypeError(`unknown reading source ${JSON.stringify(source)}`);
    const resolved = { ...options, source };
    metrics.messagesIn++;
    const nowMs = clock();
    const topic = parseDeviceTopic(rules.topicRoot, topicName);
    if (!topic) {
      return rejected(topicName, new ReadingRejectedError({ reason: "schema_invalid", field: "topic", rule: `must be ${rules.topicRoot}/{region}/{deviceType}/{deviceId}/{metric}` }), payload, nowMs, slot);
    }
    let reading: MeterReading;
    let body: Record<string, unknown>;
    try {
      ({ reading, body } = parseReadingMessage(topic, payload, { ...rules, nowMs }));
    } catch (err) {
      if (!(err instanceof ReadingRejectedError)) throw err;
      return rejected(topicName, err, payload, nowMs, slot);
    }
    const known = directory.byMeterId(topic.deviceId);
    const overloaded = open.rows.length + open.deadLetters.length >= highWater;
    const checked = known ? signatureOutcome(reading, body, known, source) : undefined;
    // A signature that fails against our copy of the registry may be the first reading under a
    // key rotated a moment ago: look again (rate-limited) before dead-lettering it.
    const stale = checked instanceof ReadingRejectedError && (checked.reason === "signature_invalid" || checked.reason === "meter_signer_unset");
    if (known && !overloaded && !stale) return settle(topic, topicName, payload, nowMs, known, reading, body, resolved, slot, checked);
    return (async () => {
      await backpressure();
      let meter = known;
      if (!meter || stale) {
        try {
          meter = await directory.lookup(topic.deviceId, { refresh: stale });
        } catch (err) {
          // Without the registry the meter cannot be vouched for; the dead letter keeps the
          // original so it can be replayed.
          logger.warn({ msg: "registry lookup failed", meterId: topic.deviceId, err: (err as Error).message });
          metrics.chainErrors++;
        }
      }
      return settle(topic, topicName, payload, nowMs, meter, reading, body, resolved, slot, meter === known && !stale ? checked : undefined);
    })();
  }

  return {
    handleMessage: (topicName, payload, options) => {
      checkCorrection(options);
      return handleMessage(topicName, payload, options);
    },
    async submit(topicName, payload, options = {}) {
      checkCorrection(options);
      if (closed || closing) throw new BaseError("the meter bridge is shutting down: send the reading again later", { code: "unavailable", retryable: true });
      const slot: VerdictSlot = {};
      const outcome = await handleMessage(topicName, payload, { ...options, source: options.source ?? "api" }, slot);
      try {
        await outcome.committed;
      } catch (err) {
        throw new BaseError("the reading was not stored: the meter bridge shut down before its commit; send it again", { code: "unavailable", retryable: true, cause: err });
      }
      // Every path through handleMessage fills the slot before its batch commits.
      return slot.value!;
    },
    // For a message that writes nothing (a command acknowledgement): its PUBACK must follow
    // those of the messages before it, i.e. wait for whatever is pending, and no longer.
    nextCommit: () => {
      if (open.rows.length + open.deadLetters.length + open.duplicates > 0) return open.committed;
      return flushingBatch?.committed.catch(() => {}) ?? Promise.resolve();
    },
    async flush() {
      while (flushing || open.rows.length + open.deadLetters.length + open.duplicates > 0) {
        await (flushing ?? startFlush());
      }
    },
    async load() {
      const rows = await sql<{ meter_id: string; metric: string; stream: string; reading_at: bigint; value: bigint; payload_hash: string }>`
        select distinct on (meter_id, metric, stream) meter_id, metric, stream, reading_at, value, payload_hash
        from bridge_readings where kind = 'counter' and reading_at >= ${String(clock() - rules.retentionSeconds * 1000)}::int8
        order by meter_id, metric, stream, reading_at desc`.execute(db);
      for (const r of rows.rows) {
        series.set(seriesKey(r.meter_id, r.metric, r.stream), [{ atMs: Number(r.reading_at), value: Number(r.value), hash: r.payload_hash }]);
      }
    },
    async close() {
      closing = true;
      await this.flush().catch(() => {});
      closed = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/** The stream of the meter's signed energy readings (bridge_readings.stream). */
export const EVIDENCE_STREAM = "evidence";

/**
 * A meter's history is kept per stream: signed readings are checked (order, bounds,
 * duplicates) only against signed readings, so unsigned data can never make an honest reading
 * look like a counter reset or a conflict.
 */
function seriesKey(meterId: string, metric: string, stream: string): string {
  return `${meterId}/${metric}/${stream}`;
}

function rowKey(meterId: string, metric: string, stream: string, readingAt: number | bigint): string {
  return `${meterId}\u0000${metric}\u0000${stream}\u0000${readingAt}`;
}

function checkCorrection(options: IngestOptions | undefined) {
  if (options?.source !== "operator_correction") return;
  const reason = options.reason?.trim() ?? "";
  if (reason.length === 0 || reason.length > CORRECTION_REASON_MAX) {
    throw new ValidationError("reason", `an operator correction needs a reason of 1 to ${CORRECTION_REASON_MAX} characters`);
  }
}

/** The verdict of a rejection; the error's message is `field: rule`, the verdict keeps them apart. */
function rejection(err: ReadingRejectedError): ReadingVerdict {
  const field = err.field ?? "payload";
  const prefix = `${field}: `;
  const rule = err.shortMessage.startsWith(prefix) ? err.shortMessage.slice(prefix.length) : err.shortMessage;
  return { accepted: false, reason: err.reason, field, rule };
}

function insertionIndex(s: readonly SeriesEntry[], atMs: number): number {
  let lo = 0;
  let hi = s.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (s[mid]!.atMs < atMs) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
