// POST /v1/energy/forecast against one whole node: from a sent history (the gap rule, holes it
// does not fill skipped and reported, the week minimum after them), and from stored readings of
// a meter or a zone, built into hourly
// kWh from interval readings and register readings; expected forecasts are worked out from the
// seasonal-naive rule (the same hour a week earlier), which is what a history under four weeks gets.
import { expect } from "chai";
import type { Kysely } from "kysely";
import { injectClient, signIn, startTestNode, type Http, type TestNode } from "./helpers.js";

const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");

/** A week-shaped load: the hour of day and the day of week both show. */
const load = (hour: number) => 2 + ((hour % 24) / 10) + (Math.floor(hour / 24) % 7) * 0.5;

describe("POST /v1/energy/forecast", function () {
  this.timeout(120_000);
  let t: TestNode;
  let http: Http;
  let db: Kysely<any>;
  let token: string;
  let prosumer: string;
  /** The last complete hour (hours since the epoch): stored histories end here. */
  let last: number;
  const forecast = (body: unknown, auth: string | null = token) => http({ method: "POST", url: "/v1/energy/forecast", ...(auth ? { token: auth } : {}), body });

  before(async () => {
    // Six prosumers: meters 4, 6 and 8 in ZONE-A, 5, 7 and 9 in ZONE-B.
    t = await startTestNode({ TEST_ACCOUNTS: "6" });
    http = injectClient(t.node.app);
    db = t.node.services.indexer.db as unknown as Kysely<any>;
    // The operator: stored-readings forecasts name other households' meters.
    token = await signIn(http, t.node, t.node.operatorKey!);
    prosumer = await signIn(http, t.node, t.node.testAccounts[0]!.privateKey);
    last = Math.floor(Date.now() / HOUR) - 1;
    await t.node.indexedBlock();
  });

  after(async () => {
    await t?.close();
  });

  const storeRows = (rows: Record<string, unknown>[]) =>
    db.insertInto("bridge_readings").values(rows.map((r, i) => ({ payload: "{}", payload_hash: `test-${i}-${Math.random()}`, received_at: BigInt(Date.now()), value: null, export_wh: null, import_wh: null, ...r }))).execute();

  /** Interval readings (15 min) of `meterId` for `hours` hours ending at `last`; `wh(hour, k)` per interval; `skip` drops one. */
  const storeIntervals = (meterId: string, hours: number, wh: (hour: number, k: number) => number, skip?: { hour: number; k: number }) => {
    const rows = [];
    for (let hour = last - hours + 1; hour <= last; hour++) {
      for (let k = 0; k < 4; k++) {
        if (skip && skip.hour === hour && skip.k === k) continue;
        rows.push({ meter_id: meterId, metric: "interval", kind: "interval", reading_at: BigInt(hour * HOUR + k * 900_000), import_wh: BigInt(wh(hour, k)), export_wh: 0n });
      }
    }
    return storeRows(rows);
  };

  describe("from a sent history", () => {
    const history = (hours: number, startHour = last - hours + 1) =>
      Array.from({ length: hours }, (_, i) => ({ timestamp: iso((startHour + i) * HOUR), consumption: load(startHour + i) }));

    it("forecasts the next hours; under four weeks of history that is the same hour a week earlier", async () => {
      const h = history(24 * 8);
      const res = await forecast({ history: h, horizon: 24 });
      expect(res.status, res.text).to.equal(200);
      expect(res.json).to.include({ model: "seasonal-naive", historyStart: iso((last - 191) * HOUR), historyHours: 192, filledHours: 0, skippedHours: 0, missingHours: 0 });
      expect(res.json.forecast).to.have.length(24);
      res.json.forecast.forEach((f: { timestamp: string; consumption: number }, k: number) => {
        expect(f.timestamp).to.equal(iso((last + 1 + k) * HOUR));
        expect(Math.abs(f.consumption - load(last + 1 + k - 168))).to.be.below(1e-6);
      });
    });

    it("five weeks get the default model; a model can be asked for", async () => {
      const res = await forecast({ history: history(24 * 35), horizon: 48 });
      expect(res.json.model).to.equal("lag-regression");
      expect(res.json.forecast).to.have.length(48);
      expect(res.json.forecast.every((f: { consumption: number }) => Number.isFinite(f.consumption))).to.equal(true);
      expect((await forecast({ history: history(24 * 35), model: "weekly-mean" })).json.model).to.equal("weekly-mean");
    });

    it("fills short gaps by the documented rule and says how many hours it filled", async () => {
      const h = history(24 * 8).map((r, i) => (i === 180 || i === 181 ? { ...r, consumption: null } : r));
      const res = await forecast({ history: h.filter((_, i) => i !== 100) });
      expect(res.status).to.equal(200);
      expect(res.json).to.include({ filledHours: 3, skippedHours: 0, missingHours: 0 });
    });

    /** `history` with hours [from, from + hours) sent as null. */
    const withHole = (h: ReturnType<typeof history>, from: number, hours: number) => h.map((r, i) => (i >= from && i < from + hours ? { ...r, consumption: null } : r));
    const expectSeasonalNaive = (forecast: { timestamp: string; consumption: number }[]) =>
      forecast.forEach((f, k) => {
        expect(f.timestamp).to.equal(iso((last + 1 + k) * HOUR));
        expect(Math.abs(f.consumption - load(last + 1 + k - 168))).to.be.below(1e-6);
      });

    it("a 17-hour hole on day 1 (no week before to fill it from): forecasts from the hours after it and says what it skipped", async () => {
      const res = await forecast({ history: withHole(history(24 * 9), 5, 17) });
      expect(res.status, res.text).to.equal(200);
      expect(res.json).to.include({ model: "seasonal-naive", historyStart: iso((last - 24 * 9 + 1 + 22) * HOUR), historyHours: 24 * 9 - 22, filledHours: 0, skippedHours: 22, missingHours: 17 });
      expect(res.json.forecast).to.have.length(24);
      expectSeasonalNaive(res.json.forecast);
    });

    it("a three-day hole on day 1: the five weeks after it still get the default model", async () => {
      const res = await forecast({ history: withHole(history(24 * 35), 2, 72), horizon: 48 });
      expect(res.status, res.text).to.equal(200);
      expect(res.json).to.include({ model: "lag-regression", historyHours: 24 * 35 - 74, filledHours: 0, skippedHours: 74, missingHours: 72 });
      expect(res.json.forecast).to.have.length(48);
      expect(res.json.forecast.every((f: { consumption: number }) => Number.isFinite(f.consumption) && f.consumption >= 0)).to.equal(true);
    });

    it("a hole mid-series: two weeks not sent are skipped; a 17-hour gap with a week before it is still filled", async () => {
      // Eight days, 337 hours not sent, eight days.
      const res = await forecast({ history: [...history(24 * 8, last - 24 * 30), ...history(24 * 8)] });
      expect(res.status, res.text).to.equal(200);
      expect(res.json).to.include({ model: "seasonal-naive", historyStart: iso((last - 191) * HOUR), historyHours: 192, filledHours: 0, skippedHours: 721 - 192, missingHours: 337 });
      expectSeasonalNaive(res.json.forecast);
      const filled = await forecast({ history: withHole(history(24 * 9), 180, 17) });
      expect(filled.status, filled.text).to.equal(200);
      expect(filled.json).to.include({ historyHours: 24 * 9, filledHours: 17, skippedHours: 0, missingHours: 0 });
    });

    it("too little left after a hole is a 400 naming the field and the rule", async () => {
      const h = history(24 * 8);
      const res = await forecast({ history: withHole(h, 30, 10) });
      expect(res.status, res.text).to.equal(400);
      expect(res.json).to.include({
        code: "invalid_request", field: "history",
        detail: `history has a gap of 10 hours after ${h[29]!.timestamp} that the gap rule does not fill (over 168 hours, or over 6 with no complete week before it), and 152 hours after it; a forecast needs at least 168 hours (one week) after the last such gap`,
      });
    });

    it("too short a history is a 422 saying how much there is and how much is needed", async () => {
      const res = await forecast({ history: history(20) });
      expect(res.status).to.equal(422);
      expect(res.json).to.include({ code: "insufficient_history", field: "history", detail: "history covers 20 hours; a forecast needs at least 168 (one week)" });
    });

    it("bad input is a 400 naming the field and the rule", async () => {
      const week = history(24 * 8);
      const cases: [unknown, string, string][] = [
        [{ history: week.map((r, i) => (i === 3 ? { ...r, timestamp: r.timestamp.replace(":00:00Z", ":30:00Z") } : r)) }, "history[3].timestamp", "must be on the hour"],
        [{ history: week.filter((_, i) => i < 30 || i >= 40) }, "history", "and 152 hours after it; a forecast needs at least 168 hours (one week) after the last such gap"],
        [{ history: [...history(24 * 8, last - 24 * 30), ...history(24 * 6)] }, "history", "and 144 hours after it"],
        [{ history: [...week].reverse() }, "history[1].timestamp", "increasing time order"],
        [{ history: week, temperature: [{ timestamp: week[1]!.timestamp, temperature: 10 }, { timestamp: week[0]!.timestamp, temperature: 10 }] }, "temperature[1].timestamp", "increasing time order"],
        [{ history: week.map((r, i) => (i === 5 ? { ...r, consumption: -1 } : r)) }, "history.5.consumption", ">= 0"],
        [{ history: week, horizon: 0 }, "horizon", ">= 1"],
        [{ history: week, horizon: 169 }, "horizon", "<= 168"],
        [{ history: week, model: "lstm" }, "model", "allowed values"],
        [{ history: week, temperature: [{ timestamp: week[0]!.timestamp, temperature: 10 }] }, "temperature", "must cover every hour from"],
        [{ horizon: 24 }, "history", "one of history, meterId or zone"],
        [{ history: week, meterId: "meter-5" }, "meterId", "cannot go with history"],
        [{ meterId: "meter/5" }, "meterId", "must match pattern"],
      ];
      for (const [body, field, rule] of cases) {
        const res = await forecast(body);
        expect(res.status, `${field}: ${res.text}`).to.equal(400);
        expect(res.json.field, res.text).to.equal(field);
        expect(res.json.detail, res.text).to.include(rule);
      }
    });

    it("needs a token", async () => {
      expect((await forecast({ history: history(24 * 8) }, null)).json).to.include({ status: 401, code: "unauthorized" });
    });
  });

  describe("from stored readings", () => {
    /** meter-5: four interval readings an hour, one missing in the hour a week before forecast hour 2. */
    const meter5 = (hour: number, k: number) => 250 + 10 * (hour % 24) + 100 * (Math.floor(hour / 24) % 7) + k;
    const meter5Hour = (hour: number) => [0, 1, 2, 3].reduce((s, k) => s + meter5(hour, k), 0);
    /** meter-7: an import register read every 15 minutes, rising by this many Wh an hour. */
    const meter7Hour = (hour: number) => 500 + 20 * (hour % 24);
    let gapHour: number;

    before(async () => {
      gapHour = last - 168 + 3;
      await storeIntervals("meter-5", 24 * 8, meter5, { hour: gapHour, k: 2 });
      const registers = [];
      let wh = 5_000_000;
      for (let hour = last - 24 * 8 + 1; hour <= last + 1; hour++) {
        for (let k = 0; k < 4; k++) {
          registers.push({ meter_id: "meter-7", metric: "import", kind: "counter", reading_at: BigInt(hour * HOUR + k * 900_000), value: BigInt(wh) });
          wh += meter7Hour(hour) / 4;
        }
      }
      // The reading at the end of the last hour is what closes it; later ones are beyond it.
      await storeRows(registers.filter((r) => r.reading_at <= BigInt((last + 1) * HOUR)));
      await storeIntervals("meter-6", 20, () => 100);
      // meter-8: a week, eight days of nothing, a week: the gap is longer than the rule fills.
      await storeIntervals("meter-8", 24 * 22, () => 100);
      await db.deleteFrom("bridge_readings").where("meter_id", "=", "meter-8").where("reading_at", ">=", BigInt((last - 24 * 15) * HOUR)).where("reading_at", "<", BigInt((last - 24 * 7) * HOUR)).execute();
      // meter-80 (not registered; the operator may ask): a week, eight days of nothing, three days.
      await storeIntervals("meter-80", 24 * 18, () => 50);
      await db.deleteFrom("bridge_readings").where("meter_id", "=", "meter-80").where("reading_at", ">=", BigInt((last - 24 * 11 + 1) * HOUR)).where("reading_at", "<", BigInt((last - 24 * 3 + 1) * HOUR)).execute();
    });

    it("a meter's interval readings: hourly kWh, an incomplete hour filled, the same hour a week earlier ahead", async () => {
      const res = await forecast({ meterId: "meter-5", horizon: 6 });
      expect(res.status, res.text).to.equal(200);
      expect(res.json).to.include({ model: "seasonal-naive", historyHours: 192, filledHours: 1, unit: "kWh", meters: 1 });
      const expected = [0, 1, 2, 3, 4, 5].map((k) => {
        const hour = last + 1 + k - 168;
        // The hour with a missing interval is interpolated between its neighbours.
        return hour === gapHour ? (meter5Hour(hour - 1) + meter5Hour(hour + 1)) / 2 / 1000 : meter5Hour(hour) / 1000;
      });
      expect(res.json.forecast.map((f: { consumption: number }) => f.consumption)).to.deep.equal(expected.map((x) => Math.round(x * 1e6) / 1e6));
      expect(res.json.forecast[0].timestamp).to.equal(iso((last + 1) * HOUR));
    });

    it("a meter's register readings: the hourly differences", async () => {
      const res = await forecast({ meterId: "meter-7", horizon: 3 });
      expect(res.status, res.text).to.equal(200);
      expect(res.json).to.include({ historyHours: 192, filledHours: 0 });
      expect(res.json.forecast.map((f: { consumption: number }) => f.consumption)).to.deep.equal([0, 1, 2].map((k) => meter7Hour(last + 1 + k - 168) / 1000));
    });

    it("a meter with a gap longer than the rule fills: forecast from the week after it, the skipped hours said", async () => {
      const res = await forecast({ meterId: "meter-8", horizon: 6 });
      expect(res.status, res.text).to.equal(200);
      // Stored: hours last - 527 to last; none from last - 360 to last - 169.
      expect(res.json).to.include({ model: "seasonal-naive", historyStart: iso((last - 168) * HOUR), historyHours: 169, filledHours: 0, skippedHours: 359, missingHours: 192, unit: "kWh", meters: 1 });
      expect(res.json.forecast.map((f: { consumption: number }) => f.consumption)).to.deep.equal([0.4, 0.4, 0.4, 0.4, 0.4, 0.4]);
    });

    it("a meter's forecast is for its owner or an operator: another household's is a 403", async () => {
      // meter-4 is test account 0's own (no stored history yet: a 422 about that, not a refusal).
      const own = await forecast({ meterId: "meter-4" }, prosumer);
      expect(own.status, own.text).to.equal(422);
      expect(own.json.code).to.equal("insufficient_history");
      const theirs = await forecast({ meterId: "meter-5" }, prosumer);
      expect(theirs.status).to.equal(403);
      expect(theirs.json).to.include({ code: "not_meter_owner", field: "meterId" });
      // A zone sums many households: any signed-in account.
      expect((await forecast({ zone: "ZONE-B", horizon: 3 }, prosumer)).status).to.equal(200);
    });

    it("a zone: the sum of its meters (a meter with no readings adds nothing)", async () => {
      const res = await forecast({ zone: "ZONE-B", horizon: 6 });
      expect(res.status, res.text).to.equal(200);
      expect(res.json).to.include({ historyHours: 192, filledHours: 1, meters: 2 });
      const zoneHour = (hour: number) => meter5Hour(hour) + meter7Hour(hour);
      const expected = [0, 1, 2, 3, 4, 5].map((k) => {
        const hour = last + 1 + k - 168;
        return (hour === gapHour ? (zoneHour(hour - 1) + zoneHour(hour + 1)) / 2 : zoneHour(hour)) / 1000;
      });
      expect(res.json.forecast.map((f: { consumption: number }) => f.consumption)).to.deep.equal(expected.map((x) => Math.round(x * 1e6) / 1e6));
    });

    it("too little stored history is a 422 saying how much there is and how much is needed", async () => {
      const short = await forecast({ meterId: "meter-6" });
      expect(short.status).to.equal(422);
      expect(short.json).to.include({
        code: "insufficient_history", field: "meterId",
        detail: `meter meter-6 has 20 hours of history (${iso((last - 19) * HOUR)} to ${iso(last * HOUR)}); a forecast needs at least 168 hours (one week)`,
      });
      const none = await forecast({ meterId: "meter-4" });
      expect(none.json).to.include({ status: 422, detail: "meter meter-4 has no complete hour of readings; a forecast needs at least 168 hours (one week)" });
      const gap = await forecast({ meterId: "meter-80" });
      expect(gap.json).to.include({
        status: 422, code: "insufficient_history", field: "meterId",
        detail: `stored readings of meter meter-80: history has a gap of 192 hours after ${iso((last - 24 * 11) * HOUR)} that the gap rule does not fill (over 168 hours, or over 6 with no complete week before it), and 72 hours after it; a forecast needs at least 168 hours (one week) after the last such gap`,
      });
      expect((await forecast({ zone: "ZONE-Q" })).json).to.include({ status: 422, field: "zone" });
    });
  });
});
