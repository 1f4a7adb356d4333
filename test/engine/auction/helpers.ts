// Order builders and an independent, deliberately naive call-auction model (object sorts with
// comparators, quadratic scans) that the fast implementation must agree with exactly.
import type { AuctionFill, AuctionOrder, AuctionResult } from "../../../engine/auction/clearCallAuction.js";

export const SOLAR = 1;
export const WIND = 2;
export const STORAGE = 3;
export const MIXED = 4;

interface BuyOptions { maker?: string; acceptedSources?: number; minSellerReputationBps?: number }
interface SellOptions { maker?: string; source?: number; sellerReputationBps?: number }

export function buy(seq: number, price: number, remainingWh: number, o: BuyOptions = {}): AuctionOrder {
  return {
    seq, side: 0, price, remainingWh, maker: o.maker ?? `buyer-${seq}`, source: 0,
    acceptedSources: o.acceptedSources ?? 0, minSellerReputationBps: o.minSellerReputationBps ?? 0, sellerReputationBps: 0,
  };
}

export function sell(seq: number, price: number, remainingWh: number, o: SellOptions = {}): AuctionOrder {
  return {
    seq, side: 1, price, remainingWh, maker: o.maker ?? `seller-${seq}`, source: o.source ?? SOLAR,
    acceptedSources: 0, minSellerReputationBps: 0, sellerReputationBps: o.sellerReputationBps ?? 10_000,
  };
}

export function fill(buySeq: number, sellSeq: number, energyWh: number, price: number): AuctionFill {
  return { buySeq, sellSeq, energyWh, price };
}

/** D(p): buy Wh with limit >= p. */
export function demandAt(orders: readonly AuctionOrder[], p: number): number {
  return orders.filter((o) => o.side === 0 && o.price >= p).reduce((s, o) => s + o.remainingWh, 0);
}

/** S(p): sell Wh with limit <= p. */
export function supplyAt(orders: readonly AuctionOrder[], p: number): number {
  return orders.filter((o) => o.side === 1 && o.price <= p).reduce((s, o) => s + o.remainingWh, 0);
}

export function accepts(bid: AuctionOrder, ask: AuctionOrder): boolean {
  if (bid.maker === ask.maker) return false;
  if (bid.acceptedSources !== 0 && (bid.acceptedSources & (1 << ask.source)) === 0) return false;
  if (bid.minSellerReputationBps !== 0 && ask.sellerReputationBps < bid.minSellerReputationBps) return false;
  return true;
}

/** The call auction as the issue states it, written for clarity only. */
export function naiveClearCallAuction(orders: readonly AuctionOrder[], options: { referencePrice: number; capacityWh?: number }): AuctionResult {
  const active = orders.filter((o) => o.remainingWh > 0);
  const candidates = [...new Set(active.map((o) => o.price))].sort((a, b) => a - b);
  let best: { p: number; volume: number; imbalance: number; distance: number; d: number; s: number } | null = null;
  for (const p of candidates) {
    const d = demandAt(active, p);
    const s = supplyAt(active, p);
    const c = { p, volume: Math.min(d, s), imbalance: Math.abs(d - s), distance: Math.abs(p - options.referencePrice), d, s };
    if (c.volume === 0) continue;
    const better =
      best === null ||
      c.volume > best.volume ||
      (c.volume === best.volume && c.imbalance < best.imbalance) ||
      (c.volume === best.volume && c.imbalance === best.imbalance && c.distance < best.distance) ||
      (c.volume === best.volume && c.imbalance === best.imbalance && c.distance === best.distance && c.p < best.p);
    if (better) best = c;
  }
  if (best === null) return { clearingPrice: null, matchedWh: 0, demandWh: 0, supplyWh: 0, fills: [] };
  const p = best.p;
  const bids = active.filter((o) => o.side === 0 && o.price >= p).sort((a, b) => b.price - a.price || a.seq - b.seq);
  const asks = active.filter((o) => o.side === 1 && o.price <= p).sort((a, b) => a.price - b.price || a.seq - b.seq);
  const left = new Map(active.map((o) => [o.seq, o.remainingWh]));
  const cap = options.capacityWh ?? Number.POSITIVE_INFINITY;
  const fills: AuctionFill[] = [];
  let matched = 0;
  for (const bid of bids) {
    for (const ask of asks) {
      if (matched >= cap || left.get(bid.seq) === 0) break;
      if (left.get(ask.seq) === 0 || !accepts(bid, ask)) continue;
      const q = Math.min(left.get(bid.seq)!, left.get(ask.seq)!, cap - matched);
      fills.push(fill(bid.seq, ask.seq, q, p));
      left.set(bid.seq, left.get(bid.seq)! - q);
      left.set(ask.seq, left.get(ask.seq)! - q);
      matched += q;
    }
  }
  return { clearingPrice: p, matchedWh: matched, demandWh: best.d, supplyWh: best.s, fills };
}

