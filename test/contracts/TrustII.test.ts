// Security issue "Trust II", the contract part: connection limits enforced on chain (every
// account sells at most its export limit and buys at most its import limit per delivery window,
// over batches and listing takes together), a meter report that lands on a trade contested
// before it, and a reclaim that anyone may call and that a contest before any report cannot block.
import { expect } from "chai";
import type { ContractTransactionReceipt, Signer } from "ethers";
import {
  deployMarket, ethers, networkHelpers, makeOrder, signed, tradesFromReceipt, type MarketFixture, type ProvenTrade,
  ZONE_A, PRICE, INTERVAL, TEUR, SIDE_BUY, SIDE_SELL, EnergySource, TradeStatus, RejectReason,
} from "./fixtures.js";
import { amountFor, energyWhAt } from "../../contracts/client/amount.js";
import type { Order } from "../../contracts/client/order.js";

const addr = (s: Signer) => (s as unknown as { address: string }).address;
const EVIDENCE = ethers.id("meter-evidence");
const REASON = ethers.id("dispute-reason");
const DAY = 24n * 3600n;
const CONFIRMATION_WINDOW = 2n * DAY;
const ARBITRATION_TIMEOUT = 14n * DAY;
/** 4 kW for a 15-minute window: 1,000 Wh. */
const LIMIT_W = 4_000n;
const LIMIT_WH = 1_000n;

const at = (ts: bigint) => networkHelpers.time.setNextBlockTimestamp(ts);

/** Sets `who`'s connection limits, keeping its meter, zone and sources. */
async function setLimits(f: MarketFixture, who: Signer, exportLimitW: bigint, importLimitW: bigint) {
  const p = await f.registry.getProsumer(addr(who));
  await f.registry.updateProsumer(addr(who), p.meterId, p.zone, exportLimitW, importLimitW, p.sources);
}

type SignedOrder = Awaited<ReturnType<typeof signed>>;
interface FillSpec { buyIndex: number; sellIndex: number; energyWh: bigint }

async function order(f: MarketFixture, maker: Signer, side: number, energyWh: bigint, overrides: Partial<Order> = {}) {
  return signed(f, maker, await makeOrder(f, maker, side, { energyWh, ...overrides }));
}

async function settleBatch(f: MarketFixture, orders: SignedOrder[], fills: FillSpec[]) {
  const tx = await f.market.connect(f.matcher).settleBatch(orders, fills.map((x) => ({ ...x, pricePerKWh: PRICE })));
  const receipt = await tx.wait();
  return { receipt, trades: tradesFromReceipt(f, receipt), rejected: rejections(f, receipt) };
}

/** [fillIndex, reason] of every FillRejected in the receipt. */
function rejections(f: MarketFixture, receipt: ContractTransactionReceipt | null): [number, number][] {
  return receipt!.logs
    .map((l) => f.market.interface.parseLog(l))
    .filter((p) => p?.name === "FillRejected")
    .map((p) => [Number(p!.args.fillIndex), Number(p!.args.reason)]);
}

/** One trade of `energyWh` between buyers[0] and sellers[0] in the fixture's window. */
async function settleOne(f: MarketFixture, energyWh = 1_000n): Promise<ProvenTrade> {
  const [buyer, seller] = [f.buyers[0]!, f.sellers[0]!];
  const { trades } = await settleBatch(f, [await order(f, buyer, SIDE_BUY, energyWh), await order(f, seller, SIDE_SELL, energyWh)],
    [{ buyIndex: 0, sellIndex: 1, energyWh }]);
  expect(trades).to.have.length(1);
  return trades[0]!;
}

async function use(f: MarketFixture, who: Signer, deliveryStart = f.deliveryStart) {
  const u = await f.market.connectionUse(addr(who), deliveryStart);
  return [u.soldWh, u.boughtWh];
}

const listArgs = (f: MarketFixture, energyWh: bigint, start = f.deliveryStart, end = f.deliveryEnd) =>
  [ZONE_A, energyWh, PRICE, start, end, start, EnergySource.solar] as const;

