// Order intake speed is signature speed. viem's typed-data path manages ~200 recoveries/s;
// here the EIP-712 digest is built into one preallocated buffer (keccak from @noble/hashes)
// and signatures are recovered and made by libsecp256k1 (npm `secp256k1`, ~11,000/s a core).
// The digest equals EnergyMarket.hashOrder() and contracts/client/order.ts hashOrder() (tested).
// Nothing here loads viem at run time: the signature workers import this file (viem takes ~0.4 s).
import { keccak_256 } from "@noble/hashes/sha3.js";
import secp256k1 from "secp256k1";
import type { Address, Hex } from "viem";
import type { MarketDomain, Order } from "../../contracts/client/order.js";

const ORDER_TYPE =
  "Order(address maker,uint8 side,bytes32 zone,uint64 deliveryStart,uint64 deliveryEnd,uint64 energyWh," +
  "uint128 limitPricePerKWh,uint8 source,uint8 acceptedSources,uint16 minSellerReputationBps,uint256 nonce,uint64 expiry)";
const ORDER_TYPEHASH = keccak_256(new TextEncoder().encode(ORDER_TYPE));

const hexTable = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export function bytesToHex(bytes: Uint8Array): Hex {
  let out = "0x";
  for (let i = 0; i < bytes.length; i++) out += hexTable[bytes[i]!];
  return out as Hex;
}

