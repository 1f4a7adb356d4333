// The evidence behind a delivery window's reports, complete enough that anyone holding it and
// reading the chain can re-derive every reported Wh (verifyEvidence.ts): the meters' signed
// readings themselves (raw payloads, exactly as received), what each interval measured, what
// earlier windows had already used, every trade of the window the allocation rule shared the
// energy over with its outcome, and the rule. It is stored as canonical JSON (keys sorted,
// bigints as decimal strings) and the keccak256 of those exact bytes goes on-chain as the
// evidence hash of each of the window's reports (and a dispute's reason hash), so the bytes
// cannot be changed after the report.
import { setImmediate as nextTurn } from "node:timers/promises";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex, keccak256, stringToBytes, type Address, type Hex } from "viem";
import type { AllocationRule } from "./config.js";
import type { DeliveryBasis } from "./allocateDeliveredEnergy.js";
import type { Direction, SlotEnergy } from "./measureMeterEnergy.js";

export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

export function evidenceHash(canonical: string): Hex {
  return keccak256(stringToBytes(canonical));
}

/** Bytes hashed between two turns of the event loop (~15–25 ms of pure-JS keccak here). */
export const EVIDENCE_HASH_SLICE_BYTES = 256 * 1024;

/**
 * evidenceHash, a slice at a time with a turn of the event loop between slices: a window's
 * document reaches megabytes (2.6 MB for 11,000 trades), whose keccak256 in one go held the
 * node's thread 214 ms while a delivery window was decided. The same hash.
 */
export async function evidenceHashInSlices(
  canonical: string,
  options: { sliceBytes?: number; pause?: () => Promise<unknown> } = {},
): Promise<Hex> {
  const bytes = stringToBytes(canonical);
  const slice = options.sliceBytes ?? EVIDENCE_HASH_SLICE_BYTES;
  const pause = options.pause ?? nextTurn;
  const hash = keccak_256.create();
  for (let i = 0; i < bytes.length; i += slice) {
    if (i > 0) await pause();
    hash.update(bytes.subarray(i, i + slice));
  }
  return bytesToHex(hash.digest());
}

function sortKeys(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/**
 * Version 3: one document per delivery window, every party and every trade once (version 2 was
 * one document per trade repeating the buyer's other sellers: a window of n parties trading with
 * each other made O(n^3) bytes; version 1 listed sha256 hashes of raw payloads only). Every
 * trade of the window reports the same hash; verifyEvidence still reads version 2.
 */
export const EVIDENCE_VERSION = 3;
/**
 * Names the reading-signature scheme the evidence's readings were checked with:
 * readingSignature.ts's domain tag and version (written out: that module imports this one).
 */
export const EVIDENCE_SIGNATURES = "p2p-energy/meter-reading/1";

/** A trade of the window: the allocation's input (parties, contracted) and its outcome. */
export interface EvidenceTrade {
  tradeId: bigint;
  batchId: bigint;
  seller: Address;
  buyer: Address;
  contractedWh: bigint;
  /** The seller's export allocated to this trade, before the buyer's import capped it. */
  sellerAllocatedWh: bigint;
  /** What was reported on chain. */
  deliveredWh: bigint;
  basis: DeliveryBasis;
}

/** One signed reading, as the meter sent it. */
export interface EvidenceReading {
  metric: "export" | "import" | "interval";
  /** The raw payload, signature included. */
  payload: string;
  /** sha256 of `payload`'s UTF-8 bytes, hex: what a slot's `readings` name. */
  sha256: string;
}

export interface EvidenceSlot {
  /** Interval start, unix ms. */
  start: number;
  source: SlotEnergy["source"];
  wh: bigint | null;
  /** Wh of this interval already credited to earlier windows (bridge_slot_usage). */
  usedBeforeWh: bigint;
  /** sha256 of each reading used, in the party's `readings`. */
  readings: string[];
}

/** A meter's side of the window: its readings and what they measured. */
export interface EvidenceParty {
  account: Address;
  meter: string | null;
  direction: Direction;
  /** Energy the window could still use: sum of (wh - usedBeforeWh, at least 0), null when any interval is missing. */
  availableWh: bigint | null;
  slots: EvidenceSlot[];
  readings: EvidenceReading[];
}

export interface DeliveryEvidence {
  v: typeof EVIDENCE_VERSION;
  signatures: typeof EVIDENCE_SIGNATURES;
  market: Address;
  /** The window (unix s) and when the bridge closed it (unix ms, its clock). */
  window: { start: bigint; end: bigint; closedAtMs: number };
  intervalSeconds: number;
  allocation: AllocationRule;
  /** Every seller of the window (export side), by account. */
  sellers: EvidenceParty[];
  /** Every buyer of the window (import side), by account. */
  buyers: EvidenceParty[];
  /** Every trade of the window the bridge decided together, in execution (trade id) order. */
  trades: EvidenceTrade[];
}

/** The canonical bytes of `evidence` (what is stored and hashed). */
export function encodeEvidence(evidence: DeliveryEvidence): string {
  return canonicalJson(evidence);
}