describe("Trust II: connection limits on chain", () => {
  async function setup() {
    const f = await networkHelpers.loadFixture(deployMarket);
    for (const s of f.sellers) await setLimits(f, s, LIMIT_W, LIMIT_W);
    for (const b of f.buyers) await setLimits(f, b, LIMIT_W, LIMIT_W);
    return f;
  }

  it("a sell fill over the seller's export limit for its window is refused with SellerExportLimit", async () => {
    const f = await setup();
    const [buyer, seller] = [f.buyers[0]!, f.sellers[0]!];
    await setLimits(f, buyer, LIMIT_W, 2n * LIMIT_W); // the buyer could take 2,000 Wh
    const buy = await order(f, buyer, SIDE_BUY, 2_000n);
    const sell = await order(f, seller, SIDE_SELL, 2_000n);
    const r = await settleBatch(f, [buy, sell], [{ buyIndex: 0, sellIndex: 1, energyWh: LIMIT_WH + 1n }]);
    expect(r.rejected).to.deep.equal([[0, RejectReason.SellerExportLimit]]);
    expect(r.trades).to.have.length(0);
    await expect(f.market.connect(f.matcher).settleBatch([buy, sell], [{ buyIndex: 0, sellIndex: 1, energyWh: LIMIT_WH + 1n, pricePerKWh: PRICE }]))
      .to.emit(f.market, "FillRejected")
      .withArgs(2n, 0n, await f.market.hashOrder(buy.order), await f.market.hashOrder(sell.order), RejectReason.SellerExportLimit);
    expect(await use(f, seller)).to.deep.equal([0n, 0n]);

    // exactly the limit goes through
    const ok = await settleBatch(f, [buy, sell], [{ buyIndex: 0, sellIndex: 1, energyWh: LIMIT_WH }]);
    expect(ok.rejected).to.deep.equal([]);
    expect(ok.trades).to.have.length(1);
    expect(await use(f, seller)).to.deep.equal([LIMIT_WH, 0n]);
    expect(await use(f, buyer)).to.deep.equal([0n, LIMIT_WH]);
  });

  it("fills over several orders and batches that together pass the export limit: the one that crosses is refused, the earlier ones execute", async () => {
    const f = await setup();
    const seller = f.sellers[0]!;
    const [b0, b1, b2] = f.buyers;
    const sellA = await order(f, seller, SIDE_SELL, 600n);
    const sellB = await order(f, seller, SIDE_SELL, 600n);
    const orders = [sellA, sellB, await order(f, b0!, SIDE_BUY, 600n), await order(f, b1!, SIDE_BUY, 600n), await order(f, b2!, SIDE_BUY, 600n)];
    const r = await settleBatch(f, orders, [
      { buyIndex: 2, sellIndex: 0, energyWh: 400n }, // 400
      { buyIndex: 3, sellIndex: 1, energyWh: 500n }, // 900
      { buyIndex: 4, sellIndex: 0, energyWh: 101n }, // 1,001: crosses (order A has 200 Wh left)
      { buyIndex: 4, sellIndex: 1, energyWh: 100n }, // 1,000: fits
    ]);
    expect(r.rejected).to.deep.equal([[2, RejectReason.SellerExportLimit]]);
    expect(r.trades.map((t) => [t.trade.buyer, t.trade.energyWh])).to.deep.equal([[addr(b0!), 400n], [addr(b1!), 500n], [addr(b2!), 100n]]);
    expect(await use(f, seller)).to.deep.equal([LIMIT_WH, 0n]);

    // a later batch with a fresh order of the same seller for the same window: nothing left
    const sellC = await order(f, seller, SIDE_SELL, 100n);
    const r2 = await settleBatch(f, [await order(f, f.buyers[3]!, SIDE_BUY, 100n), sellC], [{ buyIndex: 0, sellIndex: 1, energyWh: 1n }]);
    expect(r2.rejected).to.deep.equal([[0, RejectReason.SellerExportLimit]]);
    expect(await use(f, seller)).to.deep.equal([LIMIT_WH, 0n]);
  });

  it("fills that together pass the buyer's import limit: the one that crosses is refused with BuyerImportLimit, the earlier ones execute", async () => {
    const f = await setup();
    const buyer = f.buyers[0]!;
    const [s0, s1, s2] = f.sellers;
    const buyA = await order(f, buyer, SIDE_BUY, 700n);
    const buyB = await order(f, buyer, SIDE_BUY, 700n);
    const orders = [buyA, buyB, await order(f, s0!, SIDE_SELL, 700n), await order(f, s1!, SIDE_SELL, 700n), await order(f, s2!, SIDE_SELL, 700n)];
    const r = await settleBatch(f, orders, [
      { buyIndex: 0, sellIndex: 2, energyWh: 700n }, // 700
      { buyIndex: 1, sellIndex: 3, energyWh: 250n }, // 950
      { buyIndex: 1, sellIndex: 4, energyWh: 51n }, // 1,001: crosses
      { buyIndex: 1, sellIndex: 4, energyWh: 50n }, // 1,000: fits
    ]);
    expect(r.rejected).to.deep.equal([[2, RejectReason.BuyerImportLimit]]);
    expect(r.trades.map((t) => [t.trade.seller, t.trade.energyWh])).to.deep.equal([[addr(s0!), 700n], [addr(s1!), 250n], [addr(s2!), 50n]]);
    expect(await use(f, buyer)).to.deep.equal([0n, LIMIT_WH]);
    // the seller side of the refused fill was not counted either
    expect(await use(f, s2!)).to.deep.equal([50n, 0n]);
  });

  it("a listing take over a limit reverts naming the account, the limit, what is used and what was asked; takes and fills share the totals", async () => {
    const f = await setup();
    const [seller, b0, b1] = [f.sellers[0]!, f.buyers[0]!, f.buyers[1]!];
    // 600 Wh sold through a batch first
    await settleBatch(f, [await order(f, b0, SIDE_BUY, 600n), await order(f, seller, SIDE_SELL, 600n)], [{ buyIndex: 0, sellIndex: 1, energyWh: 600n }]);
    await f.market.connect(seller).createListing(...listArgs(f, 2_000n));
    await expect(f.market.connect(b1).executeTrade(1n, 401n))
      .to.be.revertedWithCustomError(f.market, "ConnectionLimitExceeded").withArgs(addr(seller), LIMIT_WH, 600n, 401n);
    await expect(f.market.connect(b1).executeTrade(1n, 400n)).to.emit(f.market, "TradeExecuted");
    expect(await use(f, seller)).to.deep.equal([LIMIT_WH, 0n]);
    expect((await f.market.listing(1n)).remainingWh).to.equal(1_600n);

    // the buyer's side: b0 bought 600 in the batch; a second seller's listing
    const seller2 = f.sellers[1]!;
    await f.market.connect(seller2).createListing(...listArgs(f, 1_000n));
    await expect(f.market.connect(b0).executeTrade(2n, 401n))
      .to.be.revertedWithCustomError(f.market, "ConnectionLimitExceeded").withArgs(addr(b0), LIMIT_WH, 600n, 401n);
    await f.market.connect(b0).executeTrade(2n, 400n);
    expect(await use(f, b0)).to.deep.equal([0n, LIMIT_WH]);

    // and a batch fill after the takes finds the totals they left
    const r = await settleBatch(f, [await order(f, b0, SIDE_BUY, 10n), await order(f, f.sellers[2]!, SIDE_SELL, 10n)], [{ buyIndex: 0, sellIndex: 1, energyWh: 1n }]);
    expect(r.rejected).to.deep.equal([[0, RejectReason.BuyerImportLimit]]);
  });

  it("limits are per window: an account at its limit in one window trades freely in another", async () => {
    const f = await setup();
    const [seller, buyer] = [f.sellers[0]!, f.buyers[0]!];
    await settleBatch(f, [await order(f, buyer, SIDE_BUY, LIMIT_WH), await order(f, seller, SIDE_SELL, LIMIT_WH)], [{ buyIndex: 0, sellIndex: 1, energyWh: LIMIT_WH }]);
    expect(await use(f, seller)).to.deep.equal([LIMIT_WH, 0n]);

    const next = { deliveryStart: f.deliveryEnd, deliveryEnd: f.deliveryEnd + INTERVAL };
    const r = await settleBatch(f, [await order(f, buyer, SIDE_BUY, LIMIT_WH, next), await order(f, seller, SIDE_SELL, LIMIT_WH, next)],
      [{ buyIndex: 0, sellIndex: 1, energyWh: LIMIT_WH }]);
    expect(r.rejected).to.deep.equal([]);
    expect(r.trades).to.have.length(1);
    expect(await use(f, seller, next.deliveryStart)).to.deep.equal([LIMIT_WH, 0n]);
    expect(await use(f, buyer, next.deliveryStart)).to.deep.equal([0n, LIMIT_WH]);

    // a listing in a third window is free as well; the full window stays full
    const third = next.deliveryEnd;
    await f.market.connect(seller).createListing(...listArgs(f, LIMIT_WH, third, third + INTERVAL));
    await f.market.connect(seller).createListing(...listArgs(f, LIMIT_WH));
    await expect(f.market.connect(buyer).executeTrade(1n, LIMIT_WH)).to.emit(f.market, "TradeExecuted");
    await expect(f.market.connect(f.buyers[1]!).executeTrade(2n, 1n))
      .to.be.revertedWithCustomError(f.market, "ConnectionLimitExceeded").withArgs(addr(seller), LIMIT_WH, LIMIT_WH, 1n);
  });

  it("an account that sells and buys in one window is held to each limit apart", async () => {
    const f = await setup();
    const [seller, buyer, other] = [f.sellers[0]!, f.buyers[0]!, f.sellers[1]!];
    await setLimits(f, seller, LIMIT_W, LIMIT_W / 2n); // sells up to 1,000 Wh, buys up to 500 Wh
    await f.token.faucet(addr(seller), 10n * TEUR);
    await f.token.connect(seller).approve(await f.market.getAddress(), ethers.MaxUint256);
    const r = await settleBatch(f, [
      await order(f, buyer, SIDE_BUY, LIMIT_WH), await order(f, seller, SIDE_SELL, LIMIT_WH),
      await order(f, seller, SIDE_BUY, 600n), await order(f, other, SIDE_SELL, 600n),
    ], [
      { buyIndex: 0, sellIndex: 1, energyWh: LIMIT_WH },
      { buyIndex: 2, sellIndex: 3, energyWh: 501n },
      { buyIndex: 2, sellIndex: 3, energyWh: 500n },
    ]);
    expect(r.rejected).to.deep.equal([[1, RejectReason.BuyerImportLimit]]);
    expect(await use(f, seller)).to.deep.equal([LIMIT_WH, 500n]);
  });

  it("the limit in Wh is limitW × window seconds / 3600, rounded down, for any window length", async () => {
    const f = await setup();
    const [seller, buyer] = [f.sellers[0]!, f.buyers[0]!];
    // a 1,000-second window at 3,601 W: 1,000.27 Wh, so 1,000 Wh
    await setLimits(f, seller, 3_601n, LIMIT_W);
    await setLimits(f, buyer, LIMIT_W, 10_000n);
    const odd = { deliveryStart: f.deliveryStart, deliveryEnd: f.deliveryStart + 1_000n };
    expect(energyWhAt(3_601n, 1_000n)).to.equal(1_000n);
    const r = await settleBatch(f, [await order(f, buyer, SIDE_BUY, 2_000n, odd), await order(f, seller, SIDE_SELL, 2_000n, odd)], [
      { buyIndex: 0, sellIndex: 1, energyWh: 1_001n },
      { buyIndex: 0, sellIndex: 1, energyWh: 1_000n },
    ]);
    expect(r.rejected).to.deep.equal([[0, RejectReason.SellerExportLimit]]);
    expect(r.trades).to.have.length(1);

    // TypeScript energyWhAt() and Solidity EnergyMath.energyWhAt agree
    const harness = await ethers.deployContract("EnergyMathHarness");
    const max = 2n ** 64n - 1n;
    for (const [w, s] of [[0n, 900n], [1n, 3_599n], [1n, 3_600n], [3_601n, 1_000n], [10_000n, 900n], [7_777n, 901n], [max, max]] as const) {
      expect(await harness.energyWhAt(w, s), `${w} W for ${s} s`).to.equal(energyWhAt(w, s));
    }
  });

  it("the registry's tradingProfile returns the connection limits", async () => {
    const f = await setup();
    await setLimits(f, f.sellers[0]!, 1_234n, 5_678n);
    const [zone, active, sources, exportLimitW, importLimitW] = await f.registry.tradingProfile(addr(f.sellers[0]!));
    expect([zone, active, exportLimitW, importLimitW]).to.deep.equal([ZONE_A, true, 1_234n, 5_678n]);
    expect(sources).to.equal((await f.registry.getProsumer(addr(f.sellers[0]!))).sources);
  });
});

