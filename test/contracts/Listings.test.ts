import { expect } from "chai";
import type { Signer } from "ethers";
import {
  deployMarket, ethers, networkHelpers, tradesFromReceipt, type MarketFixture,
  ZONE_A, ZONE_B, PRICE, EnergySource, TradeStatus, meterId,
} from "./fixtures.js";
import { tradeLeaf } from "../../contracts/client/trade.js";

const addr = (s: Signer) => (s as unknown as { address: string }).address;
const EVIDENCE = ethers.id("meter-evidence");
const SUSPENDED = 2;
const LISTED_WH = 1_000n;

/** The deployment plus one listing (id 1): seller 0, 1000 Wh of solar at PRICE, expiring at delivery start. */
async function withListing() {
  const f = await deployMarket();
  const seller = f.sellers[0]!;
  await f.market
    .connect(seller)
    .createListing(ZONE_A, LISTED_WH, PRICE, f.deliveryStart, f.deliveryEnd, f.deliveryStart, EnergySource.solar);
  return f;
}

function createArgs(f: MarketFixture, overrides: Partial<{
  zone: string; energyWh: bigint; price: bigint; start: bigint; end: bigint; expiry: bigint; source: number;
}> = {}) {
  const a = {
    zone: ZONE_A as string, energyWh: LISTED_WH, price: PRICE, start: f.deliveryStart, end: f.deliveryEnd,
    expiry: f.deliveryStart, source: EnergySource.solar as number, ...overrides,
  };
  return [a.zone, a.energyWh, a.price, a.start, a.end, a.expiry, a.source] as const;
}

async function expectSolvent(f: MarketFixture) {
  const balance = await f.token.balanceOf(await f.market.getAddress());
  expect(balance).to.equal((await f.market.escrowedTotal()) + (await f.market.feesOutstanding()));
}

