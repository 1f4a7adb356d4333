// The demo's end-of-day report from the trades the chain recorded: totals for the console, a
// JSON object, trades.csv (one row per trade, amounts exact) and a self-contained report.html
// (inline SVG chart, no scripts, no CDN) for the operator to open.
//
// Money is bigint token base units throughout (tEUR, 6 decimals) and becomes a decimal string
// only for display; energy is Wh, shown as kWh with three decimals from the integer. Rules:
// - average price = volume-weighted, floor(sum(Wh x price) / sum(Wh)), per interval and overall;
// - savings vs the grid = floor(sum(Wh x (retail - price)) / 1000), rounded once (towards minus
//   infinity), over trades not refunded (a refunded trade bought nothing P2P);
// - CO2 avoided = kWh x factor over the same trades (the sellers are PV homes).
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ValidationError } from "../lib/errors.js";

export type TradeState = "executed" | "delivered" | "disputed" | "settled" | "refunded";

export interface TradeRecord {
  tradeId: string | number | bigint;
  zone: string;
  /** Delivery interval start, unix seconds. */
  intervalStart: number;
  /** Contracted energy, Wh. */
  energyWh: bigint | number;
  /** Token base units per kWh. */
  pricePerKWh: bigint | number;
  /** Buyer's payment, token base units. */
  amount: bigint;
  buyer: string;
  seller: string;
  /** Lifecycle state as the indexer derives it; other strings are counted as they come. */
  state: TradeState | (string & {});
}

/** A trade as read back from trades.csv: every number exact. */
export interface TradeRow {
  tradeId: string;
  zone: string;
  intervalStart: number;
  energyWh: bigint;
  pricePerKWh: bigint;
  amount: bigint;
  buyer: string;
  seller: string;
  state: string;
}

export interface BuildTradeReportParameters {
  trades: readonly TradeRecord[];
  /** Disputes opened and resolved over the day (from the chain's DisputeOpened / DisputeResolved). */
  disputes: { opened: number; resolved: number };
  /** The grid retail price the savings are measured against, token base units per kWh. */
  retailPricePerKWh: number | bigint;
  /** Grid emission factor, kg CO2 per kWh. Default 0.385. */
  co2KgPerKWh?: number;
  /** Interval starts (unix seconds) to show even without trades, e.g. the whole day. */
  intervals?: readonly number[];
  /** Report title. Default "P2P energy market: community day". */
  title?: string;
  /** Clock for interval labels. Default "Europe/Berlin". */
  timeZone?: string;
}

export interface IntervalTotals {
  /** Unix seconds. */
  intervalStart: number;
  trades: number;
  energyWh: bigint;
  /** Sum of trade amounts, token base units. */
  value: bigint;
  /** Volume-weighted, token base units per kWh; null without traded energy. */
  averagePricePerKWh: bigint | null;
}

export interface TradeReportTotals {
  trades: number;
  /** Trades per lifecycle state. */
  tradesByState: Record<string, number>;
  energyWh: bigint;
  /** Sum of trade amounts, token base units. */
  value: bigint;
  /** Volume-weighted over all trades, token base units per kWh; null without traded energy. */
  averagePricePerKWh: bigint | null;
  disputesOpened: number;
  disputesResolved: number;
  retailPricePerKWh: bigint;
  /** Energy of the trades that count for savings and CO2 (all but refunded), Wh. */
  p2pEnergyWh: bigint;
  /** Savings against buying the same energy at the retail price, token base units (may be negative). */
  savings: bigint;
  co2KgPerKWh: number;
  /** kg, rounded to the gram. */
  co2AvoidedKg: number;
  /** One row per interval with trades or listed in `intervals`, in time order. */
  intervals: IntervalTotals[];
}

/** TradeReportTotals with bigints as decimal strings (JSON-safe), plus display forms. */
export interface TradeReportJson {
  title: string;
  token: { symbol: "tEUR"; decimals: 6 };
  trades: number;
  tradesByState: Record<string, number>;
  energyWh: string;
  energyKWh: string;
  value: string;
  valueTEUR: string;
  averagePricePerKWh: string | null;
  disputes: { opened: number; resolved: number };
  retailPricePerKWh: string;
  p2pEnergyWh: string;
  savings: string;
  savingsTEUR: string;
  co2KgPerKWh: number;
  co2AvoidedKg: number;
  intervals: { intervalStart: number; trades: number; energyWh: string; value: string; averagePricePerKWh: string | null }[];
}

