// Reads an hourly series from CSV text shaped like the files in data/ (see data/README.md): a
// header line, then "timestamp,value" rows with wall-clock hour-start timestamps
// ("2006-12-16 17:00:00"). Cleaning, applied to every file alike: a value of 0 or below, or an
// empty one, is missing (the household meter logs 0 when it logged nothing; loads are never
// really 0 there), and missing, repeated or skipped hours (DST days) go through the gap rule in
// hourlySeries.ts; a gap that rule does not fill stays missing (NaN) rather than refusing the file.
import { ValidationError } from "../../lib/errors.js";
import { buildHourlySeries, parseHourTimestamp, type HourlySeries } from "./hourlySeries.js";

export interface ReadHourlyCsvOptions {
  /** Name used in errors, e.g. the file path. */
  source?: string;
  /** Treat values <= 0 as missing, default true. */
  nonPositiveIsMissing?: boolean;
}

export function readHourlyCsv(text: string, options: ReadHourlyCsvOptions = {}): HourlySeries {
  const source = options.source ?? "csv";
  const lines = text.split(/\r?\n/).filter((l) => l.trim().length > 0);
  if (lines.length < 2) throw new ValidationError(source, "needs a header line and at least one row");
  const readings = lines.slice(1).map((line, i) => {
    const [timestamp, raw] = line.split(",");
    const field = `${source} line ${i + 2}`;
    const { hour } = parseHourTimestamp(field, timestamp);
    const trimmed = (raw ?? "").trim();
    let value: number | null = trimmed === "" ? null : Number(trimmed);
    if (value !== null && !Number.isFinite(value)) throw new ValidationError(field, `value must be a number (got "${raw}")`);
    if (value !== null && value <= 0 && (options.nonPositiveIsMissing ?? true)) value = null;
    return { hour, value };
  });
  return buildHourlySeries(source, readings);
}
