import { expect } from "chai";
import type { Signer } from "ethers";
import {
  deployMarket, ethers, networkHelpers, makeOrder, signed, tradesFromReceipt, type MarketFixture, type ProvenTrade,
  ZONE_A, PRICE, MAX_NETWORK_FEE, SIDE_BUY, SIDE_SELL, EnergySource, TradeStatus, RejectReason,
} from "./fixtures.js";
import { merkleRoot, tradeLeaf, type Trade } from "../../contracts/client/trade.js";
import type { Order } from "../../contracts/client/order.js";

const addr = (s: Signer) => (s as unknown as { address: string }).address;
const EVIDENCE = ethers.id("meter-evidence");
const REASON = ethers.id("dispute-reason");
const HOUR = 3600n;
const DAY = 24n * HOUR;
const CONFIRMATION_WINDOW = 2n * DAY;
const DISPUTE_WINDOW = DAY;
const ARBITRATION_TIMEOUT = 14n * DAY;
const amountFor = (wh: bigint, price: bigint) => (wh * price) / 1000n;

interface Spec {
  buyer?: Signer;
  seller?: Signer;
  energyWh?: bigint;
  price?: bigint;
  buy?: Partial<Order>;
  sell?: Partial<Order>;
}

/** Settles one batch with one fill per spec (buy at index 2i, sell at 2i+1); every fill must execute. */
async function settle(f: MarketFixture, specs: Spec[]) {
  const orders = [];
  const fills = [];
  for (const [i, s] of specs.entries()) {
    const buyer = s.buyer ?? f.buyers[0]!;
    const seller = s.seller ?? f.sellers[0]!;
    const energyWh = s.energyWh ?? 1_000n;
    const price = s.price ?? PRICE;
    orders.push(await signed(f, buyer, await makeOrder(f, buyer, SIDE_BUY, { energyWh, limitPricePerKWh: price, ...s.buy })));
    orders.push(await signed(f, seller, await makeOrder(f, seller, SIDE_SELL, { energyWh, limitPricePerKWh: price, ...s.sell })));
    fills.push({ buyIndex: 2 * i, sellIndex: 2 * i + 1, energyWh, pricePerKWh: price });
  }
  const tx = await f.market.connect(f.matcher).settleBatch(orders, fills);
  const receipt = await tx.wait();
  const trades = tradesFromReceipt(f, receipt);
  expect(trades).to.have.length(specs.length, "every fill should have executed");
  return { tx, receipt, trades };
}

async function settleOne(f: MarketFixture, spec: Spec = {}): Promise<ProvenTrade> {
  return (await settle(f, [spec])).trades[0]!;
}

const at = (ts: bigint) => networkHelpers.time.setNextBlockTimestamp(ts);

async function marketAddr(f: MarketFixture) {
  return f.market.getAddress();
}

/** Balance of the market equals escrow plus unclaimed fees, and escrow is what we expect. */
async function expectSolvent(f: MarketFixture, escrowed?: bigint, fees?: bigint) {
  const balance = await f.token.balanceOf(await marketAddr(f));
  const escrowedTotal = await f.market.escrowedTotal();
  const feesOutstanding = await f.market.feesOutstanding();
  expect(balance).to.equal(escrowedTotal + feesOutstanding, "market balance == escrowedTotal + feesOutstanding");
  if (escrowed !== undefined) expect(escrowedTotal).to.equal(escrowed, "escrowedTotal");
  if (fees !== undefined) expect(feesOutstanding).to.equal(fees, "feesOutstanding");
}

async function expectDispute(f: MarketFixture, tradeId: bigint, expected: [bigint, boolean, bigint, string]) {
  const d = await f.market.dispute(tradeId);
  expect([d.deliveredWh, d.reported, d.deadline, d.openedBy]).to.deep.equal(expected);
}

async function expectRecord(f: MarketFixture, seller: Signer, contracted: bigint, delivered: bigint) {
  const r = await f.market.sellerRecord(addr(seller));
  expect([r.contractedWh, r.deliveredWh]).to.deep.equal([contracted, delivered]);
}

/** A trade of 1000 Wh at 0.333333 tEUR/kWh (amount 333333) reported at 700 Wh: a 233333 proposal. */
const ODD_PRICE = 333_333n;
const ODD_AMOUNT = 333_333n;
const SHORT_WH = 700n;
const PRO_RATA = 233_333n; // floor(700 * 333333 / 1000) = floor(233333.1)

/** Reports `deliveredWh` below tolerance at deliveryEnd + 10 and returns the proposal deadline. */
async function propose(f: MarketFixture, t: ProvenTrade, deliveredWh = SHORT_WH) {
  const ts = f.deliveryEnd + 10n;
  await at(ts);
  await f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, deliveredWh, EVIDENCE);
  return ts + DISPUTE_WINDOW;
}

