// The soak's core (bench/soakRun.ts) at a small size: a node, ten households, 20 orders/s for
// 20 s sampled every 5 s. Every sample is a row of finite numbers, the trades settle, the
// meters' signed readings are taken, and nothing is left queued after the load.
import { expect } from "chai";
import { afterEachBook, leastSquaresSlope, runSoak, type SoakResult, type SoakSample } from "../../bench/soakRun.js";

describe("soak (bench/soakRun.ts)", function () {
  this.timeout(90_000);
  let result: SoakResult;

  before(async () => {
    result = await runSoak({ durationSeconds: 20, sampleSeconds: 5, households: 10, rate: 20, drainSeconds: 30, readingEverySeconds: 5 });
  });

  it("samples the node at the start, every period, the end and after the drain, in well-formed numbers", () => {
    expect(result.samples.map((s) => s.label)).to.deep.equal(["start", "load", "load", "load", "end", "drained"]);
    for (const s of result.samples) {
      for (const [key, value] of Object.entries(s)) {
        if (key === "label") continue;
        expect(value, `${s.label} ${key}`).to.be.a("number");
        expect(Number.isFinite(value) && (value as number) >= 0, `${s.label} ${key} = ${value}`).to.equal(true);
      }
      expect(s.rssMb).to.be.greaterThan(s.heapUsedMb);
      expect(s.heapTotalMb).to.be.at.least(s.heapUsedMb);
      expect(s.diskMb).to.be.greaterThan(0);
    }
    // The load's orders are held (their book is open for the whole run); none left memory.
    expect(result.samples.find((s) => s.label === "end")!.ordersHeld).to.be.at.least(result.totals.accepted);
    expect(result.afterEachBook).to.deep.equal({ samples: [], rssMbPerMin: null, heapMbPerMin: null });
    const minutes = result.samples.map((s) => s.minute);
    expect([...minutes].sort((a, b) => a - b)).to.deep.equal(minutes);
  });

  it("places the orders, settles every trade and takes the meters' readings", () => {
    const t = result.totals;
    expect(t.placed).to.be.greaterThan(300);
    expect(t.accepted).to.equal(t.placed);
    expect(t.errors).to.equal(0);
    expect(t.fills).to.be.greaterThan(0);
    expect(t.settled).to.equal(t.fills);
    expect(t.failedFills).to.equal(0);
    const last = result.samples[result.samples.length - 1]!;
    expect(last.readingsAccepted).to.be.greaterThanOrEqual(10);
    expect(last.readingsDeadLettered).to.equal(0);
    expect(result.worstRequest?.ms).to.be.a("number");
  });

  it("leaves nothing queued after the load", () => {
    expect(result.drain.drained, JSON.stringify(result.drain.left)).to.equal(true);
  });

  it("compares memory right after each book left, not along a book's own growth", () => {
    const at = (minute: number, ordersHeld: number, rssMb: number): SoakSample => ({ ...result.samples[1]!, label: "load", minute, ordersHeld, rssMb, heapUsedMb: rssMb / 2, heapTotalMb: rssMb / 2 });
    // A book grows to 180,000 orders and leaves (minute 10: 20,000 held), the next likewise (minute 25).
    const samples = [at(1, 12_000, 500), at(9, 108_000, 700), at(10, 20_000, 650), at(24, 180_000, 900), at(25, 19_000, 680), at(26, 31_000, 700)];
    const r = afterEachBook(samples);
    expect(r.samples.map((s) => [s.minute, s.rssMb])).to.deep.equal([[10, 650], [25, 680]]);
    expect(r).to.include({ rssMbPerMin: 2, heapMbPerMin: 1 });
    expect(afterEachBook(samples.slice(0, 4)).rssMbPerMin).to.equal(null);
  });

  it("fits slopes by least squares", () => {
    expect(leastSquaresSlope([{ x: 1, y: 10 }, { x: 2, y: 12 }, { x: 3, y: 14 }])).to.equal(2);
    expect(leastSquaresSlope([{ x: 1, y: 10 }])).to.equal(null);
  });
});
