// Where the CLI's wallet key comes from: --keystore <file> (a JSON file holding {privateKey}
// or an encrypted Ethereum keystore v3, password in ENERGY_KEYSTORE_PASSWORD) or the
// ENERGY_PRIVATE_KEY variable. No message ever contains the key or the password.
import { createDecipheriv, pbkdf2Sync, scryptSync, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { concat, keccak256, type Hex } from "viem";
import { parsePrivateKey } from "../sdk/createEnergyClient.js";
import { UsageError } from "./usage.js";

type Env = Record<string, string | undefined>;

interface KeystoreV3Crypto {
  cipher: string;
  ciphertext: string;
  cipherparams: { iv: string };
  kdf: string;
  kdfparams: Record<string, unknown>;
  mac: string;
}

export function readKey(env: Env, keystorePath: string | undefined): Hex | undefined {
  if (keystorePath !== undefined) return readKeystore(keystorePath, env);
  const fromEnv = env.ENERGY_PRIVATE_KEY;
  if (fromEnv === undefined || fromEnv === "") return undefined;
  try {
    return parsePrivateKey(fromEnv);
  } catch {
    throw new UsageError("ENERGY_PRIVATE_KEY must be 64 hex digits, optionally after 0x (the value is not shown)");
  }
}

function readKeystore(path: string, env: Env): Hex {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`--keystore ${path}: ${code ? `cannot be read (${code})` : "is not JSON"}`);
  }
  if (json === null || typeof json !== "object") throw new UsageError(`--keystore ${path}: must hold a JSON object`);
  if (typeof json.privateKey === "string") {
    try {
      return parsePrivateKey(json.privateKey);
    } catch {
      throw new UsageError(`--keystore ${path}: privateKey must be 64 hex digits, optionally after 0x (the value is not shown)`);
    }
  }
  const crypto = (json.crypto ?? json.Crypto) as KeystoreV3Crypto | undefined;
  if (json.version !== 3 || !crypto || typeof crypto !== "object") {
    throw new UsageError(`--keystore ${path}: must hold {"privateKey": "0x..."} or an encrypted JSON keystore (version 3)`);
  }
  const password = env.ENERGY_KEYSTORE_PASSWORD;
  if (password === undefined) throw new UsageError(`--keystore ${path} is encrypted: set its password in ENERGY_KEYSTORE_PASSWORD`);
  return decryptKeystoreV3(crypto, password, path);
}

/** Web3 Secret Storage v3: scrypt or PBKDF2-SHA256, AES-128-CTR, keccak256 MAC. */
export function decryptKeystoreV3(c: KeystoreV3Crypto, password: string, path = "keystore"): Hex {
  const bytes = (hex: unknown, what: string) => {
    if (typeof hex !== "string" || !/^(0x)?([0-9a-fA-F]{2})*$/.test(hex)) throw new UsageError(`--keystore ${path}: crypto.${what} must be hex`);
    return Buffer.from(hex.replace(/^0x/, ""), "hex");
  };
  if (c.cipher !== "aes-128-ctr") throw new UsageError(`--keystore ${path}: cipher ${JSON.stringify(c.cipher)} is not supported (aes-128-ctr only)`);
  const p = c.kdfparams ?? {};
  const salt = bytes(p.salt, "kdfparams.salt");
  const dklen = Number(p.dklen ?? 32);
  if (dklen < 32) throw new UsageError(`--keystore ${path}: kdfparams.dklen must be at least 32`);
  let derived: Buffer;
  if (c.kdf === "scrypt") {
    const N = Number(p.n);
    const r = Number(p.r);
    const parallel = Number(p.p);
    if (![N, r, parallel].every((v) => Number.isSafeInteger(v) && v > 0)) throw new UsageError(`--keystore ${path}: kdfparams n, r and p must be whole numbers`);
    derived = scryptSync(password.normalize("NFKC"), salt, dklen, { N, r, p: parallel, maxmem: 256 * N * r + 32 * 1024 * 1024 });
  } else if (c.kdf === "pbkdf2") {
    if (p.prf !== "hmac-sha256") throw new UsageError(`--keystore ${path}: pbkdf2 prf ${JSON.stringify(p.prf)} is not supported (hmac-sha256 only)`);
    derived = pbkdf2Sync(password.normalize("NFKC"), salt, Number(p.c), dklen, "sha256");
  } else {
    throw new UsageError(`--keystore ${path}: kdf ${JSON.stringify(c.kdf)} is not supported (scrypt or pbkdf2)`);
  }
  const ciphertext = bytes(c.ciphertext, "ciphertext");
  const mac = Buffer.from(keccak256(concat([derived.subarray(16, 32), ciphertext])).slice(2), "hex");
  const expected = bytes(c.mac, "mac");
  if (expected.length !== mac.length || !timingSafeEqual(mac, expected)) throw new UsageError(`--keystore ${path}: wrong password (the MAC does not match)`);
  const decipher = createDecipheriv("aes-128-ctr", derived.subarray(0, 16), bytes(c.cipherparams?.iv, "cipherparams.iv"));
  const key = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  if (key.length !== 32) throw new UsageError(`--keystore ${path}: the decrypted key is not 32 bytes`);
  return `0x${key.toString("hex")}` as Hex;
}
