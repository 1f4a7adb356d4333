// The periodic call auction run at gate closure: one uniform clearing price for the whole book,
// then allocation at that price in price-time priority with the buyers' preferences. A pure
// function: the same orders (in any input order) give byte-identical results; nothing reads a
// clock or a random source, and every sort is total (price, then seq, which is unique).
//
// Clearing price, among the limit prices of the orders with remainingWh > 0 (the candidates):
//   1. maximise matched volume min(D(p), S(p)), D(p) = buy Wh with limit >= p,
//      S(p) = sell Wh with limit <= p;
//   2. then minimise the imbalance |D(p) - S(p)|;
//   3. then the price closest to options.referencePrice (the zone's dynamic price);
//   4. then the LOWER price (the buyers' side of the spread; any fixed rule would do, this one
//      is written down).
// If no candidate has positive volume the book does not cross: clearingPrice is null, no fills.
// D and S ignore preferences, self-trades and the capacity: the price is the book's equilibrium,
// and a transformer limit rations volume at that price rather than moving it.
//
// Volumes: each order's remainingWh is a safe integer, but a side's total need not be (two buys
// of 2^53 - 1 Wh). The clearing compares exact sums: doubles while both sides' totals stay below
// 2^53, bigint otherwise (rare, and only then paid for). The matched volume is capped at
// capacityWh, which is at most 2^53 - 1 (its default), so every fill and the matched total are
// safe integers by construction; demandWh and supplyWh saturate at 2^53 - 1 in the result.
//
// Allocation at the clearing price p*: bids with limit >= p* in priority (price desc, seq asc)
// each take, in turn, the asks with limit <= p* in priority (price asc, seq asc) that they
// accept: a bid with acceptedSources != 0 takes only asks whose (1 << source) bit is set; with
// minSellerReputationBps > 0 only asks with sellerReputationBps >= it; never an ask of its own
// maker (the chain rejects self-trades). Nobody trades beyond remainingWh, every fill is at p*
// (inside both limits by construction), and total volume stops at capacityWh; orders left out
// keep their remaining volume. With preferences the matched volume can be below min(D, S).
//
// A buy's `source` and `sellerReputationBps` and a sell's `acceptedSources` and
// `minSellerReputationBps` are not read.
//
// Speed (issue #3: 100,000 orders under 50 ms): orders are unpacked once into typed arrays and
// put in (price, seq) order by a stable LSD radix sort on integer keys, not a comparator sort of
// objects. Asks are found with a union-find "next live ask" pointer, and for constrained bids with
// a segment tree holding the best live seller reputation per source, so a picky bid never scans
// the asks it refuses. Cost: O(n) plus O(log n) per fill and per self-trade skipped.

import { ValidationError } from "../../lib/errors.js";

export interface AuctionOrder {
  seq: number;
  side: 0 | 1 /* 0 buy, 1 sell */;
  price: number;
  remainingWh: number;
  maker: string;
  source: number /* sell: 1 solar,2 wind,3 storage,4 mixed; buy: 0 */;
  acceptedSources: number /* buy: bitmask of (1<<source), 0 = any */;
  minSellerReputationBps: number /* buy, 0 = any */;
  sellerReputationBps: number /* sell: the seller's reputation snapshot */;
}

export interface AuctionFill {
  buySeq: number;
  sellSeq: number;
  energyWh: number;
  price: number;
}

export interface AuctionResult {
  /** The uniform price every fill trades at, or null when the book does not cross. */
  clearingPrice: number | null;
  /** Sum of the fills' energyWh (<= capacityWh, <= min(demandWh, supplyWh)); always a safe integer. */
  matchedWh: number;
  /** D(clearingPrice): buy Wh willing to trade at the clearing price; 0 when it is null. Saturates
   *  at 2^53 - 1 when the true sum is larger (the clearing itself used the exact sum). */
  demandWh: number;
  /** S(clearingPrice): sell Wh willing to trade at the clearing price; 0 when it is null. Saturates
   *  at 2^53 - 1 like demandWh. */
  supplyWh: number;
  /** In allocation order: bids by priority, each bid's asks by priority. */
  fills: AuctionFill[];
}

