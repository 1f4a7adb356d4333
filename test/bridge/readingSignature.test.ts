// Meter signatures: the scheme itself (RFC 8032's first vector, the exact bytes signed, what a
// signature binds), and the ingest's verdicts on PGlite (and PostgreSQL with DATABASE_URL):
// energy readings from MQTT must verify under the meter's registered key or be dead-lettered
// before they touch the table; power samples need no signature; trusted non-MQTT sources store
// unsigned readings as non-evidence; operator corrections are never evidence; non-evidence never
// blocks the signed reading of the same instant; a key rotated on chain is picked up on the spot.
import { expect } from "chai";
import type { Address, Hex } from "viem";
import { createMetrics } from "../../bridge/metrics.js";
import { createReadingIngest, type IngestOptions, type ReadingIngest, type ReadingVerdict } from "../../bridge/ingestReadings.js";
import type { MeterDirectory, MeterInfo } from "../../bridge/meterDirectory.js";
import {
  createMeterKeyPair, deriveMeterKeyPair, meterSignerOf, readingSigningBytes, signReading, verifyReadingSignature, type MeterKeyPair,
} from "../../bridge/readingSignature.js";
import { counterReading, databaseTargets, intervalReading, quietLogger } from "./harness.js";

const ROOT = "ec-sig";
const NOW = Date.parse("2026-02-14T10:16:00Z");
const T0 = Date.parse("2026-02-14T10:00:00Z");
const topic = (meterId: string, metric: string) => `${ROOT}/wbg/smart-meter/${meterId}/${metric}`;

