// ISO 8601 durations as OpenADR events carry them ("PT30M", "PT1H15M", "P1DT2H"): days, hours,
// minutes and seconds only. Years, months and weeks are refused: a month has no fixed length,
// and an event's intervals must add up exactly.
const DURATION = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d{1,3})?)S)?)?$/;

/** Milliseconds, or undefined when `text` is not a day/time ISO 8601 duration. */
export function parseIsoDuration(text: string): number | undefined {
  const m = DURATION.exec(text);
  if (!m || text === "P" || text.endsWith("T")) return undefined;
  const [, d, h, min, s] = m;
  if (d === undefined && h === undefined && min === undefined && s === undefined) return undefined;
  const ms = (Number(d ?? 0) * 86_400 + Number(h ?? 0) * 3_600 + Number(min ?? 0) * 60) * 1000 + Math.round(Number(s ?? 0) * 1000);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** The shortest day/time form: 5_400_000 → "PT1H30M". */
export function formatIsoDuration(ms: number): string {
  const days = Math.floor(ms / 86_400_000);
  let rest = ms - days * 86_400_000;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  const seconds = (rest - minutes * 60_000) / 1000;
  const time = `${hours ? `${hours}H` : ""}${minutes ? `${minutes}M` : ""}${seconds ? `${seconds}S` : ""}`;
  if (!days && !time) return "PT0S";
  return `P${days ? `${days}D` : ""}${time ? `T${time}` : ""}`;
}
