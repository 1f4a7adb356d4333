// Batch settlement of signed EIP-712 orders by the MATCHER: every check of _checkFill and
// _checkParties, each as a FillRejected with its exact reason while the good fills of the same
// batch still execute, plus ERC-1271 makers and the TypeScript client's hashing and signing.
import { expect } from "chai";
import type { ContractTransactionReceipt, Signer, TypedDataDomain } from "ethers";
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  deployMarket, makeOrder, signed, tradesFromReceipt, networkHelpers, ethers, meterId,
  SIDE_BUY, SIDE_SELL, EnergySource, sourceMask, RejectReason, TradeStatus, ZONE_A, ZONE_B, TEUR, PRICE, INTERVAL,
  type MarketFixture,
} from "./fixtures.js";
import { orderTypes, hashOrder as tsHashOrder, signOrder as tsSignOrder, marketDomain, type Order } from "../../contracts/client/order.js";
import { merkleRoot, tradeLeaf, type Trade } from "../../contracts/client/trade.js";
import { amountFor } from "../../contracts/client/amount.js";
import type { EnergyMarket, ProsumerRegistry, TestEuro, SmartWalletMock } from "../../types/ethers-contracts/index.js";

// ------------------------------------------------------------------ helpers

interface SignedOrder { order: Order; signature: Hex }
interface Fill { buyIndex: number; sellIndex: number; energyWh: bigint; pricePerKWh: bigint }

const EIP712_TYPES = { Order: orderTypes.Order.map((t) => ({ name: t.name, type: t.type })) };
const EVIDENCE = ("0x" + "ab".repeat(32)) as Hex;
const HARDHAT_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80" as Hex;
const HARDHAT_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d" as Hex;

function fill(buyIndex: number, sellIndex: number, energyWh = 1_000n, pricePerKWh = PRICE): Fill {
  return { buyIndex, sellIndex, energyWh, pricePerKWh };
}

/** The fixture with typed contracts. */
async function setup() {
  const f = await networkHelpers.loadFixture(deployMarket);
  return {
    f,
    market: f.market as unknown as EnergyMarket,
    token: f.token as unknown as TestEuro,
    registry: f.registry as unknown as ProsumerRegistry,
    marketAddress: (await f.market.getAddress()) as Address,
  };
}

async function addr(s: Signer): Promise<Address> {
  return (await s.getAddress()) as Address;
}

/** Signs with `signer` under an arbitrary EIP-712 domain (for wrong-domain cases). */
async function signWithDomain(signer: Signer, order: Order, domain: TypedDataDomain): Promise<SignedOrder> {
  return { order, signature: (await signer.signTypedData(domain, EIP712_TYPES, order)) as Hex };
}

interface Rejection { fillIndex: bigint; buyOrderHash: string; sellOrderHash: string; reason: bigint }

interface BatchResult {
  receipt: ContractTransactionReceipt;
  batchId: bigint;
  firstTradeId: bigint;
  rejections: Rejection[];
  trades: ReturnType<typeof tradesFromReceipt>;
}

/** Settles as MATCHER and decodes the rejections and the executed trades. */
async function settle(f: MarketFixture, orders: SignedOrder[], fills: Fill[]): Promise<BatchResult> {
  const market = f.market as unknown as EnergyMarket;
  const batchId = await market.nextBatchId();
  const firstTradeId = await market.nextTradeId();
  const tx = await market.connect(f.matcher).settleBatch(orders, fills);
  const receipt = (await tx.wait())!;
  const rejections: Rejection[] = [];
  for (const log of receipt.logs) {
    const parsed = market.interface.parseLog(log);
    if (parsed?.name === "FillRejected") {
      expect(parsed.args.batchId).to.equal(batchId);
      rejections.push({
        fillIndex: parsed.args.fillIndex, buyOrderHash: parsed.args.buyOrderHash,
        sellOrderHash: parsed.args.sellOrderHash, reason: parsed.args.reason,
      });
    }
  }
  return { receipt, batchId, firstTradeId, rejections, trades: tradesFromReceipt(f, receipt) };
}

async function orderHash(f: MarketFixture, so: SignedOrder | null): Promise<string> {
  return so ? await (f.market as unknown as EnergyMarket).hashOrder(so.order) : ethers.ZeroHash;
}

/** Asserts the batch rejected exactly these fills, with these orders and reasons, in order. */
async function expectRejections(
  f: MarketFixture,
  r: BatchResult,
  expected: Array<[fillIndex: number, buy: SignedOrder | null, sell: SignedOrder | null, reason: number]>,
) {
  const want: Rejection[] = [];
  for (const [fillIndex, buy, sell, reason] of expected) {
    want.push({ fillIndex: BigInt(fillIndex), buyOrderHash: await orderHash(f, buy), sellOrderHash: await orderHash(f, sell), reason: BigInt(reason) });
  }
  expect(r.rejections).to.deep.equal(want);
}

/** Asserts the batch executed exactly these (buyer, seller, energy, price) trades, in order. */
function expectTrades(r: BatchResult, expected: Array<[buyer: Address, seller: Address, energyWh: bigint, pricePerKWh: bigint]>) {
  expect(r.trades.map((t) => [t.trade.buyer, t.trade.seller, t.trade.energyWh, t.trade.pricePerKWh])).to.deep.equal(expected);
  r.trades.forEach((t, i) => {
    expect(t.trade.tradeId).to.equal(r.firstTradeId + BigInt(i));
    expect(t.trade.batchId).to.equal(r.batchId);
    expect(t.trade.amount).to.equal(amountFor(t.trade.energyWh, t.trade.pricePerKWh));
  });
}

/** Fresh delivery window (and expiry) after the current time. */
async function laterWindow(hoursAhead = 2n) {
  const now = BigInt(await networkHelpers.time.latest());
  const deliveryStart = ((now + hoursAhead * 3600n) / INTERVAL + 1n) * INTERVAL;
  return { deliveryStart, deliveryEnd: deliveryStart + INTERVAL, expiry: deliveryStart };
}

// ------------------------------------------------------------------ tests

