// The demo end to end at a small size, as `npm run demo` runs it: a real node in-process (chain,
// engine and settler, indexer, bridge and broker, API), 20 homes trading two midday hours with
// orders over HTTP, readings over MQTT and settlement on-chain. Some sellers under-deliver and
// undercut the market so they sell (and get disputed) whatever the order arrival; orders go one
// at a time so the run is the same every time.
import { expect } from "chai";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { readTradesCsv } from "../../demo/report.js";
import { runDemo, type RunDemoResult } from "../../demo/runDemo.js";

describe("demo: a community day through the real node", function () {
  this.timeout(180_000);
  let outDir: string;
  let result: RunDemoResult;

  before(async () => {
    outDir = mkdtempSync(path.join(tmpdir(), "demo-e2e-"));
    result = await runDemo({
      households: 20, hours: 2, start: "11:00", date: "2026-06-21", seed: 4, outDir,
      dayKind: "clear", shares: { underDeliveringOfPv: 0.25 }, underDelivererMarginBps: 1_500, httpConcurrency: 1,
    });
  });

  after(() => {
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  it("passes every cross-check of chain, indexer, engine and bridge", () => {
    const failed = result.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    expect(failed, failed.join("\n")).to.deep.equal([]);
    expect(result.checks.length).to.be.at.least(10);
    expect(result.ok).to.equal(true);
  });

  it("traded through the API and settled every trade on-chain", () => {
    expect(result.counts.ordersPlaced).to.be.greaterThan(0);
    expect(result.counts.ordersRefused).to.equal(0);
    expect(result.report.trades).to.be.greaterThan(0);
    expect(result.counts.trades).to.equal(result.report.trades);
    expect(result.report.tradesByState).to.deep.equal({ settled: result.report.trades });
    expect(BigInt(result.report.energyWh)).to.be.greaterThan(0n);
    expect(result.counts.readingsPublished).to.be.greaterThan(0);
  });

  it("opened disputes for the under-deliverers and resolved them all", () => {
    expect(result.report.disputes.opened).to.be.at.least(1);
    expect(result.report.disputes.resolved).to.equal(result.report.disputes.opened);
    expect(result.counts.disputesFinalized).to.equal(result.report.disputes.opened);
  });

  it("left every deadline to the node's keeper: all trades final, none closed by hand", () => {
    const check = result.checks.find((c) => c.name === "keeper: every trade reached a final state by its deadlines without a manual call");
    expect(check, "the keeper cross-check ran").to.not.equal(undefined);
    expect(check!.ok, check!.detail).to.equal(true);
    expect(check!.detail).to.contain(`${result.report.disputes.opened} finalised`);
    expect(result.counts.disputesArbitrated).to.equal(0);
  });

  it("wrote the report files, the CSV reading back to the reported trades", () => {
    for (const file of Object.values(result.files)) expect(existsSync(file), file).to.equal(true);
    const rows = readTradesCsv(readFileSync(result.files.csv, "utf8"));
    expect(rows).to.have.length(result.report.trades);
    expect(rows.reduce((s, r) => s + r.energyWh, 0n)).to.equal(BigInt(result.report.energyWh));
    expect(rows.reduce((s, r) => s + r.amount, 0n)).to.equal(BigInt(result.report.value));
    expect(readFileSync(result.files.html, "utf8")).to.contain("<svg");
    expect(JSON.parse(readFileSync(result.files.json, "utf8")).trades).to.equal(result.report.trades);
    expect(JSON.parse(readFileSync(result.files.demo, "utf8")).ok).to.equal(true);
  });
});
