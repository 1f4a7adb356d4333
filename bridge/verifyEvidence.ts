// Re-derives a delivery report from its evidence, trusting only the chain: (a) the evidence
// bytes hash to the evidenceHash the market emitted for the trade, (b) every reading carries a
// valid signature by a key the registry held for that meter (and that account) around the
// window, (c) the bridge's own rules (parseReading, measureSlots, allocateDeliveredEnergy) give
// the reported deliveredWh from those readings and the allocation inputs the evidence lists.
// Pure: the caller reads the chain (evidenceOnChain.ts) and passes what it found.
//
// Version 3 evidence covers a whole window: every trade's outcome is re-derived and checked, so
// one trade's verification vouches for its window. Version 2 (one document per trade, with the
// buyer's other sellers) is read into the same shape and only its one outcome is checked.
//
// What it cannot show from the evidence alone: that no other signed reading existed (one nearer
// a boundary, an interval reading the bridge left out), and that `usedBeforeWh` matches the
// earlier windows (each of those has evidence of its own).
import { createHash } from "node:crypto";
import { getAddress, isAddress, type Address, type Hex } from "viem";
import { allocateDeliveredEnergy, type DeliveryBasis, type TradeClaim } from "./allocateDeliveredEnergy.js";
import { ReadingRejectedError } from "./errors.js";
import { evidenceHash, EVIDENCE_VERSION } from "./evidence.js";
import { measureSlots, type Direction, type MeasurableReading } from "./measureMeterEnergy.js";
import { parseReadingMessage } from "./parseReading.js";
import { isMeterSignerSet, verifyReadingSignature, type MeterSigner } from "./readingSignature.js";
import { SMART_METER } from "./topics.js";

/** One MeterSignerSet as the chain holds it, with when it stopped being in force. */
export interface MeterSignerRecord {
  account: Address;
  /** The meter id as a string (the registry's bytes32, decoded). */
  meterId: string;
  /** Zero: the meter had no key from `setAt` on. */
  signer: Hex;
  /** Timestamp (unix s) of the block that set it. */
  setAt: bigint;
  /** Timestamp of the block of the next MeterSignerSet for this meter; null while in force. */
  replacedAt: bigint | null;
}

/** A trade as the chain's TradeExecuted describes it. */
export interface ChainTrade {
  tradeId: bigint;
  seller: Address;
  buyer: Address;
  energyWh: bigint;
  deliveryStart: bigint;
  deliveryEnd: bigint;
}

export interface VerifyEvidenceParameters {
  /** The evidence exactly as stored (its bytes are what was hashed). */
  evidence: string;
  /** The trade the caller asked about; the evidence must cover it (a window's document covers each of its trades). */
  tradeId: bigint;
  onChain: {
    /** The market contract whose report this is; the evidence must name it. */
    market?: Address;
    /** The trade's DeliveryConfirmed; undefined when the chain has no report of it (yet). */
    report: { evidenceHash: Hex; deliveredWh: bigint; /** Block timestamp, unix s. */ reportedAt: bigint } | undefined;
    /** Every MeterSignerSet of the evidence's meters. */
    signers: readonly MeterSignerRecord[];
    /** When given: the trades the evidence lists, as executed on chain. */
    trades?: readonly ChainTrade[];
  };
}

export type EvidenceProblemCode =
  | "malformed_evidence" | "unsupported_version" | "evidence_hash_mismatch" | "report_missing" | "market_mismatch" | "trade_mismatch"
  | "reading_hash_mismatch" | "reading_unusable" | "signature_missing" | "signature_invalid" | "signer_unknown"
  | "measurement_mismatch" | "available_mismatch" | "trades_inconsistent" | "trade_not_on_chain" | "allocation_mismatch" | "delivered_mismatch";

export interface EvidenceProblem {
  code: EvidenceProblemCode;
  /** Where in the evidence, e.g. `seller.readings[1]` or `buyer.slots[0].wh`. */
  path: string;
  detail: string;
}

