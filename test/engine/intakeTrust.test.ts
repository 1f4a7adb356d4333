// Intake refuses what the chain would refuse at settlement: signatures in a form the contract's
// ECDSA check rejects (on both intake paths), orders past the maker's connection limit for the
// interval, buys its allowance or balance cannot pay, and intervals beyond the book horizon.
import { keccak_256 } from "@noble/hashes/sha3.js";
import { expect } from "chai";
import secp256k1 from "secp256k1";
import type { Address, Hex } from "viem";
import type { Order } from "../../contracts/client/order.js";
import { amountFor } from "../../contracts/client/amount.js";
import { createEngine, IntakeLimitError, type Engine, type PaymentFunds, type ProsumerDirectory } from "../../engine/createEngine.js";
import { bytesToHex, createOrderHasher, hexToBytes, nonCanonicalSignature, recoverSigner } from "../../engine/intake/orderSignature.js";
import { freshDatabase, INTERVAL, makeOrder, market, signer, staticDirectory, T0, testDomain, wallet } from "./helpers.js";

const sign = signer(testDomain);
const hash = createOrderHasher(testDomain);
const alice = wallet("trust alice");
const bob = wallet("trust bob");
const carol = wallet("trust carol");
const now = T0;
/** secp256k1's group order. */
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** The same signature with s' = n - s and the other recovery id: valid for ecrecover, refused by OpenZeppelin. */
function highS(signature: Hex): Hex {
  const bytes = hexToBytes(signature);
  const s = BigInt(bytesToHex(bytes.subarray(32, 64)));
  bytes.set(hexToBytes(`0x${(N - s).toString(16).padStart(64, "0")}`), 32);
  bytes[64] = bytes[64] === 27 ? 28 : 27;
  return bytesToHex(bytes);
}

function rawV(signature: Hex): Hex {
  const bytes = hexToBytes(signature);
  bytes[64] = bytes[64]! - 27;
  return bytesToHex(bytes);
}

async function refusal(p: Promise<unknown>): Promise<{ field?: string; code?: string; message: string; figures?: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    const e = err as { field?: string; code?: string; message: string; figures?: Record<string, unknown> };
    return { field: e.field, code: e.code, message: e.message, ...(err instanceof IntakeLimitError ? { figures: err.figures } : {}) };
  }
  throw new Error("expected the order to be refused");
}

