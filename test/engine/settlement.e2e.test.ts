// End to end on the embedded chain: wallets sign orders, the engine matches them, the settler
// batches fills to EnergyMarket, and the chain's events and balances agree with amountFor().
// A fill the chain refuses comes back as a failed fill and the book stays consistent.
import { expect } from "chai";
import { createPublicClient, createWalletClient, decodeEventLog, getAddress, http, parseEther, type Address, type Hex, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { energyMarketAbi, prosumerRegistryAbi, testEuroAbi } from "../../contracts/client/abi.js";
import { amountFor } from "../../contracts/client/amount.js";
import { deployPlatform } from "../../contracts/client/deploy.js";
import { marketDomain, type Order } from "../../contracts/client/order.js";
import { startLocalChain, type LocalChain } from "../../scripts/localChain.js";
import { createChainDirectory } from "../../engine/chainDirectory.js";
import { createEngine, type Engine } from "../../engine/createEngine.js";
import { createSettler, type Settler } from "../../engine/settlement/createSettler.js";
import { bytesToHex } from "../../engine/intake/orderSignature.js";
import { freshDatabase, signer, wallet, ZONE_HEX, type TestWallet } from "./helpers.js";

const KEYS = {
  admin: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  matcher: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
} as const;

describe("engine settlement on the chain", function () {
  let chain: LocalChain;
  let client: PublicClient;
  let engine: Engine;
  let settler: Settler;
  let contracts: { market: Address; registry: Address; token: Address };
  let sign: ReturnType<typeof signer>;
  let domain: ReturnType<typeof marketDomain>;
  let opened: Awaited<ReturnType<typeof freshDatabase>>;
  let matcherWallet: ReturnType<typeof createWalletClient<ReturnType<typeof http>, typeof hardhat, ReturnType<typeof privateKeyToAccount>>>;
  const sellers = [wallet("e2e seller 1"), wallet("e2e seller 2")];
  const buyers = [wallet("e2e buyer 1"), wallet("e2e buyer 2"), wallet("e2e broke buyer")];
  let interval = 0;
  let nonce = 1n;

  before(async () => {
    chain = await startLocalChain({ port: 0 });
    const transport = http(chain.url);
    client = createPublicClient({ chain: hardhat, transport }) as PublicClient;
    const admin = createWalletClient({ chain: hardhat, account: privateKeyToAccount(KEYS.admin), transport });
    const matcher = privateKeyToAccount(KEYS.matcher);
    const d = await deployPlatform(admin, client as never, {
      roles: { admin: admin.account.address, registrar: admin.account.address, pauser: admin.account.address, matcher: matcher.address, meterOracle: admin.account.address, arbiter: admin.account.address },
      maxNetworkFeePerKWh: 1_000_000n,
    });
    contracts = { market: d.contracts.EnergyMarket, registry: d.contracts.ProsumerRegistry, token: d.contracts.PaymentToken };
    const wait = async (hash: Hex) => expect((await client.waitForTransactionReceipt({ hash })).status).to.equal("success");
    let meter = 1;
    for (const w of [...sellers, ...buyers]) {
      // 100 kW each way (25,000 Wh a quarter hour): the tests trade up to 5,000 Wh per interval and account.
      await wait(await admin.writeContract({ address: contracts.registry, abi: prosumerRegistryAbi, functionName: "registerProsumer", args: [w.address, `0x${(meter++).toString(16).padStart(64, "0")}`, ZONE_HEX, 100_000n, 100_000n, 0x1e] }));
      await wait(await admin.sendTransaction({ to: w.address, value: parseEther("1") }));
    }
    for (const w of buyers) {
      await wait(await admin.writeContract({ address: contracts.token, abi: testEuroAbi, functionName: "faucet", args: [w.address, 1_000_000_000n] }));
      // The broke buyer holds tEUR but never approves the market.
      if (w === buyers[2]) continue;
      const own = createWalletClient({ chain: hardhat, account: privateKeyToAccount(bytesToHex(w.key)), transport });
      await wait(await own.writeContract({ address: contracts.token, abi: testEuroAbi, functionName: "approve", args: [contracts.market, 2n ** 255n] }));
    }
    domain = marketDomain(hardhat.id, contracts.market);
    sign = signer(domain);
    opened = await freshDatabase();
    matcherWallet = createWalletClient({ chain: hardhat, account: matcher, transport });
    engine = await createEngine({
      db: opened.db, domain, directory: createChainDirectory(client, contracts, 0),
      markets: [{ zone: "ZONE-A", mode: "continuous", feedInTariff: 80_000, retailPrice: 350_000, basePrice: 200_000, gateClosureMinutes: 5 }],
    });
    settler = createSettler({ engine, db: opened.db, publicClient: client, walletClient: matcherWallet, market: contracts.market, maxFills: 50 });
    await settler.init();
    const block = await client.getBlock();
    interval = (Math.floor(Number(block.timestamp) / 900) + 8) * 900;
  });

  after(async () => {
    await settler?.stop();
    await chain?.close();
  });

  async function now() {
    return Number((await client.getBlock()).timestamp);
  }

  function order(w: TestWallet, side: 0 | 1, energyWh: number, price: number): Order {
    return {
      maker: w.address, side, zone: ZONE_HEX, deliveryStart: BigInt(interval), deliveryEnd: BigInt(interval + 900), energyWh: BigInt(energyWh),
      limitPricePerKWh: BigInt(price), source: side === 1 ? 1 : 0, acceptedSources: 0, minSellerReputationBps: 0, nonce: nonce++, expiry: BigInt(interval),
    };
  }

  const balance = (a: Address) => client.readContract({ address: contracts.token, abi: testEuroAbi, functionName: "balanceOf", args: [a] });

  it("matches signed orders and settles the fills; TradeExecuted and balances follow amountFor()", async () => {
    const t = await now();
    const s1 = order(sellers[0]!, 1, 1_500, 190_001);
    const s2 = order(sellers[1]!, 1, 2_000, 201_337);
    await engine.placeOrder({ order: s1, signature: sign(sellers[0]!, s1) }, t);
    await engine.placeOrder({ order: s2, signature: sign(sellers[1]!, s2) }, t);
    const b1 = order(buyers[0]!, 0, 2_500, 250_000);
    const placed = await engine.placeOrder({ order: b1, signature: sign(buyers[0]!, b1) }, t);
    expect(placed.fills.map((f) => [f.energyWh, f.price])).to.deep.equal([[1_500, 190_001], [1_000, 201_337]]);
    const before = await balance(buyers[0]!.address);

    await settler.flush();

    const fills = placed.fills.map((f) => engine.state.fills.get(f.fillId)!);
    expect(fills.map((f) => f.status)).to.deep.equal(["executed", "executed"]);
    const expected = amountFor(1_500n, 190_001n) + amountFor(1_000n, 201_337n);
    expect(before - (await balance(buyers[0]!.address))).to.equal(expected);
    const receipt = await client.getTransactionReceipt({ hash: fills[0]!.txHash! });
    const executed = receipt.logs
      .filter((l) => getAddress(l.address) === getAddress(contracts.market))
      .map((l) => decodeEventLog({ abi: energyMarketAbi, data: l.data, topics: l.topics }))
      .filter((e) => e.eventName === "TradeExecuted")
      .map((e) => e.args as { tradeId: bigint; seller: Address; buyer: Address; energyWh: bigint; pricePerKWh: bigint; amount: bigint; zone: Hex });
    expect(executed.map((e) => [e.tradeId, getAddress(e.seller), getAddress(e.buyer), e.energyWh, e.pricePerKWh, e.amount])).to.deep.equal([
      [fills[0]!.tradeId, sellers[0]!.address, buyers[0]!.address, 1_500n, 190_001n, amountFor(1_500n, 190_001n)],
      [fills[1]!.tradeId, sellers[1]!.address, buyers[0]!.address, 1_000n, 201_337n, amountFor(1_000n, 201_337n)],
    ]);
    expect(executed.every((e) => e.zone.toLowerCase() === ZONE_HEX.toLowerCase())).to.equal(true);
  });

  it("a fill the chain refuses fails for both parties; the buyer's order goes, the seller keeps the volume", async () => {
    const t = await now();
    const broke = buyers[2]!;
    const b = order(broke, 0, 400, 300_000);
    const placed = await engine.placeOrder({ order: b, signature: sign(broke, b) }, t);
    expect(placed.fills).to.have.length(1);
    const sellerOrder = engine.getOrder(placed.fills[0]!.sellId)!;
    const restBefore = sellerOrder.sizeWh - sellerOrder.filledWh;

    await settler.flush();

    const fill = engine.state.fills.get(placed.fills[0]!.fillId)!;
    expect([fill.status, fill.reason]).to.deep.equal(["failed", "InsufficientFunds"]);
    expect(engine.getOrder(placed.orderId)!.status).to.equal("cancelled");
    expect(engine.getOrder(placed.orderId)!.reason).to.equal("settlement_rejected:InsufficientFunds");
    expect(sellerOrder.status).to.equal("open");
    expect(sellerOrder.sizeWh - sellerOrder.filledWh).to.equal(restBefore + 400);
    const book = engine.book(ZONE_HEX, interval)!.book;
    expect(book.orders.get(sellerOrder.seq)!.remainingWh).to.equal(restBefore + 400);
    // The restored volume trades again with a buyer who can pay.
    const b2 = order(buyers[1]!, 0, 5_000, 300_000);
    const again = await engine.placeOrder({ order: b2, signature: sign(buyers[1]!, b2) }, await now());
    expect(again.fills.map((f) => [f.sellId, f.energyWh])).to.deep.equal([[sellerOrder.id, restBefore + 400]]);
    await settler.flush();
    expect(again.fills.map((f) => engine.state.fills.get(f.fillId)!.status)).to.deep.equal(again.fills.map(() => "executed"));
  });

  it("a batch too big for one transaction's gas is split until its halves fit; every fill settles once", async () => {
    // 400 one-Wh-step fills against one seller: far past the 2^24 gas a transaction may use.
    const start = interval + 900;
    const at = (o: Order): Order => ({ ...o, deliveryStart: BigInt(start), deliveryEnd: BigInt(start + 900), expiry: BigInt(start) });
    const t = await now();
    const sell = at(order(sellers[1]!, 1, 400 * 10, 150_000));
    await engine.placeOrder({ order: sell, signature: sign(sellers[1]!, sell) }, t);
    const fillIds: number[] = [];
    for (let i = 0; i < 400; i++) {
      const buy = at(order(buyers[i % 2]!, 0, 10, 160_000));
      const placed = await engine.placeOrder({ order: buy, signature: sign(buyers[i % 2]!, buy) }, t);
      fillIds.push(...placed.fills.map((f) => f.fillId));
    }
    expect(fillIds).to.have.length(400);
    const big = createSettler({ engine, db: opened.db, publicClient: client, walletClient: matcherWallet, market: contracts.market, maxFills: 400 });
    await big.init();
    await big.flush();
    await big.stop();
    // The big settler used the matcher's nonces: the suite's settler picks up from there.
    await settler.init();
    const fills = fillIds.map((id) => engine.state.fills.get(id)!);
    expect(fills.filter((f) => f.status !== "executed").map((f) => [f.fillId, f.status])).to.deep.equal([]);
    const txs = new Set(fills.map((f) => f.txHash));
    expect(txs.size).to.be.greaterThan(1);
    const filled = await client.readContract({ address: contracts.market, abi: energyMarketAbi, functionName: "filledWh", args: [engine.getOrder(fills[0]!.sellId)!.id] });
    expect(filled).to.equal(4_000n);
  });

  it("after a crash between broadcast and verdict, a restarted engine finds the same transaction and settles each fill once", async () => {
    const t = await now();
    // Buyer 2's earlier order still rests with 4,000 Wh at 300,000: this sell takes 700 of it.
    const s1 = order(sellers[0]!, 1, 700, 199_999);
    const placed = await engine.placeOrder({ order: s1, signature: sign(sellers[0]!, s1) }, t);
    expect(placed.fills.map((f) => [f.buyer.toLowerCase(), f.energyWh])).to.deep.equal([[buyers[1]!.address.toLowerCase(), 700]]);
    const fillId = placed.fills[0]!.fillId;
    // The process "dies" right after broadcasting: the verdict is never recorded.
    const realRecord = engine.recordSettlement;
    engine.recordSettlement = async () => {
      throw new Error("crash before the verdict");
    };
    await settler.flush().catch(() => undefined);
    engine.recordSettlement = realRecord;
    expect(engine.state.fills.get(fillId)!.status).to.equal("settling");
    const sentHash = (await opened.db.selectFrom("engine_batches").select(["tx_hash", "status"]).orderBy("id", "desc").executeTakeFirstOrThrow());
    expect(sentHash.status).to.equal("sent");
    const buyerBefore = await balance(buyers[1]!.address);

    // Restart: a new engine replays the log; a new settler resumes the open batch.
    const engine2 = await createEngine({
      db: opened.db, domain, directory: createChainDirectory(client, contracts, 0),
      markets: [{ zone: "ZONE-A", mode: "continuous", feedInTariff: 80_000, retailPrice: 350_000, basePrice: 200_000, gateClosureMinutes: 5 }],
    });
    expect(engine2.state.fills.get(fillId)!.status).to.equal("settling");
    const settler2 = createSettler({ engine: engine2, db: opened.db, publicClient: client, walletClient: matcherWallet, market: contracts.market });
    await settler2.init();
    await settler2.flush();
    const fill = engine2.state.fills.get(fillId)!;
    expect([fill.status, fill.txHash]).to.deep.equal(["executed", sentHash.tx_hash]);
    // Paid once: the buyer's balance did not move again on resume.
    expect(await balance(buyers[1]!.address)).to.equal(buyerBefore);
    const filled = await client.readContract({ address: contracts.market, abi: energyMarketAbi, functionName: "filledWh", args: [engine2.getOrder(placed.orderId)!.id] });
    expect(filled).to.equal(700n);
    await settler2.stop();
  });
});
