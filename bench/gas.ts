// `npm run bench:gas [-- --json] [-- --quick] [-- --list-take-trades N] [-- --distinct-pairs N]`:
// gas per trade for the two ways to trade, measured on the embedded Hardhat/EDR chain from
// transaction receipts (21,000 base and calldata included).
//
// Batches are built as an order book clears: each order belongs to a different prosumer and
// fills against the next order on the other side (a staircase), so N fills use N+1 orders.
// The "distinct pairs" figure is the worst case, where every fill brings two fresh orders (and
// two fresh connection-use slots): 90 fills by default, because 100 of them no longer fit the
// 2^24 gas a transaction may use (EIP-7825, enforced by the embedded chain).
// Run time goes into the households each trade needs (4 transactions each): the worst case
// needs two per fill. `--quick` measures it over 10 fills and keeps everything else as it is.
import hre, { network } from "hardhat";
import type { ContractTransactionResponse, Wallet } from "ethers";
import { orderTypes, SIDE_BUY, SIDE_SELL, sourceMask } from "../contracts/client/order.js";
import { merkleProof, tradeLeaf, type Trade } from "../contracts/client/trade.js";
import { readBenchArgs, size } from "./benchArgs.js";

const args = readBenchArgs("bench:gas", {
  "list-take-trades": size({ help: "trades through createListing + executeTrade, averaged", default: 10, integer: true, min: 1 }),
  "distinct-pairs": size({ help: "fills in the worst-case batch, every fill two fresh orders (at most ~95 fit one transaction)", default: 90, quick: 10, integer: true, min: 1 }),
});
const json = args.json;
const LIST_TAKE_TRADES = args["list-take-trades"];
const DISTINCT_PAIRS = args["distinct-pairs"];
const log = (...args: unknown[]) => { if (!json) console.error(...args); };

// The contracts' artifacts, compiled now when a fresh clone has none (as `npm test` does); the
// compiler's own lines go to stderr so `--json` stays one object on stdout.
await compileContracts();

const { ethers, networkHelpers } = await network.create();
const [admin] = await ethers.getSigners();
const ZONE = ethers.encodeBytes32String("ZONE-A");
const PRICE = 250_000n;
const INTERVAL = 900n;

const token = await ethers.deployContract("TestEuro");
const registry = await ethers.deployContract("ProsumerRegistry", [admin!.address]);
const market = await ethers.deployContract("EnergyMarket", [admin!.address, await token.getAddress(), await registry.getAddress(), 1_000_000n]);
const marketAddress = await market.getAddress();
for (const role of ["MATCHER_ROLE", "METER_ORACLE_ROLE"] as const) await market.grantRole(await market[role](), admin!.address);
const domain = { name: "EnergyMarket", version: "1", chainId: Number((await ethers.provider.getNetwork()).chainId), verifyingContract: marketAddress };
const types = { Order: orderTypes.Order.map((t) => ({ name: t.name, type: t.type })) };

const now = BigInt(await networkHelpers.time.latest());
const deliveryStart = ((now + 3600n) / INTERVAL + 1n) * INTERVAL;
const deliveryEnd = deliveryStart + INTERVAL;
let meter = 0;

/** A new household wallet: registered in the zone, with gas money, tEUR and approval. */
async function prosumer(): Promise<Wallet> {
  // Keys from a fixed seed, so every run measures the same addresses and signatures.
  const w = new ethers.Wallet(ethers.keccak256(ethers.toUtf8Bytes(`bench prosumer ${meter}`)), ethers.provider);
  await registry.registerProsumer(w.address, ethers.encodeBytes32String(`SM-${++meter}`), ZONE, 10_000n, 10_000n, sourceMask(["solar"]));
  await admin!.sendTransaction({ to: w.address, value: ethers.parseEther("1") });
  await token.faucet(w.address, 1_000n * 1_000_000n);
  await (await token.connect(w).approve(marketAddress, ethers.MaxUint256)).wait();
  return w as unknown as Wallet;
}

