// Measuring a meter's energy per interval from stored readings, on PGlite and on PostgreSQL
// when DATABASE_URL is set: interval readings win, registers are read at the boundaries (or
// interpolated across them), readings received after the close do not count, gaps are missing.
import { expect } from "chai";
import { sql } from "kysely";
import { migrateBridgeDatabase } from "../../bridge/database.js";
import { canonicalJson, evidenceHash, evidenceHashInSlices } from "../../bridge/evidence.js";
import { measureMeterEnergy, measureSlots, registerValueAt, type MeasurableReading } from "../../bridge/measureMeterEnergy.js";
import { databaseTargets } from "./harness.js";

const I = 900_000;
const T0 = Date.parse("2026-02-14T10:00:00Z");

describe("registerValueAt", () => {
  const r = (atMs: number, wh: bigint) => ({ atMs, wh, hash: `h${atMs}` });
  it("uses a reading at the boundary, else interpolates (rounding down) between close neighbours", () => {
    expect(registerValueAt(T0, r(T0, 100n), undefined, I)).to.deep.equal({ wh: 100n, readings: [`h${T0}`] });
    expect(registerValueAt(T0, r(T0 - 10_000, 100n), r(T0 + 20_000, 131n), I)).to.deep.equal({ wh: 110n, readings: [`h${T0 - 10_000}`, `h${T0 + 20_000}`] });
  });
  it("has no value across a gap longer than an interval or with a neighbour missing", () => {
    expect(registerValueAt(T0, r(T0 - I, 100n), r(T0 + 1, 200n), I)).to.equal(undefined);
    expect(registerValueAt(T0, r(T0 - 1, 100n), undefined, I)).to.equal(undefined);
  });
});

describe("measureSlots (the rule verifyEvidence re-runs)", () => {
  const used = (id: string) => ({ hash: id, metric: "export" as const, payload: "{}" });
  const counter = (atMs: number, wh: bigint): MeasurableReading => ({ kind: "counter", metric: "export", atMs, wh, reading: used(`c${atMs}`) });
  it("prefers the interval reading, else reads the register at both boundaries (nearest on each side, interpolated)", () => {
    const readings: MeasurableReading[] = [
      counter(T0 - 60_000, 900n), counter(T0 + 30_000, 1_200n), counter(T0 + I - 30_000, 2_000n), counter(T0 + I + 30_000, 2_060n), counter(T0 + I + 600_000, 9_999n),
      { kind: "interval", atMs: T0 + I, exportWh: 42n, importWh: 7n, reading: { hash: "iv", metric: "interval", payload: "{}" } },
    ];
    const [first, second] = measureSlots(readings, "export", [T0, T0 + I], I);
    // 900 + 300 * 60/90 = 1100 at T0; 2000 + 60 * 30/60 = 2030 at T0 + I.
    expect(first).to.deep.include({ wh: 930n, source: "counter", readings: [`c${T0 - 60_000}`, `c${T0 + 30_000}`, `c${T0 + I - 30_000}`, `c${T0 + I + 30_000}`] });
    expect(second).to.deep.include({ wh: 42n, source: "interval", readings: ["iv"] });
    expect(measureSlots(readings, "import", [T0 + I], I)[0]).to.deep.include({ wh: 7n });
    expect(measureSlots([counter(T0, 5n)], "export", [T0], I)[0]).to.deep.include({ wh: undefined, source: "missing" });
  });
});

describe("canonical evidence", () => {
  it("sorts keys and writes bigints as strings, so the hash does not depend on key order", () => {
    const a = canonicalJson({ b: 1n, a: { y: [2n, "x"], x: null } });
    expect(a).to.equal('{"a":{"x":null,"y":["2","x"]},"b":"1"}');
    expect(evidenceHash(a)).to.equal(evidenceHash(canonicalJson({ a: { x: null, y: [2n, "x"] }, b: 1n })));
  });

  it("hashes a large document a slice and a turn at a time, to the same keccak256 as in one go", async () => {
    // ~2.4 MB with multi-byte characters, so slices cut inside them.
    const doc = canonicalJson({ trades: Array.from({ length: 20_000 }, (_, i) => ({ id: BigInt(i), note: `é€${i}`.repeat(10) })) });
    expect(doc.length).to.be.greaterThan(1_000_000);
    for (const sliceBytes of [1, 7, 256 * 1024, 10_000_000]) {
      const text = sliceBytes === 1 ? doc.slice(0, 5_000) : doc;
      let pauses = 0;
      const hash = await evidenceHashInSlices(text, { sliceBytes, pause: async () => pauses++ });
      expect(hash, `slices of ${sliceBytes}`).to.equal(evidenceHash(text));
      expect(pauses).to.equal(Math.max(0, Math.ceil(new TextEncoder().encode(text).length / sliceBytes) - 1));
    }
    // With the default pause, work waiting for the event loop runs before the hash is done.
    let ranBetween = false;
    setImmediate(() => (ranBetween = true));
    const hashing = evidenceHashInSlices(doc).then(() => ranBetween);
    expect(await hashing).to.equal(true);
  });
});