export interface VerifiedReading {
  party: string;
  meter: string;
  metric: string;
  sha256: string;
  /** The registered key it verified under; undefined when none did. */
  signer: MeterSigner | undefined;
}

export interface VerifyEvidenceReturnType {
  /** Everything checked out: hash, every signature, every measurement, the allocation, the report. */
  ok: boolean;
  tradeId: bigint | undefined;
  /** Re-derived from the signed readings; undefined when the evidence is too broken to compute it. */
  deliveredWh: bigint | undefined;
  sellerAllocatedWh: bigint | undefined;
  basis: DeliveryBasis | undefined;
  readings: VerifiedReading[];
  problems: EvidenceProblem[];
  /** keccak256 of `evidence`'s bytes (what the report on chain must carry). */
  evidenceHash: Hex;
}

export type VerifyEvidenceErrorType = never;

// The bridge judged the clock when it took the readings in; an auditor re-checks them later.
const NO_CLOCK_LIMIT = 1e12;

/** Checks `evidence` against the chain; never throws for bad evidence, it lists what is wrong. */
export function verifyEvidence({ evidence, tradeId, onChain }: VerifyEvidenceParameters): VerifyEvidenceReturnType {
  const problems: EvidenceProblem[] = [];
  const readings: VerifiedReading[] = [];
  const hash = evidenceHash(evidence);
  const result = (more: Partial<VerifyEvidenceReturnType> = {}): VerifyEvidenceReturnType => ({
    ok: problems.length === 0, tradeId, deliveredWh: undefined, sellerAllocatedWh: undefined, basis: undefined, readings, problems, evidenceHash: hash, ...more,
  });
  const problem = (code: EvidenceProblemCode, path: string, detail: string) => problems.push({ code, path, detail });

  // (a) the bytes are the ones the report committed to
  if (!onChain.report) problem("report_missing", "", "the chain has no DeliveryConfirmed for this trade: nothing to check the evidence against");
  else if (hash.toLowerCase() !== onChain.report.evidenceHash.toLowerCase()) {
    problem("evidence_hash_mismatch", "", `keccak256 of the evidence is ${hash}, the report on chain says ${onChain.report.evidenceHash}`);
  }

  let e: RawEvidence;
  try {
    e = readEvidence(JSON.parse(evidence));
  } catch (err) {
    if (err instanceof SyntaxError || err instanceof EvidenceShapeError) {
      problem(err instanceof EvidenceShapeError && err.code === "unsupported_version" ? "unsupported_version" : "malformed_evidence", err instanceof EvidenceShapeError ? err.path : "", err.message);
      return result();
    }
    throw err;
  }
  const own = e.outcomes.find((o) => o.tradeId === tradeId);
  if (!own) problem("trade_mismatch", e.v === 2 ? "tradeId" : "trades", `the evidence does not decide trade ${tradeId}`);
  if (onChain.market && getAddress(onChain.market) !== e.market) problem("market_mismatch", "market", `the evidence names market ${e.market}, the report came from ${getAddress(onChain.market)}`);

  // (b) and (c), per party: signatures, then the measurement from the readings that verified
  const intervalMs = e.intervalSeconds * 1000;
  const slotStartsMs: number[] = [];
  const first = (e.window.start / BigInt(e.intervalSeconds)) * BigInt(e.intervalSeconds);
  for (let s = first; s < e.window.end; s += BigInt(e.intervalSeconds)) slotStartsMs.push(Number(s) * 1000);
  // Keys count when in force at some moment from an interval before the window (a boundary
  // reading) until the report: a key revoked before the window signs nothing in it.
  const keyFrom = e.window.start - BigInt(e.intervalSeconds);
  const keyUntil = onChain.report?.reportedAt;
  const signersOf = new Map<string, MeterSignerRecord[]>();
  for (const k of onChain.signers) signersOf.set(k.meterId, [...(signersOf.get(k.meterId) ?? []), k]);

  const available = new Map<RawParty, bigint | undefined>();
  for (const party of [...e.sellers, ...e.buyers]) {
    const { path } = party;
    const measurable: MeasurableReading[] = [];
    const atSeen = new Set<string>();
    for (const [i, r] of party.readings.entries()) {
      const at = `${path}.readings[${i}]`;
      const sha256 = createHash("sha256").update(r.payload, "utf8").digest("hex");
      if (sha256 !== r.sha256) problem("reading_hash_mismatch", at, `sha256 of the payload is ${sha256}, the evidence says ${r.sha256}`);
      if (party.meter === null) {
        problem("trades_inconsistent", at, "a party without a meter cannot have readings");
        continue;
      }
      let parsed;
      try {
        parsed = parseReadingMessage(
          { region: "evidence", deviceType: SMART_METER, deviceId: party.meter, metric: r.metric },
          Buffer.from(r.payload, "utf8"),
          { maxPayloadBytes: Number.MAX_SAFE_INTEGER, intervalSeconds: e.intervalSeconds, nowMs: e.window.closedAtMs, maxClockSkewSeconds: NO_CLOCK_LIMIT, retentionSeconds: NO_CLOCK_LIMIT },
        );
      } catch (err) {
        if (!(err instanceof ReadingRejectedError)) throw err;
        problem("reading_unusable", at, `${err.reason}: ${err.shortMessage}`);
        continue;
      }
      const { reading, body } = parsed;
      if (reading.kind === "power") {
        problem("reading_unusable", at, "a power reading (W/kW) is never delivery evidence");
        continue;
      }
      const candidates = (signersOf.get(party.meter) ?? []).filter((k) =>
        isMeterSignerSet(k.signer) && getAddress(k.account) === party.account &&
        (keyUntil === undefined || k.setAt <= keyUntil) && (k.replacedAt === null || k.replacedAt >= keyFrom));
      let signer: MeterSigner | undefined;
      let failure: { reason: string; rule: string } | undefined;
      for (const k of candidates) {
        const check = verifyReadingSignature({ meterId: party.meter, metric: r.metric, payload: body, signer: k.signer });
        if (check.ok) {
          signer = k.signer;
          break;
        }
        failure = check;
      }
      readings.push({ party: path, meter: party.meter, metric: r.metric, sha256, signer });
      if (!signer) {
        if (candidates.length === 0) problem("signer_unknown", at, `the registry held no key for meter ${party.meter} of ${party.account} around the window`);
        else problem(failure!.reason === "signature_missing" ? "signature_missing" : "signature_invalid", at, `${failure!.rule} (tried ${candidates.length} registered key${candidates.length === 1 ? "" : "s"})`);
        continue;
      }
      const key = `${reading.kind}/${reading.metric}/${reading.atMs}`;
      if (atSeen.has(key)) problem("reading_unusable", at, `a second ${reading.metric} reading for the same instant`);
      atSeen.add(key);
      const used = { hash: r.sha256, metric: r.metric, payload: r.payload };
      measurable.push(reading.kind === "interval"
        ? { kind: "interval", atMs: reading.atMs, exportWh: BigInt(reading.exportWh), importWh: BigInt(reading.importWh), reading: used }
        : { kind: "counter", metric: reading.metric, atMs: reading.atMs, wh: BigInt(reading.wh), reading: used });
    }

    // The same rule as the bridge, over the readings that verified.
    const measured = party.meter === null ? [] : measureSlots(measurable, party.direction, slotStartsMs, intervalMs);
    if (measured.length !== party.slots.length) {
      problem("measurement_mismatch", `${path}.slots`, `the window has ${measured.length} interval(s) to measure, the evidence lists ${party.slots.length}`);
    }
    let sum: bigint | undefined = party.meter === null || measured.length === 0 ? undefined : 0n;
    for (const [i, m] of measured.entries()) {
      const claimed = party.slots[i];
      const at = `${path}.slots[${i}]`;
      if (!claimed) break;
      if (claimed.start !== m.slotStartMs || claimed.source !== m.source || claimed.wh !== (m.wh ?? null) || claimed.readings.join() !== m.readings.join()) {
        problem("measurement_mismatch", at,
          `the readings that verify measure ${wh(m.wh)} (${m.source}) for the interval at ${new Date(m.slotStartMs).toISOString()}, the evidence says ${wh(claimed.wh)} (${claimed.source})`);
      }
      if (m.wh === undefined || sum === undefined) sum = undefined;
      else sum += m.wh > claimed.usedBeforeWh ? m.wh - claimed.usedBeforeWh : 0n;
    }
    if ((sum ?? null) !== party.availableWh) problem("available_mismatch", `${path}.availableWh`, `the readings that verify leave ${wh(sum)} for this window, the evidence says ${wh(party.availableWh)}`);
    available.set(party, sum);
  }

  // (c) the allocation, over the trades the evidence lists
  const claims = e.v === 2 ? legacyClaims(e, problem) : windowClaims(e, problem);
  if (onChain.trades) {
    const chainTrades = new Map(onChain.trades.map((t) => [t.tradeId, t]));
    for (const c of claims.values()) {
      const t = chainTrades.get(c.tradeId);
      if (!t) problem("trade_not_on_chain", "trades", `trade ${c.tradeId} was not executed on chain`);
      else if (getAddress(t.seller) !== c.seller || getAddress(t.buyer) !== c.buyer || t.energyWh !== c.contractedWh || t.deliveryStart !== e.window.start || t.deliveryEnd !== e.window.end) {
        problem("trade_not_on_chain", "trades", `trade ${c.tradeId} on chain is ${t.energyWh} Wh from ${t.seller} to ${t.buyer} for ${t.deliveryStart}-${t.deliveryEnd}, not what the evidence lists`);
      }
    }
  }

  const deliveries = new Map(allocateDeliveredEnergy({
    trades: [...claims.values()],
    sellerExportWh: new Map(e.sellers.map((p) => [p.account, available.get(p)])),
    buyerImportWh: new Map(e.buyers.map((p) => [p.account, available.get(p)])),
    rule: e.allocation,
  }).map((d) => [d.tradeId, d]));
  for (const o of e.outcomes) {
    const d = deliveries.get(o.tradeId);
    if (!d) continue; // not among the claims: trades_inconsistent said so
    if (d.sellerAllocatedWh !== o.sellerAllocatedWh || d.deliveredWh !== o.deliveredWh || d.basis !== o.basis) {
      problem("allocation_mismatch", field(o.path, "deliveredWh"),
        `${e.allocation} over the listed trades gives trade ${o.tradeId} ${d.sellerAllocatedWh} Wh of the seller's export and ${d.deliveredWh} Wh delivered (${d.basis}); ` +
        `the evidence says ${o.sellerAllocatedWh} and ${o.deliveredWh} (${o.basis})`);
    }
  }
  const mine = deliveries.get(tradeId);
  if (!own || !mine) return result();
  if (onChain.report && onChain.report.deliveredWh !== mine.deliveredWh) {
    problem("delivered_mismatch", field(own.path, "deliveredWh"), `the readings give ${mine.deliveredWh} Wh delivered, the report on chain says ${onChain.report.deliveredWh}`);
  }
  return result({ deliveredWh: mine.deliveredWh, sellerAllocatedWh: mine.sellerAllocatedWh, basis: mine.basis });
}