let nonce = 1n;
async function signedOrder(maker: Wallet, side: number, energyWh: bigint) {
  const order = {
    maker: maker.address, side, zone: ZONE, deliveryStart, deliveryEnd, energyWh, limitPricePerKWh: PRICE,
    source: side === SIDE_SELL ? 1 : 0, acceptedSources: 0, minSellerReputationBps: 0, nonce: nonce++, expiry: deliveryStart,
  };
  return { order, signature: await maker.signTypedData(domain, types, order) };
}

async function gasOf(tx: Promise<ContractTransactionResponse>): Promise<bigint> {
  const receipt = await (await tx).wait();
  return receipt!.gasUsed;
}

/** Gas per trade of createListing + executeTrade, and of the executeTrade alone. */
async function listThenTake(trades: number): Promise<{ listTake: number; take: number }> {
  let total = 0n;
  let takes = 0n;
  for (let i = 0; i < trades; i++) {
    const seller = await prosumer();
    const buyer = await prosumer();
    const listingId = await market.nextListingId();
    total += await gasOf((market.connect(seller) as typeof market).createListing(ZONE, 2_000n, PRICE, deliveryStart, deliveryEnd, deliveryStart, 1));
    const take = await gasOf((market.connect(buyer) as typeof market).executeTrade(listingId, 1_000n));
    total += take;
    takes += take;
  }
  return { listTake: Number(total / BigInt(trades)), take: Number(takes / BigInt(trades)) };
}

/** Staircase: buys of 1,000 Wh, sells of 1,000 Wh after a first of 500, so fills alternate. */
async function staircaseBatch(fills: number) {
  const orders: Awaited<ReturnType<typeof signedOrder>>[] = [];
  const buys: { index: number; left: bigint }[] = [];
  const sells: { index: number; left: bigint }[] = [];
  const add = async (side: number, size: bigint) => {
    orders.push(await signedOrder(await prosumer(), side, size));
    (side === SIDE_BUY ? buys : sells).push({ index: orders.length - 1, left: size });
  };
  const plan: { buyIndex: number; sellIndex: number; energyWh: bigint; pricePerKWh: bigint }[] = [];
  await add(SIDE_BUY, 1_000n);
  await add(SIDE_SELL, fills === 1 ? 1_000n : 500n);
  while (plan.length < fills) {
    const b = buys.find((o) => o.left > 0n) ?? (await add(SIDE_BUY, 1_000n), buys.at(-1)!);
    const s = sells.find((o) => o.left > 0n) ?? (await add(SIDE_SELL, 1_000n), sells.at(-1)!);
    const e = b.left < s.left ? b.left : s.left;
    b.left -= e;
    s.left -= e;
    plan.push({ buyIndex: b.index, sellIndex: s.index, energyWh: e, pricePerKWh: PRICE });
  }
  return { orders, plan };
}

async function distinctPairsBatch(fills: number) {
  const orders: Awaited<ReturnType<typeof signedOrder>>[] = [];
  const plan: { buyIndex: number; sellIndex: number; energyWh: bigint; pricePerKWh: bigint }[] = [];
  for (let i = 0; i < fills; i++) {
    orders.push(await signedOrder(await prosumer(), SIDE_BUY, 1_000n));
    orders.push(await signedOrder(await prosumer(), SIDE_SELL, 1_000n));
    plan.push({ buyIndex: 2 * i, sellIndex: 2 * i + 1, energyWh: 1_000n, pricePerKWh: PRICE });
  }
  return { orders, plan };
}

