// The end-of-day report on a small fixture whose totals are worked out by hand, the CSV read
// back exactly, and the files it writes.
import { expect } from "chai";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { buildTradeReport, formatKWh, formatUnits, readTradesCsv, writeTradeReport, type TradeRecord } from "../../demo/report.js";
import { ValidationError } from "../../lib/errors.js";

const T0 = 1_718_963_100; // 2024-06-21 09:45 UTC, no trades
const T1 = T0 + 900;
const T2 = T1 + 900;

const TRADES: TradeRecord[] = [
  { tradeId: "1", zone: "ZONE-A", intervalStart: T1, energyWh: 1_500n, pricePerKWh: 180_000n, amount: 270_000n, buyer: "0xb1", seller: "0xs1", state: "settled" },
  { tradeId: "2", zone: "ZONE-A", intervalStart: T1, energyWh: 2_500n, pricePerKWh: 190_000n, amount: 475_000n, buyer: "0xb2", seller: "0xs1", state: "delivered" },
  { tradeId: "3", zone: "ZONE-B", intervalStart: T2, energyWh: 1_000n, pricePerKWh: 200_000n, amount: 200_000n, buyer: "0xb1", seller: "0xs2", state: "disputed" },
  { tradeId: "4", zone: "ZONE-B", intervalStart: T2, energyWh: 3_000n, pricePerKWh: 170_000n, amount: 510_000n, buyer: "0xb3", seller: "0xs3", state: "refunded" },
  // 333 x 185,001 / 1000 = 61,605.333 -> 61,605
  { tradeId: "5", zone: "ZONE-A", intervalStart: T2, energyWh: 333, pricePerKWh: 185_001, amount: 61_605n, buyer: "0xb2", seller: "0xs2", state: "executed" },
];

function report() {
  return buildTradeReport({ trades: TRADES, disputes: { opened: 2, resolved: 1 }, retailPricePerKWh: 320_000, intervals: [T0, T1, T2] });
}