describe("Listings", () => {
  describe("createListing", () => {
    it("stores the listing, returns its id and emits ListingCreated with every field", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const seller = f.sellers[1]!;
      const expiry = f.deliveryStart - 60n;
      const args = createArgs(f, { energyWh: 2_500n, price: 123_456n, expiry, source: EnergySource.wind });
      expect(await f.market.connect(seller).createListing.staticCall(...args)).to.equal(1n);
      await expect(f.market.connect(seller).createListing(...args))
        .to.emit(f.market, "ListingCreated")
        .withArgs(1n, addr(seller), ZONE_A, 2_500n, 123_456n, f.deliveryStart, f.deliveryEnd, expiry, EnergySource.wind);
      const l = await f.market.listing(1n);
      expect([l.seller, l.remainingWh, l.source, l.zone, l.pricePerKWh, l.deliveryStart, l.deliveryEnd, l.expiry])
        .to.deep.equal([addr(seller), 2_500n, 2n, ZONE_A, 123_456n, f.deliveryStart, f.deliveryEnd, expiry]);
      expect(await f.market.nextListingId()).to.equal(2n);

      await expect(f.market.connect(f.sellers[2]!).createListing(...createArgs(f)))
        .to.emit(f.market, "ListingCreated")
        .withArgs(2n, addr(f.sellers[2]!), ZONE_A, LISTED_WH, PRICE, f.deliveryStart, f.deliveryEnd, f.deliveryStart, 1);
      expect(await f.market.nextListingId()).to.equal(3n);
    });

    it("reverts InvalidEnergy for zero energy", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      await expect(f.market.connect(f.sellers[0]!).createListing(...createArgs(f, { energyWh: 0n })))
        .to.be.revertedWithCustomError(f.market, "InvalidEnergy")
        .withArgs(0n);
    });

    it("reverts InvalidPrice for a zero price", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      await expect(f.market.connect(f.sellers[0]!).createListing(...createArgs(f, { price: 0n })))
        .to.be.revertedWithCustomError(f.market, "InvalidPrice")
        .withArgs(0n);
    });

    it("reverts InvalidDeliveryWindow for an empty or inverted window", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const s = f.market.connect(f.sellers[0]!);
      await expect(s.createListing(...createArgs(f, { end: f.deliveryStart })))
        .to.be.revertedWithCustomError(f.market, "InvalidDeliveryWindow")
        .withArgs(f.deliveryStart, f.deliveryStart);
      await expect(s.createListing(...createArgs(f, { start: f.deliveryEnd, end: f.deliveryStart })))
        .to.be.revertedWithCustomError(f.market, "InvalidDeliveryWindow")
        .withArgs(f.deliveryEnd, f.deliveryStart);
    });

    it("reverts InvalidExpiry(expiry, now) for an expiry not after the block time", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const s = f.market.connect(f.sellers[0]!);
      const now = BigInt(await networkHelpers.time.latest()) + 10n;
      await networkHelpers.time.setNextBlockTimestamp(now);
      await expect(s.createListing(...createArgs(f, { expiry: now })))
        .to.be.revertedWithCustomError(f.market, "InvalidExpiry")
        .withArgs(now, now);
      await networkHelpers.time.setNextBlockTimestamp(now);
      await expect(s.createListing(...createArgs(f, { expiry: now - 1n })))
        .to.be.revertedWithCustomError(f.market, "InvalidExpiry")
        .withArgs(now - 1n, now);
      // One second after the block time is fine.
      await networkHelpers.time.setNextBlockTimestamp(now);
      await expect(s.createListing(...createArgs(f, { expiry: now + 1n }))).to.emit(f.market, "ListingCreated");
    });

    it("reverts InvalidExpiry(expiry, now) for an expiry after the delivery end; the delivery end itself is fine", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const s = f.market.connect(f.sellers[0]!);
      const now = BigInt(await networkHelpers.time.latest()) + 10n;
      await networkHelpers.time.setNextBlockTimestamp(now);
      await expect(s.createListing(...createArgs(f, { expiry: f.deliveryEnd + 1n })))
        .to.be.revertedWithCustomError(f.market, "InvalidExpiry")
        .withArgs(f.deliveryEnd + 1n, now);
      expect(await f.market.nextListingId()).to.equal(1n);
      await networkHelpers.time.setNextBlockTimestamp(now);
      await expect(s.createListing(...createArgs(f, { expiry: f.deliveryEnd })))
        .to.emit(f.market, "ListingCreated")
        .withArgs(1n, addr(f.sellers[0]!), ZONE_A, LISTED_WH, PRICE, f.deliveryStart, f.deliveryEnd, f.deliveryEnd, 1);
      expect((await f.market.listing(1n)).expiry).to.equal(f.deliveryEnd);
    });

    for (const bad of [0, 5, 255]) {
      it(`reverts InvalidSource for source ${bad}`, async () => {
        const f = await networkHelpers.loadFixture(deployMarket);
        await expect(f.market.connect(f.sellers[0]!).createListing(...createArgs(f, { source: bad })))
          .to.be.revertedWithCustomError(f.market, "InvalidSource")
          .withArgs(bad);
      });
    }

    it("reverts ProsumerNotActive for an unregistered account", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      await expect(f.market.connect(f.outsider).createListing(...createArgs(f)))
        .to.be.revertedWithCustomError(f.market, "ProsumerNotActive")
        .withArgs(addr(f.outsider), ZONE_A);
    });

    it("reverts ProsumerNotActive for a suspended seller", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const seller = f.sellers[0]!;
      await f.registry.setStatus(addr(seller), SUSPENDED);
      await expect(f.market.connect(seller).createListing(...createArgs(f)))
        .to.be.revertedWithCustomError(f.market, "ProsumerNotActive")
        .withArgs(addr(seller), ZONE_A);
    });

    it("reverts ProsumerNotActive for a zone the seller is not in", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      const seller = f.sellers[0]!;
      await expect(f.market.connect(seller).createListing(...createArgs(f, { zone: ZONE_B })))
        .to.be.revertedWithCustomError(f.market, "ProsumerNotActive")
        .withArgs(addr(seller), ZONE_B);
    });

    it("reverts SourceNotRegistered for a source the seller does not own", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      // Buyers are registered with no sources at all.
      const buyer = f.buyers[0]!;
      await expect(f.market.connect(buyer).createListing(...createArgs(f, { source: EnergySource.solar })))
        .to.be.revertedWithCustomError(f.market, "SourceNotRegistered")
        .withArgs(addr(buyer), EnergySource.solar);
      // A seller who owns only wind cannot list storage.
      const seller = f.sellers[0]!;
      await f.registry.updateProsumer(addr(seller), meterId(1), ZONE_A, 10_000n, 10_000n, 1 << EnergySource.wind);
      await expect(f.market.connect(seller).createListing(...createArgs(f, { source: EnergySource.storage })))
        .to.be.revertedWithCustomError(f.market, "SourceNotRegistered")
        .withArgs(addr(seller), EnergySource.storage);
      await expect(f.market.connect(seller).createListing(...createArgs(f, { source: EnergySource.wind })))
        .to.emit(f.market, "ListingCreated");
    });

    it("reverts EnforcedPause while the market is paused", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      await f.market.connect(f.pauser).pause();
      await expect(f.market.connect(f.sellers[0]!).createListing(...createArgs(f)))
        .to.be.revertedWithCustomError(f.market, "EnforcedPause");
      await f.market.connect(f.pauser).unpause();
      await expect(f.market.connect(f.sellers[0]!).createListing(...createArgs(f))).to.emit(f.market, "ListingCreated");
    });
  });

  describe("cancelListing", () => {
    it("deletes the listing and emits ListingCancelled with the remaining energy", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      const seller = f.sellers[0]!;
      await expect(f.market.connect(seller).cancelListing(1n))
        .to.emit(f.market, "ListingCancelled")
        .withArgs(1n, addr(seller), LISTED_WH);
      expect((await f.market.listing(1n)).seller).to.equal(ethers.ZeroAddress);
      await expect(f.market.connect(f.buyers[0]!).executeTrade(1n, 100n))
        .to.be.revertedWithCustomError(f.market, "ListingNotFound")
        .withArgs(1n);
    });

    it("reports what is left after a partial take; the taken trade stays", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      const seller = f.sellers[0]!;
      await f.market.connect(f.buyers[0]!).executeTrade(1n, 300n);
      await expect(f.market.connect(seller).cancelListing(1n))
        .to.emit(f.market, "ListingCancelled")
        .withArgs(1n, addr(seller), 700n);
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Open);
      expect(await f.market.escrowedTotal()).to.equal((300n * PRICE) / 1000n);
      await expectSolvent(f);
    });

    it("reverts ListingNotFound for an unknown or already cancelled listing", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      const seller = f.sellers[0]!;
      await expect(f.market.connect(seller).cancelListing(2n))
        .to.be.revertedWithCustomError(f.market, "ListingNotFound")
        .withArgs(2n);
      await f.market.connect(seller).cancelListing(1n);
      await expect(f.market.connect(seller).cancelListing(1n))
        .to.be.revertedWithCustomError(f.market, "ListingNotFound")
        .withArgs(1n);
    });

    it("reverts NotListingSeller for anyone but the seller", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      for (const who of [f.sellers[1]!, f.buyers[0]!, f.admin]) {
        await expect(f.market.connect(who).cancelListing(1n))
          .to.be.revertedWithCustomError(f.market, "NotListingSeller")
          .withArgs(1n, addr(who));
      }
      expect((await f.market.listing(1n)).remainingWh).to.equal(LISTED_WH);
    });

    it("works while the market is paused", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      await f.market.connect(f.pauser).pause();
      await expect(f.market.connect(f.sellers[0]!).cancelListing(1n))
        .to.emit(f.market, "ListingCancelled")
        .withArgs(1n, addr(f.sellers[0]!), LISTED_WH);
    });
  });

  describe("executeTrade", () => {
    it("a partial then a full take: trades, escrow, listing energy and deletion", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      const seller = addr(f.sellers[0]!);
      const [b0, b1] = [f.buyers[0]!, f.buyers[1]!];
      const market = await f.market.getAddress();

      // Partial take: 400 Wh.
      const amount1 = (400n * PRICE) / 1000n;
      expect(await f.market.connect(b0).executeTrade.staticCall(1n, 400n)).to.equal(1n);
      const tx1 = f.market.connect(b0).executeTrade(1n, 400n);
      const trade1 = {
        tradeId: 1n, batchId: 1n, seller, buyer: addr(b0), zone: ZONE_A, energyWh: 400n, pricePerKWh: PRICE,
        amount: amount1, deliveryStart: f.deliveryStart, deliveryEnd: f.deliveryEnd, source: EnergySource.solar,
        communityFeeBps: 0, networkFeePerKWh: 0n,
      } as const;
      await expect(tx1)
        .to.emit(f.market, "TradeExecuted")
        .withArgs(1n, seller, addr(b0), ZONE_A, 400n, PRICE, amount1, f.deliveryStart, f.deliveryEnd, 1, 1n);
      await expect(tx1)
        .to.emit(f.market, "BatchSettled")
        .withArgs(1n, tradeLeaf(trade1 as never), 1n, 1n, 0, 0n);
      await expect(tx1).to.changeTokenBalances(ethers, f.token, [addr(b0), market, seller], [-amount1, amount1, 0n]);
      expect((await f.market.listing(1n)).remainingWh).to.equal(600n);
      expect(await f.market.batchRoot(1n)).to.equal(tradeLeaf(trade1 as never));
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Open);
      expect(await f.market.escrowedTotal()).to.equal(amount1);
      await expectSolvent(f);

      // Full take of the remaining 600 Wh by another buyer.
      const amount2 = (600n * PRICE) / 1000n;
      const tx2 = f.market.connect(b1).executeTrade(1n, 600n);
      await expect(tx2)
        .to.emit(f.market, "TradeExecuted")
        .withArgs(2n, seller, addr(b1), ZONE_A, 600n, PRICE, amount2, f.deliveryStart, f.deliveryEnd, 1, 2n);
      const trade2 = { ...trade1, tradeId: 2n, batchId: 2n, buyer: addr(b1), energyWh: 600n, amount: amount2 };
      await expect(tx2).to.emit(f.market, "BatchSettled").withArgs(2n, tradeLeaf(trade2 as never), 2n, 1n, 0, 0n);
      await expect(tx2).to.changeTokenBalances(ethers, f.token, [addr(b1), market], [-amount2, amount2]);

      const l = await f.market.listing(1n);
      expect([l.seller, l.remainingWh, l.pricePerKWh]).to.deep.equal([ethers.ZeroAddress, 0n, 0n]);
      await expect(f.market.connect(b0).executeTrade(1n, 1n))
        .to.be.revertedWithCustomError(f.market, "ListingNotFound")
        .withArgs(1n);
      expect(await f.market.nextTradeId()).to.equal(3n);
      expect(await f.market.nextBatchId()).to.equal(3n);
      expect(await f.market.escrowedTotal()).to.equal(amount1 + amount2);
      await expectSolvent(f);
    });

    it("rounds the amount down (energy * price / 1000)", async () => {
      const f = await networkHelpers.loadFixture(deployMarket);
      await f.market.connect(f.sellers[0]!).createListing(...createArgs(f, { price: 333_333n }));
      const amount = (7n * 333_333n) / 1000n; // 2333.331 -> 2333
      expect(amount).to.equal(2_333n);
      await expect(f.market.connect(f.buyers[0]!).executeTrade(1n, 7n))
        .to.emit(f.market, "TradeExecuted")
        .withArgs(1n, addr(f.sellers[0]!), addr(f.buyers[0]!), ZONE_A, 7n, 333_333n, amount, f.deliveryStart, f.deliveryEnd, 1, 1n);
    });

    it("carries the current fees into the trade and its BatchSettled", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      await f.market.setFees(150, addr(f.feeRecipient), 10_000n, addr(f.networkRecipient));
      const tx = f.market.connect(f.buyers[0]!).executeTrade(1n, 1_000n);
      const amount = (1_000n * PRICE) / 1000n;
      const trade = {
        tradeId: 1n, batchId: 1n, seller: addr(f.sellers[0]!), buyer: addr(f.buyers[0]!), zone: ZONE_A,
        energyWh: 1_000n, pricePerKWh: PRICE, amount, deliveryStart: f.deliveryStart, deliveryEnd: f.deliveryEnd,
        source: 1, communityFeeBps: 150, networkFeePerKWh: 10_000n,
      };
      await expect(tx).to.emit(f.market, "BatchSettled").withArgs(1n, tradeLeaf(trade as never), 1n, 1n, 150, 10_000n);
      const [t] = tradesFromReceipt(f, await (await tx).wait());
      expect(t!.trade).to.deep.equal(trade);
    });

    it("reverts ListingNotFound for an unknown listing", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      await expect(f.market.connect(f.buyers[0]!).executeTrade(99n, 100n))
        .to.be.revertedWithCustomError(f.market, "ListingNotFound")
        .withArgs(99n);
    });

    it("reverts ListingExpired(id, expiry) from the expiry on", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      const expiry = f.deliveryStart;
      await networkHelpers.time.setNextBlockTimestamp(expiry - 1n);
      await expect(f.market.connect(f.buyers[0]!).executeTrade(1n, 100n)).to.emit(f.market, "TradeExecuted");
      await networkHelpers.time.setNextBlockTimestamp(expiry);
      await expect(f.market.connect(f.buyers[0]!).executeTrade(1n, 100n))
        .to.be.revertedWithCustomError(f.market, "ListingExpired")
        .withArgs(1n, expiry);
    });

    it("reverts InvalidEnergy for zero energy", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      await expect(f.market.connect(f.buyers[0]!).executeTrade(1n, 0n))
        .to.be.revertedWithCustomError(f.market, "InvalidEnergy")
        .withArgs(0n);
    });

    it("reverts InsufficientListingEnergy(id, requested, remaining)", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      await expect(f.market.connect(f.buyers[0]!).executeTrade(1n, LISTED_WH + 1n))
        .to.be.revertedWithCustomError(f.market, "InsufficientListingEnergy")
        .withArgs(1n, LISTED_WH + 1n, LISTED_WH);
      await f.market.connect(f.buyers[0]!).executeTrade(1n, 900n);
      await expect(f.market.connect(f.buyers[1]!).executeTrade(1n, 101n))
        .to.be.revertedWithCustomError(f.market, "InsufficientListingEnergy")
        .withArgs(1n, 101n, 100n);
    });

    it("reverts CannotTradeWithSelf when the seller takes its own listing", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      await expect(f.market.connect(f.sellers[0]!).executeTrade(1n, 100n))
        .to.be.revertedWithCustomError(f.market, "CannotTradeWithSelf")
        .withArgs(addr(f.sellers[0]!));
    });

    it("reverts ProsumerNotActive for a buyer in another zone, unregistered or suspended", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      await expect(f.market.connect(f.zoneBBuyer).executeTrade(1n, 100n))
        .to.be.revertedWithCustomError(f.market, "ProsumerNotActive")
        .withArgs(addr(f.zoneBBuyer), ZONE_A);
      await expect(f.market.connect(f.outsider).executeTrade(1n, 100n))
        .to.be.revertedWithCustomError(f.market, "ProsumerNotActive")
        .withArgs(addr(f.outsider), ZONE_A);
      await f.registry.setStatus(addr(f.buyers[0]!), SUSPENDED);
      await expect(f.market.connect(f.buyers[0]!).executeTrade(1n, 100n))
        .to.be.revertedWithCustomError(f.market, "ProsumerNotActive")
        .withArgs(addr(f.buyers[0]!), ZONE_A);
    });

    it("reverts ProsumerNotActive for a seller suspended or moved out of the zone after listing", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      const seller = addr(f.sellers[0]!);
      await f.registry.setStatus(seller, SUSPENDED);
      await expect(f.market.connect(f.buyers[0]!).executeTrade(1n, 100n))
        .to.be.revertedWithCustomError(f.market, "ProsumerNotActive")
        .withArgs(seller, ZONE_A);
      await f.registry.setStatus(seller, 1);
      await f.registry.updateProsumer(seller, meterId(1), ZONE_B, 10_000n, 10_000n, 0x1e);
      await expect(f.market.connect(f.buyers[0]!).executeTrade(1n, 100n))
        .to.be.revertedWithCustomError(f.market, "ProsumerNotActive")
        .withArgs(seller, ZONE_A);
    });

    it("reverts SourceNotRegistered when the seller no longer owns the listed source", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      const seller = addr(f.sellers[0]!);
      await f.registry.updateProsumer(seller, meterId(1), ZONE_A, 10_000n, 10_000n, 1 << EnergySource.wind);
      await expect(f.market.connect(f.buyers[0]!).executeTrade(1n, 100n))
        .to.be.revertedWithCustomError(f.market, "SourceNotRegistered")
        .withArgs(seller, EnergySource.solar);
    });

    it("reverts with the token's error when the buyer cannot pay, changing nothing", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      const buyer = f.buyers[0]!;
      const market = await f.market.getAddress();
      const amount = (100n * PRICE) / 1000n;
      await f.token.connect(buyer).approve(market, amount - 1n);
      await expect(f.market.connect(buyer).executeTrade(1n, 100n))
        .to.be.revertedWithCustomError(f.token, "ERC20InsufficientAllowance")
        .withArgs(market, amount - 1n, amount);
      expect((await f.market.listing(1n)).remainingWh).to.equal(LISTED_WH);
      expect(await f.market.nextTradeId()).to.equal(1n);
      expect(await f.market.escrowedTotal()).to.equal(0n);
    });

    it("reverts EnforcedPause while paused and works again after unpause", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      await f.market.connect(f.pauser).pause();
      await expect(f.market.connect(f.buyers[0]!).executeTrade(1n, 100n))
        .to.be.revertedWithCustomError(f.market, "EnforcedPause");
      await f.market.connect(f.pauser).unpause();
      await expect(f.market.connect(f.buyers[0]!).executeTrade(1n, 100n)).to.emit(f.market, "TradeExecuted");
    });
  });

  describe("reporting on a taken listing", () => {
    it("tradesFromReceipt rebuilds the trade with an empty proof and the oracle's report settles it", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      const seller = addr(f.sellers[0]!);
      const buyer = addr(f.buyers[0]!);
      const receipt = await (await f.market.connect(f.buyers[0]!).executeTrade(1n, 1_000n)).wait();
      const proven = tradesFromReceipt(f, receipt);
      expect(proven).to.have.length(1);
      const [t] = proven;
      expect(t!.proof).to.deep.equal([]);
      expect(await f.market.tradeLeaf(t!.trade)).to.equal(await f.market.batchRoot(t!.trade.batchId));

      await networkHelpers.time.increaseTo(f.deliveryEnd);
      const amount = (1_000n * PRICE) / 1000n;
      const tx = f.market.connect(f.oracle).reportDelivery(t!.trade, t!.proof, 1_000n, EVIDENCE);
      await expect(tx).to.emit(f.market, "DeliveryConfirmed").withArgs(1n, 1_000n, EVIDENCE, true);
      await expect(tx).to.emit(f.market, "TradeSettled").withArgs(1n, amount, 0n, 0n, 0n);
      await expect(tx).to.changeTokenBalances(
        ethers, f.token, [await f.market.getAddress(), seller, buyer], [-amount, amount, 0n],
      );
      expect(await f.market.tradeStatus(1n)).to.equal(TradeStatus.Settled);
      expect(await f.market.escrowedTotal()).to.equal(0n);
      await expectSolvent(f);
    });

    it("a taken listing's trade can be released early by its buyer", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      const receipt = await (await f.market.connect(f.buyers[0]!).executeTrade(1n, 500n)).wait();
      const [t] = tradesFromReceipt(f, receipt);
      const amount = (500n * PRICE) / 1000n;
      await expect(f.market.connect(f.buyers[0]!).releaseEarly(t!.trade, []))
        .to.emit(f.market, "TradeSettled")
        .withArgs(1n, amount, 0n, 0n, 0n);
      await expectSolvent(f);
    });

    it("a tampered listing trade is rejected with InvalidTradeProof", async () => {
      const f = await networkHelpers.loadFixture(withListing);
      const receipt = await (await f.market.connect(f.buyers[0]!).executeTrade(1n, 500n)).wait();
      const [t] = tradesFromReceipt(f, receipt);
      await networkHelpers.time.increaseTo(f.deliveryEnd);
      const forged = { ...t!.trade, amount: t!.trade.amount * 2n };
      await expect(f.market.connect(f.oracle).reportDelivery(forged, [], 500n, EVIDENCE))
        .to.be.revertedWithCustomError(f.market, "InvalidTradeProof")
        .withArgs(1n, 1n);
    });
  });
});
