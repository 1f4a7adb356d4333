// Numbers with their units and times in the community's time zone. Money stays a bigint of
// token base units until it is shown; energy arrives as integer Wh and is shown as kWh.
export interface Units {
  symbol: string;
  decimals: number;
  timeZone: string;
}

export const units: Units = { symbol: "EUR", decimals: 6, timeZone: "Europe/Berlin" };

const big = (v: bigint | string | number) => (typeof v === "bigint" ? v : BigInt(typeof v === "number" ? Math.trunc(v) : v));

/** Token base units as a decimal number string with `digits` fraction digits (rounded half up). */
export function tokenNumber(value: bigint | string | number, digits = 2): string {
  const v = big(value);
  const negative = v < 0n;
  const abs = negative ? -v : v;
  const scale = 10n ** BigInt(units.decimals);
  const shown = 10n ** BigInt(digits);
  const scaled = (abs * shown * 2n + scale) / (2n * scale);
  const whole = scaled / shown;
  const frac = (scaled % shown).toString().padStart(digits, "0");
  const text = `${whole.toLocaleString("en")}${digits > 0 ? `.${frac}` : ""}`;
  return negative ? `-${text}` : text;
}

/** An amount: "12.34 EUR". */
export function money(value: bigint | string | number): string {
  // Cents, and up to two more digits when they carry something (a 15-minute trade is often cents).
  const [whole, frac = ""] = tokenNumber(value, Math.min(4, units.decimals)).split(".");
  const kept = frac.replace(/0+$/, "").padEnd(Math.min(2, units.decimals), "0");
  return `${kept ? `${whole}.${kept}` : whole} ${units.symbol}`;
}
/** A price: "0.2000 EUR/kWh", with every digit the token has when they matter ("0.280845 EUR/kWh"). */
export const price = (perKWh: bigint | string | number) => `${priceNumber(perKWh)} ${units.symbol}/kWh`;

/** A price as an exact decimal with 4 to `decimals` fraction digits: no rounding hides a difference. */
export function priceNumber(perKWh: bigint | string | number): string {
  const full = tokenNumber(perKWh, units.decimals);
  const [whole, frac = ""] = full.split(".");
  const kept = frac.replace(/0+$/, "").padEnd(Math.min(4, units.decimals), "0");
  return kept ? `${whole}.${kept}` : whole!;
}
/** A price as a plain number of currency units per kWh, for charts. */
export const priceValue = (perKWh: number | string) => Number(perKWh) / 10 ** units.decimals;

/** Energy in Wh shown as kWh: "1.234 kWh". */
export function kwh(wh: bigint | string | number, digits = 3): string {
  return `${(Number(wh) / 1000).toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits })} kWh`;
}
export const kwhNumber = (kwhValue: number, digits = 2) => `${kwhValue.toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits })} kWh`;
export const kg = (value: number) => `${value.toLocaleString("en", { maximumFractionDigits: 1 })} kg CO₂`;
export const pct = (value: number, digits = 1) => `${value.toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits })} %`;

function formatter(options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  return new Intl.DateTimeFormat("en-GB", { timeZone: units.timeZone, ...options });
}

/** Unix seconds as "21 Jun, 11:15" in the community's zone. */
export function dateTime(unixSeconds: number | string): string {
  return formatter({ day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }).format(new Date(Number(unixSeconds) * 1000));
}
/** Unix seconds as "11:15". */
export function clockTime(unixSeconds: number | string): string {
  return formatter({ hour: "2-digit", minute: "2-digit" }).format(new Date(Number(unixSeconds) * 1000));
}
/** An interval "21 Jun, 11:15–11:30". */
export function interval(startSeconds: number | string, lengthSeconds = 900): string {
  return `${dateTime(startSeconds)}–${clockTime(Number(startSeconds) + lengthSeconds)}`;
}

/** The community's calendar day of an instant, "YYYY-MM-DD". */
export function localDay(unixSeconds: number): string {
  const parts = formatter({ year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(new Date(unixSeconds * 1000));
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? "";
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/** Offset of the community's zone from UTC at an instant, seconds (east positive). */
function zoneOffset(unixSeconds: number): number {
  const parts = formatter({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).formatToParts(new Date(unixSeconds * 1000));
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  return (Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second")) / 1000) - unixSeconds;
}

/** Unix seconds of local midnight starting `day` ("YYYY-MM-DD") and of the next one. */
export function dayBounds(day: string): { from: number; to: number } {
  const [y, m, d] = day.split("-").map(Number) as [number, number, number];
  const at = (dd: number) => {
    const guess = Date.UTC(y, m - 1, dd) / 1000;
    // Two passes settle the offset across a DST change on that day.
    const first = guess - zoneOffset(guess);
    return guess - zoneOffset(first);
  };
  return { from: at(d), to: at(d + 1) };
}

export const shortHash = (hash: string) => (hash.length > 14 ? `${hash.slice(0, 8)}…${hash.slice(-6)}` : hash);
export const shortAddress = (a: string) => `${a.slice(0, 6)}…${a.slice(-4)}`;