type Problem = (code: EvidenceProblemCode, path: string, detail: string) => void;

/**
 * Version 3: the window's trades, each listed once, each with its seller and buyer among the
 * parties, and each party on one side once.
 */
function windowClaims(e: RawEvidence, problem: Problem): Map<bigint, TradeClaim> {
  for (const [side, parties] of [["sellers", e.sellers], ["buyers", e.buyers]] as const) {
    const seen = new Set<Address>();
    for (const p of parties) {
      if (seen.has(p.account)) problem("trades_inconsistent", p.path, `${p.account} is listed twice among the ${side}`);
      seen.add(p.account);
    }
  }
  const sellers = new Set(e.sellers.map((p) => p.account));
  const buyers = new Set(e.buyers.map((p) => p.account));
  const claims = new Map<bigint, TradeClaim>();
  for (const t of e.trades) {
    if (claims.has(t.tradeId)) problem("trades_inconsistent", t.path, `trade ${t.tradeId} is listed twice`);
    if (!sellers.has(t.seller)) problem("trades_inconsistent", `${t.path}.seller`, `the seller of trade ${t.tradeId} (${t.seller}) is not among the sellers`);
    if (!buyers.has(t.buyer)) problem("trades_inconsistent", `${t.path}.buyer`, `the buyer of trade ${t.tradeId} (${t.buyer}) is not among the buyers`);
    claims.set(t.tradeId, t);
  }
  return claims;
}

