// The security review's finding, replayed: any MQTT client could publish readings under any
// meter's topic, so a seller's accomplice published 1,000 Wh of export for a meter that exported
// nothing and the seller was paid in full. Before meter signatures the forged reading (published
// first) was stored, the honest meter's 0 Wh became a `conflicting_duplicate`, and the trade was
// reported delivered. Now only the meter's registered key makes a reading count: the forgery is
// dead-lettered, the honest reading decides, and an accomplice who publishes 0 Wh first cannot
// block an honest seller's reading either. The reports' evidence is then checked the way an
// auditor would, from the evidence and the chain alone (verifyEvidence): honest, and tampered.
import { createHash } from "node:crypto";
import { expect } from "chai";
import { keccak256, stringToBytes } from "viem";
import { amountFor } from "../../contracts/client/amount.js";
import { prosumerRegistryAbi, testEuroAbi } from "../../contracts/client/abi.js";
import type { Trade } from "../../contracts/client/trade.js";
import { evidenceHash } from "../../bridge/evidence.js";
import { readEvidenceOnChain } from "../../bridge/evidenceOnChain.js";
import { readStoredEvidence } from "../../bridge/storedEvidence.js";
import { createMeterKeyPair, signReading } from "../../bridge/readingSignature.js";
import type { Bridge } from "../../bridge/startBridge.js";
import { verifyEvidence, type VerifyEvidenceParameters } from "../../bridge/verifyEvidence.js";
import {
  addProsumer, collectMessages, connectDevice, counterReading, databaseTargets, deliveryEvents, intervalReading, pastWindow, PRICE, readingTopic, restartableAedes,
  settleTrades, startTestBridge, startTestChain, testSettings, waitForMetrics, type Prosumer, type TestChain,
} from "./harness.js";

