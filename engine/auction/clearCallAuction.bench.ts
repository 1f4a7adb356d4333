// Quick local timing of clearCallAuction on seeded random books (the goal: 100,000
// orders under 50 ms). The project benchmark is `npm run bench:engine`; this one isolates the
// auction. Run: sh scripts/with-node.sh tsx engine/auction/clearCallAuction.bench.ts [--json]
import { clearCallAuction, type AuctionOrder } from "./clearCallAuction.js";

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface BookShape {
  orders: number;
  /** Share of buys that name accepted sources or a minimum reputation. */
  constrainedShare: number;
  /** Shuffle input order, so the seq sort cannot take its already-sorted fast path. */
  shuffled: boolean;
}

/** A book around a 0.20 EUR/kWh reference inside a 0.08..0.32 corridor, 1 Wh..20 kWh orders. */
export function randomBook(seed: number, shape: BookShape): AuctionOrder[] {
  const rand = mulberry32(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const orders: AuctionOrder[] = [];
  // ~20 orders per maker. Each order gets its own copy of the address string (as a checksummed
  // address from each order's intake would be): equality is by content, not by reference.
  const makerCount = Math.max(2, Math.floor(shape.orders / 20));
  const makers = Array.from({ length: makerCount }, () => `0x${Array.from({ length: 40 }, () => "0123456789abcdef"[int(0, 15)]).join("")}`);
  for (let i = 0; i < shape.orders; i++) {
    const side = rand() < 0.5 ? 0 : 1;
    // Bids centred a little above asks so the book crosses over a band of prices (100 EUR/MWh steps of 0.1 ct).
    const price = side === 0 ? int(150, 260) * 1000 : int(120, 230) * 1000;
    const constrained = side === 0 && rand() < shape.constrainedShare;
    orders.push({
      seq: i + 1,
      side,
      price,
      remainingWh: int(1, 20_000),
      maker: makers[int(0, makerCount - 1)]!.split("").join(""),
      source: side === 1 ? int(1, 4) : 0,
      acceptedSources: constrained && rand() < 0.7 ? (1 << int(1, 4)) | (1 << int(1, 4)) : 0,
      minSellerReputationBps: constrained && rand() < 0.5 ? int(5000, 10_000) : 0,
      sellerReputationBps: side === 1 ? int(3000, 10_000) : 0,
    });
  }
  if (shape.shuffled) {
    for (let i = orders.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [orders[i], orders[j]] = [orders[j]!, orders[i]!];
    }
  }
  return orders;
}

/**
 * Wall time (median, min) and CPU time of this thread (median). On a shared machine the CPU time
 * is the steadier figure: it leaves out the time the process waited for a core.
 */
function timeIt(orders: AuctionOrder[], runs: number): { medianMs: number; minMs: number; cpuMedianMs: number; matchedWh: number; fills: number } {
  for (let w = 0; w < 5; w++) clearCallAuction(orders, { referencePrice: 200_000 });
  const wall: number[] = [];
  const cpu: number[] = [];
  let last = clearCallAuction(orders, { referencePrice: 200_000 });
  for (let r = 0; r < runs; r++) {
    const c0 = process.threadCpuUsage();
    const t0 = process.hrtime.bigint();
    last = clearCallAuction(orders, { referencePrice: 200_000 });
    wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const c = process.threadCpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { medianMs: median(wall), minMs: Math.min(...wall), cpuMedianMs: median(cpu), matchedWh: last.matchedWh, fills: last.fills.length };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = [];
  for (const orders of [10_000, 100_000]) {
    for (const shape of [
      { orders, constrainedShare: 0, shuffled: false },
      { orders, constrainedShare: 0.1, shuffled: false },
      { orders, constrainedShare: 0.1, shuffled: true },
    ]) {
      const book = randomBook(42, shape);
      rows.push({ ...shape, ...timeIt(book, 21) });
    }
  }
  if (process.argv.includes("--json")) console.log(JSON.stringify(rows));
  else console.table(rows.map((r) => ({ ...r, medianMs: r.medianMs.toFixed(2), minMs: r.minMs.toFixed(2), cpuMedianMs: r.cpuMedianMs.toFixed(2) })));
}
