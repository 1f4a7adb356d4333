// `npm run eval:forecast [-- --json] [-- --file my.csv ...]`: rolling-origin evaluation of every
// demand model (engine/forecast/evaluateForecasts.ts) on the measured series in data/ (see
// data/README.md), or on any CSV of the same shape ("timestamp,value", hourly, wall-clock hour
// start), holes and all.
//
// Each day at 00:00 after an 8-week warm-up, each model forecasts the next 24 h from the data
// before; MAPE and MASE (vs the weekly seasonal-naive forecast on the same hours) are printed
// per model and per year. A day whose 8 weeks before or 24 h after touch a gap the gap rule does
// not fill is skipped and counted; a file is refused only when fewer than a week of days remain.
// Goals: MASE <= 0.85 on the household, MAPE <= 4% on AEP.
// `--sensitivity` also scores the default model with each of its settings moved up and down
// (it was not tuned on these files; this shows how much the settings matter).
import { readFile } from "node:fs/promises";
import path from "node:path";
import { evaluateForecasts, type EvaluateForecastsReturnType } from "../engine/forecast/evaluateForecasts.js";
import { DEFAULT_FORECAST_MODEL, FORECAST_MODELS, type ForecastModel, type ForecastModelName } from "../engine/forecast/forecastModels.js";
import { LAG_REGRESSION, lagRegressionForecast, type LagRegressionSettings } from "../engine/forecast/lagRegressionForecast.js";
import { readHourlyCsv } from "../engine/forecast/readHourlyCsv.js";
import { AEP_LOAD_CSV, HOUSEHOLD_LOAD_CSV } from "../lib/dataFiles.js";
import { ValidationError } from "../lib/errors.js";

const HOUSEHOLD = path.basename(HOUSEHOLD_LOAD_CSV);
const AEP = path.basename(AEP_LOAD_CSV);

const args = process.argv.slice(2);
const json = args.includes("--json");
const sensitivity = args.includes("--sensitivity");
const files: string[] = [];
let warmupDays = 56;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--file") files.push(path.resolve(args[++i] ?? ""));
  else if (args[i] === "--warmup-days") warmupDays = Number(args[++i]);
  else if (args[i] !== "--json" && args[i] !== "--sensitivity") {
    console.error(`unknown argument ${args[i]}; use --json, --file <csv> (repeatable), --warmup-days <n>, --sensitivity`);
    process.exit(2);
  }
}
if (!Number.isInteger(warmupDays) || warmupDays < 1) {
  console.error("--warmup-days must be a positive integer");
  process.exit(2);
}
if (files.length === 0) files.push(HOUSEHOLD_LOAD_CSV, AEP_LOAD_CSV);

const variants: ForecastModel[] = [];
if (sensitivity) {
  const moves: [keyof LagRegressionSettings, number][] = [
    ["discountPerDay", 0.98], ["discountPerDay", 0.995], ["windowDays", 182], ["windowDays", 728], ["ridge", 1e-4], ["ridge", 1e-2],
  ];
  for (const [key, value] of moves) {
    variants.push({
      ...FORECAST_MODELS["lag-regression"],
      name: `lag-regression ${key}=${value}`,
      forecast: (series, horizon) => lagRegressionForecast(series, horizon, { settings: { [key]: value } }),
    });
  }
}

function refuse(file: string, reason: string): never {
  console.error(`eval:forecast: cannot use ${file}: ${reason}`);
  process.exit(1);
}

const started = performance.now();
const results: ({ file: string; seconds: number } & EvaluateForecastsReturnType)[] = [];
for (const file of files) {
  const t0 = performance.now();
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    refuse(file, (err as Error).message);
  }
  let result: EvaluateForecastsReturnType;
  try {
    const series = readHourlyCsv(text, { source: path.basename(file) });
    result = evaluateForecasts(series, { warmupDays, source: path.basename(file), models: [...(Object.keys(FORECAST_MODELS) as ForecastModelName[]), ...variants] });
  } catch (err) {
    // A malformed file, or one with too little left to score; anything else is a bug to see whole.
    if (!(err instanceof ValidationError)) throw err;
    refuse(file, err.message);
  }
  results.push({ file: path.basename(file), seconds: (performance.now() - t0) / 1000, ...result });
}

