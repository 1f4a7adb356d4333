// The wire format between intake and its signature workers: a batch is one string, one line per
// order, so a postMessage costs one copy however many orders it carries. Fields are hex and
// decimal text only; anything that could not round-trip exactly (or could break the framing)
// is not encoded at all and stays on the main thread.
import type { Address, Hex } from "viem";
import type { Order } from "../../contracts/client/order.js";
import type { RecoveredOrder } from "./orderSignature.js";

/** Main thread → worker. */
export interface RecoveryBatchMessage {
  seq: number;
  /** One encodeRecoveryRequest() line per order, joined with "\n". */
  lines: string;
}

/** Worker → main thread: `{ ready: true }` once loaded, then one answer per batch. */
export type RecoveryWorkerMessage = { ready: true } | { seq: number; results: string };

export interface RecoveryWorkerData {
  domain: { name: "EnergyMarket"; version: "1"; chainId: number; verifyingContract: Address };
}

const HEX_ADDRESS = /^(0x)?[0-9a-fA-F]{40}$/;
const HEX_BYTES32 = /^(0x)?[0-9a-fA-F]{64}$/;
const HEX_SIGNATURE = /^(0x)?[0-9a-fA-F]{130}$/;

/**
 * One order as a line of comma-separated fields, or undefined when a field is not of the shape
 * the hasher expects (wrong type, not hex): such an order is recovered on the main thread, which
 * then fails it exactly as before. Bigints and numbers print as text that parses back to the
 * same value (a double's shortest round-trip form), and none contains "," or "\n".
 */
export function encodeRecoveryRequest(o: Order, signature: Hex): string | undefined {
  if (typeof o.maker !== "string" || !HEX_ADDRESS.test(o.maker) || typeof o.zone !== "string" || !HEX_BYTES32.test(o.zone)) return undefined;
  if (typeof signature !== "string" || !HEX_SIGNATURE.test(signature)) return undefined;
  if (typeof o.side !== "number" || typeof o.source !== "number" || typeof o.acceptedSources !== "number" || typeof o.minSellerReputationBps !== "number") return undefined;
  if (
    typeof o.deliveryStart !== "bigint" || typeof o.deliveryEnd !== "bigint" || typeof o.energyWh !== "bigint" || typeof o.limitPricePerKWh !== "bigint" ||
    typeof o.nonce !== "bigint" || typeof o.expiry !== "bigint"
  ) return undefined;
  return `${o.maker},${o.side},${o.zone},${o.deliveryStart},${o.deliveryEnd},${o.energyWh},${o.limitPricePerKWh},${o.source},${o.acceptedSources},${o.minSellerReputationBps},${o.nonce},${o.expiry},${signature}`;
}

export function decodeRecoveryRequest(line: string): { order: Order; signature: Hex } {
  const f = line.split(",");
  if (f.length !== 13) throw new TypeError(`a recovery request has 13 fields, got ${f.length}`);
  return {
    order: {
      maker: f[0] as Address, side: Number(f[1]), zone: f[2] as Hex, deliveryStart: BigInt(f[3]!), deliveryEnd: BigInt(f[4]!), energyWh: BigInt(f[5]!),
      limitPricePerKWh: BigInt(f[6]!), source: Number(f[7]), acceptedSources: Number(f[8]), minSellerReputationBps: Number(f[9]), nonce: BigInt(f[10]!), expiry: BigInt(f[11]!),
    },
    signature: f[12] as Hex,
  };
}

/** The digest (66 characters) followed by the signer, if any; "!" and a message for a throw. */
export function encodeRecoveryResult(result: RecoveredOrder | Error): string {
  if (result instanceof Error) return `!${result.message.replace(/\n/g, " ")}`;
  return result.signer === null ? result.digest : result.digest + result.signer;
}

export function decodeRecoveryResult(line: string): RecoveredOrder | TypeError {
  if (line.startsWith("!")) return new TypeError(line.slice(1));
  return { digest: ownCopy(line.slice(0, 66)) as Hex, signer: line.length > 66 ? (ownCopy(line.slice(66)) as Address) : null };
}

/**
 * `text` in a string of its own. V8 makes a split or slice of a long string a view that keeps
 * the whole string alive: the digest becomes the order's id and lives as long as the order, so
 * as a view it held its batch's whole answer (a soak's heap snapshot: ~260 B more per order
 * held, 47 MB at 160,000 orders). Hex is ASCII, so a latin1 round trip is exact.
 */
export function ownCopy(text: string): string {
  return Buffer.from(text, "latin1").toString("latin1");
}
