// A delivery window where everyone trades with everyone: the soak's first window had 150 sellers
// and 150 buyers in 5,400 trades, and the per-trade evidence of version 2 (each trade repeating
// its buyer's other sellers with all their trades) made O(n^3) bytes: the node stalled for minutes
// building it. One document per window grows with its trades and readings; this test closes
// windows of n x n trades for two sizes and checks the stored evidence grows with the trades,
// not faster, and that every decision names the one document.
import { createHash } from "node:crypto";
import { expect } from "chai";
import { getAddress, type Address, type Hex } from "viem";
import { openBridgeDatabase } from "../../bridge/database.js";
import { decideDueDeliveries } from "../../bridge/decideDeliveries.js";
import type { MeterDirectory, MeterInfo } from "../../bridge/meterDirectory.js";
import { createMetrics } from "../../bridge/metrics.js";
import type { ProvenTrade } from "../../bridge/tradesDue.js";
import type { Trade } from "../../contracts/client/trade.js";
import { createLogger } from "../../lib/logger.js";

const INTERVAL = 900;
const START = 1_800_000_000n - (1_800_000_000n % BigInt(INTERVAL));

function account(i: number): Address {
  return getAddress(`0x${(i + 1).toString(16).padStart(40, "0")}`);
}

/** One window of n sellers x n buyers, each pair trading 10 Wh, and its meters' readings, ready to decide. */
async function fullWindow(n: number) {
  const opened = await openBridgeDatabase({});
  {
    const { db } = opened;
    const sellers = Array.from({ length: n }, (_, i) => account(i));
    const buyers = Array.from({ length: n }, (_, i) => account(n + i));
    const meters = new Map<Address, MeterInfo>([...sellers, ...buyers].map((a, i) => [a, {
      meterId: `SM-${i}`, account: a, zone: `0x${"00".repeat(32)}` as Hex, exportLimitW: 10_000n, importLimitW: 10_000n, status: 1, signer: undefined,
    }]));
    // Each meter's interval reading, as the bridge stores a signed one (the signature is not
    // re-checked when deciding: it was at intake). Sellers export less than they sold.
    const atMs = Number(START) * 1000;
    await db.insertInto("bridge_readings").values([...meters.values()].map((m, i) => {
      const selling = i < n;
      const payload = JSON.stringify({ interval_start: new Date(atMs).toISOString(), export_kwh: selling ? n * 0.008 : 0, import_kwh: selling ? 0 : n * 0.01, signature: "x".repeat(88) });
      return {
        meter_id: m.meterId, metric: "interval", kind: "interval", reading_at: BigInt(atMs), value: null,
        export_wh: selling ? BigInt(n * 8) : 0n, import_wh: selling ? 0n : BigInt(n * 10),
        payload_hash: createHash("sha256").update(payload).digest("hex"), payload, received_at: BigInt(atMs + 60_000),
        evidence: true, source: "mqtt", stream: "evidence", correction_reason: null,
      };
    })).execute();
    const trades: ProvenTrade[] = [];
    for (const seller of sellers) {
      for (const buyer of buyers) {
        const trade: Trade = {
          tradeId: BigInt(trades.length + 1), batchId: 1n, seller, buyer, zone: `0x${"00".repeat(32)}`, energyWh: 10n, pricePerKWh: 200_000n, amount: 2_000n,
          deliveryStart: START, deliveryEnd: START + BigInt(INTERVAL), source: 0, communityFeeBps: 0, networkFeePerKWh: 0n,
        };
        trades.push({ trade, proof: [] });
      }
    }
    const directory = { byAccount: (a: Address) => meters.get(a), refresh: async () => {} } as unknown as MeterDirectory;
    const nowMs = (Number(START) + INTERVAL + 600) * 1000;
    /** What a bridge (re)started with an empty memory decides now. */
    const decide = () => decideDueDeliveries({
      db,
      tradesDue: { listTradesEndingBy: async () => trades, forget: () => {}, prefetch: async () => {} },
      directory,
      clock: () => nowMs,
      connectedSinceMs: () => 0,
      intervalSeconds: INTERVAL,
      graceSeconds: 300,
      allocation: "fifo",
      market: account(9_999),
      decided: new Set(),
      flushReadings: async () => {},
      metrics: createMetrics(),
      logger: createLogger("test"),
    });
    return { db, close: opened.close, decide, trades };
  }
}