export function hexToBytes(hex: string, length?: number): Uint8Array {
  const body = hex.startsWith("0x") ? hex.slice(2) : hex;
  if (body.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(body)) throw new TypeError(`not hex: ${hex.slice(0, 20)}`);
  const out = new Uint8Array(body.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(body.substr(i * 2, 2), 16);
  if (length !== undefined && out.length !== length) throw new TypeError(`expected ${length} bytes, got ${out.length}`);
  return out;
}

/** The EIP-712 domain separator, computed once per market with viem (off the hot path). */
export function domainSeparatorOf(domain: MarketDomain): Uint8Array {
  // hashTypedData of an empty-primary message is not exposed; build it from the spec instead.
  const enc = new TextEncoder();
  const typeHash = keccak_256(enc.encode("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"));
  const buf = new Uint8Array(32 * 5);
  buf.set(typeHash, 0);
  buf.set(keccak_256(enc.encode(domain.name)), 32);
  buf.set(keccak_256(enc.encode(domain.version)), 64);
  writeUint(buf, 96, BigInt(domain.chainId));
  buf.set(hexToBytes(domain.verifyingContract, 20), 128 + 12);
  return keccak_256(buf);
}

function writeUint(buf: Uint8Array, offset: number, value: bigint): void {
  let v = value;
  for (let i = offset + 31; i >= offset; i--) {
    buf[i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

function writeSmall(buf: Uint8Array, offset: number, value: number): void {
  // Values below 2^53 fit in the last 7 bytes; the rest of the word is already zero.
  let v = value;
  for (let i = offset + 31; v > 0 && i >= offset; i--) {
    buf[i] = v % 256;
    v = Math.floor(v / 256);
  }
}

/** Hashes orders for one market; reuses its buffers (not reentrant, which JS never is). */
export function createOrderHasher(domain: MarketDomain) {
  const separator = domainSeparatorOf(domain);
  const struct = new Uint8Array(32 * 13);
  struct.set(ORDER_TYPEHASH, 0);
  const digestInput = new Uint8Array(66);
  digestInput[0] = 0x19;
  digestInput[1] = 0x01;
  digestInput.set(separator, 2);

  return function hashOrderBytes(order: Order): Uint8Array {
    struct.fill(0, 32);
    struct.set(hexToBytes(order.maker, 20), 32 + 12);
    writeSmall(struct, 64, order.side);
    struct.set(hexToBytes(order.zone, 32), 96);
    writeUint(struct, 128, order.deliveryStart);
    writeUint(struct, 160, order.deliveryEnd);
    writeUint(struct, 192, order.energyWh);
    writeUint(struct, 224, order.limitPricePerKWh);
    writeSmall(struct, 256, order.source);
    writeSmall(struct, 288, order.acceptedSources);
    writeSmall(struct, 320, order.minSellerReputationBps);
    writeUint(struct, 352, order.nonce);
    writeUint(struct, 384, order.expiry);
    digestInput.set(keccak_256(struct), 34);
    return keccak_256(digestInput);
  };
}

/** secp256k1's group order n, halved, big-endian: OpenZeppelin's ECDSA refuses an s above it (EIP-2). */
const HALF_N = hexToBytes("0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0", 32);

/**
 * Why the market contract would refuse `signature`'s form, or undefined when it has the one
 * form it verifies. EnergyMarket checks an order's signature with OpenZeppelin's
 * ECDSA.tryRecoverCalldata, which takes only 65 bytes r‖s‖v (no EIP-2098 64-byte form), with v
 * 27 or 28 (ecrecover finds no signer for 0 or 1) and s at most n/2 (the high-s twin of a
 * signature is refused as malleable). Its ERC-1271 fallback is for contract wallets, which
 * intake does not take (the signer recovered here must be the maker). Cheap: no curve math.
 */
export function nonCanonicalSignature(signature: Hex): string | undefined {
  return formIssue(signatureBytes(signature));
}

function signatureBytes(signature: Hex): Uint8Array | undefined {
  try {
    return hexToBytes(signature, 65);
  } catch {
    return undefined;
  }
}

function formIssue(sig: Uint8Array | undefined): string | undefined {
  if (!sig) return "must be 65 bytes r‖s‖v as hex (the market verifies no other form, not the 64-byte EIP-2098 one)";
  const v = sig[64]!;
  if (v !== 27 && v !== 28) return `v must be 27 or 28 (the market contract's ECDSA check refuses ${v}): sign again with a standard wallet`;
  // s > n/2, compared big-endian byte by byte.
  for (let i = 0; i < 32; i++) {
    const b = sig[32 + i]!;
    const h = HALF_N[i]!;
    if (b !== h) {
      if (b > h) return "s must be at most secp256k1n/2 (low-s, EIP-2): the market contract refuses this high-s form of a signature as malleable";
      break;
    }
  }
  return undefined;
}

/**
 * The address whose key made `signature` over `digest`, or null if none: only the canonical
 * form the market verifies (see nonCanonicalSignature) recovers a signer, so no order the
 * contract would refuse for its signature's form gets a signer here, on either intake path.
 */
export function recoverSigner(digest: Uint8Array, signature: Hex): Address | null {
  const sig = signatureBytes(signature);
  if (!sig || formIssue(sig) !== undefined) return null;
  const recovery = sig[64]! - 27;
  try {
    const pub = secp256k1.ecdsaRecover(sig.subarray(0, 64), recovery, digest, false);
    return bytesToHex(keccak_256(pub.subarray(1)).subarray(12)) as Address;
  } catch {
    return null;
  }
}

/** An order's id (its EIP-712 digest) and its signer, as intake needs them. */
export interface RecoveredOrder {
  digest: Hex;
  /** Null when `signature` is no valid signature at all. */
  signer: Address | null;
}

/**
 * Digest and signer of orders for one market: what intake runs on the main thread or, the same
 * function, in its signature workers (intake/recoverWorker.ts), so both give identical results.
 * Throws TypeError when the maker or zone is not hex of the right length.
 */
export function createOrderRecoverer(domain: MarketDomain): (order: Order, signature: Hex) => RecoveredOrder {
  const hashOrder = createOrderHasher(domain);
  return (order, signature) => {
    const digest = hashOrder(order);
    return { digest: bytesToHex(digest), signer: recoverSigner(digest, signature) };
  };
}

/** Signs `digest` with a raw private key: 65 bytes r‖s‖v, v = 27 or 28 (as EOAs sign). */
export function signDigest(privateKey: Uint8Array, digest: Uint8Array): Hex {
  const { signature, recid } = secp256k1.ecdsaSign(digest, privateKey);
  const out = new Uint8Array(65);
  out.set(signature, 0);
  out[64] = 27 + recid;
  return bytesToHex(out);
}

/** The address of a raw private key. */
export function addressOfKey(privateKey: Uint8Array): Address {
  const pub = secp256k1.publicKeyCreate(privateKey, false);
  return bytesToHex(keccak_256(pub.subarray(1)).subarray(12)) as Address;
}
