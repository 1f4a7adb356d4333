// Measuring a meter's energy per interval from stored readings, on PGlite and on PostgreSQL
// when DATABASE_URL is set: interval readings win, registers are read at the boundaries (or
// interpolated across them), readings received after the close do not count, gaps are missing.
import { expect } from "chai";
import { sql } from "kysely";
import { migrateBridgeDatabase } from "../../bridge/database.js";
import { canonicalJson, evidenceHash } from "../../bridge/evidence.js";
import { measureMeterEnergy, registerValueAt } from "../../bridge/measureMeterEnergy.js";
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

describe("canonical evidence", () => {
  it("sorts keys and writes bigints as strings, so the hash does not depend on key order", () => {
    const a = canonicalJson({ b: 1n, a: { y: [2n, "x"], x: null } });
    expect(a).to.equal('{"a":{"x":null,"y":["2","x"]},"b":"1"}');
    expect(evidenceHash(a)).to.equal(evidenceHash(canonicalJson({ a: { x: null, y: [2n, "x"] }, b: 1n })));
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
      expect(rows.rows.map((r) => r.name)).to.deep.equal(["2026_02_14_000000_create_bridge_tables"]);
    });

    it("measures from interval readings, registers and interpolation, up to the close", async () => {
      const row = (meter: string, metric: string, kind: string, atMs: number, v: { value?: number; exp?: number; imp?: number }, receivedMs = T0 + I + 1_000) => ({
        meter_id: meter, metric, kind, reading_at: BigInt(atMs), value: v.value === undefined ? null : BigInt(v.value),
        export_wh: v.exp === undefined ? null : BigInt(v.exp), import_wh: v.imp === undefined ? null : BigInt(v.imp),
        payload_hash: `${meter}-${metric}-${atMs}`, payload: "{}", received_at: BigInt(receivedMs),
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
  });
}