/**
 * Version 2: the trades its parties list (the seller's, the buyer's, the buyer's other sellers'),
 * consistent, and complete enough for the one outcome: the buyer's cap needs every one of its
 * trades' seller shares, so each of those sellers must be present with all its trades.
 */
function legacyClaims(e: RawEvidence, problem: Problem): Map<bigint, TradeClaim> {
  const claims = new Map<bigint, TradeClaim>();
  for (const party of [...e.sellers, ...e.buyers]) {
    const side = party.direction === "import" ? "buyer" : "seller";
    for (const [i, t] of party.trades.entries()) {
      if (t[side] !== party.account) problem("trades_inconsistent", `${party.path}.trades[${i}]`, `trade ${t.tradeId} is not a trade of ${party.account} as ${side}`);
      const known = claims.get(t.tradeId);
      if (known && (known.seller !== t.seller || known.buyer !== t.buyer || known.contractedWh !== t.contractedWh)) {
        problem("trades_inconsistent", `${party.path}.trades[${i}]`, `trade ${t.tradeId} is listed twice with different terms`);
      }
      claims.set(t.tradeId, { tradeId: t.tradeId, seller: t.seller, buyer: t.buyer, contractedWh: t.contractedWh });
    }
  }
  const [seller] = e.sellers;
  const [buyer] = e.buyers;
  const outcome = e.outcomes[0]!;
  const own = claims.get(outcome.tradeId);
  if (!own || own.seller !== seller!.account || own.buyer !== buyer!.account || own.contractedWh !== outcome.contractedWh) {
    problem("trades_inconsistent", "tradeId", `trade ${outcome.tradeId} is not listed with its seller, buyer and contracted ${outcome.contractedWh} Wh`);
  }
  if (!seller!.trades.some((t) => t.tradeId === outcome.tradeId)) problem("trades_inconsistent", "seller.trades", `trade ${outcome.tradeId} is missing from its seller's trades`);
  if (!buyer!.trades.some((t) => t.tradeId === outcome.tradeId)) problem("trades_inconsistent", "buyer.trades", `trade ${outcome.tradeId} is missing from its buyer's trades`);
  const sellerParties = new Map(e.sellers.map((p) => [p.account, p]));
  for (const t of buyer!.trades) {
    const s = sellerParties.get(t.seller);
    if (!s || !s.trades.some((x) => x.tradeId === t.tradeId)) problem("trades_inconsistent", "otherSellers", `the seller of the buyer's trade ${t.tradeId} (${t.seller}) is not in the evidence with that trade`);
  }
  for (const c of claims.values()) {
    if (c.buyer === buyer!.account && !buyer!.trades.some((t) => t.tradeId === c.tradeId)) problem("trades_inconsistent", "buyer.trades", `trade ${c.tradeId} of the buyer is missing from its list`);
  }
  return claims;
}