describe("demo/report", () => {
  it("totals the fixture as worked out by hand", () => {
    const t = report().totals;
    expect(t.trades).to.equal(5);
    expect(t.tradesByState).to.deep.equal({ settled: 1, delivered: 1, disputed: 1, refunded: 1, executed: 1 });
    // 1500 + 2500 + 1000 + 3000 + 333
    expect(t.energyWh).to.equal(8_333n);
    // 270000 + 475000 + 200000 + 510000 + 61605
    expect(t.value).to.equal(1_516_605n);
    // (270e6 + 475e6 + 200e6 + 510e6 + 61,605,333) / 8333 = 181,999.92 -> 181,999
    expect(t.averagePricePerKWh).to.equal(181_999n);
    expect([t.disputesOpened, t.disputesResolved]).to.deep.equal([2, 1]);
    // Not refunded: 1500 x 140000 + 2500 x 130000 + 1000 x 120000 + 333 x 134999 = 699,954,667 -> / 1000 = 699,954
    expect(t.p2pEnergyWh).to.equal(5_333n);
    expect(t.savings).to.equal(699_954n);
    // 5333 Wh x 0.385 g/Wh = 2053.205 g -> 2.053 kg
    expect(t.co2AvoidedKg).to.equal(2.053);
    expect(t.intervals).to.deep.equal([
      { intervalStart: T0, trades: 0, energyWh: 0n, value: 0n, averagePricePerKWh: null },
      // 745,000,000 / 4000 = 186,250
      { intervalStart: T1, trades: 2, energyWh: 4_000n, value: 745_000n, averagePricePerKWh: 186_250n },
      // 771,605,333 / 4333 = 178,076.47 -> 178,076
      { intervalStart: T2, trades: 3, energyWh: 4_333n, value: 771_605n, averagePricePerKWh: 178_076n },
    ]);
  });

  it("formats money and energy from integers, never through a float", () => {
    expect(formatUnits(1_516_605n)).to.equal("1.516605");
    expect(formatUnits(5n)).to.equal("0.000005");
    expect(formatUnits(-1_500_000n)).to.equal("-1.500000");
    expect(formatUnits(123_456_789_012_345_678_901n)).to.equal("123456789012345.678901");
    expect(formatKWh(8_333n)).to.equal("8.333");
    expect(formatKWh(7n)).to.equal("0.007");
  });

  it("prints a console summary and a JSON object with the same figures", () => {
    const r = report();
    expect(r.text).to.contain("5 (delivered 1, disputed 1, executed 1, refunded 1, settled 1)");
    expect(r.text).to.contain("8.333 kWh");
    expect(r.text).to.contain("1.516605 tEUR");
    expect(r.text).to.contain("0.181999 tEUR/kWh");
    expect(r.text).to.contain("2 opened, 1 resolved");
    expect(r.text).to.contain("0.699954 tEUR");
    expect(r.text).to.contain("2.053 kg");
    const json = JSON.parse(JSON.stringify(r.json));
    expect(json).to.include({ trades: 5, energyWh: "8333", energyKWh: "8.333", value: "1516605", valueTEUR: "1.516605", averagePricePerKWh: "181999", savings: "699954", co2AvoidedKg: 2.053 });
    expect(json.intervals[2]).to.deep.equal({ intervalStart: T2, trades: 3, energyWh: "4333", value: "771605", averagePricePerKWh: "178076" });
  });

  it("writes a CSV that reads back exactly, including awkward text and amounts beyond 2^53", () => {
    const odd: TradeRecord = {
      tradeId: 12345678901234567890n, zone: 'ZONE "C", north', intervalStart: T2, energyWh: 9_007_199_254_740_993n,
      pricePerKWh: 320_000n, amount: 2_882_303_761_517_117_760n, buyer: "0xb\nline", seller: " 0xs ", state: "settled",
    };
    const all = [...TRADES, odd];
    const r = buildTradeReport({ trades: all, disputes: { opened: 0, resolved: 0 }, retailPricePerKWh: 320_000n });
    const lines = r.csv.split("\r\n");
    expect(lines[0]).to.equal("trade_id,zone,interval_start,interval_start_utc,energy_wh,price_per_kwh,amount,buyer,seller,state");
    expect(lines[1]).to.equal(`1,ZONE-A,${T1},2024-06-21T10:00:00.000Z,1500,180000,270000,0xb1,0xs1,settled`);
    const back = readTradesCsv(r.csv);
    expect(back).to.deep.equal(
      all.map((t) => ({ ...t, tradeId: String(t.tradeId), energyWh: BigInt(t.energyWh), pricePerKWh: BigInt(t.pricePerKWh) })),
    );
    expect(() => readTradesCsv("a,b\n1,2\n")).to.throw(ValidationError);
    expect(() => readTradesCsv(`${lines[0]}\r\n1,Z,${T1},x,1.5,1,1,b,s,settled\r\n`)).to.throw(ValidationError).with.property("field", "trades.csv line 2 energy_wh");
  });

  it("writes trades.csv and a self-contained report.html with one bar per interval and the price line", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "demo-report-"));
    try {
      const { files, report: r } = writeTradeReport(path.join(dir, "out"), { trades: TRADES, disputes: { opened: 2, resolved: 1 }, retailPricePerKWh: 320_000, intervals: [T0, T1, T2] });
      expect(readTradesCsv(readFileSync(files.csv, "utf8"))).to.have.length(5);
      const html = readFileSync(files.html, "utf8");
      expect(html).to.equal(r.html);
      expect(html).to.match(/^<!doctype html>/);
      expect(html).to.contain("<svg");
      expect(html.match(/<rect class="bar"/g)).to.have.length(3);
      // The price line joins the two traded intervals and skips the empty one: one move, one line.
      expect(html).to.match(/<path class="price" d="M[\d.]+ [\d.]+ L[\d.]+ [\d.]+"/);
      expect(html).to.not.match(/<script|<link|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
      expect(JSON.parse(readFileSync(files.json, "utf8")).valueTEUR).to.equal("1.516605");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("escapes trade text in the HTML and rejects bad numbers, naming the field", () => {
    const r = buildTradeReport({ trades: [{ ...TRADES[0]!, state: "<b>x</b>" }], disputes: { opened: 0, resolved: 0 }, retailPricePerKWh: 320_000 });
    expect(r.html).to.contain("&lt;b&gt;x&lt;/b&gt;");
    expect(r.html).to.not.contain("<b>x</b>");
    expect(() => buildTradeReport({ trades: [{ ...TRADES[0]!, energyWh: 1.5 }], disputes: { opened: 0, resolved: 0 }, retailPricePerKWh: 1 }))
      .to.throw(ValidationError).with.property("field", "trades[0].energyWh");
    expect(() => buildTradeReport({ trades: [], disputes: { opened: -1, resolved: 0 }, retailPricePerKWh: 1 })).to.throw(ValidationError).with.property("field", "disputes.opened");
  });
});
