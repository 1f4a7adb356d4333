// Each simulated home's wallet: a private key derived from the run's seed and the home's index,
// so a run can be repeated and its addresses recognised. Keys stay raw bytes for the native
// secp256k1 signer (orders, SIWE messages, permits); never use such keys on a real chain.
import { keccak_256 } from "@noble/hashes/sha3.js";
import secp256k1 from "secp256k1";
import { getAddress, type Address, type Hex } from "viem";
import { addressOfKey, bytesToHex } from "../engine/intake/orderSignature.js";

export interface HouseholdWallet {
  /** Index in community.households. */
  index: number;
  privateKey: Uint8Array;
  privateKeyHex: Hex;
  /** Checksummed, as the API and the engine report makers. */
  address: Address;
}

/** The key of home `index` for `seed`: keccak256 of a fixed label, re-hashed in the (never seen) case it is not a valid key. */
export function householdKey(seed: number, index: number): Uint8Array {
  let key = keccak_256(new TextEncoder().encode(`p2p-energy-demo/household-wallet/${seed}/${index}`));
  while (!secp256k1.privateKeyVerify(key)) key = keccak_256(key);
  return key;
}

/** A wallet for one of the community's own roles (fee recipients), from the seed and a label. */
export function roleWallet(seed: number, label: string): { privateKey: Uint8Array; privateKeyHex: Hex; address: Address } {
  let key = keccak_256(new TextEncoder().encode(`p2p-energy-demo/role-wallet/${seed}/${label}`));
  while (!secp256k1.privateKeyVerify(key)) key = keccak_256(key);
  return { privateKey: key, privateKeyHex: bytesToHex(key), address: getAddress(addressOfKey(key)) };
}

export function deriveHouseholdWallets(seed: number, count: number): HouseholdWallet[] {
  return Array.from({ length: count }, (_, index) => {
    const privateKey = householdKey(seed, index);
    return { index, privateKey, privateKeyHex: bytesToHex(privateKey), address: getAddress(addressOfKey(privateKey)) };
  });
}