describe("forged meter readings (security review: only the meter can prove a delivery)", function () {
  let chain: TestChain;
  let aedes: Awaited<ReturnType<typeof restartableAedes>>;
  let database: Awaited<ReturnType<ReturnType<typeof databaseTargets>[number]["open"]>>;
  let bridge: Bridge;
  let nowMs = 0;
  const settings = testSettings();
  const w = pastWindow(2);
  let seller: Prosumer; // exported nothing; an accomplice claims 1,000 Wh for it
  let buyer: Prosumer;
  let honestSeller: Prosumer; // exported 1,000 Wh; a buyer's accomplice publishes 0 Wh first
  let honestBuyer: Prosumer;
  let trades: Trade[];
  const topic = (p: Prosumer, metric: string) => readingTopic(settings.topicRoot, p.meterId, metric);

  before(async () => {
    [chain, aedes, database] = await Promise.all([startTestChain(), restartableAedes(), databaseTargets()[0]!.open()]);
    const suffix = settings.topicRoot.slice(-4);
    [seller, buyer, honestSeller, honestBuyer] = await Promise.all(["F-S", "F-B", "H-S", "H-B"].map((id) => addProsumer(chain, `${id}-${suffix}`))) as Prosumer[] as [Prosumer, Prosumer, Prosumer, Prosumer];
    trades = await settleTrades(chain, [
      { seller, buyer, energyWh: 1_000n },
      { seller: honestSeller, buyer: honestBuyer, energyWh: 1_000n },
    ], w.start, w.end);
    nowMs = w.endMs + 1_000;
    bridge = await startTestBridge({ chain, mqttUrl: aedes.url, db: database.db, settings, clock: () => nowMs });
  });
  after(async () => {
    await bridge?.close();
    await database?.close();
    await Promise.all([chain?.close(), aedes?.close()]);
  });

  it("dead-letters the accomplice's forged export and reports the honest meter's figure; a 0 Wh forgery first does not block an honest reading", async () => {
    const deadLetters = await collectMessages(aedes.url, `${settings.topicRoot}/dead-letter/#`);
    const accomplice = await connectDevice(aedes.url);
    const meters = await connectDevice(aedes.url);
    const sellerBalance = () => chain.client.readContract({ address: chain.token, abi: testEuroAbi, functionName: "balanceOf", args: [seller.address] });
    const honestBalance = () => chain.client.readContract({ address: chain.token, abi: testEuroAbi, functionName: "balanceOf", args: [honestSeller.address] });
    const [sellerBefore, honestBefore] = [await sellerBalance(), await honestBalance()];

    // The accomplice goes first: 1,000 Wh for the seller's meter, unsigned and then signed with a
    // key of its own; and 0 Wh for the honest seller's meter.
    const forged = intervalReading(w.startMs, 1_000, 0);
    await accomplice.publish(topic(seller, "interval"), forged, { sign: false });
    await accomplice.publish(topic(seller, "interval"), forged, { sign: createMeterKeyPair().privateKey });
    await accomplice.publish(topic(honestSeller, "interval"), intervalReading(w.startMs, 0, 0), { sign: false });
    await deadLetters.waitForCount(3);
    expect(deadLetters.messages.map((m) => [m.payload.topic, m.payload.reason, m.payload.field])).to.deep.equal([
      [topic(seller, "interval"), "signature_missing", "signature"],
      [topic(seller, "interval"), "signature_invalid", "signature"],
      [topic(honestSeller, "interval"), "signature_missing", "signature"],
    ]);

    // Then the meters themselves, signing with their registered keys.
    await meters.publish(topic(seller, "interval"), intervalReading(w.startMs, 0, 0));
    await meters.publish(topic(buyer, "interval"), intervalReading(w.startMs, 0, 1_000));
    await meters.publish(topic(honestSeller, "interval"), intervalReading(w.startMs, 1_000, 0));
    await meters.publish(topic(honestBuyer, "interval"), intervalReading(w.startMs, 0, 1_000));
    const m = await waitForMetrics(bridge, (x) => x.accepted === 4, "the four honest readings");
    expect(m.deadLettered).to.deep.equal({ signature_missing: 2, signature_invalid: 1 });
    expect(m.deadLettered.conflicting_duplicate, "no honest reading was blocked").to.equal(undefined);
    // Only the meters' own readings are on record: the forgeries were never stored.
    const stored = async (p: Prosumer) => (await database.db.selectFrom("bridge_readings").select(["export_wh", "evidence"]).where("meter_id", "=", p.meterId).execute()).map((r) => [r.export_wh, r.evidence]);
    expect(await stored(seller)).to.deep.equal([[0n, true]]);
    expect(await stored(honestSeller)).to.deep.equal([[1_000n, true]]);

    nowMs = w.endMs + 301_000;
    await bridge.tick();
    const events = await deliveryEvents(chain);
    const confirmed = (t: Trade) => events.confirmed.find((c) => c.tradeId === t.tradeId)!;
    // The forged 1,000 Wh counted for nothing: reported 0, a zero proposal, the seller not paid.
    expect(confirmed(trades[0]!)).to.include({ deliveredWh: 0n, withinTolerance: false });
    expect(events.disputes.find((d) => d.tradeId === trades[0]!.tradeId)?.proposedSellerAmount).to.equal(0n);
    expect(await sellerBalance()).to.equal(sellerBefore);
    // The honest seller's 1,000 Wh counted in full despite the 0 Wh published first.
    expect(confirmed(trades[1]!)).to.include({ deliveredWh: 1_000n, withinTolerance: true });
    expect((await honestBalance()) - honestBefore).to.equal(amountFor(1_000n, PRICE));
    await Promise.all([accomplice.close(), meters.close(), deadLetters.close()]);
  });

  it("a key rotated on chain counts from the meter's next reading on; the old key's readings are refused from then", async () => {
    const meter = await connectDevice(aedes.url);
    const fresh = createMeterKeyPair();
    const receipt = await chain.client.waitForTransactionReceipt({
      hash: await chain.admin.writeContract({ address: chain.registry, abi: prosumerRegistryAbi, functionName: "setMeterSigner", args: [honestBuyer.address, fresh.signer] } as never),
    });
    expect(receipt.status).to.equal("success");
    const before = bridge.metrics();
    // Published right after the rotation, before any tick: the bridge looks the key up afresh.
    await meter.publish(topic(honestBuyer, "import"), counterReading(w.endMs, 5_000), { sign: fresh.privateKey });
    await meter.publish(topic(honestBuyer, "import"), counterReading(w.endMs + 60_000, 5_010), { sign: honestBuyer.meterKey! });
    const m = await waitForMetrics(bridge, (x) => x.messagesIn === before.messagesIn + 2 && x.accepted + (x.deadLettered.signature_invalid ?? 0) === before.accepted + (before.deadLettered.signature_invalid ?? 0) + 2, "both readings judged");
    expect(m.accepted).to.equal(before.accepted + 1);
    expect(m.deadLettered.signature_invalid).to.equal((before.deadLettered.signature_invalid ?? 0) + 1);
    expect(bridge.directory.byMeterId(honestBuyer.meterId)?.signer).to.equal(fresh.signer);
    await meter.close();
  });

  describe("verifyEvidence: the report re-derived from its evidence and the chain alone", () => {
    let honest: { evidence: string; tradeId: bigint; onChain: VerifyEvidenceParameters["onChain"] };
    // Where the honest seller and its trade sit in the window's document (parties are sorted by account).
    let hs = -1;
    let ht = -1;
    const evidenceOf = async (t: Trade) => (await readStoredEvidence(database.db, t.tradeId))!;
    /** The evidence edited by `edit`, as a bridge that reported the edited version would hold it. */
    const reported = (evidence: string, edit: (e: any) => void) => {
      const e = JSON.parse(evidence);
      edit(e);
      const text = JSON.stringify(e);
      return { evidence: text, tradeId: honest.tradeId, onChain: { ...honest.onChain, report: { ...honest.onChain.report!, evidenceHash: evidenceHash(text) } } };
    };

    before(async () => {
      const evidence = await evidenceOf(trades[1]!);
      const { onChain } = await readEvidenceOnChain(chain.client, { market: chain.market, tradeId: trades[1]!.tradeId, evidence, fromBlock: chain.startBlock });
      honest = { evidence, tradeId: trades[1]!.tradeId, onChain };
      const e = JSON.parse(evidence);
      hs = e.sellers.findIndex((p: { account: string }) => p.account === honestSeller.address);
      ht = e.trades.findIndex((t: { tradeId: string }) => t.tradeId === String(trades[1]!.tradeId));
    });

    it("an honest window checks out: hash, signatures, measurement, every trade's allocation, reported Wh", async () => {
      expect(honest.onChain.report!.evidenceHash).to.equal(keccak256(stringToBytes(honest.evidence)));
      const result = verifyEvidence(honest);
      expect(result.problems).to.deep.equal([]);
      expect(result).to.include({ ok: true, deliveredWh: 1_000n, sellerAllocatedWh: 1_000n, basis: "measured" });
      // One document for the window: all four meters' signed readings, each verified under its own key.
      const signerOf = new Map([seller, buyer, honestSeller, honestBuyer].map((p) => [p.meterId, p.meterSigner]));
      expect(result.readings).to.have.length(4);
      for (const r of result.readings) expect(r.signer, r.party).to.equal(signerOf.get(r.meter));
      expect(new Set(result.readings.map((r) => r.meter))).to.deep.equal(new Set(signerOf.keys()));
      // The evidence carries the signed payloads themselves, and every trade the rule shared energy over, with its outcome.
      const e = JSON.parse(honest.evidence);
      expect(e).to.include({ v: 3, signatures: "p2p-energy/meter-reading/1", allocation: "fifo", intervalSeconds: 900 });
      expect(hs).to.be.at.least(0);
      expect(JSON.parse(e.sellers[hs].readings[0].payload).signature).to.be.a("string");
      const row = (t: Trade, s: Prosumer, b: Prosumer, delivered: string) => ({
        tradeId: String(t.tradeId), batchId: String(t.batchId), seller: s.address, buyer: b.address, contractedWh: "1000",
        sellerAllocatedWh: delivered, deliveredWh: delivered, basis: "measured",
      });
      expect(e.trades).to.deep.equal([row(trades[0]!, seller, buyer, "0"), row(trades[1]!, honestSeller, honestBuyer, "1000")]);
      // The forged trade is the same window: the same bytes check out for it too, 0 Wh from the seller's own signed reading.
      const forgedEvidence = await evidenceOf(trades[0]!);
      expect(forgedEvidence).to.equal(honest.evidence);
      const { onChain } = await readEvidenceOnChain(chain.client, { market: chain.market, tradeId: trades[0]!.tradeId, evidence: forgedEvidence, fromBlock: chain.startBlock });
      expect(onChain.report!.evidenceHash).to.equal(honest.onChain.report!.evidenceHash);
      expect(verifyEvidence({ evidence: forgedEvidence, tradeId: trades[0]!.tradeId, onChain })).to.include({ ok: true, deliveredWh: 0n });
      // A trade the document does not decide is refused.
      expect(verifyEvidence({ ...honest, tradeId: 424242n }).problems.map((p) => p.code)).to.include("trade_mismatch");
    });

    it("a version-2 document (one per trade, before window evidence) still verifies, and its tampering is still caught", () => {
      const e = JSON.parse(honest.evidence);
      const trade = e.trades[ht];
      const party = (p: any, side: "seller" | "buyer") => ({
        ...p, trades: e.trades.filter((t: any) => t[side] === p.account).map((t: any) => ({ tradeId: t.tradeId, seller: t.seller, buyer: t.buyer, contractedWh: t.contractedWh })),
      });
      const v2 = (deliveredWh: string) => reported(honest.evidence, (doc) => {
        for (const k of Object.keys(doc)) delete doc[k];
        Object.assign(doc, {
          v: 2, signatures: e.signatures, market: e.market, tradeId: trade.tradeId, batchId: trade.batchId, window: e.window, intervalSeconds: e.intervalSeconds,
          allocation: e.allocation, basis: trade.basis, contractedWh: trade.contractedWh, sellerAllocatedWh: trade.sellerAllocatedWh, deliveredWh,
          seller: party(e.sellers[hs], "seller"), buyer: party(e.buyers.find((b: any) => b.account === trade.buyer), "buyer"), otherSellers: [],
        });
      });
      const old = verifyEvidence(v2("1000"));
      expect(old.problems).to.deep.equal([]);
      expect(old).to.include({ ok: true, deliveredWh: 1_000n });
      expect(old.readings.map((r) => r.party)).to.deep.equal(["seller", "buyer"]);
      expect(verifyEvidence(v2("900")).problems.map((p) => [p.code, p.path])).to.deep.equal([["allocation_mismatch", "deliveredWh"]]);
    });

    it("a tampered reading breaks the hash, and its signature even when the hash is made to match", () => {
      const edit = (e: any) => {
        const payload = JSON.parse(e.sellers[hs].readings[0].payload);
        e.sellers[hs].readings[0].payload = JSON.stringify({ ...payload, export_kwh: 2 });
      };
      const e = JSON.parse(honest.evidence);
      edit(e);
      const asStored = verifyEvidence({ ...honest, evidence: JSON.stringify(e) });
      expect(asStored.ok).to.equal(false);
      expect(asStored.problems.map((p) => p.code)).to.include.members(["evidence_hash_mismatch", "reading_hash_mismatch", "signature_invalid"]);
      const relabelled = verifyEvidence(reported(honest.evidence, edit));
      expect(relabelled.problems.map((p) => [p.code, p.path])).to.deep.include(["signature_invalid", `sellers[${hs}].readings[0]`]);
      expect(relabelled.ok).to.equal(false);
    });

    it("a tampered allocation is recomputed and refused, as is a made-up competing trade, a dropped party or a dropped reading", () => {
      const claimed = verifyEvidence(reported(honest.evidence, (e) => {
        e.trades[ht].deliveredWh = "900";
      }));
      expect(claimed.problems.map((p) => [p.code, p.path])).to.deep.equal([["allocation_mismatch", `trades[${ht}].deliveredWh`]]);
      expect(claimed.deliveredWh).to.equal(1_000n);
      // Another trade's outcome is checked too: one trade's verification vouches for its window.
      const other = verifyEvidence(reported(honest.evidence, (e) => {
        e.trades[1 - ht].deliveredWh = "1000";
      }));
      expect(other.problems.map((p) => [p.code, p.path])).to.deep.equal([["allocation_mismatch", `trades[${1 - ht}].deliveredWh`]]);
      const shared = verifyEvidence(reported(honest.evidence, (e) => {
        // A second trade of the seller in the window would take half under pro rata.
        e.allocation = "pro-rata";
        const mine = e.trades[ht];
        e.trades.push({ ...mine, tradeId: "999999", sellerAllocatedWh: "500", deliveredWh: "500" });
        mine.sellerAllocatedWh = "500";
        mine.deliveredWh = "500";
      }));
      expect(shared.problems.map((p) => p.code)).to.deep.equal(["trade_not_on_chain", "delivered_mismatch"]);
      const partyless = verifyEvidence(reported(honest.evidence, (e) => {
        e.buyers = e.buyers.filter((b: any) => b.account !== honestBuyer.address);
      }));
      expect(partyless.problems.map((p) => p.code)).to.include("trades_inconsistent");
      // Leaving the seller's reading out (and claiming the full amount anyway) is caught too.
      const dropped = verifyEvidence(reported(honest.evidence, (e) => {
        const p = e.sellers[hs];
        p.readings = [];
        p.slots[0] = { ...p.slots[0], source: "missing", wh: null, readings: [] };
        p.availableWh = null;
      }));
      expect(dropped.problems.map((p) => p.code)).to.deep.equal(["allocation_mismatch", "delivered_mismatch"]);
      expect(dropped).to.include({ deliveredWh: 0n, basis: "seller_data_missing" });
    });

    it("a reading signed by a key the registry never held for that meter is refused", () => {
      const stranger = createMeterKeyPair();
      const wrongSigner = verifyEvidence({
        ...honest,
        onChain: { ...honest.onChain, signers: honest.onChain.signers.map((s) => (s.meterId === honestSeller.meterId ? { ...s, signer: stranger.signer } : s)) },
      });
      // Only readings that verify measure anything: the seller's export is then unknown, and the
      // claimed figures no longer follow from the evidence.
      expect(wrongSigner.problems.map((p) => [p.code, p.path])).to.deep.equal([
        ["signature_invalid", `sellers[${hs}].readings[0]`], ["measurement_mismatch", `sellers[${hs}].slots[0]`], ["available_mismatch", `sellers[${hs}].availableWh`],
        ["allocation_mismatch", `trades[${ht}].deliveredWh`], ["delivered_mismatch", `trades[${ht}].deliveredWh`],
      ]);
      expect(wrongSigner).to.include({ ok: false, deliveredWh: 0n });
      // Re-signed by the stranger (a bridge forging readings): refused against the real registry.
      const forged = verifyEvidence(reported(honest.evidence, (e) => {
        const p = e.sellers[hs];
        const { signature: _, ...payload } = JSON.parse(p.readings[0].payload);
        p.readings[0].payload = JSON.stringify(signReading({ meterId: honestSeller.meterId, metric: "interval", payload, privateKey: stranger.privateKey }));
        p.readings[0].sha256 = createHash("sha256").update(p.readings[0].payload).digest("hex");
        p.slots[0].readings = [p.readings[0].sha256];
      }));
      expect(forged.problems.map((p) => p.code)).to.include("signature_invalid");
      // A key set only after the report does not vouch for readings before it.
      const late = verifyEvidence({
        ...honest,
        onChain: { ...honest.onChain, signers: honest.onChain.signers.map((s) => ({ ...s, setAt: honest.onChain.report!.reportedAt + 1n })) },
      });
      expect(late.problems.map((p) => p.code).filter((c) => c === "signer_unknown")).to.have.length(4);
      expect(late.ok).to.equal(false);
    });
  });
});