const score = (file: string, model: ForecastModelName) => results.find((r) => r.file === file)?.scores.find((s) => s.model === model);
const goals = {
  householdMase: { goal: 0.85, value: score(HOUSEHOLD, DEFAULT_FORECAST_MODEL)?.mase },
  aepMape: { goal: 4, value: score(AEP, DEFAULT_FORECAST_MODEL)?.mape },
};
const registered = (m: string) => m in FORECAST_MODELS;
const bestByMase = results.map((r) => ({ file: r.file, model: r.scores.filter((s) => registered(s.model)).reduce((a, b) => (b.mase < a.mase ? b : a)).model }));

if (json) {
  console.log(JSON.stringify({
    defaultModel: DEFAULT_FORECAST_MODEL,
    defaultSettings: LAG_REGRESSION,
    warmupDays,
    horizonHours: 24,
    originHour: 0,
    files: results,
    bestByMase,
    goals,
    seconds: (performance.now() - started) / 1000,
  }));
} else {
  const pad = (s: string, w: number) => s.padEnd(w);
  const num = (x: number, d: number) => x.toFixed(d).padStart(9);
  for (const r of results) {
    const { historyIncomplete, horizonIncomplete } = r.skippedOrigins;
    console.log(`\n${r.file}: ${r.origins} origins (00:00, ${r.firstOrigin.slice(0, 10)} to ${r.lastOrigin.slice(0, 10)}), ${r.scoredHours} hours scored, ${r.seconds.toFixed(1)} s`);
    console.log(`  skipped ${historyIncomplete + horizonIncomplete} origins (${historyIncomplete} history incomplete, ${horizonIncomplete} horizon incomplete); ${r.filledHours} hours filled by the gap rule, ${r.missingHours} left missing`);
    const w = sensitivity ? 36 : 16;
    console.log(`${pad("model", w)}${"MAE".padStart(9)}${"MAPE %".padStart(9)}${"MASE".padStart(9)}${"MASE-is".padStart(9)}   by year (MASE / MAPE %)`);
    for (const s of r.scores) {
      const years = Object.entries(s.byYear).map(([y, v]) => `${y} ${v.mase.toFixed(3)} / ${v.mape.toFixed(1)}`).join("  ");
      const mark = s.model === DEFAULT_FORECAST_MODEL ? "*" : " ";
      console.log(`${pad(s.model + mark, w)}${num(s.mae, 3)}${num(s.mape, 2)}${num(s.mase, 3)}${num(s.maseInSample, 3)}   ${years}`);
    }
  }
  console.log(`\n* default model (${DEFAULT_FORECAST_MODEL}: ${FORECAST_MODELS[DEFAULT_FORECAST_MODEL].description})`);
  console.log("MASE: total absolute error / the weekly seasonal-naive's on the same hours; MASE-is: scaled by the history's mean week-on-week change.");
  for (const b of bestByMase) console.log(`best by MASE on ${b.file}: ${b.model}${b.model === DEFAULT_FORECAST_MODEL ? " (the default)" : " (NOT the default)"}`);
  if (goals.householdMase.value !== undefined) console.log(`goal household MASE <= 0.85: ${goals.householdMase.value.toFixed(3)} ${goals.householdMase.value <= 0.85 ? "met" : "NOT met"}`);
  if (goals.aepMape.value !== undefined) console.log(`goal AEP MAPE <= 4%: ${goals.aepMape.value.toFixed(2)}% ${goals.aepMape.value <= 4 ? "met" : "NOT met"}`);
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
