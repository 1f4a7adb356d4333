// Intake through the log without a chain: pre-signed orders are admitted (signature recovery,
// directory), matched and written to an in-memory PGlite log, `concurrency` at a time, as the
// HTTP API would submit them. The figure the API's throughput and latency rest on.
// Standalone: `tsx bench/engineIntake.ts [--orders N] [--concurrency N] [--json]`.
import { pathToFileURL } from "node:url";
import { keccak256, toHex, type Address } from "viem";
import { marketDomain, type Order } from "../contracts/client/order.js";
import { openDatabase } from "../lib/database.js";
import { createEngine } from "../engine/createEngine.js";
import { addressOfKey, createOrderHasher, hexToBytes, signDigest } from "../engine/intake/orderSignature.js";
import { INTERVAL_SECONDS, zoneToHex } from "../engine/markets.js";
import type { EngineDatabase } from "../engine/store/engineStore.js";
import { readBenchArgs, size } from "./benchArgs.js";

export async function runIntakeBench({ orders = 10_000, concurrency = 1, prosumers = 40 } = {}) {
  const zone = zoneToHex("ZONE-A");
  const domain = marketDomain(31337, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0");
  const hash = createOrderHasher(domain);
  const wallets = Array.from({ length: prosumers }, (_, i) => {
    const key = hexToBytes(keccak256(toHex(`intake bench prosumer ${i}`)));
    return { key, address: addressOfKey(key) as Address };
  });
  const now = 1_800_000_000 - (1_800_000_000 % INTERVAL_SECONDS);
  const interval = now + 8 * INTERVAL_SECONDS;
  // The same order stream as the end-to-end bench: sellers and buyers alternate around one band.
  const requests = Array.from({ length: orders }, (_, i) => {
    const sell = i % 2 === 0;
    const w = wallets[(sell ? 0 : prosumers / 2) + ((i >> 1) % (prosumers / 2))]!;
    const order: Order = {
      maker: w.address, side: sell ? 1 : 0, zone, deliveryStart: BigInt(interval), deliveryEnd: BigInt(interval + INTERVAL_SECONDS), energyWh: BigInt(500 + (i % 7) * 100),
      limitPricePerKWh: BigInt(sell ? 195_000 + (i % 11) * 1_000 : 200_000 + (i % 13) * 1_000), source: sell ? 1 : 0, acceptedSources: 0,
      minSellerReputationBps: 0, nonce: BigInt(i + 1), expiry: BigInt(interval),
    };
    return { order, signature: signDigest(w.key, hash(order)) };
  });
  const opened = await openDatabase<EngineDatabase>();
  const engine = await createEngine({
    db: opened.db, domain,
    directory: { profile: async () => ({ zone, active: true, sources: 0x1e }), reputationBps: async () => 10_000 },
    markets: [{ zone: "ZONE-A", mode: "continuous", feedInTariff: 80_000, retailPrice: 350_000, basePrice: 200_000, gateClosureMinutes: 5 }],
  });
  const latencies = new Float64Array(orders);
  let next = 0;
  const submitter = async () => {
    while (next < orders) {
      const i = next++;
      const s = performance.now();
      await engine.placeOrder(requests[i]!, now);
      latencies[i] = performance.now() - s;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, submitter));
  const ms = performance.now() - t0;
  const { logWrites, largestWrite } = engine.stats();
  await opened.close();
  latencies.sort();
  return {
    orders,
    concurrency,
    ordersPerSecond: Math.round(orders / (ms / 1000)),
    p50Ms: +latencies[Math.floor(orders * 0.5)]!.toFixed(2),
    p99Ms: +latencies[Math.min(orders - 1, Math.floor(orders * 0.99))]!.toFixed(2),
    logWrites,
    largestWrite,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = readBenchArgs("bench/engineIntake.ts", {
    orders: size({ help: "orders admitted, matched and logged", default: 10_000, quick: 1_000, integer: true, min: 1 }),
    concurrency: size({ help: "orders in flight", default: 1, integer: true, min: 1 }),
  });
  const result = await runIntakeBench({ orders: args.orders, concurrency: args.concurrency });
  console.log(args.json ? JSON.stringify(result) : result);
  process.exit(0);
}
