// How a smart meter signs its readings, and how anyone checks them. One scheme for every
// transport (MQTT, REST) and for the auditor: Ed25519 (RFC 8032) through node:crypto, the
// meter's public key registered on chain (ProsumerRegistry.setMeterSigner, raw 32 bytes), the
// signature carried in the reading's JSON as `signature` (base64 of the 64 bytes).
//
// The signed bytes are the UTF-8 of one canonical JSON array (keys sorted, no whitespace: the
// bridge's canonicalJson, which for JSON values is RFC 8785 / JCS):
//
//   ["p2p-energy/meter-reading",1,<meterId>,<metric>,<the payload without "signature">]
//
// The domain tag and version keep a meter key from being talked into signing anything else;
// the meter id and metric (from the topic) keep a signed reading from being replayed under
// another meter or as the other register (export as import). Signing the parsed, re-serialised
// payload rather than its raw bytes lets a device in any language produce the same message.
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from "node:crypto";
import type { Hex } from "viem";
import { canonicalJson } from "./evidence.js";

export const READING_SIGNATURE_DOMAIN = "p2p-energy/meter-reading";
export const READING_SIGNATURE_VERSION = 1;
/** The payload field that carries the signature. */
export const SIGNATURE_FIELD = "signature";

/** A meter's private key: the 32-byte Ed25519 seed, 0x-hex. */
export type MeterPrivateKey = Hex;
/** A meter's public key as the registry holds it: the raw 32 bytes, 0x-hex (bytes32). */
export type MeterSigner = Hex;

export interface MeterKeyPair {
  privateKey: MeterPrivateKey;
  signer: MeterSigner;
}

// DER wrappers of a raw Ed25519 key (RFC 8410): node:crypto imports keys as PKCS#8 / SPKI.
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const HEX_32 = /^0x[0-9a-fA-F]{64}$/;
// Exactly 64 bytes in canonical base64: 86 characters and "==" (the last one carries 4 zero bits).
const BASE64_SIGNATURE = /^[A-Za-z0-9+/]{85}[AQgw]==$/;
const ZERO_32 = `0x${"0".repeat(64)}`;

/** A fresh random meter key. */
export function createMeterKeyPair(): MeterKeyPair {
  const privateKey = `0x${randomBytes(32).toString("hex")}` as MeterPrivateKey;
  return { privateKey, signer: meterSignerOf(privateKey) };
}

/**
 * A meter key derived from `material` (sha256 of a fixed tag and the material): the same
 * material always gives the same key. For test accounts and simulations only, whose material
 * (a Hardhat key) is public; a real meter's key is made and kept inside the meter.
 */
export function deriveMeterKeyPair(material: string | Uint8Array): MeterKeyPair {
  const seed = createHash("sha256").update("p2p-energy/meter-key/v1\u0000").update(material).digest();
  const privateKey = `0x${seed.toString("hex")}` as MeterPrivateKey;
  return { privateKey, signer: meterSignerOf(privateKey) };
}

/**
 * The meter key of an embedded-chain test account (`npm start`, tests, simulations): derived
 * from the account's well-known Hardhat key, so anything holding that key can sign as its meter.
 */
export function testAccountMeterKey(accountPrivateKey: Hex): MeterKeyPair {
  return deriveMeterKeyPair(`test-account:${accountPrivateKey.toLowerCase()}`);
}

/** The public key (bytes32) the registry must hold for `privateKey`. */
export function meterSignerOf(privateKey: MeterPrivateKey): MeterSigner {
  const spki = createPublicKey(privateKeyObject(privateKey)).export({ format: "der", type: "spki" });
  return `0x${spki.subarray(SPKI_PREFIX.length).toString("hex")}` as MeterSigner;
}

/** True for a registered key; the zero bytes32 means "this meter has no key". */
export function isMeterSignerSet(signer: Hex | undefined | null): signer is MeterSigner {
  return typeof signer === "string" && HEX_32.test(signer) && signer.toLowerCase() !== ZERO_32;
}

/** The exact bytes signed for `payload` published by `meterId` on its `metric` topic. */
export function readingSigningBytes(meterId: string, metric: string, payload: Readonly<Record<string, unknown>>): Buffer {
  const unsigned: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(payload)) if (k !== SIGNATURE_FIELD) unsigned[k] = v;
  return Buffer.from(canonicalJson([READING_SIGNATURE_DOMAIN, READING_SIGNATURE_VERSION, meterId, metric, unsigned]), "utf8");
}

/** `payload` with its `signature` by the meter's key (any earlier signature is replaced). */
export function signReading<P extends Record<string, unknown>>(
  { meterId, metric, payload, privateKey }: { meterId: string; metric: string; payload: P; privateKey: MeterPrivateKey },
): P & { signature: string } {
  const signature = sign(null, readingSigningBytes(meterId, metric, payload), privateKeyObject(privateKey)).toString("base64");
  return { ...payload, [SIGNATURE_FIELD]: signature } as P & { signature: string };
}

export type ReadingSignatureCheck =
  | { ok: true }
  | { ok: false; reason: "signature_missing" | "signature_invalid"; rule: string };

/** Checks `payload`'s `signature` against the meter's registered key `signer`. */
export function verifyReadingSignature(
  { meterId, metric, payload, signer }: { meterId: string; metric: string; payload: Readonly<Record<string, unknown>>; signer: MeterSigner },
): ReadingSignatureCheck {
  const raw = payload[SIGNATURE_FIELD];
  if (raw === undefined) return { ok: false, reason: "signature_missing", rule: "an energy reading must carry the meter's Ed25519 signature (base64) in `signature`" };
  if (typeof raw !== "string" || !BASE64_SIGNATURE.test(raw)) {
    return { ok: false, reason: "signature_invalid", rule: "must be the 64-byte Ed25519 signature in base64 (88 characters)" };
  }
  let good: boolean;
  try {
    good = verify(null, readingSigningBytes(meterId, metric, payload), publicKeyObject(signer), Buffer.from(raw, "base64"));
  } catch {
    // A registered value that is not a usable Ed25519 point verifies nothing.
    good = false;
  }
  return good ? { ok: true } : { ok: false, reason: "signature_invalid", rule: `does not verify under meter ${meterId}'s registered key ${signer} for this ${metric} reading` };
}

// KeyObjects are cached: importing a key costs more than verifying one signature, and a bridge
// sees the same few thousand meters all day. Bounded so a stream of keys cannot grow it forever.
const KEY_CACHE_MAX = 50_000;
const publicKeys = new Map<string, KeyObject>();
const privateKeys = new Map<string, KeyObject>();

function cached(cache: Map<string, KeyObject>, key: string, make: () => KeyObject): KeyObject {
  let k = cache.get(key);
  if (!k) {
    if (cache.size >= KEY_CACHE_MAX) cache.clear();
    k = make();
    cache.set(key, k);
  }
  return k;
}

function publicKeyObject(signer: MeterSigner): KeyObject {
  if (!HEX_32.test(signer)) throw new TypeError("a meter signer is 32 bytes, 0x-hex");
  return cached(publicKeys, signer.toLowerCase(), () =>
    createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(signer.slice(2), "hex")]), format: "der", type: "spki" }));
}

function privateKeyObject(privateKey: MeterPrivateKey): KeyObject {
  if (!HEX_32.test(privateKey)) throw new TypeError("a meter private key is the 32-byte Ed25519 seed, 0x-hex");
  return cached(privateKeys, privateKey.toLowerCase(), () =>
    createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, Buffer.from(privateKey.slice(2), "hex")]), format: "der", type: "pkcs8" }));
}
