// The evidence behind a delivery report, complete enough that anyone holding it and reading the
// chain can re-derive the reported Wh (verifyEvidence.ts): the meters' signed readings
// themselves (raw payloads, exactly as received), what each interval measured, what earlier
// windows had already used, every trade of the window the allocation rule shared the energy
// over, and the rule. It is stored as canonical JSON (keys sorted, bigints as decimal strings)
// and the keccak256 of those exact bytes goes on-chain as the report's evidence hash (and a
// dispute's reason hash), so the bytes cannot be changed after the report.
import { keccak256, stringToBytes, type Address, type Hex } from "viem";
import type { AllocationRule } from "./config.js";
import type { DeliveryBasis } from "./allocateDeliveredEnergy.js";
import type { Direction, SlotEnergy } from "./measureMeterEnergy.js";

export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

export function evidenceHash(canonical: string): Hex {
  return keccak256(stringToBytes(canonical));
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

/** Version 2: signed readings inline (version 1 listed sha256 hashes of raw payloads only). */
export const EVIDENCE_VERSION = 2;
/**
 * Names the reading-signature scheme the evidence's readings were checked with:
 * readingSignature.ts's domain tag and version (written out: that module imports this one).
 */
export const EVIDENCE_SIGNATURES = "p2p-energy/meter-reading/1";

/** A trade the allocation shared a meter's energy over. */
export interface EvidenceTrade {
  tradeId: bigint;
  seller: Address;
  buyer: Address;
  contractedWh: bigint;
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

/** A meter's side of the window: its readings, what they measured, and its trades. */
export interface EvidenceParty {
  account: Address;
  meter: string | null;
  direction: Direction;
  /** Energy the window could still use: sum of (wh - usedBeforeWh, at least 0), null when any interval is missing. */
  availableWh: bigint | null;
  slots: EvidenceSlot[];
  readings: EvidenceReading[];
  /** Every trade of the window this party is on that side of, in execution (trade id) order. */
  trades: EvidenceTrade[];
}

export interface DeliveryEvidence {
  v: typeof EVIDENCE_VERSION;
  signatures: typeof EVIDENCE_SIGNATURES;
  market: Address;
  tradeId: bigint;
  batchId: bigint;
  /** The trade's window (unix s) and when the bridge closed it (unix ms, its clock). */
  window: { start: bigint; end: bigint; closedAtMs: number };
  intervalSeconds: number;
  allocation: AllocationRule;
  basis: DeliveryBasis;
  contractedWh: bigint;
  /** The seller's export allocated to this trade, before the buyer's import capped it. */
  sellerAllocatedWh: bigint;
  /** What was reported on chain. */
  deliveredWh: bigint;
  seller: EvidenceParty;
  buyer: EvidenceParty;
  /**
   * The sellers of the buyer's other trades in the window: the buyer's import caps all of its
   * trades together, so their shares are part of this trade's arithmetic.
   */
  otherSellers: EvidenceParty[];
}

/** The canonical bytes of `evidence` (what is stored and hashed). */
export function encodeEvidence(evidence: DeliveryEvidence): string {
  return canonicalJson(evidence);
}