export interface ClearCallAuctionOptions {
  /** The zone's dynamic price (token base units per kWh): tie-break 3 prefers prices near it. */
  referencePrice: number;
  /** The zone's capacity for the interval in Wh; caps matched volume. Default (and in effect at
   *  most) 2^53 - 1. */
  capacityWh?: number;
}

export type ClearCallAuctionErrorType = ValidationError;

const BUY = 0;
const SELL = 1;
const MAX_REPUTATION_BPS = 10_000;
/** Bits 1..4: solar, wind, storage, mixed. */
const SOURCE_MASK_ALL = 0b11110;

/**
 * Clears a call auction. Throws ValidationError naming the field (e.g. `orders[12].price`) for a
 * non-integer or negative number, a side other than 0/1, a sell source outside 1-4, an accepted
 * source mask with bits other than 1-4, a reputation outside 0-10000, or a duplicate seq. Any
 * number of orders of up to 2^53 - 1 Wh each clears: totals beyond 2^53 - 1 are summed exactly.
 */
export function clearCallAuction(orders: readonly AuctionOrder[], options: ClearCallAuctionOptions): AuctionResult {
  if (!Array.isArray(orders)) throw new ValidationError("orders", "must be an array");
  if (typeof options !== "object" || options === null) throw new ValidationError("options", "must be { referencePrice, capacityWh? }");
  const referencePrice = options.referencePrice;
  if (!isNonNegativeSafeInteger(referencePrice)) fail("options.referencePrice", referencePrice, "must be a safe integer >= 0");
  const capacityWh = options.capacityWh === undefined ? Number.MAX_SAFE_INTEGER : options.capacityWh;
  if (options.capacityWh !== undefined && !isNonNegativeSafeInteger(capacityWh)) fail("options.capacityWh", capacityWh, "must be a safe integer >= 0");

  const n = orders.length;
  // Everything the clearing reads, unpacked once into typed arrays (cache-friendly, monomorphic).
  const side = new Uint8Array(n);
  const price = new Float64Array(n);
  const remaining = new Float64Array(n);
  const seq = new Float64Array(n);
  const makerOf: string[] = new Array<string>(n);
  const makerPrint = new Int32Array(n);
  const source = new Uint8Array(n); // sell
  const reputation = new Int32Array(n); // sell
  const acceptedMask = new Uint8Array(n); // buy, 0 = any
  const minReputation = new Int32Array(n); // buy, 0 = any
  let seqAscending = true;
  let minSeq = Number.POSITIVE_INFINITY;
  let maxSeq = -1;
  let minPrice = Number.POSITIVE_INFINITY;
  let maxPrice = 0;
  let activeCount = 0;
  let totalBuyWh = 0;
  let totalSellWh = 0;
  /** A side's total passed 2^53 - 1: the sums below are no longer exact as doubles. */
  let totalsOverflow = false;

  for (let i = 0; i < n; i++) {
    const o = orders[i]!;
    if (typeof o !== "object" || o === null) throw new ValidationError(`orders[${i}]`, "must be an order object");
    const s = o.seq;
    const p = o.price;
    const r = o.remainingWh;
    const maker = o.maker;
    if (!isNonNegativeSafeInteger(s)) fail(`orders[${i}].seq`, s, "must be a safe integer >= 0");
    if (o.side !== BUY && o.side !== SELL) fail(`orders[${i}].side`, o.side, "must be 0 (buy) or 1 (sell)");
    if (!isNonNegativeSafeInteger(p)) fail(`orders[${i}].price`, p, "must be a safe integer >= 0");
    if (!isNonNegativeSafeInteger(r)) fail(`orders[${i}].remainingWh`, r, "must be a safe integer >= 0");
    if (typeof maker !== "string" || maker.length === 0) fail(`orders[${i}].maker`, maker, "must be a non-empty string");
    if (o.side === SELL) {
      const src = o.source;
      const rep = o.sellerReputationBps;
      if (!Number.isInteger(src) || src < 1 || src > 4) fail(`orders[${i}].source`, src, "must be 1 (solar), 2 (wind), 3 (storage) or 4 (mixed) on a sell order");
      if (!isReputation(rep)) fail(`orders[${i}].sellerReputationBps`, rep, `must be an integer from 0 to ${MAX_REPUTATION_BPS}`);
      if (totalSellWh > Number.MAX_SAFE_INTEGER - r) totalsOverflow = true;
      totalSellWh += r;
      source[i] = src;
      reputation[i] = rep;
    } else {
      const mask = o.acceptedSources;
      const minRep = o.minSellerReputationBps;
      if (!Number.isInteger(mask) || mask < 0 || mask > SOURCE_MASK_ALL || (mask & 1) !== 0) {
        fail(`orders[${i}].acceptedSources`, mask, "must be 0 (any) or a bitmask of 1 << source for sources 1-4");
      }
      if (!isReputation(minRep)) fail(`orders[${i}].minSellerReputationBps`, minRep, `must be an integer from 0 to ${MAX_REPUTATION_BPS}`);
      if (totalBuyWh > Number.MAX_SAFE_INTEGER - r) totalsOverflow = true;
      totalBuyWh += r;
      acceptedMask[i] = mask;
      minReputation[i] = minRep;
    }
    makerOf[i] = maker;
    makerPrint[i] = fingerprint(maker);
    side[i] = o.side;
    price[i] = p;
    remaining[i] = r;
    seq[i] = s;
    if (s <= maxSeq) seqAscending = false;
    else maxSeq = s;
    if (s < minSeq) minSeq = s;
    if (r > 0) {
      activeCount++;
      if (p > maxPrice) maxPrice = p;
      if (p < minPrice) minPrice = p;
    }
  }

  // ---- time priority: active orders in seq order (seq is unique; a duplicate is an error).
  let inSeqOrder = new Uint32Array(activeCount);
  if (seqAscending) {
    for (let i = 0, a = 0; i < n; i++) if (remaining[i]! > 0) inSeqOrder[a++] = i;
  } else {
    const all = new Uint32Array(n);
    for (let i = 0; i < n; i++) all[i] = i;
    const bySeq = radixSortIndices(all, seq, minSeq, maxSeq);
    for (let r = 1; r < n; r++) {
      const i = bySeq[r]!;
      const prev = bySeq[r - 1]!;
      if (seq[i] === seq[prev]) {
        const [first, second] = prev < i ? [prev, i] : [i, prev];
        throw new ValidationError(`orders[${second}].seq`, `must be unique, ${seq[i]} is also the seq of orders[${first}]`, { code: "duplicate_seq" });
      }
    }
    for (let r = 0, a = 0; r < n; r++) if (remaining[bySeq[r]!]! > 0) inSeqOrder[a++] = bySeq[r]!;
  }

  // ---- active orders by (price asc, seq asc): a stable sort by price of the seq-ordered list.
  const sorted = activeCount === 0 ? inSeqOrder : radixSortIndices(inSeqOrder, price, minPrice, maxPrice);

  // ---- distinct candidate prices with the buy and sell volume at each.
  const levelPrice: number[] = [];
  const levelStart: number[] = []; // first position in `sorted` of each price level
  const levelBuyWh: number[] = [];
  const levelSellWh: number[] = [];
  for (let j = 0; j < activeCount; j++) {
    const i = sorted[j]!;
    const p = price[i]!;
    let last = levelPrice.length - 1;
    if (last < 0 || levelPrice[last] !== p) {
      levelPrice.push(p);
      levelStart.push(j);
      levelBuyWh.push(0);
      levelSellWh.push(0);
      last++;
    }
    if (side[i] === BUY) levelBuyWh[last]! += remaining[i]!;
    else levelSellWh[last]! += remaining[i]!;
  }
  const levels = levelPrice.length;
  levelStart.push(activeCount);

  // ---- the clearing price: scan candidates upwards; only a strict improvement under rules 1-3
  // replaces the best, so a full tie keeps the lower price (rule 4).
  let best = -1;
  let bestVolume = 0;
  let bestImbalance = 0;
  let bestDistance = 0;
  let bestDemand = 0;
  let bestSupply = 0;
  let buyBelow = 0; // buy Wh at prices < levelPrice[k]
  let supply = 0; // S(levelPrice[k])
  if (totalsOverflow) {
    const exact = bestLevelExact(levelPrice, levelStart, sorted, side, remaining, referencePrice);
    best = exact.best;
    bestDemand = saturate(exact.demand);
    bestSupply = saturate(exact.supply);
  }
  for (let k = 0; k < levels && !totalsOverflow; k++) {
    supply += levelSellWh[k]!;
    const demand = totalBuyWh - buyBelow;
    buyBelow += levelBuyWh[k]!;
    const volume = Math.min(demand, supply);
    if (volume === 0) continue;
    const imbalance = Math.abs(demand - supply);
    const distance = Math.abs(levelPrice[k]! - referencePrice);
    if (
      best < 0 ||
      volume > bestVolume ||
      (volume === bestVolume && (imbalance < bestImbalance || (imbalance === bestImbalance && distance < bestDistance)))
    ) {
      best = k;
      bestVolume = volume;
      bestImbalance = imbalance;
      bestDistance = distance;
      bestDemand = demand;
      bestSupply = supply;
    }
  }
  if (best < 0) return { clearingPrice: null, matchedWh: 0, demandWh: 0, supplyWh: 0, fills: [] };
  const clearingPrice = levelPrice[best]!;

  // ---- eligible bids in priority: price levels from the top down to p*, seq asc within a level.
  const bids: number[] = [];
  let anyConstrainedBid = false;
  for (let k = levels - 1; k >= best; k--) {
    for (let j = levelStart[k]!; j < levelStart[k + 1]!; j++) {
      const i = sorted[j]!;
      if (side[i] !== BUY) continue;
      bids.push(i);
      if (acceptedMask[i] !== 0 || minReputation[i] !== 0) anyConstrainedBid = true;
    }
  }
  // ---- eligible asks in priority: sorted order up to the end of level p*.
  const asks: number[] = [];
  for (let j = 0; j < levelStart[best + 1]!; j++) {
    const i = sorted[j]!;
    if (side[i] === SELL) asks.push(i);
  }

  const m = asks.length;
  const askLeft = new Float64Array(m);
  const askMaker: string[] = new Array<string>(m);
  const askMakerPrint = new Int32Array(m);
  for (let j = 0; j < m; j++) {
    askLeft[j] = remaining[asks[j]!]!;
    askMaker[j] = makerOf[asks[j]!]!;
    askMakerPrint[j] = makerPrint[asks[j]!]!;
  }

  // Union-find over ask positions: nextLive(j) is the first unexhausted ask at or after j;
  // position m is a sentinel that is always "live".
  const parent = new Int32Array(m + 1);
  for (let j = 0; j <= m; j++) parent[j] = j;
  const nextLive = (j: number): number => {
    let root = j;
    while (parent[root] !== root) root = parent[root]!;
    while (parent[j] !== root) {
      const up = parent[j]!;
      parent[j] = root;
      j = up;
    }
    return root;
  };
  const tree = anyConstrainedBid ? new AskReputationTree(asks, source, reputation) : null;

  // ---- allocation: each bid in priority takes the best live ask it accepts, until it is done,
  // the acceptable asks are, or the capacity is.
  const fills: AuctionFill[] = [];
  let matchedWh = 0;
  for (let b = 0; b < bids.length && matchedWh < capacityWh; b++) {
    const bi = bids[b]!;
    const bidMaker = makerOf[bi]!;
    const bidMakerPrint = makerPrint[bi]!;
    const bidSeq = seq[bi]!;
    const mask = acceptedMask[bi]!;
    const minRep = minReputation[bi]!;
    const constrained = mask !== 0 || minRep !== 0;
    let need = remaining[bi]!;
    let from = 0;
    while (need > 0 && matchedWh < capacityWh) {
      const j = constrained ? tree!.firstAcceptable(from, mask === 0 ? SOURCE_MASK_ALL : mask, minRep) : nextLive(from);
      if (j < 0 || j >= m) break;
      if (askMakerPrint[j] === bidMakerPrint && askMaker[j] === bidMaker) {
        from = j + 1; // a self-trade: skipped for this bid only
        continue;
      }
      const q = Math.min(need, askLeft[j]!, capacityWh - matchedWh);
      fills.push({ buySeq: bidSeq, sellSeq: seq[asks[j]!]!, energyWh: q, price: clearingPrice });
      need -= q;
      matchedWh += q;
      askLeft[j]! -= q;
      if (askLeft[j] === 0) {
        parent[j] = j + 1;
        tree?.remove(j);
      }
    }
  }
  return { clearingPrice, matchedWh, demandWh: bestDemand, supplyWh: bestSupply, fills };
}