describe("Trust II: a meter report on a trade contested before it", () => {
  it("a buyer contests right after deliveryEnd; an in-tolerance report then settles the trade in full at once", async () => {
    const f = await networkHelpers.loadFixture(deployMarket);
    const t = await settleOne(f, 1_000n);
    const [buyer, seller] = [f.buyers[0]!, f.sellers[0]!];
    await at(f.deliveryEnd);
    await f.market.connect(buyer).openDispute(t.trade, t.proof, REASON);
    expect(await f.market.tradeStatus(t.trade.tradeId)).to.equal(TradeStatus.Contested);

    const sellerBefore = await f.token.balanceOf(addr(seller));
    // 960 of 1,000 Wh is within the default 5% tolerance
    const tx = f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 960n, EVIDENCE);
    await expect(tx).to.emit(f.market, "DeliveryConfirmed").withArgs(t.trade.tradeId, 960n, EVIDENCE, true);
    await expect(tx).to.emit(f.market, "TradeSettled").withArgs(t.trade.tradeId, t.trade.amount, 0n, 0n, 0n);
    await expect(tx).not.to.emit(f.market, "DisputeResolved");
    expect(await f.market.tradeStatus(t.trade.tradeId)).to.equal(TradeStatus.Settled);
    const d = await f.market.dispute(t.trade.tradeId);
    expect([d.deliveredWh, d.reported, d.deadline, d.openedBy]).to.deep.equal([0n, false, 0n, ethers.ZeroAddress]);
    expect((await f.token.balanceOf(addr(seller))) - sellerBefore).to.equal(t.trade.amount);
    expect(await f.market.escrowedTotal()).to.equal(0n);
    // nothing left to dispute
    await expect(f.market.connect(f.outsider).finalizeDispute(t.trade, t.proof))
      .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus").withArgs(t.trade.tradeId, TradeStatus.Settled);
  });

  it("below tolerance the report is recorded and the trade stays Contested; no one can reclaim it; the arbitration timeout pays pro rata", async () => {
    const f = await networkHelpers.loadFixture(deployMarket);
    const t = await settleOne(f, 1_000n);
    const [buyer, seller] = [f.buyers[0]!, f.sellers[0]!];
    await at(f.deliveryEnd);
    await f.market.connect(buyer).openDispute(t.trade, t.proof, REASON);
    const deadline = f.deliveryEnd + ARBITRATION_TIMEOUT;

    await expect(f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 600n, EVIDENCE))
      .to.emit(f.market, "DeliveryConfirmed").withArgs(t.trade.tradeId, 600n, EVIDENCE, false);
    expect(await f.market.tradeStatus(t.trade.tradeId)).to.equal(TradeStatus.Contested);
    const d = await f.market.dispute(t.trade.tradeId);
    expect([d.deliveredWh, d.reported, d.deadline, d.openedBy]).to.deep.equal([600n, true, deadline, addr(buyer)]);

    // reported: past the confirmation deadline the dispute rules decide, not reclaim
    await at(f.deliveryEnd + CONFIRMATION_WINDOW + 1n);
    await expect(f.market.connect(f.outsider).reclaim(t.trade, t.proof))
      .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus").withArgs(t.trade.tradeId, TradeStatus.Contested);
    await expect(f.market.connect(f.outsider).finalizeDispute(t.trade, t.proof))
      .to.be.revertedWithCustomError(f.market, "DisputeWindowOpen").withArgs(t.trade.tradeId, deadline);

    await at(deadline + 1n);
    const proRata = amountFor(600n, PRICE);
    const sellerBefore = await f.token.balanceOf(addr(seller));
    const buyerBefore = await f.token.balanceOf(addr(buyer));
    const fin = f.market.connect(f.outsider).finalizeDispute(t.trade, t.proof);
    await expect(fin).to.emit(f.market, "DisputeResolved").withArgs(t.trade.tradeId, addr(f.outsider), proRata, t.trade.amount - proRata);
    await expect(fin).to.emit(f.market, "TradeSettled").withArgs(t.trade.tradeId, proRata, t.trade.amount - proRata, 0n, 0n);
    expect((await f.token.balanceOf(addr(seller))) - sellerBefore).to.equal(proRata);
    expect((await f.token.balanceOf(addr(buyer))) - buyerBefore).to.equal(t.trade.amount - proRata);
    expect(await f.market.tradeStatus(t.trade.tradeId)).to.equal(TradeStatus.Settled);
  });
});