describe("reading signatures: the scheme", () => {
  it("derives the RFC 8032 test vector's public key from its seed (raw Ed25519, no wrapping)", () => {
    expect(meterSignerOf("0x9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
      .to.equal("0xd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  });

  it("signs the canonical JSON array [domain, version, meter, metric, payload without signature]", () => {
    const bytes = readingSigningBytes("SM-001", "interval", { signature: "ignored", b: 1.27, a: { d: 1, c: "x" } });
    expect(bytes.toString("utf8")).to.equal('["p2p-energy/meter-reading",1,"SM-001","interval",{"a":{"c":"x","d":1},"b":1.27}]');
  });

  it("binds the meter, the metric and every value; key order and whitespace do not matter", () => {
    const key = createMeterKeyPair();
    const signed = signReading({ meterId: "SM-001", metric: "export", payload: counterReading(T0, 5_000), privateKey: key.privateKey });
    expect(signed.signature).to.match(/^[A-Za-z0-9+/]{86}==$/);
    const check = (meterId: string, metric: string, payload: Record<string, unknown>, signer = key.signer) => verifyReadingSignature({ meterId, metric, payload, signer });
    expect(check("SM-001", "export", signed)).to.deep.equal({ ok: true });
    // Re-serialised with other key order: same reading, same signature.
    const reordered = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(signed).reverse()))) as Record<string, unknown>;
    expect(check("SM-001", "export", reordered).ok).to.equal(true);
    expect(check("SM-002", "export", signed)).to.include({ ok: false, reason: "signature_invalid" });
    expect(check("SM-001", "import", signed)).to.include({ ok: false, reason: "signature_invalid" });
    expect(check("SM-001", "export", { ...signed, value: 5_001 })).to.include({ ok: false, reason: "signature_invalid" });
    expect(check("SM-001", "export", { ...signed, extra: true })).to.include({ ok: false, reason: "signature_invalid" });
    expect(check("SM-001", "export", signed, createMeterKeyPair().signer)).to.include({ ok: false, reason: "signature_invalid" });
    const { signature: _, ...unsigned } = signed;
    expect(check("SM-001", "export", unsigned)).to.include({ ok: false, reason: "signature_missing" });
    // Only canonical base64 of exactly 64 bytes.
    for (const bad of [42, "", signed.signature.replace(/==$/, ""), `${signed.signature.slice(0, 85)}B==`, Buffer.from(signed.signature, "base64").toString("hex")]) {
      expect(check("SM-001", "export", { ...signed, signature: bad }), String(bad)).to.include({ ok: false, reason: "signature_invalid" });
    }
  });

  it("derives the same key from the same material, a different one from other material", () => {
    expect(deriveMeterKeyPair("0x01")).to.deep.equal(deriveMeterKeyPair("0x01"));
    expect(deriveMeterKeyPair("0x01").signer).to.not.equal(deriveMeterKeyPair("0x02").signer);
    expect(meterSignerOf(deriveMeterKeyPair("0x01").privateKey)).to.equal(deriveMeterKeyPair("0x01").signer);
  });
});

for (const target of databaseTargets()) {
  describe(`ingest checks meter signatures (${target.name})`, function () {
    let database: Awaited<ReturnType<typeof target.open>>;
    let ingest: ReadingIngest;
    const meters = new Map<string, MeterInfo>();
    /** What the registry says on chain; the directory's copy catches up on a refresh. */
    const chainSigners = new Map<string, Hex | undefined>();
    let refreshes = 0;
    const keys = new Map<string, MeterKeyPair>();
    const published: { topic: string; payload: Record<string, unknown> }[] = [];

    const directory: MeterDirectory = {
      byMeterId: (id) => meters.get(id),
      byAccount: (a) => [...meters.values()].find((m) => m.account === a),
      size: () => meters.size,
      async refresh() {
        refreshes++;
        for (const [id, signer] of chainSigners) meters.get(id)!.signer = signer;
      },
      async lookup(id, options) {
        if (!meters.has(id) || options?.refresh) await this.refresh();
        return meters.get(id);
      },
    };

    function addMeter(id: string, withKey = true) {
      const key = createMeterKeyPair();
      keys.set(id, key);
      meters.set(id, { meterId: id, account: `0x${"1".repeat(40)}` as Address, zone: "0x00", exportLimitW: 10_000n, importLimitW: 10_000n, status: 1, signer: withKey ? key.signer : undefined });
      chainSigners.set(id, withKey ? key.signer : undefined);
      return key;
    }
    const signed = (id: string, metric: string, payload: Record<string, unknown>) => signReading({ meterId: id, metric, payload, privateKey: keys.get(id)!.privateKey });
    const submit = (id: string, metric: string, payload: Record<string, unknown>, options?: IngestOptions): Promise<ReadingVerdict> =>
      ingest.submit(topic(id, metric), Buffer.from(JSON.stringify(payload)), { source: "mqtt", ...options });
    const rows = (id: string) => database.db.selectFrom("bridge_readings").selectAll().where("meter_id", "=", id).orderBy("metric").orderBy("reading_at").orderBy("stream").execute();

    before(async () => {
      database = await target.open();
      ingest = createReadingIngest({
        db: database.db, directory, clock: () => NOW, metrics: createMetrics(), logger: quietLogger,
        rules: { topicRoot: ROOT, maxPayloadBytes: 4096, intervalSeconds: 900, graceSeconds: 300, maxClockSkewSeconds: 120, retentionSeconds: 48 * 3600, plausibilityMarginPct: 10 },
        publish: (t, p) => published.push({ topic: t, payload: JSON.parse(p) as Record<string, unknown> }),
        maxBatchDelayMs: 1,
      });
    });
    after(async () => {
      await ingest?.close();
      await database?.close();
    });

    it("dead-letters an unsigned, a forged and an unkeyed meter's energy reading, and stores none of them", async () => {
      addMeter("SIG-A");
      addMeter("SIG-UNSET", false);
      const forger = createMeterKeyPair();
      const unsigned = await submit("SIG-A", "interval", intervalReading(T0 - 900_000, 1_000, 0));
      expect(unsigned).to.deep.include({ accepted: false, reason: "signature_missing", field: "signature" });
      const forged = await submit("SIG-A", "interval", signReading({ meterId: "SIG-A", metric: "interval", payload: intervalReading(T0 - 900_000, 1_000, 0), privateKey: forger.privateKey }));
      expect(forged).to.deep.include({ accepted: false, reason: "signature_invalid", field: "signature" });
      const tampered = await submit("SIG-A", "interval", { ...signed("SIG-A", "interval", intervalReading(T0 - 900_000, 0, 0)), export_kwh: 1 });
      expect(tampered).to.deep.include({ accepted: false, reason: "signature_invalid" });
      const unkeyed = await submit("SIG-UNSET", "export", counterReading(T0, 5_000));
      expect(unkeyed).to.deep.include({ accepted: false, reason: "meter_signer_unset", field: "topic.deviceId" });
      expect(await rows("SIG-A")).to.have.length(0);
      expect(await rows("SIG-UNSET")).to.have.length(0);
      const letters = await database.db.selectFrom("bridge_dead_letters").select("reason").orderBy("id").execute();
      expect(letters.map((l) => l.reason)).to.deep.equal(["signature_missing", "signature_invalid", "signature_invalid", "meter_signer_unset"]);
      expect(published.map((p) => p.payload.reason)).to.deep.equal(["signature_missing", "signature_invalid", "signature_invalid", "meter_signer_unset"]);

      // Nothing of it stands in the honest reading's way: no conflicting duplicate, no counter check.
      const honest = await submit("SIG-A", "interval", signed("SIG-A", "interval", intervalReading(T0 - 900_000, 0, 200)));
      expect(honest).to.deep.equal({ accepted: true, duplicate: false, evidence: true });
      const stored = await rows("SIG-A");
      expect(stored.map((r) => [r.export_wh, r.import_wh, r.evidence, r.source, r.stream])).to.deep.equal([[0n, 200n, true, "mqtt", "evidence"]]);
      // The same signed reading again is a duplicate.
      expect(await submit("SIG-A", "interval", signed("SIG-A", "interval", intervalReading(T0 - 900_000, 0, 200)))).to.deep.equal({ accepted: true, duplicate: true, evidence: true });
    });

    it("takes power samples unsigned and never as evidence", async () => {
      addMeter("SIG-P");
      const power = await submit("SIG-P", "export", { timestamp: new Date(T0).toISOString(), value: 3.2, unit: "kW" });
      expect(power).to.deep.equal({ accepted: true, duplicate: false, evidence: false });
      // A register reading at the same instant is another stream: no conflict with the sample.
      expect(await submit("SIG-P", "export", signed("SIG-P", "export", counterReading(T0, 7_000)))).to.deep.equal({ accepted: true, duplicate: false, evidence: true });
      expect((await rows("SIG-P")).map((r) => [r.kind, r.value, r.evidence, r.stream])).to.deep.equal([["counter", 7_000n, true, "evidence"], ["power", 3_200n, false, "mqtt/power"]]);
    });

    it("stores unsigned API readings and operator corrections as non-evidence, beside the meter's signed word", async () => {
      addMeter("SIG-API");
      const at = T0 - 900_000;
      expect(await submit("SIG-API", "interval", intervalReading(at, 900, 0), { source: "api" })).to.deep.equal({ accepted: true, duplicate: false, evidence: false });
      expect(await submit("SIG-API", "interval", intervalReading(at, 800, 0), { source: "operator_correction", reason: "meter replaced; value from the DSO's register" }))
        .to.deep.equal({ accepted: true, duplicate: false, evidence: false });
      // A correction that carries a valid signature is still not evidence.
      expect(await submit("SIG-API", "export", signed("SIG-API", "export", counterReading(at, 1_000)), { source: "operator_correction", reason: "re-sent by the operator" }))
        .to.deep.equal({ accepted: true, duplicate: false, evidence: false });
      // Neither blocks the meter's own signed reading of the same interval, whatever it says.
      expect(await submit("SIG-API", "interval", signed("SIG-API", "interval", intervalReading(at, 100, 0)))).to.deep.equal({ accepted: true, duplicate: false, evidence: true });
      // A signed reading through the API is checked like MQTT's, and is evidence.
      expect(await submit("SIG-API", "export", signed("SIG-API", "export", counterReading(at + 60_000, 1_050)), { source: "device" })).to.deep.equal({ accepted: true, duplicate: false, evidence: true });
      expect(await submit("SIG-API", "export", { ...signed("SIG-API", "export", counterReading(at + 120_000, 1_100)), value: 1_200 }, { source: "device" }))
        .to.deep.include({ accepted: false, reason: "signature_invalid" });
      const stored = await rows("SIG-API");
      expect(stored.map((r) => [r.metric, r.source, r.evidence, r.correction_reason, r.export_wh ?? r.value])).to.deep.equal([
        ["export", "operator_correction", false, "re-sent by the operator", 1_000n],
        ["export", "device", true, null, 1_050n],
        ["interval", "api", false, null, 900n],
        ["interval", "mqtt", true, null, 100n],
        ["interval", "operator_correction", false, "meter replaced; value from the DSO's register", 800n],
      ]);
      // An operator correction needs its reason.
      expect(() => ingest.handleMessage(topic("SIG-API", "interval"), Buffer.from("{}"), { source: "operator_correction" })).to.throw(/reason/);
      await ingest.submit(topic("SIG-API", "interval"), Buffer.from("{}"), { source: "operator_correction", reason: "  " }).then(
        () => expect.fail("a blank reason must be refused"),
        (err: Error) => expect(err.message).to.match(/reason/),
      );
    });

    it("accepts the first reading under a key rotated on chain since the directory's last look, and no longer the old key's", async () => {
      const old = addMeter("SIG-ROT");
      const fresh = createMeterKeyPair();
      chainSigners.set("SIG-ROT", fresh.signer);
      keys.set("SIG-ROT", fresh);
      const before = refreshes;
      expect(await submit("SIG-ROT", "export", signed("SIG-ROT", "export", counterReading(T0, 10)))).to.deep.equal({ accepted: true, duplicate: false, evidence: true });
      expect(refreshes).to.equal(before + 1);
      expect(meters.get("SIG-ROT")!.signer).to.equal(fresh.signer);
      const byOldKey = signReading({ meterId: "SIG-ROT", metric: "export", payload: counterReading(T0 + 60_000, 20), privateKey: old.privateKey });
      expect(await submit("SIG-ROT", "export", byOldKey)).to.deep.include({ accepted: false, reason: "signature_invalid" });
    });
  });
}