export interface TradeReport {
  totals: TradeReportTotals;
  json: TradeReportJson;
  /** Plain-text summary for the console. */
  text: string;
  /** trades.csv contents. */
  csv: string;
  /** report.html contents. */
  html: string;
}

const TOKEN_DECIMALS = 6;
export const CSV_HEADER = ["trade_id", "zone", "interval_start", "interval_start_utc", "energy_wh", "price_per_kwh", "amount", "buyer", "seller", "state"] as const;

function toBigInt(field: string, v: unknown): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isSafeInteger(v)) return BigInt(v);
  throw new ValidationError(field, `must be a bigint or a safe integer, got ${String(v)}`);
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** `value` base units as a decimal string with all `decimals` digits: 1234567n -> "1.234567". */
export function formatUnits(value: bigint, decimals: number = TOKEN_DECIMALS): string {
  const sign = value < 0n ? "-" : "";
  const abs = value < 0n ? -value : value;
  if (decimals === 0) return `${sign}${abs}`;
  const unit = 10n ** BigInt(decimals);
  return `${sign}${abs / unit}.${(abs % unit).toString().padStart(decimals, "0")}`;
}

/** Wh as kWh with three decimals: 12345n -> "12.345". */
export function formatKWh(wh: bigint): string {
  return formatUnits(wh, 3);
}

/** Computes the totals and renders text, JSON, CSV and HTML. Throws ValidationError naming the trade and field on bad input. */
export function buildTradeReport(params: BuildTradeReportParameters): TradeReport {
  const retail = toBigInt("retailPricePerKWh", params.retailPricePerKWh);
  const co2KgPerKWh = params.co2KgPerKWh ?? 0.385;
  if (!Number.isFinite(co2KgPerKWh) || co2KgPerKWh < 0) throw new ValidationError("co2KgPerKWh", `must be a number >= 0, got ${co2KgPerKWh}`);
  for (const k of ["opened", "resolved"] as const) {
    const v = params.disputes?.[k];
    if (!Number.isSafeInteger(v) || v < 0) throw new ValidationError(`disputes.${k}`, `must be an integer >= 0, got ${String(v)}`);
  }

  const rows: TradeRow[] = params.trades.map((t, i) => {
    if (!Number.isSafeInteger(t.intervalStart)) throw new ValidationError(`trades[${i}].intervalStart`, `must be unix seconds, got ${String(t.intervalStart)}`);
    const row: TradeRow = {
      tradeId: String(t.tradeId),
      zone: t.zone,
      intervalStart: t.intervalStart,
      energyWh: toBigInt(`trades[${i}].energyWh`, t.energyWh),
      pricePerKWh: toBigInt(`trades[${i}].pricePerKWh`, t.pricePerKWh),
      amount: toBigInt(`trades[${i}].amount`, t.amount),
      buyer: t.buyer,
      seller: t.seller,
      state: t.state,
    };
    if (row.energyWh < 0n || row.pricePerKWh < 0n || row.amount < 0n) throw new ValidationError(`trades[${i}]`, "energyWh, pricePerKWh and amount must be >= 0");
    return row;
  });

  const byInterval = new Map<number, { trades: number; energyWh: bigint; value: bigint; priced: bigint }>();
  for (const t of params.intervals ?? []) byInterval.set(t, { trades: 0, energyWh: 0n, value: 0n, priced: 0n });
  const tradesByState: Record<string, number> = {};
  let energyWh = 0n;
  let value = 0n;
  let priced = 0n;
  let p2pEnergyWh = 0n;
  let savingsMilli = 0n;
  for (const r of rows) {
    tradesByState[r.state] = (tradesByState[r.state] ?? 0) + 1;
    energyWh += r.energyWh;
    value += r.amount;
    priced += r.energyWh * r.pricePerKWh;
    if (r.state !== "refunded") {
      p2pEnergyWh += r.energyWh;
      savingsMilli += r.energyWh * (retail - r.pricePerKWh);
    }
    let slot = byInterval.get(r.intervalStart);
    if (slot === undefined) byInterval.set(r.intervalStart, (slot = { trades: 0, energyWh: 0n, value: 0n, priced: 0n }));
    slot.trades++;
    slot.energyWh += r.energyWh;
    slot.value += r.amount;
    slot.priced += r.energyWh * r.pricePerKWh;
  }
  const intervals: IntervalTotals[] = [...byInterval.entries()]
    .sort(([a], [b]) => a - b)
    .map(([intervalStart, s]) => ({ intervalStart, trades: s.trades, energyWh: s.energyWh, value: s.value, averagePricePerKWh: s.energyWh > 0n ? s.priced / s.energyWh : null }));

  const totals: TradeReportTotals = {
    trades: rows.length,
    tradesByState,
    energyWh,
    value,
    averagePricePerKWh: energyWh > 0n ? priced / energyWh : null,
    disputesOpened: params.disputes.opened,
    disputesResolved: params.disputes.resolved,
    retailPricePerKWh: retail,
    p2pEnergyWh,
    savings: floorDiv(savingsMilli, 1000n),
    co2KgPerKWh,
    co2AvoidedKg: Math.round(Number(p2pEnergyWh) * co2KgPerKWh) / 1000,
    intervals,
  };
  const title = params.title ?? "P2P energy market: community day";
  const timeZone = params.timeZone ?? "Europe/Berlin";
  const json = toJson(title, totals);
  return { totals, json, text: renderText(title, totals), csv: renderCsv(rows), html: renderHtml(title, totals, timeZone) };
}