describe("Trust II: reclaim is permissionless and a contest before any report cannot block it", () => {
  it("seller contests before any report, the meter never reports: after the confirmation deadline a third party's reclaim refunds the buyer in full", async () => {
    const f = await networkHelpers.loadFixture(deployMarket);
    const t = await settleOne(f, 1_000n);
    const [buyer, seller, keeper] = [f.buyers[0]!, f.sellers[0]!, f.outsider];
    await at(f.deliveryEnd + 1n);
    await f.market.connect(seller).openDispute(t.trade, t.proof, REASON);
    expect(await f.market.tradeStatus(t.trade.tradeId)).to.equal(TradeStatus.Contested);

    const confirmationDeadline = f.deliveryEnd + CONFIRMATION_WINDOW;
    await at(confirmationDeadline);
    await expect(f.market.connect(keeper).reclaim(t.trade, t.proof))
      .to.be.revertedWithCustomError(f.market, "ConfirmationDeadlineNotReached").withArgs(t.trade.tradeId, confirmationDeadline);

    const buyerBefore = await f.token.balanceOf(addr(buyer));
    const keeperBefore = await f.token.balanceOf(addr(keeper));
    const sellerBefore = await f.token.balanceOf(addr(seller));
    await at(confirmationDeadline + 1n);
    await expect(f.market.connect(keeper).reclaim(t.trade, t.proof))
      .to.emit(f.market, "TradeRefunded").withArgs(t.trade.tradeId, addr(buyer), t.trade.amount);
    expect((await f.token.balanceOf(addr(buyer))) - buyerBefore).to.equal(t.trade.amount);
    expect(await f.token.balanceOf(addr(keeper))).to.equal(keeperBefore);
    expect(await f.token.balanceOf(addr(seller))).to.equal(sellerBefore);
    expect(await f.market.tradeStatus(t.trade.tradeId)).to.equal(TradeStatus.Refunded);
    const d = await f.market.dispute(t.trade.tradeId);
    expect([d.deliveredWh, d.reported, d.deadline, d.openedBy]).to.deep.equal([0n, false, 0n, ethers.ZeroAddress]);
    expect(await f.market.escrowedTotal()).to.equal(0n);

    // final: no second refund, no late report, no finalisation at the arbitration timeout
    await expect(f.market.connect(buyer).reclaim(t.trade, t.proof))
      .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus").withArgs(t.trade.tradeId, TradeStatus.Refunded);
    await expect(f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 1_000n, EVIDENCE))
      .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus").withArgs(t.trade.tradeId, TradeStatus.Refunded);
    await at(f.deliveryEnd + 1n + ARBITRATION_TIMEOUT + 1n);
    await expect(f.market.connect(keeper).finalizeDispute(t.trade, t.proof))
      .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus").withArgs(t.trade.tradeId, TradeStatus.Refunded);
  });

  it("a third party reclaims an Open trade nobody reported; the seller cannot redirect the refund", async () => {
    const f = await networkHelpers.loadFixture(deployMarket);
    const t = await settleOne(f, 1_000n);
    const [buyer, seller] = [f.buyers[0]!, f.sellers[0]!];
    const deadline = f.deliveryEnd + CONFIRMATION_WINDOW;
    await at(deadline);
    await expect(f.market.connect(seller).reclaim(t.trade, t.proof))
      .to.be.revertedWithCustomError(f.market, "ConfirmationDeadlineNotReached").withArgs(t.trade.tradeId, deadline);
    // a trade presented with another buyer does not verify
    await expect(f.market.connect(seller).reclaim({ ...t.trade, buyer: addr(seller) }, t.proof))
      .to.be.revertedWithCustomError(f.market, "InvalidTradeProof");
    const buyerBefore = await f.token.balanceOf(addr(buyer));
    const sellerBefore = await f.token.balanceOf(addr(seller));
    await at(deadline + 1n);
    await expect(f.market.connect(seller).reclaim(t.trade, t.proof))
      .to.emit(f.market, "TradeRefunded").withArgs(t.trade.tradeId, addr(buyer), t.trade.amount);
    expect((await f.token.balanceOf(addr(buyer))) - buyerBefore).to.equal(t.trade.amount);
    expect(await f.token.balanceOf(addr(seller))).to.equal(sellerBefore);
  });

  it("reclaim of a reported trade reverts: Proposed after a short report", async () => {
    const f = await networkHelpers.loadFixture(deployMarket);
    const t = await settleOne(f, 1_000n);
    await at(f.deliveryEnd);
    await f.market.connect(f.oracle).reportDelivery(t.trade, t.proof, 500n, EVIDENCE);
    expect(await f.market.tradeStatus(t.trade.tradeId)).to.equal(TradeStatus.Proposed);
    await at(f.deliveryEnd + CONFIRMATION_WINDOW + 1n);
    await expect(f.market.connect(f.outsider).reclaim(t.trade, t.proof))
      .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus").withArgs(t.trade.tradeId, TradeStatus.Proposed);
    await expect(f.market.connect(f.buyers[0]!).reclaim(t.trade, t.proof))
      .to.be.revertedWithCustomError(f.market, "InvalidTradeStatus").withArgs(t.trade.tradeId, TradeStatus.Proposed);
  });
});