/** `trades[3].deliveredWh`, or version 2's top-level `deliveredWh`. */
function field(path: string, name: string): string {
  return path === "" ? name : `${path}.${name}`;
}

function wh(v: bigint | null | undefined): string {
  return v === null || v === undefined ? "nothing measured" : `${v} Wh`;
}

// ---------------------------------------------------------------- reading the JSON, strictly

interface RawTrade {
  tradeId: bigint;
  seller: Address;
  buyer: Address;
  contractedWh: bigint;
}

interface RawParty {
  /** Where it is in the document, for problems: `sellers[2]`, or version 2's `otherSellers[0]`. */
  path: string;
  account: Address;
  meter: string | null;
  direction: Direction;
  availableWh: bigint | null;
  slots: { start: number; source: string; wh: bigint | null; usedBeforeWh: bigint; readings: string[] }[];
  readings: { metric: "export" | "import" | "interval"; payload: string; sha256: string }[];
  /** Version 2 only: the party's trades of the window. */
  trades: RawTrade[];
}

/** A trade's outcome as the evidence states it. */
interface RawOutcome {
  path: string;
  tradeId: bigint;
  contractedWh: bigint;
  sellerAllocatedWh: bigint;
  deliveredWh: bigint;
  basis: DeliveryBasis;
}