export interface WriteTradeReportReturnType {
  report: TradeReport;
  files: { csv: string; html: string; json: string };
}

/** buildTradeReport, then writes trades.csv, report.html and report.json into `outDir` (created if missing). */
export function writeTradeReport(outDir: string, params: BuildTradeReportParameters): WriteTradeReportReturnType {
  const report = buildTradeReport(params);
  mkdirSync(outDir, { recursive: true });
  const files = { csv: path.join(outDir, "trades.csv"), html: path.join(outDir, "report.html"), json: path.join(outDir, "report.json") };
  writeFileSync(files.csv, report.csv);
  writeFileSync(files.html, report.html);
  writeFileSync(files.json, `${JSON.stringify(report.json, null, 2)}\n`);
  return { report, files };
}

function toJson(title: string, t: TradeReportTotals): TradeReportJson {
  return {
    title,
    token: { symbol: "tEUR", decimals: 6 },
    trades: t.trades,
    tradesByState: t.tradesByState,
    energyWh: t.energyWh.toString(),
    energyKWh: formatKWh(t.energyWh),
    value: t.value.toString(),
    valueTEUR: formatUnits(t.value),
    averagePricePerKWh: t.averagePricePerKWh?.toString() ?? null,
    disputes: { opened: t.disputesOpened, resolved: t.disputesResolved },
    retailPricePerKWh: t.retailPricePerKWh.toString(),
    p2pEnergyWh: t.p2pEnergyWh.toString(),
    savings: t.savings.toString(),
    savingsTEUR: formatUnits(t.savings),
    co2KgPerKWh: t.co2KgPerKWh,
    co2AvoidedKg: t.co2AvoidedKg,
    intervals: t.intervals.map((i) => ({
      intervalStart: i.intervalStart,
      trades: i.trades,
      energyWh: i.energyWh.toString(),
      value: i.value.toString(),
      averagePricePerKWh: i.averagePricePerKWh?.toString() ?? null,
    })),
  };
}

function priceText(p: bigint | null): string {
  return p === null ? "n/a" : `${formatUnits(p)} tEUR/kWh`;
}

function renderText(title: string, t: TradeReportTotals): string {
  const states = Object.entries(t.tradesByState)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([s, n]) => `${s} ${n}`)
    .join(", ");
  return [
    title,
    `  trades            ${t.trades}${states ? ` (${states})` : ""}`,
    `  energy traded     ${formatKWh(t.energyWh)} kWh`,
    `  value             ${formatUnits(t.value)} tEUR`,
    `  average price     ${priceText(t.averagePricePerKWh)}`,
    `  disputes          ${t.disputesOpened} opened, ${t.disputesResolved} resolved`,
    `  savings vs grid   ${formatUnits(t.savings)} tEUR (retail ${formatUnits(t.retailPricePerKWh)} tEUR/kWh, on ${formatKWh(t.p2pEnergyWh)} kWh not refunded)`,
    `  CO2 avoided       ${t.co2AvoidedKg.toFixed(3)} kg (${t.co2KgPerKWh} kg/kWh)`,
  ].join("\n");
}

// ---- CSV (RFC 4180) -------------------------------------------------------------------------