async function settle(batch: Awaited<ReturnType<typeof staircaseBatch>>) {
  const tx = await market.settleBatch(batch.orders, batch.plan);
  const receipt = await tx.wait();
  const executed = receipt!.logs.map((l) => market.interface.parseLog(l)).filter((p) => p?.name === "TradeExecuted");
  if (executed.length !== batch.plan.length) throw new Error(`only ${executed.length} of ${batch.plan.length} fills executed`);
  const fee = receipt!.logs.map((l) => market.interface.parseLog(l)).find((p) => p?.name === "BatchSettled")!.args;
  const trades: Trade[] = executed.map((p) => {
    const a = p!.args;
    return {
      tradeId: a.tradeId, batchId: a.batchId, seller: a.seller, buyer: a.buyer, zone: a.zone, energyWh: a.energyWh,
      pricePerKWh: a.pricePerKWh, amount: a.amount, deliveryStart: a.deliveryStart, deliveryEnd: a.deliveryEnd,
      source: Number(a.source), communityFeeBps: Number(fee.communityFeeBps), networkFeePerKWh: fee.networkFeePerKWh,
    };
  });
  return { gasPerTrade: Number(receipt!.gasUsed / BigInt(executed.length)), trades };
}

log(`list then take (${LIST_TAKE_TRADES} trades)...`);
const { listTake: listTakeGasPerTrade, take: executeTradeGas } = await listThenTake(LIST_TAKE_TRADES);
const batchGasPerTrade: Record<string, number> = {};
let reportable: Trade[] = [];
for (const n of [1, 10, 100]) {
  log(`batch of ${n} fills...`);
  const result = await settle(await staircaseBatch(n));
  batchGasPerTrade[String(n)] = result.gasPerTrade;
  if (n === 100) reportable = result.trades;
}
log(`batch of ${DISTINCT_PAIRS} distinct pairs...`);
const distinct = await settle(await distinctPairsBatch(DISTINCT_PAIRS));

await networkHelpers.time.increaseTo(deliveryEnd);
const leaves = reportable.map(tradeLeaf);
const evidence = ethers.keccak256(ethers.toUtf8Bytes("meter readings"));
const single = await gasOf(market.reportDelivery(reportable[0]!, merkleProof(leaves, 0), reportable[0]!.energyWh, evidence));
const rest = reportable.slice(1).map((trade, i) => ({ trade, proof: merkleProof(leaves, i + 1), deliveredWh: trade.energyWh, evidenceHash: evidence }));
const batchReport = await gasOf(market.reportDeliveries(rest));

const figures = {
  listTakeGasPerTrade,
  executeTradeGas,
  batchGasPerTrade,
  // Named by its size: batchGasPerTradeDistinctPairs90 at the default.
  [`batchGasPerTradeDistinctPairs${DISTINCT_PAIRS}`]: distinct.gasPerTrade,
  reportGasPerTrade: Number(single),
  reportBatchGasPerTrade: Number(batchReport / BigInt(rest.length)),
  ratioBatch100ToListTake: Number((batchGasPerTrade["100"]! / listTakeGasPerTrade).toFixed(3)),
};

if (json) {
  console.log(JSON.stringify(figures));
} else {
  const row = (name: string, gas: number) => `| ${name.padEnd(46)} | ${gas.toLocaleString("en-US").padStart(9)} | ${(gas / listTakeGasPerTrade).toFixed(2).padStart(5)} |`;
  console.log(["", "| path (gas per trade)                           |       gas | × L+T |", "|---|---:|---:|",
    row("list then take (createListing + executeTrade)", listTakeGasPerTrade),
    row("  of which executeTrade", executeTradeGas),
    row("signed orders, batch of 1 fill", batchGasPerTrade["1"]!),
    row("signed orders, batch of 10 fills", batchGasPerTrade["10"]!),
    row("signed orders, batch of 100 fills", batchGasPerTrade["100"]!),
    row(`signed orders, ${DISTINCT_PAIRS} fills of distinct pairs`, distinct.gasPerTrade),
    row("delivery report, one per transaction", figures.reportGasPerTrade),
    row("delivery report, 99 per transaction", figures.reportBatchGasPerTrade),
  ].join("\n"));
}

async function compileContracts(): Promise<void> {
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => process.stderr.write(chunk, ...rest)) as typeof process.stdout.write;
  try {
    await hre.tasks.getTask("build").run({ quiet: true, noTests: true });
  } finally {
    process.stdout.write = write;
  }
}