/**
 * The same model with D and S summed as bigint and the matched volume capped at 2^53 - 1 (the
 * implementation's default capacity): what the auction must give when a side's total passes
 * 2^53 - 1 Wh. demandWh and supplyWh saturate at 2^53 - 1, as documented.
 */
export function naiveExactClearCallAuction(orders: readonly AuctionOrder[], options: { referencePrice: number; capacityWh?: number }): AuctionResult {
  const active = orders.filter((o) => o.remainingWh > 0);
  const candidates = [...new Set(active.map((o) => o.price))].sort((a, b) => a - b);
  const sum = (list: readonly AuctionOrder[]) => list.reduce((s, o) => s + BigInt(o.remainingWh), 0n);
  let best: { p: number; volume: bigint; imbalance: bigint; distance: number; d: bigint; s: bigint } | null = null;
  for (const p of candidates) {
    const d = sum(active.filter((o) => o.side === 0 && o.price >= p));
    const s = sum(active.filter((o) => o.side === 1 && o.price <= p));
    const c = { p, volume: d < s ? d : s, imbalance: d > s ? d - s : s - d, distance: Math.abs(p - options.referencePrice), d, s };
    if (c.volume === 0n) continue;
    const better =
      best === null ||
      c.volume > best.volume ||
      (c.volume === best.volume && c.imbalance < best.imbalance) ||
      (c.volume === best.volume && c.imbalance === best.imbalance && c.distance < best.distance) ||
      (c.volume === best.volume && c.imbalance === best.imbalance && c.distance === best.distance && c.p < best.p);
    if (better) best = c;
  }
  if (best === null) return { clearingPrice: null, matchedWh: 0, demandWh: 0, supplyWh: 0, fills: [] };
  const saturate = (x: bigint) => (x > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(x));
  const p = best.p;
  const bids = active.filter((o) => o.side === 0 && o.price >= p).sort((a, b) => b.price - a.price || a.seq - b.seq);
  const asks = active.filter((o) => o.side === 1 && o.price <= p).sort((a, b) => a.price - b.price || a.seq - b.seq);
  const left = new Map(active.map((o) => [o.seq, o.remainingWh]));
  const cap = options.capacityWh ?? Number.MAX_SAFE_INTEGER;
  const fills: AuctionFill[] = [];
  let matched = 0;
  for (const bid of bids) {
    for (const ask of asks) {
      if (matched >= cap || left.get(bid.seq) === 0) break;
      if (left.get(ask.seq) === 0 || !accepts(bid, ask)) continue;
      const q = Math.min(left.get(bid.seq)!, left.get(ask.seq)!, cap - matched);
      fills.push(fill(bid.seq, ask.seq, q, p));
      left.set(bid.seq, left.get(bid.seq)! - q);
      left.set(ask.seq, left.get(ask.seq)! - q);
      matched += q;
    }
  }
  return { clearingPrice: p, matchedWh: matched, demandWh: saturate(best.d), supplyWh: saturate(best.s), fills };
}

/** Seeded Fisher-Yates with mulberry32: the same seed gives the same permutation. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  let state = seed >>> 0;
  const rand = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