function csvField(s: string): string {
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replaceAll('"', '""')}"` : s;
}

function renderCsv(rows: readonly TradeRow[]): string {
  const lines = [CSV_HEADER.join(",")];
  for (const r of rows) {
    lines.push(
      [r.tradeId, r.zone, String(r.intervalStart), new Date(r.intervalStart * 1000).toISOString(), r.energyWh.toString(), r.pricePerKWh.toString(), r.amount.toString(), r.buyer, r.seller, r.state]
        .map(csvField)
        .join(","),
    );
  }
  return `${lines.join("\r\n")}\r\n`;
}

function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = "";
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), (i += 2);
      else if (c === '"') (quoted = false), i++;
      else (field += c), i++;
    } else if (c === '"' && field === "") (quoted = true), i++;
    else if (c === ",") record.push(field), (field = ""), i++;
    else if (c === "\r" || c === "\n") {
      record.push(field);
      records.push(record);
      record = [];
      field = "";
      i += c === "\r" && text[i + 1] === "\n" ? 2 : 1;
    } else (field += c), i++;
  }
  if (field !== "" || record.length > 0) record.push(field), records.push(record);
  return records;
}

/** Reads trades.csv back into exact rows. Throws ValidationError naming the line and column on a bad file. */
export function readTradesCsv(text: string): TradeRow[] {
  const [header, ...records] = parseCsv(text);
  if (header === undefined || header.join(",") !== CSV_HEADER.join(",")) throw new ValidationError("trades.csv", `must start with the header ${CSV_HEADER.join(",")}`);
  return records.map((f, i) => {
    const where = `trades.csv line ${i + 2}`;
    if (f.length !== CSV_HEADER.length) throw new ValidationError(where, `must have ${CSV_HEADER.length} fields, got ${f.length}`);
    const int = (col: number): bigint => {
      if (!/^\d+$/.test(f[col]!)) throw new ValidationError(`${where} ${CSV_HEADER[col]}`, `must be a non-negative integer, got "${f[col]}"`);
      return BigInt(f[col]!);
    };
    return { tradeId: f[0]!, zone: f[1]!, intervalStart: Number(int(2)), energyWh: int(4), pricePerKWh: int(5), amount: int(6), buyer: f[7]!, seller: f[8]!, state: f[9]! };
  });
}

// ---- HTML -----------------------------------------------------------------------------------

function escapeHtml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}

function clockLabel(unixSeconds: number, timeZone: string): string {
  return new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(unixSeconds * 1000);
}

