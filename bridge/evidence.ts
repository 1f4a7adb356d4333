// The evidence behind a delivery report: which readings (by the sha256 of their raw payloads),
// what they measured, what was already used by earlier windows, and how the rule split it. It is
// stored as canonical JSON (keys sorted, bigints as decimal strings) and the keccak256 of those
// exact bytes goes on-chain as the report's evidence hash, so anyone holding the rows can check it.
import { keccak256, stringToBytes, type Hex } from "viem";

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