/** Decides one full window of n x n; answers what is stored. */
async function closeFullWindow(n: number) {
  const w = await fullWindow(n);
  try {
    const windows = await w.decide();
    const stored = await w.db.selectFrom("bridge_evidence").selectAll().execute();
    const decisions = await w.db.selectFrom("bridge_decisions").select(["evidence", "evidence_hash", "delivered_wh"]).execute();
    const outbox = await w.db.selectFrom("bridge_outbox").select("evidence_hash").execute();
    return { n, trades: w.trades.length, windows, stored, decisions, outbox };
  } finally {
    await w.close();
  }
}

describe("delivery evidence of a window where everyone trades with everyone", function () {
  this.timeout(120_000);

  it("is one document per window, growing with the trades (not with how they interconnect), named by every decision", async () => {
    const small = await closeFullWindow(10);
    const large = await closeFullWindow(30);
    for (const w of [small, large]) {
      expect(w.windows).to.have.length(1);
      expect(w.stored, `n=${w.n}`).to.have.length(1);
      const [doc] = w.stored;
      expect(w.decisions).to.have.length(w.trades);
      expect(w.outbox).to.have.length(w.trades);
      expect(new Set(w.decisions.map((d) => d.evidence_hash))).to.deep.equal(new Set([doc!.evidence_hash]));
      expect(new Set(w.outbox.map((o) => o.evidence_hash))).to.deep.equal(new Set([doc!.evidence_hash]));
      expect(w.decisions.every((d) => d.evidence === null)).to.equal(true);
      const e = JSON.parse(doc!.evidence);
      expect([e.v, e.sellers.length, e.buyers.length, e.trades.length]).to.deep.equal([3, w.n, w.n, w.trades]);
      // FIFO: each seller's 8n Wh go to its first 0.8n trades; every buyer imported enough.
      const delivered = w.decisions.reduce((a, d) => a + d.delivered_wh, 0n);
      expect(delivered).to.equal(BigInt(w.n * w.n * 8));
    }
    // 9 times the trades: the bytes grow about 9-fold (the parties' readings grow 3-fold). The
    // per-trade documents of version 2 grew with n^3: 27-fold here, and 2.4 GB at the soak's 150 x 150.
    const growth = large.stored[0]!.evidence.length / small.stored[0]!.evidence.length;
    expect(growth).to.be.below(9.5);
    expect(large.stored[0]!.evidence.length / large.trades).to.be.below(400);
  });

  it("writes the rows after the document in chunks; after a crash between them, the rest come from the stored document, nothing credited twice", async () => {
    const w = await fullWindow(30); // 900 trades: two chunks of rows after the document
    try {
      await w.decide();
      const rows = async () => ({
        decisions: (await w.db.selectFrom("bridge_decisions").select(["trade_id", "seller_meter", "buyer_meter", "delivered_wh", "basis", "evidence_hash"]).orderBy("trade_id").execute())
          .map((r) => JSON.stringify(r, (_, v) => (typeof v === "bigint" ? v.toString() : v))),
        outbox: (await w.db.selectFrom("bridge_outbox").select(["trade_id", "trade", "proof", "delivered_wh", "evidence_hash", "state"]).orderBy("trade_id").execute())
          .map((r) => JSON.stringify(r, (_, v) => (typeof v === "bigint" ? v.toString() : v))),
        usage: await w.db.selectFrom("bridge_slot_usage").selectAll().orderBy("meter_id").orderBy("direction").execute(),
        documents: (await w.db.selectFrom("bridge_evidence").select("evidence_hash").execute()).length,
      });
      const whole = await rows();
      expect(whole.decisions).to.have.length(900);
      expect(whole.documents).to.equal(1);
      // The state a crash after the first chunk leaves: the document, the credited energy and
      // 500 trades' rows. A fresh bridge lists the window's trades again (this source never
      // forgets any): the 500 decided ones are not decided again.
      await w.db.deleteFrom("bridge_decisions").where("trade_id", ">", 500n).execute();
      await w.db.deleteFrom("bridge_outbox").where("trade_id", ">", 500n).execute();
      const again = await w.decide();
      expect(again.flatMap((x) => x.trades)).to.have.length(400);
      expect(await rows()).to.deep.equal(whole);
      // Allocating again over the 400 left would have given them more (FIFO over fewer trades)
      // and credited the energy a second time.
      expect(await w.decide()).to.deep.equal([]);
    } finally {
      await w.close();
    }
  });
});
