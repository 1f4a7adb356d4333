// Settlement exactly once and never stuck, on the embedded chain. A crash between a batch's
// row and its fills' "settling" write, or a store that kept the write but lost the row, must not
// settle a fill twice nor leave it stuck; a broadcast or receipt lookup lost on the wire must be
// retried (same signed bytes) until the chain has the batch, with no restart. The fills are
// capacity-capped partial fills: a second copy of one would pass the contract's overfill check,
// so only the settler stands between it and a buyer paying twice.
import { expect } from "chai";
import { getAddress, type Hex } from "viem";
import type { Engine } from "../../engine/createEngine.js";
import { createSettler, type SettlerDeps } from "../../engine/settlement/createSettler.js";
import {
  chainTrades, clientOver, droppingTransport, filledOnChain, matcherWallet, orderFor, settlementEngine, startSettlementChain, type SettlementChain,
} from "./settlementHarness.js";

describe("settlement exactly once, and never stuck", function () {
  this.timeout(60_000);
  let s: SettlementChain;
  let nextInterval = 0;

  const settlers: { stop(): Promise<void> }[] = [];

  before(async () => {
    s = await startSettlementChain();
    const block = await s.client.getBlock();
    nextInterval = (Math.floor(Number(block.timestamp) / 900) + 8) * 900;
  });
  afterEach(async () => {
    for (const settler of settlers.splice(0)) await settler.stop();
  });
  after(async () => {
    await s?.close();
  });

  const chainNow = async () => Number((await s.client.getBlock()).timestamp);

  /** A fresh book: a 2 kWh sell and a 2 kWh buy meet under the 1 kWh cap, a 1,000 Wh fill
   *  that leaves both orders open with 1,000 Wh each. */
  async function cappedFill(engine: Engine) {
    const at = nextInterval;
    nextInterval += 900;
    const [seller] = s.sellers;
    const [buyer] = s.buyers;
    const t = await chainNow();
    const sell = orderFor(seller!, 1, 2_000, 190_000, at);
    const buy = orderFor(buyer!, 0, 2_000, 250_000, at);
    const sold = await engine.placeOrder({ order: sell, signature: s.sign(seller!, sell) }, t);
    const bought = await engine.placeOrder({ order: buy, signature: s.sign(buyer!, buy) }, t);
    expect(bought.fills.map((f) => f.energyWh)).to.deep.equal([1_000]);
    expect([engine.getOrder(sold.orderId)!.status, bought.status]).to.deep.equal(["open", "open"]);
    return { at, fillId: bought.fills[0]!.fillId, buyId: bought.orderId, sellId: sold.orderId, buyer: buyer!, seller: seller! };
  }

  function settlerFor(engine: Engine, db: SettlerDeps["db"], extra: Partial<SettlerDeps> = {}) {
    const settler = createSettler({ engine, db, publicClient: s.client, walletClient: matcherWallet(s), market: s.contracts.market, retry: { minMs: 20, maxMs: 200 }, ...extra });
    settlers.push(settler);
    return settler;
  }

  /** The chain's trades in the book at `at`, as [buyer, seller, Wh]. */
  async function tradesIn(at: number) {
    return (await chainTrades(s.client, s.contracts.market)).filter((t) => t.deliveryStart === BigInt(at)).map((t) => [t.buyer, t.seller, t.energyWh]);
  }

  async function expectSettledOnce(engine: Engine, fill: Awaited<ReturnType<typeof cappedFill>>) {
    expect(engine.state.fills.get(fill.fillId)!.status).to.equal("executed");
    expect(await tradesIn(fill.at)).to.deep.equal([[getAddress(fill.buyer.address), getAddress(fill.seller.address), 1_000n]]);
    expect(await filledOnChain(s.client, s.contracts.market, fill.buyId)).to.equal(1_000n);
    expect(await filledOnChain(s.client, s.contracts.market, fill.sellId)).to.equal(1_000n);
    expect(engine.getOrder(fill.buyId)!.filledWh).to.equal(1_000);
  }

  it("a crash between a batch's row and its fills' settling write: the restart claims the fills for that batch, and the capped fill settles once", async () => {
    const { engine, opened } = await settlementEngine(s);
    const fill = await cappedFill(engine);
    // The process dies right after the row is written: the "settling" operation never is.
    const dying: Engine = { ...engine, markSettling: async () => Promise.reject(new Error("killed after the batch row")) };
    const crashed = settlerFor(dying, opened.db);
    await crashed.init();
    await crashed.flush().catch(() => undefined);
    await crashed.stop();
    const [row] = await opened.db.selectFrom("engine_batches").selectAll().execute();
    expect(row!.status).to.equal("sent");

    // Restart: the log says "pending", the store holds a signed transaction for the same fill.
    const { engine: restarted } = await settlementEngine(s, opened);
    expect(restarted.state.fills.get(fill.fillId)!.status).to.equal("pending");
    const settler = settlerFor(restarted, opened.db);
    await settler.init();
    await settler.flush();
    await settler.stop();

    // Settled by the stored transaction, and only by it.
    await expectSettledOnce(restarted, fill);
    expect([restarted.state.fills.get(fill.fillId)!.batchId, restarted.state.fills.get(fill.fillId)!.txHash]).to.deep.equal([Number(row!.id), row!.tx_hash]);
    const rows = await opened.db.selectFrom("engine_batches").select(["id", "status"]).execute();
    expect(rows.map((r) => r.status)).to.deep.equal(["done"]);
  });

  it("fills settling under a batch whose row is missing were never broadcast: the restart queues them again and they settle once", async () => {
    const { engine, opened } = await settlementEngine(s);
    const fill = await cappedFill(engine);
    // A store that kept the "settling" operation but not the row (nothing was broadcast: the
    // row always comes first).
    await engine.markSettling(4_242, [fill.fillId]);

    const { engine: restarted } = await settlementEngine(s, opened);
    expect(restarted.state.fills.get(fill.fillId)!.status).to.equal("settling");
    const settler = settlerFor(restarted, opened.db);
    await settler.init();
    await settler.flush();
    await settler.stop();

    await expectSettledOnce(restarted, fill);
    expect(restarted.state.fills.get(fill.fillId)!.batchId).to.not.equal(4_242);
  });

  it("a stored batch whose nonce another transaction took can never be mined: its fills are queued again and settle once", async () => {
    const { engine, opened } = await settlementEngine(s);
    const fill = await cappedFill(engine);
    const dying: Engine = { ...engine, markSettling: async () => Promise.reject(new Error("killed after the batch row")) };
    const crashed = settlerFor(dying, opened.db);
    await crashed.init();
    await crashed.flush().catch(() => undefined);
    await crashed.stop();
    const [row] = await opened.db.selectFrom("engine_batches").selectAll().execute();
    // Someone else spends the matcher's nonce (an operator's transfer with the same key).
    const other = await matcherWallet(s).sendTransaction({ to: matcherWallet(s).account.address, value: 0n, nonce: Number(row!.nonce) });
    expect((await s.client.waitForTransactionReceipt({ hash: other })).status).to.equal("success");

    const { engine: restarted } = await settlementEngine(s, opened);
    const settler = settlerFor(restarted, opened.db);
    await settler.init();
    await settler.flush();
    await settler.stop();

    await expectSettledOnce(restarted, fill);
    expect(restarted.state.fills.get(fill.fillId)!.txHash).to.not.equal(row!.tx_hash);
    const rows = await opened.db.selectFrom("engine_batches").select(["id", "status"]).orderBy("id").execute();
    expect(rows.map((r) => r.status)).to.deep.equal(["done", "done"]);
  });

  it("three broadcasts lost on the wire in a row: retried with the same bytes, every batch settles without a restart, each fill once", async () => {
    const { engine, opened } = await settlementEngine(s);
    const fills = [await cappedFill(engine), await cappedFill(engine)];
    const { transport, drops } = droppingTransport(s.chain.url, { sendsLostBefore: 3 });
    // One fill a batch: the second batch's nonce waits behind the first's.
    const settler = settlerFor(engine, opened.db, { publicClient: clientOver(transport), walletClient: matcherWallet(s, transport), maxFills: 1 });
    await settler.init();
    await settler.flush();
    await settler.stop();

    for (const f of fills) await expectSettledOnce(engine, f);
    expect(drops.sendsLostBefore).to.equal(0);
    expect(drops.seen.eth_sendRawTransaction).to.be.at.least(5);
    const rows = await opened.db.selectFrom("engine_batches").select(["tx_hash", "status"]).execute();
    expect(rows.map((r) => r.status)).to.deep.equal(["done", "done"]);
    expect(new Set(fills.map((f) => engine.state.fills.get(f.fillId)!.txHash))).to.deep.equal(new Set(rows.map((r) => r.tx_hash as Hex)));
  });

  it("the chain took the batch but the answer was lost, then receipt lookups failed: retried until the verdict, the fill settles once", async () => {
    const { engine, opened } = await settlementEngine(s);
    const fill = await cappedFill(engine);
    const { transport, drops } = droppingTransport(s.chain.url, { sendsLostAfter: 1, receiptLookups: 3 });
    const settler = settlerFor(engine, opened.db, { publicClient: clientOver(transport), walletClient: matcherWallet(s, transport) });
    await settler.init();
    await settler.flush();
    await settler.stop();

    await expectSettledOnce(engine, fill);
    expect([drops.sendsLostAfter, drops.receiptLookups]).to.deep.equal([0, 0]);
  });

  it("stop() ends a batch's retries at once; the batch stays open and the next settler finishes it, once", async () => {
    const { engine, opened } = await settlementEngine(s);
    const fill = await cappedFill(engine);
    const { transport, drops } = droppingTransport(s.chain.url, { sendsLostBefore: Infinity });
    // A long pause between tries: stop() must not wait it out.
    const settler = settlerFor(engine, opened.db, { publicClient: clientOver(transport), walletClient: matcherWallet(s, transport), maxLatencyMs: 10, retry: { minMs: 30_000 } });
    await settler.init();
    settler.start(10);
    const deadline = Date.now() + 10_000;
    while (!drops.seen.eth_sendRawTransaction && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(drops.seen.eth_sendRawTransaction).to.equal(1);
    const stopping = Date.now();
    await settler.stop();
    expect(Date.now() - stopping).to.be.below(2_000);
    expect(engine.state.fills.get(fill.fillId)!.status).to.equal("settling");
    expect((await opened.db.selectFrom("engine_batches").select("status").execute()).map((r) => r.status)).to.deep.equal(["sent"]);

    const next = settlerFor(engine, opened.db);
    await next.init();
    await next.flush();
    await next.stop();
    await expectSettledOnce(engine, fill);
  });
});