describe("Escrow and delivery", () => {
  describe("settleBatch commitment", () => {
    it("commits three trades under one Merkle root and escrows their amounts", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const [b0, b1] = [f.buyers[0]!, f.buyers[1]!];
      const [s0, s1, s2] = [f.sellers[0]!, f.sellers[1]!, f.sellers[2]!];
      const market = await marketAddr(f);
      const b0Before = await f.token.balanceOf(addr(b0));
      const b1Before = await f.token.balanceOf(addr(b1));
      const { tx, trades } = await settle(f, [
        { buyer: b0, seller: s0, energyWh: 1_000n },
        { buyer: b1, seller: s1, energyWh: 2_000n, price: ODD_PRICE, sell: { source: EnergySource.wind } },
        { buyer: b0, seller: s2, energyWh: 3n, price: ODD_PRICE },
      ]);
      const amounts = [amountFor(1_000n, PRICE), amountFor(2_000n, ODD_PRICE), amountFor(3n, ODD_PRICE)];
      expect(amounts).to.deep.equal([250_000n, 666_666n, 999n]);
      const expected: Trade[] = [
        [b0, s0, 1_000n, PRICE, 1], [b1, s1, 2_000n, ODD_PRICE, 2], [b0, s2, 3n, ODD_PRICE, 1],
      ].map(([b, s, wh, p, src], i) => ({
        tradeId: BigInt(i + 1), batchId: 1n, seller: addr(s as Signer) as never, buyer: addr(b as Signer) as never,
        zone: ZONE_A, energyWh: wh as bigint, pricePerKWh: p as bigint, amount: amounts[i]!,
        deliveryStart: f.deliveryStart, deliveryEnd: f.deliveryEnd, source: src as number,
        communityFeeBps: 0, networkFeePerKWh: 0n,
      }));
      expect(trades.map((t) => t.trade)).to.deep.equal(expected);
      for (const t of expected) {
        await expect(tx).to.emit(f.market, "TradeExecuted").withArgs(
          t.tradeId, t.seller, t.buyer, ZONE_A, t.energyWh, t.pricePerKWh, t.amount,
          f.deliveryStart, f.deliveryEnd, t.source, 1n,
        );
      }
      const root = merkleRoot(expected.map(tradeLeaf));
      await expect(tx).to.emit(f.market, "BatchSettled").withArgs(1n, root, 1n, 3n, 0, 0n);
      expect(await f.market.batchRoot(1n)).to.equal(root);
      for (const t of trades) expect(t.proof.length).to.be.greaterThan(0);
      expect(await f.token.balanceOf(addr(b0))).to.equal(b0Before - amounts[0]! - amounts[2]!);
      expect(await f.token.balanceOf(addr(b1))).to.equal(b1Before - amounts[1]!);
      expect(await f.token.balanceOf(market)).to.equal(amounts[0]! + amounts[1]! + amounts[2]!);
      for (const t of trades) expect(await f.market.tradeStatus(t.trade.tradeId)).to.equal(TradeStatus.Open);
      await expectSolvent(f, amounts[0]! + amounts[1]! + amounts[2]!, 0n);
    });
  });

  describe("reportDelivery", () => {
    it("within tolerance pays the seller in full", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f);
      const amount = amountFor(1_000n, PRICE);
      await expectSolvent(f, amount, 0n);
      await at(f.deliveryEnd);
      const tx = f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 1_000n, EVIDENCE);
      await expect(tx).to.emit(f.market, "DeliveryConfirmed").withArgs(1n, 1_000n, EVIDENCE, true);
      await expect(tx).to.emit(f.market, "TradeSettled").withArgs(1n, amount, 0n, 0n, 0n);
      await expect(tx).not.to.emit(f.market, "DisputeOpened");
      await expect(tx).to.changeTokenBalances(
        ethers, f.token, [await marketAddr(f), addr(f.sellers[0]!), addr(f.buyers[0]!)], [-amount, amount, 0n],
      );
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Settled);
      await expectRecord(f, f.sellers[0]!, 1_000n, 1_000n);
      await expectSolvent(f, 0n, 0n);
    });

    it("at exactly the tolerance (950 of 1000 Wh at 5%) still pays in full; one Wh less opens a dispute", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      expect(await f.market.deliveryToleranceBps()).to.equal(500n);
      const { trades: [a, b] } = await settle(f, [{}, { buyer: f.buyers[1]!, seller: f.sellers[1]! }]);
      const amount = amountFor(1_000n, PRICE);
      await networkHelpers.time.increaseTo(f.deliveryEnd);
      const tx = f.market.connect(f.oracle).reportDelivery(a!.trade, a!.proof, 950n, EVIDENCE);
      await expect(tx).to.emit(f.market, "DeliveryConfirmed").withArgs(1n, 950n, EVIDENCE, true);
      await expect(tx).to.emit(f.market, "TradeSettled").withArgs(1n, amount, 0n, 0n, 0n);
      await expect(tx).to.changeTokenBalances(ethers, f.token, [addr(f.sellers[0]!), addr(f.buyers[0]!)], [amount, 0n]);

      const tx2 = f.market.connect(f.oracle).reportDelivery(b!.trade, b!.proof, 949n, EVIDENCE);
      await expect(tx2).to.emit(f.market, "DeliveryConfirmed").withArgs(2n, 949n, EVIDENCE, false);
      await expect(tx2).not.to.emit(f.market, "TradeSettled");
      expect(await f.market.tradeStatus(2n)).to.equal(TradeStatus.Proposed);
      await expectSolvent(f, amount, 0n);
    });

    it("over-delivery earns nothing extra and counts only the contracted energy", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f);
      const amount = amountFor(1_000n, PRICE);
      await networkHelpers.time.increaseTo(f.deliveryEnd);
      const tx = f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 1_500n, EVIDENCE);
      await expect(tx).to.emit(f.market, "DeliveryConfirmed").withArgs(1n, 1_500n, EVIDENCE, true);
      await expect(tx).to.emit(f.market, "TradeSettled").withArgs(1n, amount, 0n, 0n, 0n);
      await expect(tx).to.changeTokenBalances(
        ethers, f.token, [await marketAddr(f), addr(f.sellers[0]!), addr(f.buyers[0]!)], [-amount, amount, 0n],
      );
      await expectRecord(f, f.sellers[0]!, 1_000n, 1_000n);
      expect(await f.market.sellerReputationBps(addr(f.sellers[0]!))).to.equal(10_000n);
      await expectSolvent(f, 0n, 0n);
    });

    it("below tolerance opens a dispute with a pro-rata proposal; finalizeDispute pays the split after the window", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f, { price: ODD_PRICE });
      expect(t.trade.amount).to.equal(ODD_AMOUNT);
      const market = await marketAddr(f);
      const [seller, buyer] = [addr(f.sellers[0]!), addr(f.buyers[0]!)];

      const reportTs = f.deliveryEnd + 10n;
      const deadline = reportTs + DISPUTE_WINDOW;
      await at(reportTs);
      const tx = f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, SHORT_WH, EVIDENCE);
      await expect(tx).to.emit(f.market, "DeliveryConfirmed").withArgs(1n, SHORT_WH, EVIDENCE, false);
      await expect(tx).to.emit(f.market, "DisputeOpened").withArgs(1n, addr(f.oracle), PRO_RATA, deadline, EVIDENCE);
      await expect(tx).not.to.emit(f.market, "TradeSettled");
      await expect(tx).to.changeTokenBalances(ethers, f.token, [market, seller, buyer], [0n, 0n, 0n]);
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Proposed);
      await expectDispute(f, 1n, [SHORT_WH, true, deadline, addr(f.oracle)]);
      await expectRecord(f, f.sellers[0]!, 1_000n, SHORT_WH);
      await expectSolvent(f, ODD_AMOUNT, 0n);

      // Still open at the deadline itself.
      await at(deadline);
      await expect(f.market.connect(f.outsider).finalizeDispute(t.trade, t.proof))
        .to.be.revertedWithCustomError(f.market, "DisputeWindowOpen")
        .withArgs(1n, deadline);

      await at(deadline + 1n);
      const fin = f.market.connect(f.outsider).finalizeDispute(t.trade, t.proof);
      await expect(fin)
        .to.emit(f.market, "DisputeResolved")
        .withArgs(1n, addr(f.outsider), PRO_RATA, ODD_AMOUNT - PRO_RATA);
      await expect(fin).to.emit(f.market, "TradeSettled").withArgs(1n, PRO_RATA, ODD_AMOUNT - PRO_RATA, 0n, 0n);
      await expect(fin).to.changeTokenBalances(
        ethers, f.token, [market, seller, buyer], [-ODD_AMOUNT, PRO_RATA, ODD_AMOUNT - PRO_RATA],
      );
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Settled);
      await expectDispute(f, 1n, [0n, false, 0n, ethers.ZeroAddress]);
      await expectSolvent(f, 0n, 0n);

      await expect(f.market.finalizeDispute(t.trade, t.proof))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(1n, TradeStatus.Settled);
    });

    it("a report of zero energy proposes nothing for the seller and finalises to a full refund", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f);
      const amount = t.trade.amount;
      const ts = f.deliveryEnd + 5n;
      await at(ts);
      await expect(f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 0n, EVIDENCE))
        .to.emit(f.market, "DisputeOpened")
        .withArgs(1n, addr(f.oracle), 0n, ts + DISPUTE_WINDOW, EVIDENCE);
      await at(ts + DISPUTE_WINDOW + 1n);
      const fin = f.market.finalizeDispute(t.trade, t.proof);
      await expect(fin).to.emit(f.market, "DisputeResolved").withArgs(1n, addr(f.admin), 0n, amount);
      await expect(fin).to.emit(f.market, "TradeSettled").withArgs(1n, 0n, amount, 0n, 0n);
      await expect(fin).to.changeTokenBalances(ethers, f.token, [addr(f.sellers[0]!), addr(f.buyers[0]!)], [0n, amount]);
      await expectRecord(f, f.sellers[0]!, 1_000n, 0n);
      await expectSolvent(f, 0n, 0n);
    });

    it("reverts DeliveryNotEnded before the delivery window ends", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f);
      await expect(f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 1_000n, EVIDENCE))
        .to.be.revertedWithCustomError(f.market, "DeliveryNotEnded")
        .withArgs(1n, f.deliveryEnd);
      await at(f.deliveryEnd - 1n);
      await expect(f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 1_000n, EVIDENCE))
        .to.be.revertedWithCustomError(f.market, "DeliveryNotEnded")
        .withArgs(1n, f.deliveryEnd);
      await at(f.deliveryEnd);
      await expect(f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 1_000n, EVIDENCE))
        .to.emit(f.market, "TradeSettled");
      await expectSolvent(f, 0n, 0n);
    });

    it("reverts InvalidTradeStatus on a second report (settled or proposed)", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const { trades: [a, b] } = await settle(f, [{}, { buyer: f.buyers[1]! }]);
      await networkHelpers.time.increaseTo(f.deliveryEnd);
      await f.market.connect(f.oracle).reportDelivery(a!.trade, a!.proof, 1_000n, EVIDENCE);
      await expect(f.market.connect(f.oracle).reportDelivery(a!.trade, a!.proof, 1_000n, EVIDENCE))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(1n, TradeStatus.Settled);
      await f.market.connect(f.oracle).reportDelivery(b!.trade, b!.proof, 10n, EVIDENCE);
      await expect(f.market.connect(f.oracle).reportDelivery(b!.trade, b!.proof, 1_000n, EVIDENCE))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(2n, TradeStatus.Proposed);
      // The rejected reports did not count towards the seller's record.
      await expectRecord(f, f.sellers[0]!, 2_000n, 1_010n);
      await expectSolvent(f, b!.trade.amount, 0n);
    });

    it("only the meter oracle may report", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f);
      await networkHelpers.time.increaseTo(f.deliveryEnd);
      const role = await f.market.METER_ORACLE_ROLE();
      for (const who of [f.outsider, f.buyers[0]!, f.sellers[0]!, f.admin]) {
        await expect(f.market.connect(who).reportDelivery(t.trade, t.proof, 1_000n, EVIDENCE))
          .to.be.revertedWithCustomError(f.market, "AccessControlUnauthorizedAccount")
          .withArgs(addr(who), role);
      }
    });

    it("reverts InvalidTradeProof for a wrong proof, a tampered field or an unknown batch", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const { trades } = await settle(f, [{}, { buyer: f.buyers[1]! }, { buyer: f.buyers[2]!, seller: f.sellers[1]! }]);
      const [a, b, c] = trades as [ProvenTrade, ProvenTrade, ProvenTrade];
      await networkHelpers.time.increaseTo(f.deliveryEnd);
      const oracle = f.market.connect(f.oracle);
      const bad = async (trade: Trade, proof: string[], id = trade.tradeId, batch = trade.batchId) =>
        expect(oracle.reportDelivery(trade, proof, 1_000n, EVIDENCE))
          .to.be.revertedWithCustomError(f.market, "InvalidTradeProof")
          .withArgs(id, batch);

      await bad(a.trade, b.proof);
      await bad(a.trade, []);
      await bad(c.trade, [...c.proof, ethers.ZeroHash]);
      await bad(a.trade, a.proof.map(() => ethers.id("junk")));
      const other = addr(f.outsider) as Trade["seller"];
      const tampered: Partial<Trade>[] = [
        { amount: a.trade.amount + 1n },
        { amount: 0n },
        { seller: other },
        { buyer: other },
        { zone: ethers.encodeBytes32String("ZONE-B") as Trade["zone"] },
        { energyWh: a.trade.energyWh - 1n },
        { pricePerKWh: a.trade.pricePerKWh + 1n },
        { deliveryStart: a.trade.deliveryStart - 1n },
        { deliveryEnd: a.trade.deliveryEnd - 900n },
        { source: EnergySource.wind },
        { communityFeeBps: 1 },
        { networkFeePerKWh: 1n },
      ];
      for (const change of tampered) await bad({ ...a.trade, ...change }, a.proof);
      // Another trade id with a's proof: the leaf differs.
      await bad({ ...a.trade, tradeId: 2n }, a.proof, 2n);
      // A batch that was never settled has no root.
      await bad({ ...a.trade, batchId: 99n }, a.proof, 1n, 99n);

      // The genuine trades still verify.
      for (const t of [a, b, c]) await oracle.reportDelivery(t.trade, t.proof, 1_000n, EVIDENCE);
      await expectSolvent(f, 0n, 0n);
    });

    it("every trade call checks the proof", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f);
      const forged = { ...t.trade, amount: t.trade.amount * 2n };
      await networkHelpers.time.increaseTo(f.deliveryEnd + CONFIRMATION_WINDOW + 1n);
      const calls = [
        () => f.market.connect(f.buyers[0]!).openDispute(forged, t.proof, REASON),
        () => f.market.finalizeDispute(forged, t.proof),
        () => f.market.connect(f.arbiter).resolveDispute(forged, t.proof, 0n),
        () => f.market.connect(f.buyers[0]!).releaseEarly(forged, t.proof),
        () => f.market.connect(f.buyers[0]!).reclaim(forged, t.proof),
        () => f.market.connect(f.oracle).reportDeliveries([{ trade: forged, proof: t.proof, deliveredWh: 1n, evidenceHash: EVIDENCE }]),
      ];
      for (const call of calls) {
        await expect(call()).to.be.revertedWithCustomError(f.market, "InvalidTradeProof").withArgs(1n, 1n);
      }
      await expectSolvent(f, t.trade.amount, 0n);
    });
  });

  describe("trade statuses", () => {
    it("trades on both sides of a packed status word keep independent statuses", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      // 66 fills of 10 Wh between one buy and one sell order: trade ids 1..66, ids 63/64 straddle a word.
      const N = 66;
      const buy = await signed(f, f.buyers[0]!, await makeOrder(f, f.buyers[0]!, SIDE_BUY, { energyWh: 10n * BigInt(N) }));
      const sell = await signed(f, f.sellers[0]!, await makeOrder(f, f.sellers[0]!, SIDE_SELL, { energyWh: 10n * BigInt(N) }));
      const fills = Array.from({ length: N }, () => ({ buyIndex: 0, sellIndex: 1, energyWh: 10n, pricePerKWh: PRICE }));
      const tx = await f.market.connect(f.matcher).settleBatch([buy, sell], fills);
      const trades = tradesFromReceipt(f, await tx.wait());
      expect(trades).to.have.length(N);
      await expect(tx).to.emit(f.market, "BatchSettled").withArgs(1n, merkleRoot(trades.map((t) => tradeLeaf(t.trade))), 1n, BigInt(N), 0, 0n);
      const byId = (id: number) => trades[id - 1]!;
      const amount = amountFor(10n, PRICE);
      await expectSolvent(f, amount * BigInt(N), 0n);

      await networkHelpers.time.increaseTo(f.deliveryEnd);
      const oracle = f.market.connect(f.oracle);
      await oracle.reportDelivery(byId(63).trade, byId(63).proof, 10n, EVIDENCE); // Settled
      await oracle.reportDelivery(byId(64).trade, byId(64).proof, 0n, EVIDENCE); // Proposed
      await f.market.connect(f.buyers[0]!).openDispute(byId(65).trade, byId(65).proof, REASON); // Contested
      await f.market.connect(f.buyers[0]!).releaseEarly(byId(1).trade, byId(1).proof); // Settled
      await networkHelpers.time.increaseTo(f.deliveryEnd + CONFIRMATION_WINDOW + 1n);
      await f.market.connect(f.buyers[0]!).reclaim(byId(62).trade, byId(62).proof); // Refunded

      const expected: Record<number, number> = {
        1: TradeStatus.Settled, 2: TradeStatus.Open, 61: TradeStatus.Open, 62: TradeStatus.Refunded,
        63: TradeStatus.Settled, 64: TradeStatus.Proposed, 65: TradeStatus.Contested, 66: TradeStatus.Open,
        67: TradeStatus.Open,
      };
      for (const [id, status] of Object.entries(expected)) {
        expect(await f.market.tradeStatus(BigInt(id))).to.equal(status, `trade ${id}`);
      }
      await expectSolvent(f, amount * BigInt(N - 3), 0n);

      // Settling 64 leaves its neighbours alone.
      await f.market.connect(f.buyers[0]!).releaseEarly(byId(64).trade, byId(64).proof);
      expect(await f.market.tradeStatus(63n)).to.equal(TradeStatus.Settled);
      expect(await f.market.tradeStatus(64n)).to.equal(TradeStatus.Settled);
      expect(await f.market.tradeStatus(65n)).to.equal(TradeStatus.Contested);
      // The remaining open trades still verify and can be reclaimed.
      await expect(f.market.connect(f.buyers[0]!).reclaim(byId(66).trade, byId(66).proof))
        .to.emit(f.market, "TradeRefunded").withArgs(66n, addr(f.buyers[0]!), amount);
      await expectSolvent(f, amount * BigInt(N - 5), 0n);
    });
  });

  describe("reportDeliveries", () => {
    it("applies each report with the rules of reportDelivery", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const { trades } = await settle(f, [
        { seller: f.sellers[0]! },
        { buyer: f.buyers[1]!, seller: f.sellers[1]!, price: ODD_PRICE },
        { buyer: f.buyers[2]!, seller: f.sellers[2]! },
      ]);
      const [a, b, c] = trades as [ProvenTrade, ProvenTrade, ProvenTrade];
      const amount = amountFor(1_000n, PRICE);
      const ts = f.deliveryEnd + 1n;
      await at(ts);
      const ev = [ethers.id("a"), ethers.id("b"), ethers.id("c")];
      const tx = f.market.connect(f.oracle).reportDeliveries([
        { trade: a.trade, proof: a.proof, deliveredWh: 990n, evidenceHash: ev[0]! },
        { trade: b.trade, proof: b.proof, deliveredWh: SHORT_WH, evidenceHash: ev[1]! },
        { trade: c.trade, proof: c.proof, deliveredWh: 2_000n, evidenceHash: ev[2]! },
      ]);
      await expect(tx).to.emit(f.market, "DeliveryConfirmed").withArgs(1n, 990n, ev[0], true);
      await expect(tx).to.emit(f.market, "DeliveryConfirmed").withArgs(2n, SHORT_WH, ev[1], false);
      await expect(tx).to.emit(f.market, "DeliveryConfirmed").withArgs(3n, 2_000n, ev[2], true);
      await expect(tx).to.emit(f.market, "TradeSettled").withArgs(1n, amount, 0n, 0n, 0n);
      await expect(tx).to.emit(f.market, "TradeSettled").withArgs(3n, amount, 0n, 0n, 0n);
      await expect(tx).to.emit(f.market, "DisputeOpened").withArgs(2n, addr(f.oracle), PRO_RATA, ts + DISPUTE_WINDOW, ev[1]);
      await expect(tx).to.changeTokenBalances(
        ethers, f.token,
        [await marketAddr(f), addr(f.sellers[0]!), addr(f.sellers[1]!), addr(f.sellers[2]!)],
        [-2n * amount, amount, 0n, amount],
      );
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Settled);
      expect(await f.market.tradeStatus(2n)).to.equal(TradeStatus.Proposed);
      expect(await f.market.tradeStatus(3n)).to.equal(TradeStatus.Settled);
      await expectRecord(f, f.sellers[0]!, 1_000n, 990n);
      await expectRecord(f, f.sellers[1]!, 1_000n, SHORT_WH);
      await expectRecord(f, f.sellers[2]!, 1_000n, 1_000n);
      await expectSolvent(f, ODD_AMOUNT, 0n);
    });

    it("is all or nothing: one bad report reverts the whole batch", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const { trades: [a, b] } = await settle(f, [{}, { buyer: f.buyers[1]! }]);
      await networkHelpers.time.increaseTo(f.deliveryEnd);
      const oracle = f.market.connect(f.oracle);
      await expect(oracle.reportDeliveries([
        { trade: a!.trade, proof: a!.proof, deliveredWh: 1_000n, evidenceHash: EVIDENCE },
        { trade: b!.trade, proof: b!.proof, deliveredWh: 1_000n, evidenceHash: EVIDENCE },
        { trade: a!.trade, proof: a!.proof, deliveredWh: 1_000n, evidenceHash: EVIDENCE },
      ]))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(1n, TradeStatus.Settled);
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Open);
      expect(await f.market.tradeStatus(2n)).to.equal(TradeStatus.Open);
      await expectRecord(f, f.sellers[0]!, 0n, 0n);
      await expectSolvent(f, a!.trade.amount + b!.trade.amount, 0n);
      // An empty batch is a no-op; non-oracles are refused.
      await oracle.reportDeliveries([]);
      await expect(f.market.connect(f.outsider).reportDeliveries([]))
        .to.be.revertedWithCustomError(f.market, "AccessControlUnauthorizedAccount")
        .withArgs(addr(f.outsider), await f.market.METER_ORACLE_ROLE());
    });
  });

  describe("disputes", () => {
    it("the buyer contests a proposal within its window", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f, { price: ODD_PRICE });
      await propose(f, t);
      const ts = f.deliveryEnd + 100n;
      await at(ts);
      const tx = f.market.connect(f.buyers[0]!).openDispute(t.trade, t.proof, REASON);
      await expect(tx)
        .to.emit(f.market, "DisputeOpened")
        .withArgs(1n, addr(f.buyers[0]!), PRO_RATA, ts + ARBITRATION_TIMEOUT, REASON);
      await expect(tx).to.changeTokenBalances(ethers, f.token, [await marketAddr(f)], [0n]);
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Contested);
      await expectDispute(f, 1n, [SHORT_WH, true, ts + ARBITRATION_TIMEOUT, addr(f.buyers[0]!)]);
      // Contested with a report already in: no second report, no second contest.
      await expect(f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 1_000n, EVIDENCE))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(1n, TradeStatus.Contested);
      await expect(f.market.connect(f.sellers[0]!).openDispute(t.trade, t.proof, REASON))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(1n, TradeStatus.Contested);
      await expectSolvent(f, ODD_AMOUNT, 0n);
    });

    it("the seller contests a proposal at the last second of its window", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f, { price: ODD_PRICE });
      const deadline = await propose(f, t);
      await at(deadline);
      await expect(f.market.connect(f.sellers[0]!).openDispute(t.trade, t.proof, REASON))
        .to.emit(f.market, "DisputeOpened")
        .withArgs(1n, addr(f.sellers[0]!), PRO_RATA, deadline + ARBITRATION_TIMEOUT, REASON);
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Contested);
      await expectDispute(f, 1n, [SHORT_WH, true, deadline + ARBITRATION_TIMEOUT, addr(f.sellers[0]!)]);
      await expectSolvent(f, ODD_AMOUNT, 0n);
    });

    it("reverts DisputeWindowClosed after the proposal window", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f, { price: ODD_PRICE });
      const deadline = await propose(f, t);
      await at(deadline + 1n);
      await expect(f.market.connect(f.buyers[0]!).openDispute(t.trade, t.proof, REASON))
        .to.be.revertedWithCustomError(f.market, "DisputeWindowClosed")
        .withArgs(1n, deadline);
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Proposed);
    });

    it("reverts NotTradeParty for anyone but buyer and seller", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f, { price: ODD_PRICE });
      for (const who of [f.outsider, f.oracle, f.arbiter, f.buyers[1]!]) {
        await expect(f.market.connect(who).openDispute(t.trade, t.proof, REASON))
          .to.be.revertedWithCustomError(f.market, "NotTradeParty")
          .withArgs(1n, addr(who));
      }
      await propose(f, t);
      await expect(f.market.connect(f.outsider).openDispute(t.trade, t.proof, REASON))
        .to.be.revertedWithCustomError(f.market, "NotTradeParty")
        .withArgs(1n, addr(f.outsider));
    });

    it("reverts InvalidTradeStatus when disputing a settled or refunded trade", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const { trades: [a, b] } = await settle(f, [{}, { buyer: f.buyers[1]! }]);
      await f.market.connect(f.buyers[0]!).releaseEarly(a!.trade, a!.proof);
      // Past the delivery window, so only the status stands in the way.
      await at(f.deliveryEnd);
      await expect(f.market.connect(f.sellers[0]!).openDispute(a!.trade, a!.proof, REASON))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(1n, TradeStatus.Settled);
      await networkHelpers.time.increaseTo(f.deliveryEnd + CONFIRMATION_WINDOW + 1n);
      await f.market.connect(f.buyers[1]!).reclaim(b!.trade, b!.proof);
      await expect(f.market.connect(f.buyers[1]!).openDispute(b!.trade, b!.proof, REASON))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(2n, TradeStatus.Refunded);
      await expectSolvent(f, 0n, 0n);
    });

    for (const party of ["buyer", "seller"] as const) {
      it(`the ${party} cannot open a dispute before deliveryEnd (DeliveryNotEnded) and can at deliveryEnd`, async () => {
        const f = await networkHelpers.loadFixture(deployMarket);
        const t = await settleOne(f);
        const who = party === "buyer" ? f.buyers[0]! : f.sellers[0]!;
        // Well before delivery and at the last second of the delivery window.
        await expect(f.market.connect(who).openDispute(t.trade, t.proof, REASON))
          .to.be.revertedWithCustomError(f.market, "DeliveryNotEnded")
          .withArgs(1n, f.deliveryEnd);
        await at(f.deliveryEnd - 1n);
        await expect(f.market.connect(who).openDispute(t.trade, t.proof, REASON))
          .to.be.revertedWithCustomError(f.market, "DeliveryNotEnded")
          .withArgs(1n, f.deliveryEnd);
        expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Open);
        await expectDispute(f, 1n, [0n, false, 0n, ethers.ZeroAddress]);

        await at(f.deliveryEnd);
        const deadline = f.deliveryEnd + ARBITRATION_TIMEOUT;
        await expect(f.market.connect(who).openDispute(t.trade, t.proof, REASON))
          .to.emit(f.market, "DisputeOpened")
          .withArgs(1n, addr(who), 0n, deadline, REASON);
        expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Contested);
        await expectDispute(f, 1n, [0n, false, deadline, addr(who)]);
        await expectSolvent(f, t.trade.amount, 0n);
      });
    }

    it("the arbiter resolves a contested dispute with a split", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f, { price: ODD_PRICE });
      await propose(f, t);
      await f.market.connect(f.buyers[0]!).openDispute(t.trade, t.proof, REASON);
      const split = 300_000n;
      await expect(f.market.connect(f.arbiter).resolveDispute(t.trade, t.proof, ODD_AMOUNT + 1n))
        .to.be.revertedWithCustomError(f.market, "SplitExceedsAmount")
        .withArgs(1n, ODD_AMOUNT + 1n, ODD_AMOUNT);
      const role = await f.market.ARBITER_ROLE();
      for (const who of [f.buyers[0]!, f.sellers[0]!, f.admin, f.oracle]) {
        await expect(f.market.connect(who).resolveDispute(t.trade, t.proof, split))
          .to.be.revertedWithCustomError(f.market, "AccessControlUnauthorizedAccount")
          .withArgs(addr(who), role);
      }
      const tx = f.market.connect(f.arbiter).resolveDispute(t.trade, t.proof, split);
      await expect(tx).to.emit(f.market, "DisputeResolved").withArgs(1n, addr(f.arbiter), split, ODD_AMOUNT - split);
      await expect(tx).to.emit(f.market, "TradeSettled").withArgs(1n, split, ODD_AMOUNT - split, 0n, 0n);
      await expect(tx).to.changeTokenBalances(
        ethers, f.token, [await marketAddr(f), addr(f.sellers[0]!), addr(f.buyers[0]!)],
        [-ODD_AMOUNT, split, ODD_AMOUNT - split],
      );
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Settled);
      await expectDispute(f, 1n, [0n, false, 0n, ethers.ZeroAddress]);
      await expect(f.market.connect(f.arbiter).resolveDispute(t.trade, t.proof, split))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(1n, TradeStatus.Settled);
      await expectSolvent(f, 0n, 0n);
    });

    it("the arbiter may decide a proposal directly, the whole amount either way", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const { trades: [a, b] } = await settle(f, [{ price: ODD_PRICE }, { buyer: f.buyers[1]!, price: ODD_PRICE }]);
      await propose(f, a!);
      await f.market.connect(f.oracle).reportDelivery(b!.trade, b!.proof, 1n, EVIDENCE);
      const all = f.market.connect(f.arbiter).resolveDispute(a!.trade, a!.proof, ODD_AMOUNT);
      await expect(all).to.emit(f.market, "DisputeResolved").withArgs(1n, addr(f.arbiter), ODD_AMOUNT, 0n);
      await expect(all).to.emit(f.market, "TradeSettled").withArgs(1n, ODD_AMOUNT, 0n, 0n, 0n);
      const none = f.market.connect(f.arbiter).resolveDispute(b!.trade, b!.proof, 0n);
      await expect(none).to.emit(f.market, "DisputeResolved").withArgs(2n, addr(f.arbiter), 0n, ODD_AMOUNT);
      await expect(none).to.emit(f.market, "TradeSettled").withArgs(2n, 0n, ODD_AMOUNT, 0n, 0n);
      await expect(none).to.changeTokenBalances(ethers, f.token, [addr(f.buyers[1]!)], [ODD_AMOUNT]);
      await expectSolvent(f, 0n, 0n);
    });

    it("resolveDispute and finalizeDispute refuse an open trade", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f);
      await networkHelpers.time.increaseTo(f.deliveryEnd + 30n * DAY);
      await expect(f.market.connect(f.arbiter).resolveDispute(t.trade, t.proof, 0n))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(1n, TradeStatus.Open);
      await expect(f.market.finalizeDispute(t.trade, t.proof))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(1n, TradeStatus.Open);
    });

    it("a contested proposal the arbiter leaves undecided falls back to pro-rata after the timeout", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f, { price: ODD_PRICE });
      await propose(f, t);
      const ts = f.deliveryEnd + 500n;
      await at(ts);
      await f.market.connect(f.sellers[0]!).openDispute(t.trade, t.proof, REASON);
      const deadline = ts + ARBITRATION_TIMEOUT;
      await at(deadline);
      await expect(f.market.finalizeDispute(t.trade, t.proof))
        .to.be.revertedWithCustomError(f.market, "DisputeWindowOpen")
        .withArgs(1n, deadline);
      await at(deadline + 1n);
      const fin = f.market.connect(f.outsider).finalizeDispute(t.trade, t.proof);
      await expect(fin).to.emit(f.market, "DisputeResolved").withArgs(1n, addr(f.outsider), PRO_RATA, ODD_AMOUNT - PRO_RATA);
      await expect(fin).to.emit(f.market, "TradeSettled").withArgs(1n, PRO_RATA, ODD_AMOUNT - PRO_RATA, 0n, 0n);
      await expect(fin).to.changeTokenBalances(
        ethers, f.token, [await marketAddr(f), addr(f.sellers[0]!), addr(f.buyers[0]!)],
        [-ODD_AMOUNT, PRO_RATA, ODD_AMOUNT - PRO_RATA],
      );
      await expectSolvent(f, 0n, 0n);
    });

    it("a dispute opened before any report, never reported nor decided, refunds the buyer in full", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f);
      const amount = t.trade.amount;
      // As early as allowed: the delivery window has just ended and nothing was reported yet.
      const ts = f.deliveryEnd;
      await at(ts);
      const tx = f.market.connect(f.buyers[0]!).openDispute(t.trade, t.proof, REASON);
      await expect(tx).to.emit(f.market, "DisputeOpened").withArgs(1n, addr(f.buyers[0]!), 0n, ts + ARBITRATION_TIMEOUT, REASON);
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Contested);
      await expectDispute(f, 1n, [0n, false, ts + ARBITRATION_TIMEOUT, addr(f.buyers[0]!)]);
      // Not reclaimable before the confirmation deadline (after it, reclaim would refund it
      // too: TrustII.test.ts); nobody reclaims, and the arbitration timeout refunds the buyer.
      await at(f.deliveryEnd + CONFIRMATION_WINDOW);
      await expect(f.market.connect(f.buyers[0]!).reclaim(t.trade, t.proof))
        .to.be.revertedWithCustomError(f.market, "ConfirmationDeadlineNotReached")
        .withArgs(1n, f.deliveryEnd + CONFIRMATION_WINDOW);
      await at(ts + ARBITRATION_TIMEOUT + 1n);
      const fin = f.market.connect(f.sellers[0]!).finalizeDispute(t.trade, t.proof);
      await expect(fin).to.emit(f.market, "DisputeResolved").withArgs(1n, addr(f.sellers[0]!), 0n, amount);
      await expect(fin).to.emit(f.market, "TradeSettled").withArgs(1n, 0n, amount, 0n, 0n);
      await expect(fin).to.changeTokenBalances(
        ethers, f.token, [await marketAddr(f), addr(f.sellers[0]!), addr(f.buyers[0]!)], [-amount, 0n, amount],
      );
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Settled);
      await expectRecord(f, f.sellers[0]!, 0n, 0n);
      await expectSolvent(f, 0n, 0n);
    });

    it("a full report after a party's contest settles the trade at once, as on an open trade", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f, { price: ODD_PRICE });
      const ts = f.deliveryEnd;
      await at(ts);
      await f.market.connect(f.sellers[0]!).openDispute(t.trade, t.proof, REASON);

      // The meter's word within tolerance ends the contest: no wait for the arbitration timeout.
      await at(f.deliveryEnd + 1n);
      const tx = f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 1_200n, EVIDENCE);
      await expect(tx).to.emit(f.market, "DeliveryConfirmed").withArgs(1n, 1_200n, EVIDENCE, true);
      await expect(tx).to.emit(f.market, "TradeSettled").withArgs(1n, ODD_AMOUNT, 0n, 0n, 0n);
      await expect(tx).not.to.emit(f.market, "DisputeOpened");
      await expect(tx).not.to.emit(f.market, "DisputeResolved");
      await expect(tx).to.changeTokenBalances(
        ethers, f.token, [await marketAddr(f), addr(f.sellers[0]!), addr(f.buyers[0]!)], [-ODD_AMOUNT, ODD_AMOUNT, 0n],
      );
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Settled);
      await expectDispute(f, 1n, [0n, false, 0n, ethers.ZeroAddress]);
      await expectRecord(f, f.sellers[0]!, 1_000n, 1_000n);
      for (const call of [
        () => f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 1_000n, EVIDENCE),
        () => f.market.finalizeDispute(t.trade, t.proof),
        () => f.market.connect(f.buyers[0]!).reclaim(t.trade, t.proof),
      ]) {
        await expect(call()).to.be.revertedWithCustomError(f.market, "InvalidTradeStatus").withArgs(1n, TradeStatus.Settled);
      }
      await expectSolvent(f, 0n, 0n);
    });

    it("a short report after a contest becomes the pro-rata fallback", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f, { price: ODD_PRICE });
      const ts = f.deliveryEnd + 1n;
      await at(ts);
      await f.market.connect(f.buyers[0]!).openDispute(t.trade, t.proof, REASON);
      const tx = f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, SHORT_WH, EVIDENCE);
      await expect(tx).to.emit(f.market, "DeliveryConfirmed").withArgs(1n, SHORT_WH, EVIDENCE, false);
      await expect(tx).not.to.emit(f.market, "DisputeOpened");
      await expectDispute(f, 1n, [SHORT_WH, true, ts + ARBITRATION_TIMEOUT, addr(f.buyers[0]!)]);
      await at(ts + ARBITRATION_TIMEOUT + 1n);
      await expect(f.market.finalizeDispute(t.trade, t.proof))
        .to.emit(f.market, "TradeSettled")
        .withArgs(1n, PRO_RATA, ODD_AMOUNT - PRO_RATA, 0n, 0n);
      await expectSolvent(f, 0n, 0n);
    });
  });

  describe("releaseEarly", () => {
    it("the buyer pays the seller in full from Open, before delivery", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f);
      const amount = t.trade.amount;
      for (const who of [f.sellers[0]!, f.outsider, f.arbiter]) {
        await expect(f.market.connect(who).releaseEarly(t.trade, t.proof))
          .to.be.revertedWithCustomError(f.market, "NotBuyer")
          .withArgs(1n, addr(who));
      }
      const tx = f.market.connect(f.buyers[0]!).releaseEarly(t.trade, t.proof);
      await expect(tx).to.emit(f.market, "EarlyReleased").withArgs(1n, addr(f.buyers[0]!));
      await expect(tx).to.emit(f.market, "TradeSettled").withArgs(1n, amount, 0n, 0n, 0n);
      await expect(tx).to.changeTokenBalances(
        ethers, f.token, [await marketAddr(f), addr(f.sellers[0]!), addr(f.buyers[0]!)], [-amount, amount, 0n],
      );
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Settled);
      await expect(f.market.connect(f.buyers[0]!).releaseEarly(t.trade, t.proof))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(1n, TradeStatus.Settled);
      await networkHelpers.time.increaseTo(f.deliveryEnd);
      await expect(f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 1_000n, EVIDENCE))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(1n, TradeStatus.Settled);
      await expectSolvent(f, 0n, 0n);
    });

    it("from Proposed it overrides the pro-rata proposal and clears the dispute", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f, { price: ODD_PRICE });
      await propose(f, t);
      await expect(f.market.connect(f.sellers[0]!).releaseEarly(t.trade, t.proof))
        .to.be.revertedWithCustomError(f.market, "NotBuyer")
        .withArgs(1n, addr(f.sellers[0]!));
      const tx = f.market.connect(f.buyers[0]!).releaseEarly(t.trade, t.proof);
      await expect(tx).to.emit(f.market, "EarlyReleased").withArgs(1n, addr(f.buyers[0]!));
      await expect(tx).to.emit(f.market, "TradeSettled").withArgs(1n, ODD_AMOUNT, 0n, 0n, 0n);
      await expect(tx).to.changeTokenBalances(ethers, f.token, [addr(f.sellers[0]!), addr(f.buyers[0]!)], [ODD_AMOUNT, 0n]);
      await expectDispute(f, 1n, [0n, false, 0n, ethers.ZeroAddress]);
      await expect(f.market.finalizeDispute(t.trade, t.proof))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(1n, TradeStatus.Settled);
      await expectSolvent(f, 0n, 0n);
    });

    it("from Contested it ends the dispute in the seller's favour", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f);
      await at(f.deliveryEnd);
      await f.market.connect(f.sellers[0]!).openDispute(t.trade, t.proof, REASON);
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Contested);
      await expect(f.market.connect(f.buyers[0]!).releaseEarly(t.trade, t.proof))
        .to.emit(f.market, "TradeSettled")
        .withArgs(1n, t.trade.amount, 0n, 0n, 0n);
      await expectSolvent(f, 0n, 0n);
    });
  });

  describe("reclaim", () => {
    it("the buyer gets the payment back only after deliveryEnd + confirmation window", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f);
      const amount = t.trade.amount;
      const deadline = f.deliveryEnd + CONFIRMATION_WINDOW;
      await expect(f.market.connect(f.buyers[0]!).reclaim(t.trade, t.proof))
        .to.be.revertedWithCustomError(f.market, "ConfirmationDeadlineNotReached")
        .withArgs(1n, deadline);
      await at(deadline);
      await expect(f.market.connect(f.buyers[0]!).reclaim(t.trade, t.proof))
        .to.be.revertedWithCustomError(f.market, "ConfirmationDeadlineNotReached")
        .withArgs(1n, deadline);
      await at(deadline + 1n);
      const tx = f.market.connect(f.buyers[0]!).reclaim(t.trade, t.proof);
      await expect(tx).to.emit(f.market, "TradeRefunded").withArgs(1n, addr(f.buyers[0]!), amount);
      await expect(tx).not.to.emit(f.market, "TradeSettled");
      await expect(tx).to.changeTokenBalances(
        ethers, f.token, [await marketAddr(f), addr(f.sellers[0]!), addr(f.buyers[0]!)], [-amount, 0n, amount],
      );
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Refunded);
      await expectSolvent(f, 0n, 0n);

      for (const call of [
        () => f.market.connect(f.buyers[0]!).reclaim(t.trade, t.proof),
        () => f.market.connect(f.buyers[0]!).releaseEarly(t.trade, t.proof),
        () => f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 1_000n, EVIDENCE),
      ]) {
        await expect(call()).to.be.revertedWithCustomError(f.market, "InvalidTradeStatus").withArgs(1n, TradeStatus.Refunded);
      }
      await expectRecord(f, f.sellers[0]!, 0n, 0n);
    });

    it("reverts InvalidTradeStatus after settlement or while a proposal is pending", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const { trades: [a, b] } = await settle(f, [{}, { buyer: f.buyers[1]!, price: ODD_PRICE }]);
      await networkHelpers.time.increaseTo(f.deliveryEnd);
      await f.market.connect(f.oracle).reportDelivery(a!.trade, a!.proof, 1_000n, EVIDENCE);
      await f.market.connect(f.oracle).reportDelivery(b!.trade, b!.proof, 1n, EVIDENCE);
      await networkHelpers.time.increaseTo(f.deliveryEnd + CONFIRMATION_WINDOW + 1n);
      await expect(f.market.connect(f.buyers[0]!).reclaim(a!.trade, a!.proof))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(1n, TradeStatus.Settled);
      await expect(f.market.connect(f.buyers[1]!).reclaim(b!.trade, b!.proof))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(2n, TradeStatus.Proposed);
      await expectSolvent(f, ODD_AMOUNT, 0n);
    });

    it("a report that comes late but before the reclaim still settles", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f);
      await networkHelpers.time.increaseTo(f.deliveryEnd + CONFIRMATION_WINDOW + DAY);
      await expect(f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 1_000n, EVIDENCE))
        .to.emit(f.market, "TradeSettled")
        .withArgs(1n, t.trade.amount, 0n, 0n, 0n);
      await expect(f.market.connect(f.buyers[0]!).reclaim(t.trade, t.proof))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus")
        .withArgs(1n, TradeStatus.Settled);
      await expectSolvent(f, 0n, 0n);
    });
  });

  describe("seller reputation", () => {
    it("counts contracted and delivered energy, delivered capped at contracted", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const seller = f.sellers[0]!;
      await expectRecord(f, seller, 0n, 0n);
      expect(await f.market.sellerReputationBps(addr(seller))).to.equal(10_000n);
      const { trades } = await settle(f, [
        { energyWh: 1_000n }, { buyer: f.buyers[1]!, energyWh: 1_000n }, { buyer: f.buyers[2]!, energyWh: 2_000n },
      ]);
      const [a, b, c] = trades as [ProvenTrade, ProvenTrade, ProvenTrade];
      await networkHelpers.time.increaseTo(f.deliveryEnd);
      const oracle = f.market.connect(f.oracle);
      await oracle.reportDelivery(a.trade, a.proof, 1_200n, EVIDENCE);
      await expectRecord(f, seller, 1_000n, 1_000n);
      expect(await f.market.sellerReputationBps(addr(seller))).to.equal(10_000n);
      await oracle.reportDelivery(b.trade, b.proof, 500n, EVIDENCE);
      await expectRecord(f, seller, 2_000n, 1_500n);
      expect(await f.market.sellerReputationBps(addr(seller))).to.equal(7_500n);
      await oracle.reportDelivery(c.trade, c.proof, 1n, EVIDENCE);
      await expectRecord(f, seller, 4_000n, 1_501n);
      expect(await f.market.sellerReputationBps(addr(seller))).to.equal(3_752n); // floor(1501 * 10000 / 4000)
      // Other sellers are untouched.
      await expectRecord(f, f.sellers[1]!, 0n, 0n);
      expect(await f.market.sellerReputationBps(addr(f.sellers[1]!))).to.equal(10_000n);
    });

    it("a lowered reputation makes a demanding buy order reject the seller", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const t = await settleOne(f);
      await networkHelpers.time.increaseTo(f.deliveryEnd);
      await f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 500n, EVIDENCE);
      expect(await f.market.sellerReputationBps(addr(f.sellers[0]!))).to.equal(5_000n);

      const window = { deliveryStart: f.deliveryEnd + 3_600n, deliveryEnd: f.deliveryEnd + 4_500n, expiry: f.deliveryEnd + 3_600n };
      const buy = await signed(f, f.buyers[1]!, await makeOrder(f, f.buyers[1]!, SIDE_BUY, { ...window, minSellerReputationBps: 5_001 }));
      const sell = await signed(f, f.sellers[0]!, await makeOrder(f, f.sellers[0]!, SIDE_SELL, window));
      const fill = { buyIndex: 0, sellIndex: 1, energyWh: 1_000n, pricePerKWh: PRICE };
      const batchId = await f.market.nextBatchId();
      await expect(f.market.connect(f.matcher).settleBatch([buy, sell], [fill]))
        .to.emit(f.market, "FillRejected")
        .withArgs(batchId, 0n, await f.market.hashOrder(buy.order), await f.market.hashOrder(sell.order), RejectReason.ReputationTooLow);
      const buy2 = await signed(f, f.buyers[1]!, await makeOrder(f, f.buyers[1]!, SIDE_BUY, { ...window, minSellerReputationBps: 5_000 }));
      await expect(f.market.connect(f.matcher).settleBatch([buy2, sell], [fill])).to.emit(f.market, "TradeExecuted");
    });
  });

  describe("fees", () => {
    const CBPS = 137;
    const NFEE = 12_345n;
    async function withFees(f: MarketFixture) {
      await f.market.setFees(CBPS, addr(f.feeRecipient), NFEE, addr(f.networkRecipient));
    }

    it("setFees stores the fees and emits FeesUpdated", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      expect(await f.market.fees()).to.deep.equal([0n, ethers.ZeroAddress, 0n, ethers.ZeroAddress]);
      await expect(f.market.setFees(CBPS, addr(f.feeRecipient), NFEE, addr(f.networkRecipient)))
        .to.emit(f.market, "FeesUpdated")
        .withArgs(CBPS, addr(f.feeRecipient), NFEE, addr(f.networkRecipient));
      expect(await f.market.fees()).to.deep.equal([BigInt(CBPS), addr(f.feeRecipient), NFEE, addr(f.networkRecipient)]);
    });

    it("a settled trade pays community and network fees out of the seller's part; recipients claim them", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      await withFees(f);
      const { tx, trades: [t] } = await settle(f, [{ energyWh: 1_003n, price: ODD_PRICE }]);
      await expect(tx).to.emit(f.market, "BatchSettled").withArgs(1n, tradeLeaf(t!.trade), 1n, 1n, CBPS, NFEE);
      expect(t!.trade.communityFeeBps).to.equal(CBPS);
      expect(t!.trade.networkFeePerKWh).to.equal(NFEE);
      const amount = amountFor(1_003n, ODD_PRICE);
      expect(amount).to.equal(334_332n);
      const communityFee = (amount * BigInt(CBPS)) / 10_000n;
      const networkFee = (1_003n * NFEE) / 1000n;
      expect([communityFee, networkFee]).to.deep.equal([4_580n, 12_382n]);
      const payout = amount - communityFee - networkFee;

      await networkHelpers.time.increaseTo(f.deliveryEnd);
      const rep = f.market.connect(f.oracle).reportDelivery(t!.trade, t!.proof, 1_003n, EVIDENCE);
      await expect(rep).to.emit(f.market, "TradeSettled").withArgs(1n, payout, 0n, communityFee, networkFee);
      await expect(rep).to.changeTokenBalances(
        ethers, f.token, [await marketAddr(f), addr(f.sellers[0]!), addr(f.feeRecipient), addr(f.networkRecipient)],
        [-payout, payout, 0n, 0n],
      );
      expect(await f.market.feesOwed(addr(f.feeRecipient))).to.equal(communityFee);
      expect(await f.market.feesOwed(addr(f.networkRecipient))).to.equal(networkFee);
      await expectSolvent(f, 0n, communityFee + networkFee);

      const c1 = f.market.connect(f.feeRecipient).claimFees();
      await expect(c1).to.emit(f.market, "FeesClaimed").withArgs(addr(f.feeRecipient), communityFee);
      await expect(c1).to.changeTokenBalances(
        ethers, f.token, [await marketAddr(f), addr(f.feeRecipient)], [-communityFee, communityFee],
      );
      expect(await f.market.feesOwed(addr(f.feeRecipient))).to.equal(0n);
      await expectSolvent(f, 0n, networkFee);
      await expect(f.market.connect(f.feeRecipient).claimFees())
        .to.be.revertedWithCustomError(f.market, "NothingToClaim")
        .withArgs(addr(f.feeRecipient));

      const c2 = f.market.connect(f.networkRecipient).claimFees();
      await expect(c2).to.emit(f.market, "FeesClaimed").withArgs(addr(f.networkRecipient), networkFee);
      await expect(c2).to.changeTokenBalances(ethers, f.token, [addr(f.networkRecipient)], [networkFee]);
      await expect(f.market.connect(f.outsider).claimFees())
        .to.be.revertedWithCustomError(f.market, "NothingToClaim")
        .withArgs(addr(f.outsider));
      await expectSolvent(f, 0n, 0n);
      expect(await f.token.balanceOf(await marketAddr(f))).to.equal(0n);
    });

    it("a short delivery within tolerance pays in full and charges the network fee on the contracted energy", async () => {
      // Consistent with releaseEarly and resolveDispute: the network fee follows the energy the
      // seller is paid for, which within tolerance is the whole trade.
      const f = await networkHelpers.loadFixture(deployMarket);
      await withFees(f);
      const t = await settleOne(f);
      const amount = amountFor(1_000n, PRICE);
      const communityFee = (amount * BigInt(CBPS)) / 10_000n;
      const networkFee = (1_000n * NFEE) / 1000n;
      await networkHelpers.time.increaseTo(f.deliveryEnd);
      await expect(f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 960n, EVIDENCE))
        .to.emit(f.market, "TradeSettled")
        .withArgs(1n, amount - communityFee - networkFee, 0n, communityFee, networkFee);
      await expectSolvent(f, 0n, communityFee + networkFee);
    });

    it("fees on a pro-rata dispute follow the seller's amount and the delivered energy", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      await withFees(f);
      const t = await settleOne(f, { price: ODD_PRICE });
      const deadline = await propose(f, t);
      const communityFee = (PRO_RATA * BigInt(CBPS)) / 10_000n; // 3196
      const networkFee = (SHORT_WH * NFEE) / 1000n; // 8641
      expect([communityFee, networkFee]).to.deep.equal([3_196n, 8_641n]);
      await at(deadline + 1n);
      const fin = f.market.finalizeDispute(t.trade, t.proof);
      await expect(fin).to.emit(f.market, "TradeSettled")
        .withArgs(1n, PRO_RATA - communityFee - networkFee, ODD_AMOUNT - PRO_RATA, communityFee, networkFee);
      await expect(fin).to.changeTokenBalances(
        ethers, f.token, [addr(f.sellers[0]!), addr(f.buyers[0]!)],
        [PRO_RATA - communityFee - networkFee, ODD_AMOUNT - PRO_RATA],
      );
      await expectSolvent(f, 0n, communityFee + networkFee);
    });

    it("fees on an arbiter's split charge network fee on the energy the split pays for", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      await withFees(f);
      const t = await settleOne(f, { price: ODD_PRICE });
      await at(f.deliveryEnd);
      await f.market.connect(f.buyers[0]!).openDispute(t.trade, t.proof, REASON);
      const split = 111_111n;
      const creditedWh = (1_000n * split) / ODD_AMOUNT; // 333
      const communityFee = (split * BigInt(CBPS)) / 10_000n; // 1522
      const networkFee = (creditedWh * NFEE) / 1000n; // 4110
      expect([creditedWh, communityFee, networkFee]).to.deep.equal([333n, 1_522n, 4_110n]);
      await expect(f.market.connect(f.arbiter).resolveDispute(t.trade, t.proof, split))
        .to.emit(f.market, "TradeSettled")
        .withArgs(1n, split - communityFee - networkFee, ODD_AMOUNT - split, communityFee, networkFee);
      await expectSolvent(f, 0n, communityFee + networkFee);
    });

    it("releaseEarly charges fees on the full amount; reclaim charges none", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      await withFees(f);
      const { trades: [a, b] } = await settle(f, [{}, { buyer: f.buyers[1]! }]);
      const amount = amountFor(1_000n, PRICE);
      const communityFee = (amount * BigInt(CBPS)) / 10_000n;
      const networkFee = (1_000n * NFEE) / 1000n;
      await expect(f.market.connect(f.buyers[0]!).releaseEarly(a!.trade, a!.proof))
        .to.emit(f.market, "TradeSettled")
        .withArgs(1n, amount - communityFee - networkFee, 0n, communityFee, networkFee);
      await networkHelpers.time.increaseTo(f.deliveryEnd + CONFIRMATION_WINDOW + 1n);
      const r = f.market.connect(f.buyers[1]!).reclaim(b!.trade, b!.proof);
      await expect(r).to.emit(f.market, "TradeRefunded").withArgs(2n, addr(f.buyers[1]!), amount);
      await expect(r).to.changeTokenBalances(ethers, f.token, [addr(f.buyers[1]!)], [amount]);
      await expectSolvent(f, 0n, communityFee + networkFee);
    });

    it("fees are snapshotted at execution: later fee changes do not apply to earlier trades", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      // Trade 1: no fees at all. Trade 2: CBPS/NFEE. Trade 3: the later fees.
      const t1 = await settleOne(f);
      await withFees(f);
      const t2 = await settleOne(f, { buyer: f.buyers[1]! });
      const [C2, N2] = [500, 50_000n];
      await f.market.setFees(C2, addr(f.feeRecipient), N2, addr(f.networkRecipient));
      const t3 = await settleOne(f, { buyer: f.buyers[2]! });
      expect([t1.trade.communityFeeBps, t2.trade.communityFeeBps, t3.trade.communityFeeBps]).to.deep.equal([0, CBPS, C2]);
      expect([t1.trade.networkFeePerKWh, t2.trade.networkFeePerKWh, t3.trade.networkFeePerKWh]).to.deep.equal([0n, NFEE, N2]);

      const amount = amountFor(1_000n, PRICE);
      await networkHelpers.time.increaseTo(f.deliveryEnd);
      const oracle = f.market.connect(f.oracle);
      await expect(oracle.reportDelivery(t1.trade, t1.proof, 1_000n, EVIDENCE))
        .to.emit(f.market, "TradeSettled").withArgs(1n, amount, 0n, 0n, 0n);
      const c2 = (amount * BigInt(CBPS)) / 10_000n;
      const n2 = (1_000n * NFEE) / 1000n;
      await expect(oracle.reportDelivery(t2.trade, t2.proof, 1_000n, EVIDENCE))
        .to.emit(f.market, "TradeSettled").withArgs(2n, amount - c2 - n2, 0n, c2, n2);
      const c3 = (amount * BigInt(C2)) / 10_000n;
      const n3 = (1_000n * N2) / 1000n;
      await expect(oracle.reportDelivery(t3.trade, t3.proof, 1_000n, EVIDENCE))
        .to.emit(f.market, "TradeSettled").withArgs(3n, amount - c3 - n3, 0n, c3, n3);
      expect(await f.market.feesOwed(addr(f.feeRecipient))).to.equal(c2 + c3);
      expect(await f.market.feesOwed(addr(f.networkRecipient))).to.equal(n2 + n3);
      await expectSolvent(f, 0n, c2 + c3 + n2 + n3);
    });

    it("fees are capped at what the seller is paid", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      await f.market.setFees(1_000, addr(f.feeRecipient), MAX_NETWORK_FEE, addr(f.networkRecipient));
      const t = await settleOne(f);
      const amount = amountFor(1_000n, PRICE); // 250000
      const communityFee = amount / 10n; // 25000
      // The network fee would be 1000 Wh * 1 tEUR/kWh = 1,000,000 > the 225,000 left.
      await expect(f.market.connect(f.buyers[0]!).releaseEarly(t.trade, t.proof))
        .to.emit(f.market, "TradeSettled")
        .withArgs(1n, 0n, 0n, communityFee, amount - communityFee);
      await expectSolvent(f, 0n, amount);
    });

    it("a fee recipient cleared before settlement waives that fee", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      await withFees(f);
      const t = await settleOne(f);
      await f.market.setFees(0, ethers.ZeroAddress, 0n, ethers.ZeroAddress);
      await expect(f.market.connect(f.buyers[0]!).releaseEarly(t.trade, t.proof))
        .to.emit(f.market, "TradeSettled")
        .withArgs(1n, t.trade.amount, 0n, 0n, 0n);
      await expectSolvent(f, 0n, 0n);
    });

    it("setFees enforces its bounds and the admin role", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const [fr, nr] = [addr(f.feeRecipient), addr(f.networkRecipient)];
      expect(await f.market.maxNetworkFeePerKWh()).to.equal(MAX_NETWORK_FEE);
      await expect(f.market.setFees(1_001, fr, 0n, nr))
        .to.be.revertedWithCustomError(f.market, "CommunityFeeOutOfBounds")
        .withArgs(1_001n, 1_000n);
      await expect(f.market.setFees(0, fr, MAX_NETWORK_FEE + 1n, nr))
        .to.be.revertedWithCustomError(f.market, "NetworkFeeOutOfBounds")
        .withArgs(MAX_NETWORK_FEE + 1n, MAX_NETWORK_FEE);
      await expect(f.market.setFees(1, ethers.ZeroAddress, 0n, nr)).to.be.revertedWithCustomError(f.market, "ZeroAddress");
      await expect(f.market.setFees(0, fr, 1n, ethers.ZeroAddress)).to.be.revertedWithCustomError(f.market, "ZeroAddress");
      await expect(f.market.connect(f.outsider).setFees(0, fr, 0n, nr))
        .to.be.revertedWithCustomError(f.market, "AccessControlUnauthorizedAccount")
        .withArgs(addr(f.outsider), ethers.ZeroHash);
      expect(await f.market.fees()).to.deep.equal([0n, ethers.ZeroAddress, 0n, ethers.ZeroAddress]);
      // The bounds themselves are allowed, and zero fees need no recipient.
      await expect(f.market.setFees(1_000, fr, MAX_NETWORK_FEE, nr))
        .to.emit(f.market, "FeesUpdated").withArgs(1_000, fr, MAX_NETWORK_FEE, nr);
      await expect(f.market.setFees(0, ethers.ZeroAddress, 0n, ethers.ZeroAddress))
        .to.emit(f.market, "FeesUpdated").withArgs(0, ethers.ZeroAddress, 0n, ethers.ZeroAddress);
    });
  });

  describe("administration", () => {
    it("setDeliveryTolerance: event, bounds and role", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      await expect(f.market.setDeliveryTolerance(1_000)).to.emit(f.market, "DeliveryToleranceUpdated").withArgs(1_000);
      expect(await f.market.deliveryToleranceBps()).to.equal(1_000n);
      await expect(f.market.setDeliveryTolerance(2_000)).to.emit(f.market, "DeliveryToleranceUpdated").withArgs(2_000);
      await expect(f.market.setDeliveryTolerance(0)).to.emit(f.market, "DeliveryToleranceUpdated").withArgs(0);
      await expect(f.market.setDeliveryTolerance(2_001))
        .to.be.revertedWithCustomError(f.market, "ToleranceOutOfBounds")
        .withArgs(2_001n, 2_000n);
      await expect(f.market.connect(f.pauser).setDeliveryTolerance(100))
        .to.be.revertedWithCustomError(f.market, "AccessControlUnauthorizedAccount")
        .withArgs(addr(f.pauser), ethers.ZeroHash);
      expect(await f.market.deliveryToleranceBps()).to.equal(0n);
    });

    it("a changed tolerance changes the within/below decision at report time", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const { trades } = await settle(f, [{}, { buyer: f.buyers[1]! }, { buyer: f.buyers[2]! }]);
      const [a, b, c] = trades as [ProvenTrade, ProvenTrade, ProvenTrade];
      await networkHelpers.time.increaseTo(f.deliveryEnd);
      const oracle = f.market.connect(f.oracle);
      // 900 of 1000 Wh is 10% short: below the default 5%.
      await expect(oracle.reportDelivery(a.trade, a.proof, 900n, EVIDENCE))
        .to.emit(f.market, "DeliveryConfirmed").withArgs(1n, 900n, EVIDENCE, false);
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Proposed);
      await f.market.setDeliveryTolerance(1_000);
      const tx = oracle.reportDelivery(b.trade, b.proof, 900n, EVIDENCE);
      await expect(tx).to.emit(f.market, "DeliveryConfirmed").withArgs(2n, 900n, EVIDENCE, true);
      await expect(tx).to.emit(f.market, "TradeSettled").withArgs(2n, b.trade.amount, 0n, 0n, 0n);
      await f.market.setDeliveryTolerance(0);
      await expect(oracle.reportDelivery(c.trade, c.proof, 999n, EVIDENCE))
        .to.emit(f.market, "DeliveryConfirmed").withArgs(3n, 999n, EVIDENCE, false);
      expect(await f.market.tradeStatus(3n)).to.equal(TradeStatus.Proposed);
      await expectSolvent(f, a.trade.amount + c.trade.amount, 0n);
    });

    it("setWindows: event, bounds and role", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      expect(await f.market.windows()).to.deep.equal([CONFIRMATION_WINDOW, DISPUTE_WINDOW, ARBITRATION_TIMEOUT]);
      const MIN = HOUR;
      const MAX = 90n * DAY;
      await expect(f.market.setWindows(HOUR, 2n * HOUR, 3n * HOUR))
        .to.emit(f.market, "WindowsUpdated").withArgs(HOUR, 2n * HOUR, 3n * HOUR);
      expect(await f.market.windows()).to.deep.equal([HOUR, 2n * HOUR, 3n * HOUR]);
      for (const args of [[MIN - 1n, MIN, MIN], [MIN, MIN - 1n, MIN], [MIN, MIN, MIN - 1n], [MAX + 1n, MIN, MIN], [MIN, MAX + 1n, MIN], [MIN, MIN, MAX + 1n], [0n, MIN, MIN]] as const) {
        const bad = args.find((w) => w < MIN || w > MAX)!;
        await expect(f.market.setWindows(...args))
          .to.be.revertedWithCustomError(f.market, "WindowOutOfBounds")
          .withArgs(bad, MIN, MAX);
      }
      await expect(f.market.setWindows(MAX, MAX, MAX)).to.emit(f.market, "WindowsUpdated").withArgs(MAX, MAX, MAX);
      await expect(f.market.connect(f.arbiter).setWindows(MIN, MIN, MIN))
        .to.be.revertedWithCustomError(f.market, "AccessControlUnauthorizedAccount")
        .withArgs(addr(f.arbiter), ethers.ZeroHash);
      expect(await f.market.windows()).to.deep.equal([MAX, MAX, MAX]);
    });

    it("new windows apply to the dispute deadline, the arbitration timeout and the reclaim deadline", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const { trades: [a, b] } = await settle(f, [{ price: ODD_PRICE }, { buyer: f.buyers[1]! }]);
      await f.market.setWindows(HOUR, 2n * HOUR, 3n * HOUR);
      const ts = f.deliveryEnd + 7n;
      await at(ts);
      await expect(f.market.connect(f.oracle).reportDelivery(a!.trade, a!.proof, SHORT_WH, EVIDENCE))
        .to.emit(f.market, "DisputeOpened").withArgs(1n, addr(f.oracle), PRO_RATA, ts + 2n * HOUR, EVIDENCE);
      await at(ts + 10n);
      await expect(f.market.connect(f.buyers[0]!).openDispute(a!.trade, a!.proof, REASON))
        .to.emit(f.market, "DisputeOpened").withArgs(1n, addr(f.buyers[0]!), PRO_RATA, ts + 10n + 3n * HOUR, REASON);
      await at(f.deliveryEnd + HOUR);
      await expect(f.market.connect(f.buyers[1]!).reclaim(b!.trade, b!.proof))
        .to.be.revertedWithCustomError(f.market, "ConfirmationDeadlineNotReached")
        .withArgs(2n, f.deliveryEnd + HOUR);
      await at(f.deliveryEnd + HOUR + 1n);
      await expect(f.market.connect(f.buyers[1]!).reclaim(b!.trade, b!.proof))
        .to.emit(f.market, "TradeRefunded").withArgs(2n, addr(f.buyers[1]!), b!.trade.amount);
      await expectSolvent(f, ODD_AMOUNT, 0n);
    });
  });

  describe("pause", () => {
    it("only PAUSER pauses and unpauses; pause stops settleBatch, createListing and executeTrade", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const role = await f.market.PAUSER_ROLE();
      await f.market.connect(f.sellers[0]!).createListing(ZONE_A, 1_000n, PRICE, f.deliveryStart, f.deliveryEnd, f.deliveryStart, 1);
      for (const who of [f.admin, f.outsider]) {
        await expect(f.market.connect(who).pause())
          .to.be.revertedWithCustomError(f.market, "AccessControlUnauthorizedAccount")
          .withArgs(addr(who), role);
      }
      await expect(f.market.connect(f.pauser).unpause()).to.be.revertedWithCustomError(f.market, "ExpectedPause");
      await expect(f.market.connect(f.pauser).pause()).to.emit(f.market, "Paused").withArgs(addr(f.pauser));
      expect(await f.market.paused()).to.equal(true);
      await expect(f.market.connect(f.pauser).pause()).to.be.revertedWithCustomError(f.market, "EnforcedPause");

      const buy = await signed(f, f.buyers[0]!, await makeOrder(f, f.buyers[0]!, SIDE_BUY));
      const sell = await signed(f, f.sellers[1]!, await makeOrder(f, f.sellers[1]!, SIDE_SELL));
      const fill = { buyIndex: 0, sellIndex: 1, energyWh: 1_000n, pricePerKWh: PRICE };
      await expect(f.market.connect(f.matcher).settleBatch([buy, sell], [fill]))
        .to.be.revertedWithCustomError(f.market, "EnforcedPause");
      await expect(f.market.connect(f.sellers[2]!).createListing(ZONE_A, 1_000n, PRICE, f.deliveryStart, f.deliveryEnd, f.deliveryStart, 1))
        .to.be.revertedWithCustomError(f.market, "EnforcedPause");
      await expect(f.market.connect(f.buyers[1]!).executeTrade(1n, 100n))
        .to.be.revertedWithCustomError(f.market, "EnforcedPause");

      await expect(f.market.connect(f.outsider).unpause())
        .to.be.revertedWithCustomError(f.market, "AccessControlUnauthorizedAccount")
        .withArgs(addr(f.outsider), role);
      await expect(f.market.connect(f.pauser).unpause()).to.emit(f.market, "Unpaused").withArgs(addr(f.pauser));
      expect(await f.market.paused()).to.equal(false);
      await expect(f.market.connect(f.matcher).settleBatch([buy, sell], [fill])).to.emit(f.market, "BatchSettled");
      await expect(f.market.connect(f.buyers[1]!).executeTrade(1n, 100n)).to.emit(f.market, "TradeExecuted");
      await expectSolvent(f, amountFor(1_000n, PRICE) + amountFor(100n, PRICE), 0n);
    });

    it("while paused, reports, disputes, releases, reclaims, fee claims and cancellations still work", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      await f.market.setFees(100, addr(f.feeRecipient), 0n, ethers.ZeroAddress);
      // Earlier fee-paying trade so there is something to claim.
      const t0 = await settleOne(f, { buyer: f.buyers[4]!, seller: f.sellers[4]! });
      await f.market.connect(f.buyers[4]!).releaseEarly(t0.trade, t0.proof);
      const claimable = (t0.trade.amount * 100n) / 10_000n;

      const { trades } = await settle(f, [
        { buyer: f.buyers[0]!, seller: f.sellers[0]! }, // reported within tolerance
        { buyer: f.buyers[1]!, seller: f.sellers[1]!, price: ODD_PRICE }, // proposed, contested, resolved
        { buyer: f.buyers[2]!, seller: f.sellers[2]!, price: ODD_PRICE }, // proposed, finalised
        { buyer: f.buyers[3]!, seller: f.sellers[3]! }, // released early
        { buyer: f.buyers[3]!, seller: f.sellers[2]!, energyWh: 400n }, // reclaimed
      ]);
      const [a, b, c, d, e] = trades as [ProvenTrade, ProvenTrade, ProvenTrade, ProvenTrade, ProvenTrade];
      expect(trades.map((t) => t.trade.tradeId)).to.deep.equal([2n, 3n, 4n, 5n, 6n]);
      await f.market.connect(f.sellers[0]!).createListing(ZONE_A, 1_000n, PRICE, f.deliveryStart, f.deliveryEnd, f.deliveryStart, 1);
      const pendingOrder = await makeOrder(f, f.buyers[0]!, SIDE_BUY);

      await f.market.connect(f.pauser).pause();

      const cf = (x: bigint) => (x * 100n) / 10_000n;
      // releaseEarly
      await expect(f.market.connect(f.buyers[3]!).releaseEarly(d.trade, d.proof))
        .to.emit(f.market, "TradeSettled").withArgs(d.trade.tradeId, d.trade.amount - cf(d.trade.amount), 0n, cf(d.trade.amount), 0n);
      // claimFees
      await expect(f.market.connect(f.feeRecipient).claimFees())
        .to.emit(f.market, "FeesClaimed").withArgs(addr(f.feeRecipient), claimable + cf(d.trade.amount));
      // cancelListing, cancelOrder, raiseNonceFloor
      await expect(f.market.connect(f.sellers[0]!).cancelListing(1n))
        .to.emit(f.market, "ListingCancelled").withArgs(1n, addr(f.sellers[0]!), 1_000n);
      await expect(f.market.connect(f.buyers[0]!).cancelOrder(pendingOrder))
        .to.emit(f.market, "OrderCancelled").withArgs(await f.market.hashOrder(pendingOrder), addr(f.buyers[0]!));
      await expect(f.market.connect(f.buyers[0]!).raiseNonceFloor(10_000n))
        .to.emit(f.market, "NonceIncremented").withArgs(addr(f.buyers[0]!), 10_000n);

      // reportDelivery (within and below tolerance)
      const ts = f.deliveryEnd + 1n;
      await at(ts);
      await expect(f.market.connect(f.oracle).reportDelivery(a.trade, a.proof, 1_000n, EVIDENCE))
        .to.emit(f.market, "TradeSettled").withArgs(a.trade.tradeId, a.trade.amount - cf(a.trade.amount), 0n, cf(a.trade.amount), 0n);
      await at(ts + 1n);
      await expect(f.market.connect(f.oracle).reportDeliveries([
        { trade: b.trade, proof: b.proof, deliveredWh: SHORT_WH, evidenceHash: EVIDENCE },
        { trade: c.trade, proof: c.proof, deliveredWh: SHORT_WH, evidenceHash: EVIDENCE },
      ])).to.emit(f.market, "DisputeOpened");
      // openDispute + resolveDispute
      await expect(f.market.connect(f.sellers[1]!).openDispute(b.trade, b.proof, REASON))
        .to.emit(f.market, "DisputeOpened");
      await expect(f.market.connect(f.arbiter).resolveDispute(b.trade, b.proof, ODD_AMOUNT))
        .to.emit(f.market, "DisputeResolved").withArgs(b.trade.tradeId, addr(f.arbiter), ODD_AMOUNT, 0n);
      // finalizeDispute
      await at(ts + 1n + DISPUTE_WINDOW + 1n);
      await expect(f.market.finalizeDispute(c.trade, c.proof))
        .to.emit(f.market, "DisputeResolved").withArgs(c.trade.tradeId, addr(f.admin), PRO_RATA, ODD_AMOUNT - PRO_RATA);
      // reclaim
      await at(f.deliveryEnd + CONFIRMATION_WINDOW + 1n);
      await expect(f.market.connect(f.buyers[3]!).reclaim(e.trade, e.proof))
        .to.emit(f.market, "TradeRefunded").withArgs(e.trade.tradeId, addr(f.buyers[3]!), e.trade.amount);

      expect(await f.market.paused()).to.equal(true);
      const feesLeft = cf(a.trade.amount) + cf(ODD_AMOUNT) + cf(PRO_RATA);
      await expectSolvent(f, 0n, feesLeft);
      await f.market.connect(f.pauser).unpause();
    });
  });
});