async function untilReady(engine: Engine, workers: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((engine.signaturePool?.stats().ready ?? 0) < workers) {
    if (Date.now() > deadline) throw new Error("signature workers not ready after 30 s");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A directory whose accounts have connection limits (W): export, import. */
function limitedDirectory(limits: Record<string, [number, number]>): ProsumerDirectory {
  return {
    ...staticDirectory(),
    connectionLimits: async (a) => {
      const [exportLimitW, importLimitW] = limits[a.toLowerCase()] ?? [10_000, 20_000];
      return { exportLimitW: BigInt(exportLimitW), importLimitW: BigInt(importLimitW) };
    },
  };
}

/** Funds as the engine's memory has them and as the chain's head has them (`fresh`). */
function fakeFunds() {
  const memory = new Map<string, { balance: bigint; allowance: bigint }>();
  const head = new Map<string, { balance: bigint; allowance: bigint }>();
  const calls: { account: string; fresh: boolean }[] = [];
  const funds: PaymentFunds & { set(a: Address, f: { balance: bigint; allowance: bigint }, where?: "both" | "head"): void; calls: typeof calls } = {
    calls,
    set(a, f, where = "both") {
      head.set(a.toLowerCase(), f);
      if (where === "both") memory.set(a.toLowerCase(), f);
    },
    async funds(a, options) {
      calls.push({ account: a.toLowerCase(), fresh: Boolean(options?.fresh) });
      const key = a.toLowerCase();
      const f = options?.fresh ? head.get(key) : memory.get(key);
      if (options?.fresh && f) memory.set(key, f);
      return { ...(f ?? { balance: 0n, allowance: 0n }) };
    },
  };
  return funds;
}

async function engineWith(options: { directory?: ProsumerDirectory; funds?: PaymentFunds; intakeWorkers?: number; bookHorizonSeconds?: number } = {}): Promise<Engine> {
  const opened = await freshDatabase();
  return createEngine({
    db: opened.db, markets: [market], domain: testDomain, directory: options.directory ?? staticDirectory(),
    ...(options.funds ? { funds: options.funds } : {}),
    ...(options.intakeWorkers !== undefined ? { intakeWorkers: options.intakeWorkers } : {}),
    ...(options.bookHorizonSeconds !== undefined ? { bookHorizonSeconds: options.bookHorizonSeconds } : {}),
  });
}

const place = (engine: Engine, w: typeof alice, order: Order, extra: { kind?: "market"; timeInForce?: "ioc" } = {}) => engine.placeOrder({ order, signature: sign(w, order), ...extra }, now);

describe("intake: refuses what the chain would refuse", () => {
  describe("signatures in the one form the market verifies (OpenZeppelin ECDSA)", () => {
    it("a high-s twin and a raw 0/1 recovery id still recover the maker with libsecp256k1 alone, but not through intake's recoverSigner", () => {
      const order = makeOrder(alice, 1, 1_000, 200_000);
      const good = sign(alice, order);
      const digest = hash(order);
      expect(recoverSigner(digest, good)).to.equal(alice.address);
      expect(nonCanonicalSignature(good)).to.equal(undefined);
      for (const bad of [highS(good), rawV(good), rawV(highS(good))]) {
        // What intake did before: any recovery id, any s. The curve says it is alice's key.
        const raw = hexToBytes(bad);
        const pub = secp256k1.ecdsaRecover(raw.subarray(0, 64), raw[64]! >= 27 ? raw[64]! - 27 : raw[64]!, digest, false);
        expect(bytesToHex(keccak_256(pub.subarray(1)).subarray(12))).to.equal(alice.address.toLowerCase());
        expect(recoverSigner(digest, bad), bad).to.equal(null);
        expect(nonCanonicalSignature(bad)).to.be.a("string");
      }
      expect(nonCanonicalSignature(highS(good))).to.match(/s must be at most secp256k1n\/2/);
      expect(nonCanonicalSignature(rawV(good))).to.match(/v must be 27 or 28 .*refuses [01]\b/);
      expect(nonCanonicalSignature(good.slice(0, 130) as Hex)).to.match(/65 bytes/);
      // s = n/2 exactly is still canonical; one above it is not.
      const half = (N / 2n).toString(16).padStart(64, "0");
      const edge = `${good.slice(0, 66)}${half}1b` as Hex;
      expect(nonCanonicalSignature(edge)).to.equal(undefined);
      expect(nonCanonicalSignature(`${good.slice(0, 66)}${(N / 2n + 1n).toString(16).padStart(64, "0")}1b` as Hex)).to.match(/s must be/);
    });

    for (const workers of [0, 1]) {
      it(`refused with 422 non_canonical_signature naming the signature and the rule (${workers === 0 ? "in-thread" : "signature worker"} intake)`, async () => {
        const engine = await engineWith({ intakeWorkers: workers });
        try {
          await untilReady(engine, workers);
          const order = makeOrder(alice, 1, 1_000, 200_000);
          const good = sign(alice, order);
          const high = await refusal(engine.placeOrder({ order, signature: highS(good) }, now));
          expect(high).to.include({ field: "signature", code: "non_canonical_signature" });
          expect(high.message).to.match(/signature: s must be at most secp256k1n\/2 \(low-s, EIP-2\)/);
          const v = await refusal(engine.placeOrder({ order, signature: rawV(good) }, now));
          expect(v).to.include({ field: "signature", code: "non_canonical_signature" });
          expect(v.message).to.match(/v must be 27 or 28/);
          expect(engine.state.orders.size).to.equal(0);
          // The canonical signature of the same order is taken (and not as a duplicate: nothing was).
          expect((await engine.placeOrder({ order, signature: good }, now)).status).to.equal("open");
          if (workers > 0) expect(engine.signaturePool!.stats().offloaded).to.equal(1);
        } finally {
          await engine.close();
        }
      });
    }
  });

  describe("connection limits (registry exportLimitW / importLimitW, per maker and interval)", () => {
    it("bounds each order and the sum of the maker's open and filled orders on that side; other intervals and sides are apart", async () => {
      // alice: 10 kW export = 2,500 Wh per 15 minutes; 20 kW import = 5,000 Wh.
      const engine = await engineWith({ directory: limitedDirectory({}) });
      const huge = await refusal(place(engine, alice, makeOrder(alice, 1, 100_000, 200_000)));
      expect(huge).to.include({ field: "order.energyWh", code: "connection_limit_exceeded" });
      expect(huge.figures).to.deep.equal({ limitW: 10_000, limitWh: 2_500, usedWh: 0, remainingWh: 2_500, orderWh: 100_000 });
      expect(huge.message).to.match(/export limit for this interval: 10000 W for 15 min is 2500 Wh, of which its open and filled sell orders use 0 Wh; 2500 Wh remain/);

      expect((await place(engine, alice, makeOrder(alice, 1, 2_000, 200_000))).status).to.equal("open");
      const again = await refusal(place(engine, alice, makeOrder(alice, 1, 1_000, 210_000)));
      expect(again.figures).to.deep.equal({ limitW: 10_000, limitWh: 2_500, usedWh: 2_000, remainingWh: 500, orderWh: 1_000 });
      expect((await place(engine, alice, makeOrder(alice, 1, 500, 210_000))).status).to.equal("open");
      expect((await refusal(place(engine, alice, makeOrder(alice, 1, 1, 210_000)))).figures).to.include({ usedWh: 2_500, remainingWh: 0 });

      // Another interval has its own 2,500 Wh; buying is the import limit's business.
      const later = { deliveryStart: BigInt(INTERVAL + 900), deliveryEnd: BigInt(INTERVAL + 1_800), expiry: BigInt(INTERVAL + 900) };
      expect((await place(engine, alice, makeOrder(alice, 1, 2_500, 200_000, later))).status).to.equal("open");
      expect((await place(engine, alice, makeOrder(alice, 0, 5_000, 100_000))).status).to.equal("open");
      expect((await refusal(place(engine, alice, makeOrder(alice, 0, 1, 100_000)))).figures).to.deep.equal({ limitW: 20_000, limitWh: 5_000, usedWh: 5_000, remainingWh: 0, orderWh: 1 });
      // A connection without export (a consumer) sells nothing.
      const consumer = await engineWith({ directory: limitedDirectory({ [carol.address.toLowerCase()]: [0, 3_999] }) });
      expect((await refusal(place(consumer, carol, makeOrder(carol, 1, 1, 200_000)))).figures).to.deep.equal({ limitW: 0, limitWh: 0, usedWh: 0, remainingWh: 0, orderWh: 1 });
      // 3,999 W for 15 minutes: 999.75 Wh, rounded down.
      expect((await refusal(place(consumer, carol, makeOrder(carol, 0, 1_000, 100_000)))).figures).to.include({ limitWh: 999 });
      expect((await place(consumer, carol, makeOrder(carol, 0, 999, 100_000))).status).to.equal("open");
    });

    it("filled volume stays used after a cancel; a fill the chain refuses frees it; a replacement counts the replaced order as cancelled", async () => {
      const engine = await engineWith({ directory: limitedDirectory({}) });
      const sell = await place(engine, alice, makeOrder(alice, 1, 2_000, 200_000));
      const buy = await place(engine, bob, makeOrder(bob, 0, 1_500, 210_000));
      expect(buy.fills.map((f) => f.energyWh)).to.deep.equal([1_500]);
      await engine.cancelOrder(sell.orderId, alice.address, now);
      // 1,500 Wh sold stay sold: 1,000 Wh remain.
      expect((await refusal(place(engine, alice, makeOrder(alice, 1, 1_001, 200_000)))).figures).to.include({ usedWh: 1_500, remainingWh: 1_000 });
      const rest = await place(engine, alice, makeOrder(alice, 1, 1_000, 220_000));
      // The chain refuses the fill (the buyer's fault): alice's sale did not happen.
      const fillId = buy.fills[0]!.fillId;
      await engine.markSettling(1, [fillId]);
      await engine.recordSettlement(1, `0x${"ab".repeat(32)}`, [{ fillId, executed: false, reason: "BuyerInactive" }], now);
      expect(engine.state.fills.get(fillId)!.status).to.equal("failed");
      expect((await refusal(place(engine, alice, makeOrder(alice, 1, 1_501, 200_000)))).figures).to.include({ usedWh: 1_000, remainingWh: 1_500 });
      // Replacing the open 1,000 Wh order with a 2,500 Wh one: the old one no longer counts.
      const replaced = await engine.replaceOrder(rest.orderId, alice.address, (() => {
        const o = makeOrder(alice, 1, 2_500, 230_000);
        return { order: o, signature: sign(alice, o) };
      })(), now);
      expect(replaced.status).to.equal("open");
      expect(engine.getOrder(rest.orderId)!.status).to.equal("cancelled");
      const over = makeOrder(alice, 1, 2_501, 230_000);
      expect((await refusal(engine.replaceOrder(replaced.orderId, alice.address, { order: over, signature: sign(alice, over) }, now))).figures).to.include({ usedWh: 0, remainingWh: 2_500 });
      expect(engine.getOrder(replaced.orderId)!.status, "a refused replacement leaves the order as it was").to.equal("open");
    });

    it("two orders racing through intake cannot both take the last of the limit", async () => {
      const engine = await engineWith({ directory: limitedDirectory({}) });
      const orders = Array.from({ length: 10 }, () => makeOrder(alice, 1, 1_000, 200_000));
      const results = await Promise.allSettled(orders.map((o) => place(engine, alice, o)));
      expect(results.filter((r) => r.status === "fulfilled").length).to.equal(2);
      expect(results.filter((r) => r.status === "rejected" && (r.reason as { code?: string }).code === "connection_limit_exceeded").length).to.equal(8);
    });
  });

  describe("what a buyer can pay (balance and allowance to the market)", () => {
    it("refuses a buy the allowance or the balance cannot cover with its other open buys, naming needed and available", async () => {
      const funds = fakeFunds();
      const engine = await engineWith({ funds });
      const noAllowance = await refusal(place(engine, bob, makeOrder(bob, 0, 1_000, 300_000)));
      expect(noAllowance).to.include({ field: "order.maker", code: "insufficient_allowance" });
      expect(noAllowance.figures).to.deep.equal({ needed: "300000", available: "0", balance: "0", allowance: "0" });
      expect(noAllowance.message).to.match(/has approved the market for 0, but this buy costs up to 300000 .* approve at least 300000/);
      // Memory had nothing: the chain's head was asked before refusing.
      expect(funds.calls.map((c) => c.fresh)).to.deep.equal([false, true]);

      funds.set(bob.address, { balance: 500_000n, allowance: 10n ** 18n });
      expect((await place(engine, bob, makeOrder(bob, 0, 1_000, 300_000))).status).to.equal("open");
      const broke = await refusal(place(engine, bob, makeOrder(bob, 0, 1_000, 300_000)));
      expect(broke).to.include({ field: "order.maker", code: "insufficient_balance" });
      expect(broke.figures).to.deep.equal({ needed: "600000", available: "500000", balance: "500000", allowance: (10n ** 18n).toString() });
      // 666 Wh at 300,000 per kWh: 199,800 (amountFor rounds down); 300,000 + 199,800 fits.
      expect((await place(engine, bob, makeOrder(bob, 0, 666, 300_000))).status).to.equal("open");
      expect((await refusal(place(engine, bob, makeOrder(bob, 0, 1, 300_000)))).figures).to.include({ needed: (300_000n + 199_800n + amountFor(1n, 300_000n)).toString() });
      // Sells cost nothing: not asked.
      const asked = funds.calls.length;
      expect((await place(engine, alice, makeOrder(alice, 1, 1_000, 320_000))).status).to.equal("open");
      expect(funds.calls.length).to.equal(asked);
    });

    it("counts fills until the chain executes them, and the maker's cancelled buys no longer", async () => {
      const funds = fakeFunds();
      funds.set(bob.address, { balance: 1_000_000n, allowance: 1_000_000n });
      const engine = await engineWith({ funds });
      await place(engine, alice, makeOrder(alice, 1, 2_000, 250_000));
      // Takes 2,000 Wh at the ask (500,000) and rests 1,000 Wh at its limit (300,000).
      const buy = await place(engine, bob, makeOrder(bob, 0, 3_000, 300_000));
      expect(buy.fills.map((f) => [f.energyWh, f.amount])).to.deep.equal([[2_000, 500_000n]]);
      // 500,000 pending + 300,000 open: 200,000 left.
      expect((await refusal(place(engine, bob, makeOrder(bob, 0, 1_000, 300_000)))).figures).to.include({ needed: "1100000" });
      const fillId = buy.fills[0]!.fillId;
      await engine.markSettling(7, [fillId]);
      expect((await refusal(place(engine, bob, makeOrder(bob, 0, 1_000, 300_000)))).figures, "settling still counts").to.include({ needed: "1100000" });
      await engine.recordSettlement(7, `0x${"cd".repeat(32)}`, [{ fillId, executed: true, tradeId: 1n }], now);
      // Executed: paid, and the balance (as the token's events will show) pays no more for it.
      funds.set(bob.address, { balance: 500_000n, allowance: 500_000n });
      expect((await refusal(place(engine, bob, makeOrder(bob, 0, 1_000, 300_000)))).figures).to.include({ needed: "600000", available: "500000" });
      await engine.cancelOrder(buy.orderId, bob.address, now);
      expect((await place(engine, bob, makeOrder(bob, 0, 1_000, 300_000))).status).to.equal("open");
    });

    it("prices a market buy at its effective price; a replacement's cost replaces the old one's", async () => {
      const funds = fakeFunds();
      funds.set(bob.address, { balance: 400_000n, allowance: 400_000n });
      const opened = await freshDatabase();
      const engine = await createEngine({ db: opened.db, markets: [market], domain: testDomain, directory: staticDirectory(), funds, referencePrice: () => 200_000 });
      await place(engine, alice, makeOrder(alice, 1, 2_000, 190_000));
      // Signed at the retail price (350,000 × 2 kWh = 700,000) but priced at the reference 200,000: 400,000.
      const m = await place(engine, bob, makeOrder(bob, 0, 2_000, 350_000), { kind: "market" });
      expect(m.status).to.equal("filled");
      expect(m.fills[0]!.amount).to.equal(380_000n);
      funds.set(bob.address, { balance: 400_000n, allowance: 1_000_000n });
      // 380,000 pending: a resting 100 Wh at 200,000 (20,000) fits exactly.
      const resting = await place(engine, bob, makeOrder(bob, 0, 100, 200_000));
      expect(resting.status).to.equal("open");
      const swap = makeOrder(bob, 0, 100, 200_000);
      const swapped = await engine.replaceOrder(resting.orderId, bob.address, { order: swap, signature: sign(bob, swap) }, now);
      expect(swapped.status).to.equal("open");
      const dearer = makeOrder(bob, 0, 101, 200_000);
      const refused = await refusal(engine.replaceOrder(swapped.orderId, bob.address, { order: dearer, signature: sign(bob, dearer) }, now));
      expect(refused).to.include({ code: "insufficient_balance" });
      expect(refused.figures).to.include({ needed: "400200", available: "400000" });
    });

    it("a read of the funds that fails is a retryable 503, not a refusal", async () => {
      const engine = await engineWith({ funds: { funds: async () => Promise.reject(new Error("connection refused")) } });
      const error = await refusal(place(engine, bob, makeOrder(bob, 0, 100, 200_000)));
      expect(error).to.include({ code: "unavailable" });
      expect(engine.state.orders.size).to.equal(0);
    });
  });

  describe("the book horizon", () => {
    it("takes intervals up to the horizon ahead (default 7 days) and refuses later ones naming order.deliveryStart", async () => {
      const engine = await engineWith();
      const at = (start: number) => ({ deliveryStart: BigInt(start), deliveryEnd: BigInt(start + 900), expiry: BigInt(start) });
      expect((await place(engine, alice, makeOrder(alice, 1, 100, 200_000, at(now + 7 * 86_400)))).status).to.equal("open");
      const far = await refusal(place(engine, alice, makeOrder(alice, 1, 100, 200_000, at(now + 7 * 86_400 + 900))));
      expect(far).to.include({ field: "order.deliveryStart", code: "beyond_book_horizon" });
      expect(far.message).to.match(/beyond the book horizon: books take orders for intervals starting at most 7 days ahead \(up to \d+\)/);
      const short = await engineWith({ bookHorizonSeconds: 3_600 });
      expect((await refusal(place(short, alice, makeOrder(alice, 1, 100, 200_000, at(now + 4_500))))).message).to.match(/at most 1 h ahead/);
      expect((await place(short, alice, makeOrder(alice, 1, 100, 200_000, at(now + 3_600)))).status).to.equal("open");
      const bad = await refusal(engineWith({ bookHorizonSeconds: 0 }));
      expect(bad.message).to.match(/bookHorizonSeconds must be a whole number of seconds >= 900, got 0/);
    });
  });

  it("an engine restarted from its log keeps counting the orders it had (connection and funds)", async () => {
    const opened = await freshDatabase();
    const funds = fakeFunds();
    funds.set(bob.address, { balance: 300_000n, allowance: 300_000n });
    const deps = { db: opened.db, markets: [market], domain: testDomain, directory: limitedDirectory({}), funds };
    const first = await createEngine(deps);
    await place(first, alice, makeOrder(alice, 1, 2_500, 300_000));
    await place(first, bob, makeOrder(bob, 0, 1_000, 250_000));
    await first.idle();
    const second = await createEngine(deps);
    expect((await refusal(place(second, alice, makeOrder(alice, 1, 1, 300_000)))).figures).to.include({ usedWh: 2_500 });
    expect((await refusal(place(second, bob, makeOrder(bob, 0, 201, 250_000)))).figures).to.include({ needed: "300250" });
  });
});