/** Either version, read into one shape. */
interface RawEvidence {
  v: 2 | 3;
  market: Address;
  window: { start: bigint; end: bigint; closedAtMs: number };
  intervalSeconds: number;
  allocation: "fifo" | "pro-rata";
  sellers: RawParty[];
  buyers: RawParty[];
  /** Version 3: the window's trades (version 2 lists them per party). */
  trades: (RawTrade & { path: string })[];
  /** Version 3: one per trade; version 2: the one trade it was written for. */
  outcomes: RawOutcome[];
}

class EvidenceShapeError extends Error {
  constructor(readonly path: string, message: string, readonly code: "malformed_evidence" | "unsupported_version" = "malformed_evidence") {
    super(`${path}: ${message}`);
  }
}

function obj(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new EvidenceShapeError(path, "must be an object");
  return v as Record<string, unknown>;
}
function arr(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw new EvidenceShapeError(path, "must be an array");
  return v;
}
function str(v: unknown, path: string): string {
  if (typeof v !== "string") throw new EvidenceShapeError(path, "must be a string");
  return v;
}
function uint(v: unknown, path: string): bigint {
  if (typeof v !== "string" || !/^(0|[1-9]\d{0,77})$/.test(v)) throw new EvidenceShapeError(path, "must be a whole number as a decimal string");
  return BigInt(v);
}
function int(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new EvidenceShapeError(path, "must be a whole number");
  return v;
}
function address(v: unknown, path: string): Address {
  if (typeof v !== "string" || !isAddress(v, { strict: false })) throw new EvidenceShapeError(path, "must be an address");
  return getAddress(v);
}
function oneOf<T extends string>(v: unknown, allowed: readonly T[], path: string): T {
  if (!allowed.includes(v as T)) throw new EvidenceShapeError(path, `must be one of ${allowed.join(", ")}`);
  return v as T;
}
function orNull<T>(v: unknown, read: (v: unknown) => T): T | null {
  return v === null ? null : read(v);
}

const BASES = ["measured", "seller_data_missing", "buyer_data_missing"] as const;

function readParty(v: unknown, path: string, direction: Direction, version: 2 | 3): RawParty {
  const p = obj(v, path);
  return {
    path,
    account: address(p.account, `${path}.account`),
    meter: orNull(p.meter, (m) => str(m, `${path}.meter`)),
    direction: oneOf(p.direction, [direction], `${path}.direction`),
    availableWh: orNull(p.availableWh, (a) => uint(a, `${path}.availableWh`)),
    slots: arr(p.slots, `${path}.slots`).map((s, i) => {
      const o = obj(s, `${path}.slots[${i}]`);
      return {
        start: int(o.start, `${path}.slots[${i}].start`),
        source: oneOf(o.source, ["interval", "counter", "missing"], `${path}.slots[${i}].source`),
        wh: orNull(o.wh, (w) => uint(w, `${path}.slots[${i}].wh`)),
        usedBeforeWh: uint(o.usedBeforeWh, `${path}.slots[${i}].usedBeforeWh`),
        readings: arr(o.readings, `${path}.slots[${i}].readings`).map((h, j) => str(h, `${path}.slots[${i}].readings[${j}]`)),
      };
    }),
    readings: arr(p.readings, `${path}.readings`).map((r, i) => {
      const o = obj(r, `${path}.readings[${i}]`);
      return { metric: oneOf(o.metric, ["export", "import", "interval"], `${path}.readings[${i}].metric`), payload: str(o.payload, `${path}.readings[${i}].payload`), sha256: str(o.sha256, `${path}.readings[${i}].sha256`) };
    }),
    trades: version === 3 ? [] : arr(p.trades, `${path}.trades`).map((t, i) => readTrade(t, `${path}.trades[${i}]`)),
  };
}