for (const target of databaseTargets()) {
  describe(`measureMeterEnergy and migrations on ${target.name}`, () => {
    let opened: Awaited<ReturnType<typeof target.open>>;
    before(async () => {
      opened = await target.open();
    });
    after(async () => opened?.close());

    it("migrates once: running again changes nothing, the bookkeeping is in bridge_migrations", async () => {
      await migrateBridgeDatabase(opened.db);
      const rows = await sql<{ name: string }>`select name from bridge_migrations`.execute(opened.db);
      expect(rows.rows.map((r) => r.name)).to.deep.equal(["2026_02_14_000000_create_bridge_tables", "2026_03_15_000000_signed_readings", "2026_12_07_000000_window_evidence", "2026_12_08_000000_evidence_by_window"]);
    });

    it("measures from interval readings, registers and interpolation, up to the close", async () => {
      const row = (meter: string, metric: string, kind: string, atMs: number, v: { value?: number; exp?: number; imp?: number }, receivedMs = T0 + I + 1_000) => ({
        meter_id: meter, metric, kind, reading_at: BigInt(atMs), value: v.value === undefined ? null : BigInt(v.value),
        export_wh: v.exp === undefined ? null : BigInt(v.exp), import_wh: v.imp === undefined ? null : BigInt(v.imp),
        payload_hash: `${meter}-${metric}-${atMs}`, payload: "{}", received_at: BigInt(receivedMs), evidence: true, source: "mqtt", stream: "evidence",
      });
      await opened.db.insertInto("bridge_readings").values([
        // M1: an interval reading, and a register that disagrees: the interval reading wins.
        row("M1", "interval", "interval", T0, { exp: 700, imp: 5 }),
        row("M1", "export", "counter", T0, { value: 0 }), row("M1", "export", "counter", T0 + I, { value: 9_999 }),
        // M2: register exactly at the start, interpolated at the end (between +14:50 and +15:10).
        row("M2", "export", "counter", T0, { value: 1_000 }),
        row("M2", "export", "counter", T0 + I - 10_000, { value: 1_490 }), row("M2", "export", "counter", T0 + I + 10_000, { value: 1_510 }),
        // M3: the end reading arrived after the close: missing.
        row("M3", "export", "counter", T0, { value: 0 }), row("M3", "export", "counter", T0 + I, { value: 400 }, T0 + I + 400_000),
        // M4: second interval only.
        row("M4", "interval", "interval", T0 + I, { exp: 50, imp: 0 }),
      ]).execute();
      const closeMs = T0 + I + 300_000;
      const m = await measureMeterEnergy(opened.db, { meterIds: ["M1", "M2", "M3", "M4", "M5"], direction: "export", slotStartsMs: [T0], intervalMs: I, closeMs });
      expect(m.get("M1/export")![0]).to.deep.include({ wh: 700n, source: "interval", readings: [`M1-interval-${T0}`] });
      expect(m.get("M2/export")![0]).to.deep.include({ wh: 500n, source: "counter" });
      expect(m.get("M2/export")![0]!.readings).to.have.length(3);
      expect(m.get("M3/export")![0]).to.deep.include({ wh: undefined, source: "missing" });
      expect(m.get("M4/export")![0]).to.deep.include({ source: "missing" });
      expect(m.get("M5/export")![0]).to.deep.include({ source: "missing" });
      const two = await measureMeterEnergy(opened.db, { meterIds: ["M1", "M4"], direction: "import", slotStartsMs: [T0, T0 + I], intervalMs: I, closeMs: closeMs + I });
      expect(two.get("M1/import")!.map((s) => s.wh)).to.deep.equal([5n, undefined]);
      expect(two.get("M4/import")!.map((s) => s.wh)).to.deep.equal([undefined, 0n]);
    });

    it("counts only evidence: unsigned readings and operator corrections never measure anything", async () => {
      const row = (meter: string, metric: string, kind: string, atMs: number, v: { value?: number; exp?: number }, source: string) => ({
        meter_id: meter, metric, kind, reading_at: BigInt(atMs), value: v.value === undefined ? null : BigInt(v.value),
        export_wh: v.exp === undefined ? null : BigInt(v.exp), import_wh: v.exp === undefined ? null : 0n,
        payload_hash: `${meter}-${metric}-${atMs}-${source}`, payload: "{}", received_at: BigInt(T0 + I), evidence: false, source, stream: `${source}/${kind}`,
      });
      await opened.db.insertInto("bridge_readings").values([
        row("N1", "interval", "interval", T0, { exp: 1_000 }, "operator_correction"),
        row("N1", "export", "counter", T0, { value: 0 }, "api"), row("N1", "export", "counter", T0 + I, { value: 1_000 }, "api"),
        row("N1", "export", "power", T0 + 60_000, { value: 5_000 }, "mqtt"),
      ]).execute();
      const m = await measureMeterEnergy(opened.db, { meterIds: ["N1"], direction: "export", slotStartsMs: [T0], intervalMs: I, closeMs: T0 + 2 * I });
      expect(m.get("N1/export")![0]).to.deep.include({ wh: undefined, source: "missing", readings: [] });
    });
  });
}
