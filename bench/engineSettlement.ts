// End-to-end settlement throughput on the embedded chain: wallets sign orders with
// libsecp256k1, the engine admits (signature, registry) and matches them, and the settler
// batches the fills to EnergyMarket until every receipt is in. `concurrency` orders are in
// flight at once (1 = each waits for the previous one's log write), as behind an HTTP API.
// Standalone: `tsx bench/engineSettlement.ts [--orders N] [--concurrency N] [--json]`.
import { pathToFileURL } from "node:url";
import { createPublicClient, createWalletClient, http, keccak256, parseEther, toHex, type Address, type Hex, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { prosumerRegistryAbi, testEuroAbi } from "../contracts/client/abi.js";
import { deployPlatform } from "../contracts/client/deploy.js";
import { marketDomain, type Order } from "../contracts/client/order.js";
import { openDatabase } from "../lib/database.js";
import { createChainDirectory } from "../engine/chainDirectory.js";
import { createEngine } from "../engine/createEngine.js";
import { addressOfKey, bytesToHex, createOrderHasher, hexToBytes, signDigest } from "../engine/intake/orderSignature.js";
import { zoneToHex } from "../engine/markets.js";
import { createSettler } from "../engine/settlement/createSettler.js";
import type { EngineDatabase } from "../engine/store/engineStore.js";
import { startLocalChain } from "../scripts/localChain.js";
import { readBenchArgs, size } from "./benchArgs.js";

/** Benchmark accounts trade far more in one interval than a household connection carries; the
 *  market enforces connection limits (settleBatch, intake), so bench accounts get 1 GW each way. */
const BENCH_CONNECTION_W = 1_000_000_000n;

const ADMIN = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const MATCHER = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

export async function runSettlementBench({ orders = 2_000, prosumers = 40, concurrency = 1 } = {}) {
  const chain = await startLocalChain({ port: 0 });
  try {
    const transport = http(chain.url);
    const client = createPublicClient({ chain: hardhat, transport }) as PublicClient;
    const admin = createWalletClient({ chain: hardhat, account: privateKeyToAccount(ADMIN), transport });
    const matcher = privateKeyToAccount(MATCHER);
    const me = admin.account.address;
    const d = await deployPlatform(admin, client as never, { roles: { admin: me, registrar: me, pauser: me, meterOracle: me, arbiter: me, matcher: matcher.address }, maxNetworkFeePerKWh: 1_000_000n });
    const zone = zoneToHex("ZONE-A");
    const wallets = Array.from({ length: prosumers }, (_, i) => {
      const key = hexToBytes(keccak256(toHex(`bench prosumer ${i}`)));
      return { key, address: addressOfKey(key) as Address };
    });
    const hashes: Hex[] = [];
    for (const [i, w] of wallets.entries()) {
      hashes.push(await admin.writeContract({ address: d.contracts.ProsumerRegistry, abi: prosumerRegistryAbi, functionName: "registerProsumer", args: [w.address, toHex(i + 1, { size: 32 }), zone, BENCH_CONNECTION_W, BENCH_CONNECTION_W, 0x1e] }));
      hashes.push(await admin.sendTransaction({ to: w.address, value: parseEther("1") }));
      hashes.push(await admin.writeContract({ address: d.contracts.PaymentToken, abi: testEuroAbi, functionName: "faucet", args: [w.address, 10_000_000_000n] }));
    }
    for (const h of hashes) await client.waitForTransactionReceipt({ hash: h });
    for (const w of wallets) {
      const own = createWalletClient({ chain: hardhat, account: privateKeyToAccount(bytesToHex(w.key)), transport });
      await client.waitForTransactionReceipt({ hash: await own.writeContract({ address: d.contracts.PaymentToken, abi: testEuroAbi, functionName: "approve", args: [d.contracts.EnergyMarket, 2n ** 255n] }) });
    }

    const domain = marketDomain(hardhat.id, d.contracts.EnergyMarket);
    const hash = createOrderHasher(domain);
    const opened = await openDatabase<EngineDatabase>();
    const engine = await createEngine({
      db: opened.db, domain, directory: createChainDirectory(client, { registry: d.contracts.ProsumerRegistry, market: d.contracts.EnergyMarket }),
      markets: [{ zone: "ZONE-A", mode: "continuous", feedInTariff: 80_000, retailPrice: 350_000, basePrice: 200_000, gateClosureMinutes: 5 }],
    });
    const settler = createSettler({ engine, db: opened.db, publicClient: client, walletClient: createWalletClient({ chain: hardhat, account: matcher, transport }), market: d.contracts.EnergyMarket, maxFills: 100, maxLatencyMs: 200, maxInFlight: 2 });
    await settler.init();
    const now = Number((await client.getBlock()).timestamp);
    const interval = (Math.floor(now / 900) + 8) * 900;

    let n = 1n;
    const signedOrder = (i: number) => {
      // Sellers (first half of the wallets) and buyers alternate around one price band.
      const sell = i % 2 === 0;
      const w = wallets[(sell ? 0 : prosumers / 2) + ((i >> 1) % (prosumers / 2))]!;
      const order: Order = {
        maker: w.address, side: sell ? 1 : 0, zone, deliveryStart: BigInt(interval), deliveryEnd: BigInt(interval + 900), energyWh: BigInt(500 + (i % 7) * 100),
        limitPricePerKWh: BigInt(sell ? 195_000 + (i % 11) * 1_000 : 200_000 + (i % 13) * 1_000), source: sell ? 1 : 0, acceptedSources: 0,
        minSellerReputationBps: 0, nonce: n++, expiry: BigInt(interval),
      };
      return { order, signature: signDigest(w.key, hash(order)) };
    };
    const latencies = new Float64Array(orders);
    let next = 0;
    const submitter = async () => {
      while (next < orders) {
        const i = next++;
        const req = signedOrder(i);
        const s = performance.now();
        await engine.placeOrder(req, now);
        latencies[i] = performance.now() - s;
      }
    };

    const t0 = performance.now();
    settler.start(50);
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, submitter));
    const tIntake = performance.now();
    await settler.flush();
    const t1 = performance.now();
    await settler.stop();
    const { logWrites } = engine.stats();
    const trades = engine.state.fills.filter((f) => f.status === "executed").length;
    const failed = engine.state.fills.filter((f) => f.status === "failed").length;
    await opened.close();
    latencies.sort();
    return {
      orders,
      concurrency,
      trades,
      failed,
      seconds: +((t1 - t0) / 1000).toFixed(2),
      tradesPerSecond: Math.round(trades / ((t1 - t0) / 1000)),
      intakeOrdersPerSecond: Math.round(orders / ((tIntake - t0) / 1000)),
      /** placeOrder latency (admission + wait for the log write), ms. */
      intakeP50Ms: +latencies[Math.floor(orders * 0.5)]!.toFixed(2),
      intakeP99Ms: +latencies[Math.min(orders - 1, Math.floor(orders * 0.99))]!.toFixed(2),
      /** Log writes over the whole run (intake and settlement records). */
      logWrites,
    };
  } finally {
    await chain.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = readBenchArgs("bench/engineSettlement.ts", {
    orders: size({ help: "signed orders end to end", default: 2_000, quick: 200, integer: true, min: 1 }),
    concurrency: size({ help: "orders in flight", default: 1, integer: true, min: 1 }),
  });
  const result = await runSettlementBench({ orders: args.orders, concurrency: args.concurrency });
  console.log(args.json ? JSON.stringify(result) : result);
  process.exit(0);
}