describe("EnergyMarket.settleBatch", () => {
  describe("successful settlement", () => {
    it("executes one fill: TradeExecuted, BatchSettled, escrow, filledWh and the EIP-712 hash", async () => {
      const { f, market, token, marketAddress } = await setup();
      const [buyer, seller] = [f.buyers[0]!, f.sellers[0]!];
      const buy = await signed(f, buyer, await makeOrder(f, buyer, SIDE_BUY, { limitPricePerKWh: 300_000n }));
      const sell = await signed(f, seller, await makeOrder(f, seller, SIDE_SELL, { limitPricePerKWh: 200_000n, source: EnergySource.wind }));
      const fills = [fill(0, 1, 600n, 250_000n)];
      const amount = 150_000n; // 600 Wh at 0.25 tEUR/kWh

      // hashOrder is the EIP-712 digest of the order under the market's domain
      expect(await market.hashOrder(buy.order)).to.equal(ethers.TypedDataEncoder.hash(f.domain, EIP712_TYPES, buy.order));
      expect(await market.hashOrder(sell.order)).to.equal(ethers.TypedDataEncoder.hash(f.domain, EIP712_TYPES, sell.order));
      expect(await market.domainSeparator()).to.equal(ethers.TypedDataEncoder.hashDomain(f.domain));
      const buyHash = await market.hashOrder(buy.order);
      const sellHash = await market.hashOrder(sell.order);

      const [retBatchId, retExecuted] = await market.connect(f.matcher).settleBatch.staticCall([buy, sell], fills);
      const batchId = await market.nextBatchId();
      const tradeId = await market.nextTradeId();
      expect(retBatchId).to.equal(batchId);
      expect(retExecuted).to.equal(1n);

      const trade: Trade = {
        tradeId, batchId, seller: await addr(seller), buyer: await addr(buyer), zone: ZONE_A, energyWh: 600n,
        pricePerKWh: 250_000n, amount, deliveryStart: f.deliveryStart, deliveryEnd: f.deliveryEnd,
        source: EnergySource.wind, communityFeeBps: 0, networkFeePerKWh: 0n,
      };
      const buyerBefore = await token.balanceOf(buyer);
      const sellerBefore = await token.balanceOf(seller);
      const tx = market.connect(f.matcher).settleBatch([buy, sell], fills);
      await expect(tx).to.emit(market, "TradeExecuted").withArgs(
        tradeId, trade.seller, trade.buyer, ZONE_A, 600n, 250_000n, amount, f.deliveryStart, f.deliveryEnd, EnergySource.wind, batchId,
      );
      await expect(tx).to.emit(market, "BatchSettled").withArgs(batchId, tradeLeaf(trade), tradeId, 1n, 0, 0n);
      await expect(tx).not.to.emit(market, "FillRejected");
      await expect(tx).to.emit(token, "Transfer").withArgs(trade.buyer, marketAddress, amount);

      expect(await token.balanceOf(buyer)).to.equal(buyerBefore - amount);
      expect(await token.balanceOf(seller)).to.equal(sellerBefore);
      expect(await token.balanceOf(marketAddress)).to.equal(amount);
      expect(await market.escrowedTotal()).to.equal(amount);
      expect(await market.feesOutstanding()).to.equal(0n);
      expect(await market.filledWh(buyHash)).to.equal(600n);
      expect(await market.filledWh(sellHash)).to.equal(600n);
      expect(await market.tradeStatus(tradeId)).to.equal(TradeStatus.Open);
      expect(await market.batchRoot(batchId)).to.equal(tradeLeaf(trade));
      expect(await market.nextTradeId()).to.equal(tradeId + 1n);
      expect(await market.nextBatchId()).to.equal(batchId + 1n);
    });

    it("charges each buyer once per batch for the sum of its fills", async () => {
      const { f, market, token, marketAddress } = await setup();
      const [b0, b1] = [f.buyers[0]!, f.buyers[1]!];
      const buy0 = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { energyWh: 3_000n }));
      const buy1 = await signed(f, b1, await makeOrder(f, b1, SIDE_BUY, { energyWh: 500n }));
      const sells: SignedOrder[] = [];
      for (const s of f.sellers.slice(0, 3)) sells.push(await signed(f, s, await makeOrder(f, s, SIDE_SELL, { energyWh: 2_000n, limitPricePerKWh: 100_000n })));
      // orders: 0 buy0, 1 buy1, 2..4 sells
      const fills = [fill(0, 2, 1_000n, 200_000n), fill(1, 3, 500n, 250_000n), fill(0, 3, 400n, 240_000n), fill(0, 4, 1_600n, 250_000n)];
      const b0Before = await token.balanceOf(b0);
      const b1Before = await token.balanceOf(b1);
      const r = await settle(f, [buy0, buy1, ...sells], fills);
      await expectRejections(f, r, []);
      const b0Owed = amountFor(1_000n, 200_000n) + amountFor(400n, 240_000n) + amountFor(1_600n, 250_000n);
      const b1Owed = amountFor(500n, 250_000n);

      const tokenAddress = (await token.getAddress()).toLowerCase();
      const transfers = r.receipt.logs
        .filter((l) => l.address.toLowerCase() === tokenAddress)
        .map((l) => token.interface.parseLog(l))
        .filter((p) => p?.name === "Transfer")
        .map((p) => [p!.args.from, p!.args.to, p!.args.value]);
      expect(transfers).to.deep.equal([
        [await addr(b0), marketAddress, b0Owed],
        [await addr(b1), marketAddress, b1Owed],
      ]);
      expect(await token.balanceOf(b0)).to.equal(b0Before - b0Owed);
      expect(await token.balanceOf(b1)).to.equal(b1Before - b1Owed);
      expect(await token.balanceOf(marketAddress)).to.equal(b0Owed + b1Owed);
      expect(await market.escrowedTotal()).to.equal(b0Owed + b1Owed);
      expect(r.trades).to.have.length(4);
      expect(await market.filledWh(await market.hashOrder(buy0.order))).to.equal(3_000n);
      expect(await market.filledWh(await market.hashOrder(sells[1]!.order))).to.equal(900n);
    });

    it("fills one order partially across several fills and several batches, then rejects the overfill", async () => {
      const { f, market } = await setup();
      const buyer = f.buyers[0]!;
      const buy = await signed(f, buyer, await makeOrder(f, buyer, SIDE_BUY, { energyWh: 1_000n }));
      const buyHash = await market.hashOrder(buy.order);
      const sells: SignedOrder[] = [];
      for (const s of f.sellers.slice(0, 4)) sells.push(await signed(f, s, await makeOrder(f, s, SIDE_SELL, { energyWh: 1_000n })));

      const r1 = await settle(f, [buy, sells[0]!, sells[1]!], [fill(0, 1, 300n), fill(0, 2, 200n)]);
      await expectRejections(f, r1, []);
      expect(r1.trades).to.have.length(2);
      expect(await market.filledWh(buyHash)).to.equal(500n);

      const r2 = await settle(f, [sells[2]!, buy], [fill(1, 0, 450n)]);
      await expectRejections(f, r2, []);
      expect(await market.filledWh(buyHash)).to.equal(950n);

      // 51 Wh would exceed the 50 Wh left; a good fill next to it still goes through; 50 Wh fits exactly
      const other = await signed(f, f.buyers[1]!, await makeOrder(f, f.buyers[1]!, SIDE_BUY));
      const r3 = await settle(f, [buy, sells[3]!, other], [fill(0, 1, 51n), fill(2, 1, 100n), fill(0, 1, 50n)]);
      await expectRejections(f, r3, [[0, buy, sells[3]!, RejectReason.BuyOverfill]]);
      expectTrades(r3, [[await addr(f.buyers[1]!), await addr(f.sellers[3]!), 100n, PRICE], [await addr(buyer), await addr(f.sellers[3]!), 50n, PRICE]]);
      expect(await market.filledWh(buyHash)).to.equal(1_000n);
      expect(await market.filledWh(await market.hashOrder(sells[3]!.order))).to.equal(150n);

      // full now: any further fill of it overfills
      const r4 = await settle(f, [buy, sells[3]!], [fill(0, 1, 1n)]);
      await expectRejections(f, r4, [[0, buy, sells[3]!, RejectReason.BuyOverfill]]);
      expect(r4.trades).to.have.length(0);
    });

    it("rejects a sell overfill across batches and within one batch", async () => {
      const { f, market } = await setup();
      const seller = f.sellers[0]!;
      const sell = await signed(f, seller, await makeOrder(f, seller, SIDE_SELL, { energyWh: 1_000n }));
      const buys: SignedOrder[] = [];
      for (const b of f.buyers.slice(0, 3)) buys.push(await signed(f, b, await makeOrder(f, b, SIDE_BUY, { energyWh: 1_000n })));

      // within one batch: 700 then 400 > 1000 -> the second overfills, a 300 after it fits
      const r1 = await settle(f, [sell, buys[0]!, buys[1]!], [fill(1, 0, 700n), fill(2, 0, 400n), fill(2, 0, 300n)]);
      await expectRejections(f, r1, [[1, buys[1]!, sell, RejectReason.SellOverfill]]);
      expect(r1.trades.map((t) => t.trade.energyWh)).to.deep.equal([700n, 300n]);
      expect(await market.filledWh(await market.hashOrder(sell.order))).to.equal(1_000n);

      // next batch: the sell order is full
      const other = await signed(f, f.sellers[1]!, await makeOrder(f, f.sellers[1]!, SIDE_SELL));
      const r2 = await settle(f, [buys[2]!, sell, other], [fill(0, 1, 1n), fill(0, 2, 1_000n)]);
      await expectRejections(f, r2, [[0, buys[2]!, sell, RejectReason.SellOverfill]]);
      expectTrades(r2, [[await addr(f.buyers[2]!), await addr(f.sellers[1]!), 1_000n, PRICE]]);
    });

    it("does not overfill an order listed twice in the same batch", async () => {
      const { f, market } = await setup();
      const buyer = f.buyers[0]!;
      const buy = await signed(f, buyer, await makeOrder(f, buyer, SIDE_BUY, { energyWh: 1_000n }));
      const sellA = await signed(f, f.sellers[0]!, await makeOrder(f, f.sellers[0]!, SIDE_SELL));
      const sellB = await signed(f, f.sellers[1]!, await makeOrder(f, f.sellers[1]!, SIDE_SELL));
      // the same signed buy order at index 0 and index 2: 600 + 600 > 1000
      const r = await settle(f, [buy, sellA, buy, sellB], [fill(0, 1, 600n), fill(2, 3, 600n)]);
      await expectRejections(f, r, [[1, buy, sellB, RejectReason.BuyOverfill]]);
      expect(r.trades).to.have.length(1);
      expect(await market.filledWh(await market.hashOrder(buy.order))).to.equal(600n);
    });
  });

  describe("signatures", () => {
    it("rejects a signature by another key (buy and sell side)", async () => {
      const { f } = await setup();
      const [b0, b1, s0, s1] = [f.buyers[0]!, f.buyers[1]!, f.sellers[0]!, f.sellers[1]!];
      const badBuy = await signed(f, b1, await makeOrder(f, b0, SIDE_BUY)); // b0's order signed by b1
      const badSell = await signed(f, s0, await makeOrder(f, s1, SIDE_SELL)); // s1's order signed by s0
      const goodBuy = await signed(f, b1, await makeOrder(f, b1, SIDE_BUY, { energyWh: 2_000n }));
      const goodSell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { energyWh: 2_000n }));
      // a signature of one order does not carry over to another order of the same maker
      const otherOrder = await makeOrder(f, b1, SIDE_BUY);
      const reused = { order: otherOrder, signature: goodBuy.signature };
      const orders = [badBuy, badSell, goodBuy, goodSell, reused];
      const r = await settle(f, orders, [fill(0, 3), fill(2, 1), fill(2, 3, 500n), fill(4, 3), fill(2, 3, 500n)]);
      await expectRejections(f, r, [
        [0, badBuy, goodSell, RejectReason.BadBuySignature],
        [1, goodBuy, badSell, RejectReason.BadSellSignature],
        [3, reused, goodSell, RejectReason.BadBuySignature],
      ]);
      expectTrades(r, [[await addr(b1), await addr(s0), 500n, PRICE], [await addr(b1), await addr(s0), 500n, PRICE]]);
    });

    it("rejects signatures under another chain id or another verifying contract", async () => {
      const { f } = await setup();
      const [b0, b1, s0, s1] = [f.buyers[0]!, f.buyers[1]!, f.sellers[0]!, f.sellers[1]!];
      const wrongChainBuy = await signWithDomain(b0, await makeOrder(f, b0, SIDE_BUY), { ...f.domain, chainId: f.domain.chainId + 1 });
      const wrongChainSell = await signWithDomain(s0, await makeOrder(f, s0, SIDE_SELL), { ...f.domain, chainId: 1 });
      const otherContract = (await f.token.getAddress()) as Address;
      const wrongContractBuy = await signWithDomain(b1, await makeOrder(f, b1, SIDE_BUY), { ...f.domain, verifyingContract: otherContract });
      const wrongContractSell = await signWithDomain(s1, await makeOrder(f, s1, SIDE_SELL), { ...f.domain, verifyingContract: otherContract });
      const wrongNameSell = await signWithDomain(s1, await makeOrder(f, s1, SIDE_SELL), { ...f.domain, name: "EnergyMarket2" });
      const goodBuy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY));
      const goodSell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL));
      const orders = [wrongChainBuy, wrongChainSell, wrongContractBuy, wrongContractSell, goodBuy, goodSell, wrongNameSell];
      const r = await settle(f, orders, [fill(0, 5), fill(4, 1), fill(2, 5), fill(4, 3), fill(4, 6), fill(4, 5)]);
      await expectRejections(f, r, [
        [0, wrongChainBuy, goodSell, RejectReason.BadBuySignature],
        [1, goodBuy, wrongChainSell, RejectReason.BadSellSignature],
        [2, wrongContractBuy, goodSell, RejectReason.BadBuySignature],
        [3, goodBuy, wrongContractSell, RejectReason.BadSellSignature],
        [4, goodBuy, wrongNameSell, RejectReason.BadSellSignature],
      ]);
      expectTrades(r, [[await addr(b0), await addr(s0), 1_000n, PRICE]]);
    });

    it("rejects a replay of fully filled orders as an overfill", async () => {
      const { f, market } = await setup();
      const [b0, s0] = [f.buyers[0]!, f.sellers[0]!];
      const buy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY));
      const sell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL));
      const r1 = await settle(f, [buy, sell], [fill(0, 1)]);
      expect(r1.trades).to.have.length(1);
      const escrow = await market.escrowedTotal();

      const freshBuy = await signed(f, f.buyers[1]!, await makeOrder(f, f.buyers[1]!, SIDE_BUY));
      const freshSell = await signed(f, f.sellers[1]!, await makeOrder(f, f.sellers[1]!, SIDE_SELL));
      const r2 = await settle(f, [buy, sell, freshBuy, freshSell], [fill(0, 1), fill(2, 1), fill(0, 3), fill(2, 3)]);
      await expectRejections(f, r2, [
        [0, buy, sell, RejectReason.BuyOverfill],
        [1, freshBuy, sell, RejectReason.SellOverfill],
        [2, buy, freshSell, RejectReason.BuyOverfill],
      ]);
      expectTrades(r2, [[await addr(f.buyers[1]!), await addr(f.sellers[1]!), 1_000n, PRICE]]);
      expect(await market.escrowedTotal()).to.equal(escrow + 250_000n);
    });
  });

  describe("cancellation", () => {
    it("cancelOrder: events, maker-only, once only, and cancelled orders are rejected", async () => {
      const { f, market } = await setup();
      const [b0, b1, s0, s1] = [f.buyers[0]!, f.buyers[1]!, f.sellers[0]!, f.sellers[1]!];
      const buy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { energyWh: 2_000n }));
      const sell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { energyWh: 2_000n }));
      const goodBuy = await signed(f, b1, await makeOrder(f, b1, SIDE_BUY));
      const goodSell = await signed(f, s1, await makeOrder(f, s1, SIDE_SELL));
      const buyHash = await market.hashOrder(buy.order);
      const sellHash = await market.hashOrder(sell.order);

      // partly filled first
      await settle(f, [buy, sell], [fill(0, 1, 500n)]);
      expect(await market.filledWh(buyHash)).to.equal(500n);

      await expect(market.connect(b1).cancelOrder(buy.order))
        .to.be.revertedWithCustomError(market, "NotOrderMaker").withArgs(buyHash, await addr(b1));
      await expect(market.connect(f.matcher).cancelOrder(sell.order))
        .to.be.revertedWithCustomError(market, "NotOrderMaker").withArgs(sellHash, await addr(f.matcher));
      expect(await market.isOrderCancelled(buy.order)).to.equal(false);

      await expect(market.connect(b0).cancelOrder(buy.order)).to.emit(market, "OrderCancelled").withArgs(buyHash, await addr(b0));
      await expect(market.connect(b0).cancelOrder(buy.order))
        .to.be.revertedWithCustomError(market, "OrderAlreadyCancelled").withArgs(buyHash);
      await expect(market.connect(s0).cancelOrder(sell.order)).to.emit(market, "OrderCancelled").withArgs(sellHash, await addr(s0));
      await expect(market.connect(s0).cancelOrder(sell.order))
        .to.be.revertedWithCustomError(market, "OrderAlreadyCancelled").withArgs(sellHash);
      expect(await market.isOrderCancelled(buy.order)).to.equal(true);
      expect(await market.isOrderCancelled(sell.order)).to.equal(true);
      expect(await market.isOrderCancelled(goodBuy.order)).to.equal(false);

      const r = await settle(f, [buy, sell, goodBuy, goodSell], [fill(0, 3, 100n), fill(2, 1, 100n), fill(2, 3, 100n)]);
      await expectRejections(f, r, [
        [0, buy, goodSell, RejectReason.BuyOrderCancelled],
        [1, goodBuy, sell, RejectReason.SellOrderCancelled],
      ]);
      expectTrades(r, [[await addr(b1), await addr(s1), 100n, PRICE]]);

      // an order can be cancelled before it was ever used
      const never = await signed(f, s1, await makeOrder(f, s1, SIDE_SELL));
      await expect(market.connect(s1).cancelOrder(never.order)).to.emit(market, "OrderCancelled").withArgs(await orderHash(f, never), await addr(s1));
      const r2 = await settle(f, [goodBuy, never], [fill(0, 1, 100n)]);
      await expectRejections(f, r2, [[0, goodBuy, never, RejectReason.SellOrderCancelled]]);
    });

    it("raiseNonceFloor: events, must rise, and orders below the floor are rejected", async () => {
      const { f, market } = await setup();
      const [b0, b1, s0, s1] = [f.buyers[0]!, f.buyers[1]!, f.sellers[0]!, f.sellers[1]!];
      await expect(market.connect(b0).raiseNonceFloor(0n)).to.be.revertedWithCustomError(market, "NonceFloorNotRaised").withArgs(0n, 0n);
      await expect(market.connect(b0).raiseNonceFloor(100n)).to.emit(market, "NonceIncremented").withArgs(await addr(b0), 100n);
      await expect(market.connect(b0).raiseNonceFloor(100n)).to.be.revertedWithCustomError(market, "NonceFloorNotRaised").withArgs(100n, 100n);
      await expect(market.connect(b0).raiseNonceFloor(99n)).to.be.revertedWithCustomError(market, "NonceFloorNotRaised").withArgs(100n, 99n);
      await expect(market.connect(s0).raiseNonceFloor(50n)).to.emit(market, "NonceIncremented").withArgs(await addr(s0), 50n);
      expect(await market.nonceFloor(await addr(b0))).to.equal(100n);
      expect(await market.nonceFloor(await addr(s0))).to.equal(50n);

      const belowBuy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { nonce: 99n }));
      const atFloorBuy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { nonce: 100n }));
      const belowSell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { nonce: 49n }));
      const atFloorSell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { nonce: 50n }));
      const otherBuy = await signed(f, b1, await makeOrder(f, b1, SIDE_BUY, { nonce: 1n })); // other makers unaffected
      const otherSell = await signed(f, s1, await makeOrder(f, s1, SIDE_SELL, { nonce: 1n }));
      expect(await market.isOrderCancelled(belowBuy.order)).to.equal(true);
      expect(await market.isOrderCancelled(atFloorBuy.order)).to.equal(false);

      const orders = [belowBuy, atFloorBuy, belowSell, atFloorSell, otherBuy, otherSell];
      const r = await settle(f, orders, [fill(0, 5), fill(1, 2), fill(1, 3, 400n), fill(4, 5, 300n)]);
      await expectRejections(f, r, [
        [0, belowBuy, otherSell, RejectReason.BuyOrderCancelled],
        [1, atFloorBuy, belowSell, RejectReason.SellOrderCancelled],
      ]);
      expectTrades(r, [[await addr(b0), await addr(s0), 400n, PRICE], [await addr(b1), await addr(s1), 300n, PRICE]]);

      // raising the floor later voids orders that were partly filled already
      await expect(market.connect(b0).raiseNonceFloor(101n)).to.emit(market, "NonceIncremented").withArgs(await addr(b0), 101n);
      const r2 = await settle(f, [atFloorBuy, atFloorSell], [fill(0, 1, 100n)]);
      await expectRejections(f, r2, [[0, atFloorBuy, atFloorSell, RejectReason.BuyOrderCancelled]]);
    });
  });

  describe("order terms", () => {
    it("rejects expired orders (expiry at or before the block time)", async () => {
      const { f } = await setup();
      const [b0, b1, s0, s1] = [f.buyers[0]!, f.buyers[1]!, f.sellers[0]!, f.sellers[1]!];
      const t = BigInt(await networkHelpers.time.latest()) + 600n;
      const expiredBuy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { expiry: t }));
      const expiredSell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { expiry: t }));
      const liveBuy = await signed(f, b1, await makeOrder(f, b1, SIDE_BUY, { expiry: t + 1n }));
      const liveSell = await signed(f, s1, await makeOrder(f, s1, SIDE_SELL, { expiry: t + 1n }));

      // one second before expiry they still fill
      await networkHelpers.time.setNextBlockTimestamp(t - 1n);
      const r0 = await settle(f, [expiredBuy, liveSell], [fill(0, 1, 100n)]);
      await expectRejections(f, r0, []);

      await networkHelpers.time.setNextBlockTimestamp(t);
      const r = await settle(f, [expiredBuy, expiredSell, liveBuy, liveSell], [fill(0, 3, 100n), fill(2, 1, 100n), fill(2, 3, 100n)]);
      await expectRejections(f, r, [
        [0, expiredBuy, liveSell, RejectReason.BuyOrderExpired],
        [1, liveBuy, expiredSell, RejectReason.SellOrderExpired],
      ]);
      expectTrades(r, [[await addr(b1), await addr(s1), 100n, PRICE]]);

      await networkHelpers.time.setNextBlockTimestamp(t + 1n);
      const r2 = await settle(f, [liveBuy, liveSell], [fill(0, 1, 100n)]);
      await expectRejections(f, r2, [[0, liveBuy, liveSell, RejectReason.BuyOrderExpired]]);
    });

    it("rejects a price below the sell limit or above the buy limit; the limits themselves fill", async () => {
      const { f } = await setup();
      const [b0, s0] = [f.buyers[0]!, f.sellers[0]!];
      const buy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { energyWh: 5_000n, limitPricePerKWh: 300_000n }));
      const sell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { energyWh: 5_000n, limitPricePerKWh: 200_000n }));
      const r = await settle(f, [buy, sell], [
        fill(0, 1, 100n, 199_999n), fill(0, 1, 100n, 200_000n), fill(0, 1, 100n, 300_001n), fill(0, 1, 100n, 300_000n), fill(0, 1, 100n, 0n),
      ]);
      await expectRejections(f, r, [
        [0, buy, sell, RejectReason.PriceOutOfRange],
        [2, buy, sell, RejectReason.PriceOutOfRange],
        [4, buy, sell, RejectReason.PriceOutOfRange],
      ]);
      expectTrades(r, [[await addr(b0), await addr(s0), 100n, 200_000n], [await addr(b0), await addr(s0), 100n, 300_000n]]);

      // crossed limits (buy limit below sell limit): nothing fits
      const lowBuy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { limitPricePerKWh: 150_000n }));
      const r2 = await settle(f, [lowBuy, sell], [fill(0, 1, 100n, 150_000n), fill(0, 1, 100n, 200_000n)]);
      await expectRejections(f, r2, [[0, lowBuy, sell, RejectReason.PriceOutOfRange], [1, lowBuy, sell, RejectReason.PriceOutOfRange]]);
    });

    it("rejects fills across zones", async () => {
      const { f } = await setup();
      const zb = f.zoneBBuyer;
      const [b0, s0] = [f.buyers[0]!, f.sellers[0]!];
      const buyB = await signed(f, zb, await makeOrder(f, zb, SIDE_BUY, { zone: ZONE_B }));
      const sellA = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL));
      const buyA = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY));
      const sellB = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { zone: ZONE_B })); // seller registered in A
      const r = await settle(f, [buyB, sellA, buyA, sellB], [fill(0, 1), fill(2, 3), fill(2, 1, 400n), fill(0, 3)]);
      await expectRejections(f, r, [
        [0, buyB, sellA, RejectReason.ZoneMismatch],
        [1, buyA, sellB, RejectReason.ZoneMismatch],
        // same zone in both orders, but the seller's registered zone is A
        [3, buyB, sellB, RejectReason.SellerInactive],
      ]);
      expectTrades(r, [[await addr(b0), await addr(s0), 400n, PRICE]]);
    });

    it("rejects fills whose orders name different delivery windows, or an empty window", async () => {
      const { f } = await setup();
      const [b0, s0, s1] = [f.buyers[0]!, f.sellers[0]!, f.sellers[1]!];
      const buy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { energyWh: 5_000n }));
      const laterStart = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { deliveryStart: f.deliveryStart + INTERVAL, deliveryEnd: f.deliveryEnd + INTERVAL }));
      const laterEnd = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { deliveryEnd: f.deliveryEnd + 1n }));
      const earlierStart = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { deliveryStart: f.deliveryStart - 1n }));
      const good = await signed(f, s1, await makeOrder(f, s1, SIDE_SELL));
      const emptyBuy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { deliveryEnd: f.deliveryStart }));
      const emptySell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { deliveryEnd: f.deliveryStart }));
      const invertedBuy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { deliveryStart: f.deliveryEnd, deliveryEnd: f.deliveryStart }));
      const invertedSell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { deliveryStart: f.deliveryEnd, deliveryEnd: f.deliveryStart }));
      const orders = [buy, laterStart, laterEnd, earlierStart, good, emptyBuy, emptySell, invertedBuy, invertedSell];
      const r = await settle(f, orders, [fill(0, 1), fill(0, 2), fill(0, 3), fill(0, 4), fill(5, 6), fill(7, 8)]);
      await expectRejections(f, r, [
        [0, buy, laterStart, RejectReason.WindowMismatch],
        [1, buy, laterEnd, RejectReason.WindowMismatch],
        [2, buy, earlierStart, RejectReason.WindowMismatch],
        [4, emptyBuy, emptySell, RejectReason.WindowMismatch],
        [5, invertedBuy, invertedSell, RejectReason.WindowMismatch],
      ]);
      expectTrades(r, [[await addr(b0), await addr(s1), 1_000n, PRICE]]);
    });

    it("rejects side mismatches, invalid indexes and zero energy", async () => {
      const { f } = await setup();
      const [b0, b1, s0, s1] = [f.buyers[0]!, f.buyers[1]!, f.sellers[0]!, f.sellers[1]!];
      const buy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY));
      const buy2 = await signed(f, b1, await makeOrder(f, b1, SIDE_BUY));
      const sell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL));
      const sell2 = await signed(f, s1, await makeOrder(f, s1, SIDE_SELL));
      const side2 = await signed(f, s1, await makeOrder(f, s1, 2)); // neither side
      const orders = [buy, sell, buy2, sell2, side2]; // 5 orders
      const r = await settle(f, orders, [
        fill(1, 0), // swapped
        fill(0, 2), // two buys
        fill(3, 1), // two sells
        fill(0, 0), // same order on both sides
        fill(0, 4), // side 2 as seller
        fill(5, 1), // buy index out of range
        fill(0, 5), // sell index out of range
        fill(7, 9), // both out of range
        fill(0, 1, 0n), // zero energy
        fill(2, 3, 500n), // good
      ]);
      await expectRejections(f, r, [
        [0, sell, buy, RejectReason.SideMismatch],
        [1, buy, buy2, RejectReason.SideMismatch],
        [2, sell2, sell, RejectReason.SideMismatch],
        [3, buy, buy, RejectReason.SideMismatch],
        [4, buy, side2, RejectReason.SideMismatch],
        [5, null, sell, RejectReason.InvalidIndex],
        [6, buy, null, RejectReason.InvalidIndex],
        [7, null, null, RejectReason.InvalidIndex],
        [8, buy, sell, RejectReason.ZeroEnergy],
      ]);
      expectTrades(r, [[await addr(b1), await addr(s1), 500n, PRICE]]);
    });

    it("rejects a self trade", async () => {
      const { f, token, marketAddress } = await setup();
      const s0 = f.sellers[0]!;
      // the seller is active and owns sources, and can pay: only the self trade check stops it
      await token.faucet(await addr(s0), 1_000n * TEUR);
      await token.connect(s0).approve(marketAddress, ethers.MaxUint256);
      const selfBuy = await signed(f, s0, await makeOrder(f, s0, SIDE_BUY));
      const selfSell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL));
      const otherSell = await signed(f, f.sellers[1]!, await makeOrder(f, f.sellers[1]!, SIDE_SELL));
      const r = await settle(f, [selfBuy, selfSell, otherSell], [fill(0, 1), fill(0, 2)]);
      await expectRejections(f, r, [[0, selfBuy, selfSell, RejectReason.SelfTrade]]);
      expectTrades(r, [[await addr(s0), await addr(f.sellers[1]!), 1_000n, PRICE]]);
    });

    it("rejects an order exceeding itself (energy larger than the order, both sides)", async () => {
      const { f } = await setup();
      const [b0, s0] = [f.buyers[0]!, f.sellers[0]!];
      const buy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { energyWh: 1_000n }));
      const bigSell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { energyWh: 5_000n }));
      const bigBuy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { energyWh: 5_000n }));
      const sell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { energyWh: 1_000n }));
      const r = await settle(f, [buy, bigSell, bigBuy, sell], [fill(0, 1, 1_001n), fill(2, 3, 1_001n), fill(2, 3, 1_000n)]);
      await expectRejections(f, r, [[0, buy, bigSell, RejectReason.BuyOverfill], [1, bigBuy, sell, RejectReason.SellOverfill]]);
      expect(r.trades).to.have.length(1);
    });
  });

  describe("parties", () => {
    it("rejects suspended or unregistered buyers and sellers; reactivation lets them trade again", async () => {
      const { f, registry, token, marketAddress } = await setup();
      const [b0, b1, s0, s1] = [f.buyers[0]!, f.buyers[1]!, f.sellers[0]!, f.sellers[1]!];
      const outsider = f.outsider;
      await token.faucet(await addr(outsider), 1_000n * TEUR);
      await token.connect(outsider).approve(marketAddress, ethers.MaxUint256);
      await registry.setStatus(await addr(b0), 2); // Suspended
      await registry.setStatus(await addr(s0), 2);

      const suspendedBuy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { energyWh: 3_000n }));
      const suspendedSell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { energyWh: 3_000n }));
      const strangerBuy = await signed(f, outsider, await makeOrder(f, outsider, SIDE_BUY));
      const strangerSell = await signed(f, outsider, await makeOrder(f, outsider, SIDE_SELL));
      const goodBuy = await signed(f, b1, await makeOrder(f, b1, SIDE_BUY, { energyWh: 3_000n }));
      const goodSell = await signed(f, s1, await makeOrder(f, s1, SIDE_SELL, { energyWh: 3_000n }));
      // zone-B buyer signing a zone-A order: registered, active, but not in that zone
      const wrongZoneBuy = await signed(f, f.zoneBBuyer, await makeOrder(f, f.zoneBBuyer, SIDE_BUY));
      const orders = [suspendedBuy, suspendedSell, strangerBuy, strangerSell, goodBuy, goodSell, wrongZoneBuy];
      const r = await settle(f, orders, [fill(0, 5), fill(4, 1), fill(2, 5), fill(4, 3), fill(6, 5), fill(4, 5)]);
      await expectRejections(f, r, [
        [0, suspendedBuy, goodSell, RejectReason.BuyerInactive],
        [1, goodBuy, suspendedSell, RejectReason.SellerInactive],
        [2, strangerBuy, goodSell, RejectReason.BuyerInactive],
        [3, goodBuy, strangerSell, RejectReason.SellerInactive],
        [4, wrongZoneBuy, goodSell, RejectReason.BuyerInactive],
      ]);
      expectTrades(r, [[await addr(b1), await addr(s1), 1_000n, PRICE]]);

      await registry.setStatus(await addr(b0), 1);
      await registry.setStatus(await addr(s0), 1);
      const r2 = await settle(f, orders, [fill(0, 1, 700n)]);
      await expectRejections(f, r2, []);
      expectTrades(r2, [[await addr(b0), await addr(s0), 700n, PRICE]]);
    });

    it("rejects a seller selling a source it has not registered", async () => {
      const { f, registry } = await setup();
      const [b0, s0] = [f.buyers[0]!, f.sellers[0]!];
      // sellers[0] holds meter SM-001; it now owns only solar
      await registry.updateProsumer(await addr(s0), meterId(1), ZONE_A, 10_000n, 10_000n, sourceMask(["solar"]));
      const buy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { energyWh: 5_000n }));
      const wind = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { source: EnergySource.wind }));
      const storage = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { source: EnergySource.storage }));
      const none = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { source: EnergySource.none }));
      const invalid = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { source: 9 }));
      const solar = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { source: EnergySource.solar }));
      const r = await settle(f, [buy, wind, storage, none, invalid, solar], [fill(0, 1), fill(0, 2), fill(0, 3), fill(0, 4), fill(0, 5)]);
      await expectRejections(f, r, [
        [0, buy, wind, RejectReason.SourceNotRegistered],
        [1, buy, storage, RejectReason.SourceNotRegistered],
        [2, buy, none, RejectReason.SourceNotRegistered],
        [3, buy, invalid, RejectReason.SourceNotRegistered],
      ]);
      expectTrades(r, [[await addr(b0), await addr(s0), 1_000n, PRICE]]);
      expect(r.trades[0]!.trade.source).to.equal(EnergySource.solar);
    });

    it("applies the buyer's acceptedSources mask (0 = any)", async () => {
      const { f } = await setup();
      const [b0, s0] = [f.buyers[0]!, f.sellers[0]!];
      const windOnly = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { energyWh: 5_000n, acceptedSources: sourceMask(["wind"]) }));
      const solarOrWind = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { energyWh: 5_000n, acceptedSources: sourceMask(["solar", "wind"]) }));
      const any = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { energyWh: 5_000n, acceptedSources: 0 }));
      const storageOnly = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { energyWh: 5_000n, acceptedSources: sourceMask(["storage"]) }));
      const solar = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { energyWh: 5_000n, source: EnergySource.solar }));
      const wind = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { energyWh: 5_000n, source: EnergySource.wind }));
      const orders = [windOnly, solarOrWind, any, storageOnly, solar, wind];
      const r = await settle(f, orders, [fill(0, 4, 100n), fill(0, 5, 101n), fill(1, 4, 102n), fill(2, 4, 103n), fill(3, 4, 104n), fill(3, 5, 105n)]);
      await expectRejections(f, r, [
        [0, windOnly, solar, RejectReason.SourceNotAccepted],
        [4, storageOnly, solar, RejectReason.SourceNotAccepted],
        [5, storageOnly, wind, RejectReason.SourceNotAccepted],
      ]);
      expect(r.trades.map((t) => [t.trade.energyWh, t.trade.source])).to.deep.equal([
        [101n, EnergySource.wind], [102n, EnergySource.solar], [103n, EnergySource.solar],
      ]);
    });

    it("applies minSellerReputationBps: a new seller counts as 10000 bps, a short delivery lowers it", async () => {
      const { f, market } = await setup();
      const [b0, b1, s0, s1] = [f.buyers[0]!, f.buyers[1]!, f.sellers[0]!, f.sellers[1]!];
      expect(await market.NEW_SELLER_REPUTATION_BPS()).to.equal(10_000);
      expect(await market.sellerReputationBps(await addr(s0))).to.equal(10_000n);
      // a new seller passes even the strictest requirement
      const strict = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { minSellerReputationBps: 10_000 }));
      const first = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL));
      const r1 = await settle(f, [strict, first], [fill(0, 1)]);
      await expectRejections(f, r1, []);
      const [t] = r1.trades;

      // 800 of 1000 Wh delivered: outside the 5% tolerance, reputation 8000 bps
      await networkHelpers.time.increaseTo(f.deliveryEnd);
      await expect(market.connect(f.oracle).reportDelivery(t!.trade, t!.proof, 800n, EVIDENCE))
        .to.emit(market, "DeliveryConfirmed").withArgs(t!.trade.tradeId, 800n, EVIDENCE, false);
      expect(await market.tradeStatus(t!.trade.tradeId)).to.equal(TradeStatus.Proposed);
      expect(await market.sellerRecord(await addr(s0))).to.deep.equal([1_000n, 800n]);
      expect(await market.sellerReputationBps(await addr(s0))).to.equal(8_000n);

      const w = await laterWindow();
      const need8001 = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { ...w, minSellerReputationBps: 8_001 }));
      const need8000 = await signed(f, b1, await makeOrder(f, b1, SIDE_BUY, { ...w, minSellerReputationBps: 8_000 }));
      const needNothing = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY, { ...w, minSellerReputationBps: 0 }));
      const sell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { ...w, energyWh: 3_000n }));
      const freshSell = await signed(f, s1, await makeOrder(f, s1, SIDE_SELL, { ...w }));
      const orders = [need8001, need8000, needNothing, sell, freshSell];
      const r2 = await settle(f, orders, [fill(0, 3, 100n), fill(1, 3, 200n), fill(2, 3, 300n), fill(0, 4, 400n)]);
      await expectRejections(f, r2, [[0, need8001, sell, RejectReason.ReputationTooLow]]);
      expectTrades(r2, [
        [await addr(b1), await addr(s0), 200n, PRICE],
        [await addr(b0), await addr(s0), 300n, PRICE],
        [await addr(b0), await addr(s1), 400n, PRICE],
      ]);
    });

    it("rejects fills the buyer cannot fund (balance or allowance), per-batch budget included", async () => {
      const { f, registry, token, market, marketAddress } = await setup();
      const [b0, b1, s0] = [f.buyers[0]!, f.buyers[1]!, f.sellers[0]!];
      const poor = f.outsider;
      await registry.registerProsumer(await addr(poor), meterId(90), ZONE_A, 1_000n, 8_000n, 0); // imports 2,000 Wh a window
      await token.faucet(await addr(poor), 300_000n); // 0.30 tEUR
      await token.connect(poor).approve(marketAddress, ethers.MaxUint256);
      await token.connect(b1).approve(marketAddress, 249_999n); // allowance just short of one fill

      const poorBuy = await signed(f, poor, await makeOrder(f, poor, SIDE_BUY, { energyWh: 5_000n }));
      const stingyBuy = await signed(f, b1, await makeOrder(f, b1, SIDE_BUY));
      const goodBuy = await signed(f, b0, await makeOrder(f, b0, SIDE_BUY));
      const sell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { energyWh: 10_000n }));
      const orders = [poorBuy, stingyBuy, goodBuy, sell];
      const r = await settle(f, orders, [
        fill(0, 3, 1_000n), // 250_000 of 300_000: fits
        fill(0, 3, 1_000n), // another 250_000: only 50_000 left
        fill(1, 3, 1_000n), // 250_000 > allowance 249_999
        fill(2, 3, 1_000n), // good
        fill(0, 3, 200n), // 50_000: exactly the rest of the budget
        fill(0, 3, 4n), // 1 unit: budget exhausted
      ]);
      await expectRejections(f, r, [
        [1, poorBuy, sell, RejectReason.InsufficientFunds],
        [2, stingyBuy, sell, RejectReason.InsufficientFunds],
        [5, poorBuy, sell, RejectReason.InsufficientFunds],
      ]);
      expectTrades(r, [
        [await addr(poor), await addr(s0), 1_000n, PRICE],
        [await addr(b0), await addr(s0), 1_000n, PRICE],
        [await addr(poor), await addr(s0), 200n, PRICE],
      ]);
      expect(await token.balanceOf(poor)).to.equal(0n);
      expect(await market.escrowedTotal()).to.equal(550_000n);
      // a fill worth 0 tokens (9 Wh at 100 units/kWh rounds down to 0) needs no budget
      const cheapBuy = await signed(f, poor, await makeOrder(f, poor, SIDE_BUY, { limitPricePerKWh: 100n }));
      const cheapSell = await signed(f, s0, await makeOrder(f, s0, SIDE_SELL, { limitPricePerKWh: 100n }));
      const r2 = await settle(f, [cheapBuy, cheapSell], [fill(0, 1, 9n, 100n), fill(0, 1, 10n, 100n)]);
      await expectRejections(f, r2, [[1, cheapBuy, cheapSell, RejectReason.InsufficientFunds]]);
      expect(r2.trades.map((t) => t.trade.amount)).to.deep.equal([0n]);
    });
  });

  describe("access and pause", () => {
    it("only the MATCHER settles", async () => {
      const { f, market } = await setup();
      const buy = await signed(f, f.buyers[0]!, await makeOrder(f, f.buyers[0]!, SIDE_BUY));
      const sell = await signed(f, f.sellers[0]!, await makeOrder(f, f.sellers[0]!, SIDE_SELL));
      const role = await market.MATCHER_ROLE();
      for (const caller of [f.admin, f.buyers[0]!, f.sellers[0]!, f.oracle]) {
        await expect(market.connect(caller).settleBatch([buy, sell], [fill(0, 1)]))
          .to.be.revertedWithCustomError(market, "AccessControlUnauthorizedAccount").withArgs(await addr(caller), role);
      }
      await market.grantRole(role, await addr(f.outsider));
      await expect(market.connect(f.outsider).settleBatch([buy, sell], [fill(0, 1)])).to.emit(market, "TradeExecuted");
    });

    it("reverts while paused and settles after unpause", async () => {
      const { f, market } = await setup();
      const buy = await signed(f, f.buyers[0]!, await makeOrder(f, f.buyers[0]!, SIDE_BUY));
      const sell = await signed(f, f.sellers[0]!, await makeOrder(f, f.sellers[0]!, SIDE_SELL));
      await market.connect(f.pauser).pause();
      await expect(market.connect(f.matcher).settleBatch([buy, sell], [fill(0, 1)])).to.be.revertedWithCustomError(market, "EnforcedPause");
      // order management still works while paused
      await expect(market.connect(f.buyers[0]!).raiseNonceFloor(1n)).to.emit(market, "NonceIncremented");
      await market.connect(f.pauser).unpause();
      const r = await settle(f, [buy, sell], [fill(0, 1)]);
      await expectRejections(f, r, []);
      expect(r.trades).to.have.length(1);
    });

    it("an all-rejected batch writes no trades but still uses up its batch id", async () => {
      const { f, market } = await setup();
      const buy = await signed(f, f.buyers[0]!, await makeOrder(f, f.buyers[0]!, SIDE_BUY));
      const sell = await signed(f, f.sellers[0]!, await makeOrder(f, f.sellers[0]!, SIDE_SELL));
      const tradeId = await market.nextTradeId();
      const batchId = await market.nextBatchId();
      const [retBatchId, executed] = await market.connect(f.matcher).settleBatch.staticCall([buy, sell], [fill(0, 1, 0n)]);
      // IEnergyMarket.settleBatch: "@return batchId This settlement's id, used even when every
      // fill was rejected so that FillRejected events never share an id with another settlement's trades"
      expect(retBatchId).to.equal(batchId);
      expect(executed).to.equal(0n);
      const r = await settle(f, [buy, sell], [fill(0, 1, 0n)]);
      expect(r.batchId).to.equal(batchId);
      await expectRejections(f, r, [[0, buy, sell, RejectReason.ZeroEnergy]]);
      expect(await market.nextBatchId()).to.equal(batchId + 1n);
      await expect(market.connect(f.matcher).settleBatch([buy, sell], [fill(0, 1, 0n)])).not.to.emit(market, "BatchSettled");
      expect(await market.batchRoot(batchId)).to.equal(ethers.ZeroHash);
      expect(await market.nextTradeId()).to.equal(tradeId);
      expect(await market.escrowedTotal()).to.equal(0n);
      expect(await market.filledWh(await market.hashOrder(buy.order))).to.equal(0n);
      // the next settlement that executes gets a fresh id, not the rejected batch's
      const r2 = await settle(f, [buy, sell], [fill(0, 1)]);
      expect(r2.batchId).to.equal(batchId + 2n);
      expect(r2.trades[0]!.trade.batchId).to.equal(batchId + 2n);
    });
  });

  describe("ERC-1271 smart wallets", () => {
    async function walletSetup() {
      const s = await setup();
      const { f, registry, token, marketAddress } = s;
      const owner = (await ethers.getSigners())[19]!;
      const wallet = (await ethers.deployContract("SmartWalletMock", [await addr(owner)])) as unknown as SmartWalletMock;
      const walletAddress = (await wallet.getAddress()) as Address;
      await registry.registerProsumer(walletAddress, meterId(77), ZONE_A, 5_000n, 5_000n, sourceMask(["solar", "wind"]));
      await token.faucet(walletAddress, 1_000n * TEUR);
      await wallet.connect(owner).execute(await token.getAddress(), token.interface.encodeFunctionData("approve", [marketAddress, ethers.MaxUint256]));
      expect(await token.allowance(walletAddress, marketAddress)).to.equal(ethers.MaxUint256);
      /** An order made by the wallet, signed by `signer` (the owner unless stated). */
      async function walletOrder(side: number, overrides: Partial<Order> = {}, signer: Signer = owner): Promise<SignedOrder> {
        const order = { ...(await makeOrder(f, owner, side, overrides)), maker: walletAddress };
        return { order, signature: (await signer.signTypedData(f.domain, EIP712_TYPES, order)) as Hex };
      }
      return { ...s, owner, wallet, walletAddress, walletOrder };
    }

    it("settles buy and sell orders of a wallet signed by its owner key", async () => {
      const { f, token, market, marketAddress, walletAddress, walletOrder } = await walletSetup();
      const wBuy = await walletOrder(SIDE_BUY);
      const wSell = await walletOrder(SIDE_SELL, { source: EnergySource.wind });
      const sell = await signed(f, f.sellers[0]!, await makeOrder(f, f.sellers[0]!, SIDE_SELL));
      const buy = await signed(f, f.buyers[0]!, await makeOrder(f, f.buyers[0]!, SIDE_BUY));
      const before = await token.balanceOf(walletAddress);
      const r = await settle(f, [wBuy, sell, buy, wSell], [fill(0, 1, 800n), fill(2, 3, 600n)]);
      await expectRejections(f, r, []);
      expectTrades(r, [[walletAddress, await addr(f.sellers[0]!), 800n, PRICE], [await addr(f.buyers[0]!), walletAddress, 600n, PRICE]]);
      expect(await token.balanceOf(walletAddress)).to.equal(before - 200_000n);
      expect(await token.balanceOf(marketAddress)).to.equal(200_000n + 150_000n);
      expect(await market.filledWh(await market.hashOrder(wBuy.order))).to.equal(800n);
    });

    it("rejects the wallet's orders once it stops accepting, or when signed by another key", async () => {
      const { f, owner, wallet, walletOrder, walletAddress } = await walletSetup();
      const wBuy = await walletOrder(SIDE_BUY);
      const wSell = await walletOrder(SIDE_SELL);
      const strangerBuy = await walletOrder(SIDE_BUY, {}, f.buyers[2]!);
      const sell = await signed(f, f.sellers[0]!, await makeOrder(f, f.sellers[0]!, SIDE_SELL));
      const buy = await signed(f, f.buyers[0]!, await makeOrder(f, f.buyers[0]!, SIDE_BUY));
      const r0 = await settle(f, [strangerBuy, sell], [fill(0, 1, 100n)]);
      await expectRejections(f, r0, [[0, strangerBuy, sell, RejectReason.BadBuySignature]]);

      await expect(wallet.connect(f.buyers[0]!).setAccepting(false)).to.be.revertedWithCustomError(wallet, "NotOwner").withArgs(await addr(f.buyers[0]!));
      await wallet.connect(owner).setAccepting(false);
      const r = await settle(f, [wBuy, sell, buy, wSell], [fill(0, 1, 100n), fill(2, 3, 100n), fill(2, 1, 100n)]);
      await expectRejections(f, r, [
        [0, wBuy, sell, RejectReason.BadBuySignature],
        [1, buy, wSell, RejectReason.BadSellSignature],
      ]);
      expectTrades(r, [[await addr(f.buyers[0]!), await addr(f.sellers[0]!), 100n, PRICE]]);

      await wallet.connect(owner).setAccepting(true);
      const r2 = await settle(f, [wBuy, sell], [fill(0, 1, 100n)]);
      await expectRejections(f, r2, []);
      expectTrades(r2, [[walletAddress, await addr(f.sellers[0]!), 100n, PRICE]]);
    });
  });

  describe("TypeScript client agreement", () => {
    it("hashOrder() (viem) equals market.hashOrder() and depends on every field and the domain", async () => {
      const { f, market, marketAddress } = await setup();
      const domain = marketDomain(f.domain.chainId, marketAddress);
      const base = await makeOrder(f, f.buyers[0]!, SIDE_BUY, { acceptedSources: 6, minSellerReputationBps: 9_000, nonce: 2n ** 200n });
      const variants: Order[] = [
        base,
        await makeOrder(f, f.sellers[0]!, SIDE_SELL, { source: EnergySource.mixed, limitPricePerKWh: 2n ** 127n, energyWh: 2n ** 64n - 1n }),
        { ...base, zone: ZONE_B }, { ...base, expiry: base.expiry + 1n }, { ...base, deliveryStart: base.deliveryStart + 1n },
        { ...base, deliveryEnd: base.deliveryEnd + 1n }, { ...base, energyWh: base.energyWh + 1n },
        { ...base, limitPricePerKWh: base.limitPricePerKWh + 1n }, { ...base, acceptedSources: 2 },
        { ...base, minSellerReputationBps: 9_001 }, { ...base, nonce: base.nonce + 1n }, { ...base, side: SIDE_SELL },
        { ...base, source: 1 }, { ...base, maker: (await addr(f.buyers[1]!)) },
      ];
      const seen = new Set<string>();
      for (const o of variants) {
        const h = tsHashOrder(o, domain);
        expect(h).to.equal(await market.hashOrder(o));
        seen.add(h);
      }
      expect(seen.size).to.equal(variants.length);
      expect(tsHashOrder(base, marketDomain(f.domain.chainId + 1, marketAddress))).not.to.equal(await market.hashOrder(base));
    });

    it("signOrder() (viem privateKeyToAccount) yields signatures the market accepts", async () => {
      const { f, market, registry, token, marketAddress } = await setup();
      const buyerAccount = privateKeyToAccount(HARDHAT_KEY_0);
      const sellerAccount = privateKeyToAccount(HARDHAT_KEY_1);
      expect(buyerAccount.address).to.equal(await addr(f.admin)); // signers[0]
      expect(sellerAccount.address).to.equal(await addr(f.matcher)); // signers[1]
      // 4 kW connections: 1,000 Wh in the 15-minute window, room for the 700 Wh traded
      await registry.registerProsumer(buyerAccount.address, meterId(80), ZONE_A, 4_000n, 4_000n, 0);
      await registry.registerProsumer(sellerAccount.address, meterId(81), ZONE_A, 4_000n, 4_000n, sourceMask(["storage"]));
      await token.faucet(buyerAccount.address, 100n * TEUR);
      await token.connect(f.admin).approve(marketAddress, ethers.MaxUint256);
      const domain = marketDomain(f.domain.chainId, marketAddress);

      const buyOrder = { ...(await makeOrder(f, f.admin, SIDE_BUY)), maker: buyerAccount.address };
      const sellOrder = { ...(await makeOrder(f, f.matcher, SIDE_SELL, { source: EnergySource.storage })), maker: sellerAccount.address };
      const buy = { order: buyOrder, signature: await tsSignOrder(buyerAccount, buyOrder, domain) };
      const sell = { order: sellOrder, signature: await tsSignOrder(sellerAccount, sellOrder, domain) };
      // the same signature ethers produces (deterministic RFC 6979 ECDSA)
      expect(buy.signature).to.equal(await f.admin.signTypedData(f.domain, EIP712_TYPES, buyOrder));
      // signed by viem under a foreign domain: rejected
      const foreign = { order: buyOrder, signature: await tsSignOrder(buyerAccount, buyOrder, marketDomain(1, marketAddress)) };

      const r = await settle(f, [buy, sell, foreign], [fill(2, 1, 300n), fill(0, 1, 700n)]);
      await expectRejections(f, r, [[0, foreign, sell, RejectReason.BadBuySignature]]);
      expectTrades(r, [[buyerAccount.address, sellerAccount.address, 700n, PRICE]]);
      expect(await market.filledWh(tsHashOrder(buyOrder, domain))).to.equal(700n);
    });

    it("merkleRoot() over tradeLeaf() equals batchRoot(); tradeLeaf() equals market.tradeLeaf(); proofs verify", async () => {
      const { f, market } = await setup();
      for (const n of [1, 2, 3, 5, 7]) {
        const orders: SignedOrder[] = [];
        const fills: Fill[] = [];
        for (let i = 0; i < n; i++) {
          const b = f.buyers[i % f.buyers.length]!;
          const s = f.sellers[(i * 2) % f.sellers.length]!;
          orders.push(await signed(f, b, await makeOrder(f, b, SIDE_BUY)));
          orders.push(await signed(f, s, await makeOrder(f, s, SIDE_SELL, { source: 1 + (i % 4), limitPricePerKWh: 100_000n })));
          fills.push(fill(2 * i, 2 * i + 1, BigInt(100 + i), 100_000n + BigInt(i) * 1_111n));
        }
        const r = await settle(f, orders, fills);
        await expectRejections(f, r, []);
        expect(r.trades).to.have.length(n);
        const trades = r.trades.map((t) => t.trade);
        for (const t of trades) expect(await market.tradeLeaf(t)).to.equal(tradeLeaf(t));
        expect(merkleRoot(trades.map(tradeLeaf))).to.equal(await market.batchRoot(r.batchId));
        // every proof is accepted on-chain: release each trade early by its buyer
        for (const { trade, proof } of r.trades) {
          const signer = await ethers.getSigner(trade.buyer);
          await expect(market.connect(signer).releaseEarly(trade, proof)).to.emit(market, "EarlyReleased").withArgs(trade.tradeId, trade.buyer);
          expect(await market.tradeStatus(trade.tradeId)).to.equal(TradeStatus.Settled);
        }
        // a wrong proof is refused
        if (n > 1) {
          const [a, b] = r.trades;
          await expect(market.connect(f.oracle).reportDelivery(a!.trade, b!.proof, 1n, EVIDENCE))
            .to.be.revertedWithCustomError(market, "InvalidTradeProof").withArgs(a!.trade.tradeId, a!.trade.batchId);
        }
      }
    });
  });
});
