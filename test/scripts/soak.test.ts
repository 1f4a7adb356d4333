// The soak's core (bench/soakRun.ts) at a small size: a node, ten households, 20 orders/s for
// 20 s sampled every 5 s. Every sample is a row of finite numbers, the trades settle, the
// meters' signed readings are taken, and nothing is left queued after the load.
import { expect } from "chai";
import { leastSquaresSlope, runSoak, type SoakResult } from "../../bench/soakRun.js";

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
      expect(s.diskMb).to.be.greaterThan(0);
    }
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

  it("fits slopes by least squares", () => {
    expect(leastSquaresSlope([{ x: 1, y: 10 }, { x: 2, y: 12 }, { x: 3, y: 14 }])).to.equal(2);
    expect(leastSquaresSlope([{ x: 1, y: 10 }])).to.equal(null);
  });
});
