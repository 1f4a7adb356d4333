import { expect } from "chai";
import { deployMarket, makeOrder, signed, tradesFromReceipt, networkHelpers, SIDE_BUY, SIDE_SELL, TradeStatus } from "./fixtures.js";

describe("smoke", () => {
  it("settles one fill and confirms delivery", async () => {
    const f = await networkHelpers.loadFixture(deployMarket);
    const buy = await signed(f, f.buyers[0]!, await makeOrder(f, f.buyers[0]!, SIDE_BUY));
    const sell = await signed(f, f.sellers[0]!, await makeOrder(f, f.sellers[0]!, SIDE_SELL));
    const tx = await f.market.connect(f.matcher).settleBatch([buy, sell], [{ buyIndex: 0, sellIndex: 1, energyWh: 1000n, pricePerKWh: 250_000n }]);
    const receipt = await tx.wait();
    console.log("gas", receipt!.gasUsed);
    const [t] = tradesFromReceipt(f, receipt);
    expect(t!.trade.amount).to.equal(250_000n);
    await networkHelpers.time.increaseTo(f.deliveryEnd);
    await f.market.connect(f.oracle).reportDelivery(t!.trade, t!.proof, 1000n, "0x" + "11".repeat(32));
    expect(await f.market.tradeStatus(t!.trade.tradeId)).to.equal(TradeStatus.Settled);
  });
});