/** Bars: traded kWh per interval (left axis). Line: average price per interval (right axis), broken where nothing traded. */
function renderChart(intervals: readonly IntervalTotals[], timeZone: string): string {
  const W = 960;
  const H = 360;
  const left = 64;
  const right = 84;
  const top = 20;
  const bottom = 44;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const n = Math.max(1, intervals.length);
  const slot = plotW / n;
  const maxWh = intervals.reduce((m, i) => (i.energyWh > m ? i.energyWh : m), 0n);
  const prices = intervals.flatMap((i) => (i.averagePricePerKWh === null ? [] : [Number(i.averagePricePerKWh)]));
  let pMin = prices.length ? Math.min(...prices) : 0;
  let pMax = prices.length ? Math.max(...prices) : 1;
  if (pMax - pMin < 1) (pMin -= 1), (pMax += 1);
  const yEnergy = (wh: bigint) => top + plotH - (maxWh > 0n ? (Number(wh) / Number(maxWh)) * plotH : 0);
  const yPrice = (p: number) => top + plotH - ((p - pMin) / (pMax - pMin)) * plotH;
  const fmt = (x: number) => x.toFixed(1);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="Traded energy and average price per interval">`);
  parts.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="#fafafa" stroke="#ccc"/>`);
  intervals.forEach((iv, k) => {
    const y = yEnergy(iv.energyWh);
    const label = `${clockLabel(iv.intervalStart, timeZone)}: ${formatKWh(iv.energyWh)} kWh, ${iv.trades} trades, avg ${priceText(iv.averagePricePerKWh)}`;
    parts.push(`<rect class="bar" x="${fmt(left + k * slot + slot * 0.1)}" y="${fmt(y)}" width="${fmt(slot * 0.8)}" height="${fmt(top + plotH - y)}"><title>${escapeHtml(label)}</title></rect>`);
  });
  let d = "";
  let pen = false;
  intervals.forEach((iv, k) => {
    if (iv.averagePricePerKWh === null) return void (pen = false);
    d += `${pen ? "L" : "M"}${fmt(left + (k + 0.5) * slot)} ${fmt(yPrice(Number(iv.averagePricePerKWh)))} `;
    pen = true;
  });
  if (d) parts.push(`<path class="price" d="${d.trim()}" fill="none"/>`);
  // Axes: kWh on the left, tEUR/kWh on the right, clock below every 2 hours (8 intervals).
  for (const f of [0, 0.5, 1]) {
    const y = top + plotH - f * plotH;
    const wh = maxWh > 0n ? (maxWh * BigInt(Math.round(f * 1000))) / 1000n : 0n;
    parts.push(`<text x="${left - 6}" y="${fmt(y + 4)}" text-anchor="end">${formatKWh(wh)}</text>`);
    const p = Math.round(pMin + f * (pMax - pMin));
    parts.push(`<text x="${W - right + 6}" y="${fmt(y + 4)}">${prices.length ? formatUnits(BigInt(p)) : ""}</text>`);
  }
  intervals.forEach((iv, k) => {
    if (k % 8 !== 0) return;
    parts.push(`<text x="${fmt(left + k * slot)}" y="${H - bottom + 16}" text-anchor="middle">${clockLabel(iv.intervalStart, timeZone)}</text>`);
  });
  parts.push(`<text x="14" y="${top + plotH / 2}" transform="rotate(-90 14 ${top + plotH / 2})" text-anchor="middle">traded kWh</text>`);
  parts.push(`<text x="${W - 12}" y="${top + plotH / 2}" transform="rotate(90 ${W - 12} ${top + plotH / 2})" text-anchor="middle">average tEUR/kWh</text>`);
  parts.push(`<text x="${left + plotW / 2}" y="${H - 6}" text-anchor="middle">delivery interval start (${escapeHtml(timeZone)})</text>`);
  parts.push("</svg>");
  return parts.join("\n");
}

function renderHtml(title: string, t: TradeReportTotals, timeZone: string): string {
  const row = (k: string, v: string) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`;
  const states = Object.entries(t.tradesByState).sort(([a], [b]) => a.localeCompare(b));
  const traded = t.intervals.filter((i) => i.trades > 0);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1000px; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { padding: 0.25rem 0.75rem; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
svg text { font-size: 12px; fill: #444; }
svg .bar { fill: #7fb77e; }
svg .price { stroke: #c2410c; stroke-width: 2; }
.legend span { display: inline-block; width: 0.9rem; height: 0.9rem; vertical-align: middle; margin: 0 0.3rem 0 1rem; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<table>
${row("Trades", `${t.trades}`)}
${row("Energy traded", `${formatKWh(t.energyWh)} kWh`)}
${row("Value", `${formatUnits(t.value)} tEUR`)}
${row("Average price", priceText(t.averagePricePerKWh))}
${row("Disputes", `${t.disputesOpened} opened, ${t.disputesResolved} resolved`)}
${row("Savings vs grid", `${formatUnits(t.savings)} tEUR at retail ${formatUnits(t.retailPricePerKWh)} tEUR/kWh`)}
${row("CO2 avoided", `${t.co2AvoidedKg.toFixed(3)} kg at ${t.co2KgPerKWh} kg/kWh`)}
</table>
<h2>Per interval</h2>
<p class="legend"><span style="background:#7fb77e"></span>traded kWh<span style="background:#c2410c"></span>volume-weighted average price</p>
${renderChart(t.intervals, timeZone)}
<h2>Trades by state</h2>
<table>
${states.map(([s, n]) => `<tr><th>${escapeHtml(s)}</th><td class="num">${n}</td></tr>`).join("\n")}
</table>
<h2>Intervals with trades</h2>
<table>
<tr><th>start</th><th>trades</th><th>kWh</th><th>value tEUR</th><th>avg tEUR/kWh</th></tr>
${traded
  .map(
    (i) =>
      `<tr><td>${escapeHtml(clockLabel(i.intervalStart, timeZone))}</td><td class="num">${i.trades}</td><td class="num">${formatKWh(i.energyWh)}</td><td class="num">${formatUnits(i.value)}</td><td class="num">${i.averagePricePerKWh === null ? "" : formatUnits(i.averagePricePerKWh)}</td></tr>`,
  )
  .join("\n")}
</table>
</body>
</html>
`;
}