function readTrade(v: unknown, path: string): RawTrade {
  const o = obj(v, path);
  return { tradeId: uint(o.tradeId, `${path}.tradeId`), seller: address(o.seller, `${path}.seller`), buyer: address(o.buyer, `${path}.buyer`), contractedWh: uint(o.contractedWh, `${path}.contractedWh`) };
}

function readEvidence(v: unknown): RawEvidence {
  const e = obj(v, "evidence");
  if (e.v !== 2 && e.v !== EVIDENCE_VERSION) {
    throw new EvidenceShapeError("v", `evidence version ${JSON.stringify(e.v)} cannot be re-derived (versions 2 and ${EVIDENCE_VERSION} carry the signed readings)`, "unsupported_version");
  }
  const version = e.v;
  const w = obj(e.window, "window");
  const intervalSeconds = int(e.intervalSeconds, "intervalSeconds");
  if (intervalSeconds === 0) throw new EvidenceShapeError("intervalSeconds", "must be positive");
  const window = { start: uint(w.start, "window.start"), end: uint(w.end, "window.end"), closedAtMs: int(w.closedAtMs, "window.closedAtMs") };
  // Bounded so hostile evidence cannot make the verifier loop over years of intervals.
  if (window.end <= window.start || window.end - window.start > 31n * 86_400n) throw new EvidenceShapeError("window", "must end after it starts, within 31 days");
  const common = { market: address(e.market, "market"), window, intervalSeconds, allocation: oneOf(e.allocation, ["fifo", "pro-rata"], "allocation") };
  if (version === 2) {
    return {
      ...common,
      v: 2,
      sellers: [readParty(e.seller, "seller", "export", 2), ...arr(e.otherSellers, "otherSellers").map((p, i) => readParty(p, `otherSellers[${i}]`, "export", 2))],
      buyers: [readParty(e.buyer, "buyer", "import", 2)],
      trades: [],
      outcomes: [{
        path: "",
        tradeId: uint(e.tradeId, "tradeId"),
        contractedWh: uint(e.contractedWh, "contractedWh"),
        sellerAllocatedWh: uint(e.sellerAllocatedWh, "sellerAllocatedWh"),
        deliveredWh: uint(e.deliveredWh, "deliveredWh"),
        basis: oneOf(e.basis, BASES, "basis"),
      }],
    };
  }
  const trades = arr(e.trades, "trades").map((t, i) => {
    const path = `trades[${i}]`;
    const o = obj(t, path);
    return {
      ...readTrade(t, path),
      path,
      sellerAllocatedWh: uint(o.sellerAllocatedWh, `${path}.sellerAllocatedWh`),
      deliveredWh: uint(o.deliveredWh, `${path}.deliveredWh`),
      basis: oneOf(o.basis, BASES, `${path}.basis`),
    };
  });
  return {
    ...common,
    v: 3,
    sellers: arr(e.sellers, "sellers").map((p, i) => readParty(p, `sellers[${i}]`, "export", 3)),
    buyers: arr(e.buyers, "buyers").map((p, i) => readParty(p, `buyers[${i}]`, "import", 3)),
    trades,
    outcomes: trades,
  };
}