/**
 * The clearing level (index into levelPrice, or -1) under rules 1-4, with D and S at it, summed
 * as bigint: the same scan as the double one, for books whose side totals pass 2^53 - 1.
 */
function bestLevelExact(
  levelPrice: readonly number[], levelStart: readonly number[], sorted: Uint32Array, side: Uint8Array, remaining: Float64Array, referencePrice: number,
): { best: number; demand: bigint; supply: bigint } {
  const levels = levelPrice.length;
  const levelBuy: bigint[] = new Array<bigint>(levels);
  const levelSell: bigint[] = new Array<bigint>(levels);
  let totalBuy = 0n;
  for (let k = 0; k < levels; k++) {
    let buyWh = 0n;
    let sellWh = 0n;
    for (let j = levelStart[k]!; j < levelStart[k + 1]!; j++) {
      const i = sorted[j]!;
      if (side[i] === BUY) buyWh += BigInt(remaining[i]!);
      else sellWh += BigInt(remaining[i]!);
    }
    levelBuy[k] = buyWh;
    levelSell[k] = sellWh;
    totalBuy += buyWh;
  }
  let best = -1;
  let bestVolume = 0n;
  let bestImbalance = 0n;
  let bestDistance = 0;
  let bestDemand = 0n;
  let bestSupply = 0n;
  let buyBelow = 0n;
  let supply = 0n;
  for (let k = 0; k < levels; k++) {
    supply += levelSell[k]!;
    const demand = totalBuy - buyBelow;
    buyBelow += levelBuy[k]!;
    const volume = demand < supply ? demand : supply;
    if (volume === 0n) continue;
    const imbalance = demand > supply ? demand - supply : supply - demand;
    const distance = Math.abs(levelPrice[k]! - referencePrice);
    if (
      best < 0 ||
      volume > bestVolume ||
      (volume === bestVolume && (imbalance < bestImbalance || (imbalance === bestImbalance && distance < bestDistance)))
    ) {
      best = k;
      bestVolume = volume;
      bestImbalance = imbalance;
      bestDistance = distance;
      bestDemand = demand;
      bestSupply = supply;
    }
  }
  return { best, demand: bestDemand, supply: bestSupply };
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function saturate(wh: bigint): number {
  return wh > MAX_SAFE ? Number.MAX_SAFE_INTEGER : Number(wh);
}

/**
 * Segment tree over the eligible asks in priority order. Each node keeps, per source, the highest
 * sellerReputationBps among the live asks below it (-1 when none), so "the first live ask at or
 * after `from` whose source is in `mask` with reputation >= `minRep`" takes O(log m).
 */
class AskReputationTree {
  private readonly size: number;
  /** bestRep[source - 1][node] */
  private readonly bestRep: Int32Array[];
  private from = 0;
  private mask = 0;
  private minRep = 0;

  constructor(asks: readonly number[], source: Uint8Array, reputation: Int32Array) {
    let size = 1;
    while (size < asks.length) size *= 2;
    this.size = size;
    this.bestRep = [0, 1, 2, 3].map(() => new Int32Array(2 * size).fill(-1));
    for (let j = 0; j < asks.length; j++) {
      const i = asks[j]!;
      this.bestRep[source[i]! - 1]![size + j] = reputation[i]!;
    }
    for (const rep of this.bestRep) {
      for (let node = size - 1; node >= 1; node--) rep[node] = Math.max(rep[2 * node]!, rep[2 * node + 1]!);
    }
  }

  remove(position: number): void {
    for (const rep of this.bestRep) {
      let node = this.size + position;
      if (rep[node] === -1) continue;
      rep[node] = -1;
      node >>= 1;
      while (node >= 1) {
        const value = Math.max(rep[2 * node]!, rep[2 * node + 1]!);
        if (rep[node] === value) break;
        rep[node] = value;
        node >>= 1;
      }
    }
  }

  /** First position >= from with an acceptable live ask, or -1. */
  firstAcceptable(from: number, mask: number, minRep: number): number {
    this.from = from;
    this.mask = mask;
    this.minRep = minRep;
    return this.search(1, 0, this.size - 1);
  }

  private holds(node: number): boolean {
    const mask = this.mask;
    const minRep = this.minRep;
    const rep = this.bestRep;
    return (
      ((mask & 0b00010) !== 0 && rep[0]![node]! >= minRep) ||
      ((mask & 0b00100) !== 0 && rep[1]![node]! >= minRep) ||
      ((mask & 0b01000) !== 0 && rep[2]![node]! >= minRep) ||
      ((mask & 0b10000) !== 0 && rep[3]![node]! >= minRep)
    );
  }

  private search(node: number, lo: number, hi: number): number {
    if (hi < this.from || !this.holds(node)) return -1;
    if (lo === hi) return lo;
    const mid = (lo + hi) >> 1;
    const left = this.search(2 * node, lo, mid);
    return left >= 0 ? left : this.search(2 * node + 1, mid + 1, hi);
  }
}

const RADIX_BITS = 11;
const RADIX = 1 << RADIX_BITS;

/**
 * `indices` stably sorted by key[i] (integers in [minKey, maxKey], a range below 2^53): an LSD
 * radix sort on key - minKey, 11 bits a pass, skipping passes where every digit is the same.
 * Stability is what keeps seq order within a price.
 */
function radixSortIndices(indices: Uint32Array, key: Float64Array, minKey: number, maxKey: number): Uint32Array {
  const len = indices.length;
  if (len === 0) return indices.slice();
  const range = maxKey - minKey;
  let src = indices.slice();
  let dst = new Uint32Array(len);
  const count = new Uint32Array(RADIX);
  const digits = new Uint16Array(len);
  for (let shift = 0; shift === 0 || 2 ** shift <= range; shift += RADIX_BITS) {
    const divisor = 2 ** shift;
    count.fill(0);
    if (range < 2 ** 32) {
      for (let j = 0; j < len; j++) {
        const d = ((key[src[j]!]! - minKey) >>> shift) & (RADIX - 1);
        digits[j] = d;
        count[d]!++;
      }
    } else {
      for (let j = 0; j < len; j++) {
        const d = Math.floor((key[src[j]!]! - minKey) / divisor) % RADIX;
        digits[j] = d;
        count[d]!++;
      }
    }
    if (count[digits[0]!] === len) continue; // one digit value: this pass would not move anything
    let offset = 0;
    for (let d = 0; d < RADIX; d++) {
      const c = count[d]!;
      count[d] = offset;
      offset += c;
    }
    for (let j = 0; j < len; j++) dst[count[digits[j]!]!++] = src[j]!;
    const swap = src;
    src = dst;
    dst = swap;
  }
  return src;
}

/**
 * A cheap fingerprint of a maker: its length and last four characters (the random tail of an
 * address). Equal makers have equal prints, so only equal prints pay for a string comparison and
 * the self-trade check in the allocation loop stays on integers. Reading more characters costs
 * measurably more on 100,000 orders for no gain: a collision only costs one string comparison.
 */
function fingerprint(maker: string): number {
  const len = maker.length;
  let h = len;
  for (let k = len > 4 ? len - 4 : 0; k < len; k++) h = (Math.imul(h, 31) + maker.charCodeAt(k)) | 0;
  return h;
}

function isNonNegativeSafeInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function isReputation(value: unknown): boolean {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= MAX_REPUTATION_BPS;
}

function fail(field: string, value: unknown, rule: string): never {
  const shown = typeof value === "string" ? JSON.stringify(value) : typeof value === "bigint" ? `${value}n` : String(value);
  throw new ValidationError(field, `${rule}, got ${shown}`);
}
