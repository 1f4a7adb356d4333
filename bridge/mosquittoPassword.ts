// MQTT passwords stored the way Mosquitto's own password file stores them, so one stored hash
// serves both brokers: the embedded Aedes broker verifies it here, and a generated
// `password_file` hands it to Mosquitto unchanged. The format is what `mosquitto_passwd` (2.x)
// writes for its default PBKDF2-SHA512 hash:
//
//   $7$<iterations>$<base64 of a 12-byte salt>$<base64 of the 64-byte PBKDF2-HMAC-SHA512 output>
//
// (mosquitto src/password_mosq.c: SALT_LEN 12, PW_DEFAULT_ITERATIONS 101, the salt's raw bytes
// as the PBKDF2 salt; checked against mosquitto_passwd's output in test/bridge/mosquittoPassword.test.ts).
//
// Why 101 iterations suffice: every password this platform stores is a random token of at least
// 128 bits made by the node (deviceCredentials.ts, the bridge's own), never a word a person
// chose. Key stretching only slows a dictionary attack against guessable passwords; against
// 2^128 equally likely tokens a stolen hash file stays unbreakable even at one iteration, and
// the salt keeps equal tokens from sharing a hash. A low count keeps each connect (and each
// device-authenticated REST request) cheap, and it is Mosquitto's own default. Do not reuse this
// for passwords people choose: those need a slow hash (scrypt, argon2id) and many iterations.
import { pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

export const MOSQUITTO_PBKDF2_PREFIX = "$7$";
export const MOSQUITTO_DEFAULT_ITERATIONS = 101;
const SALT_BYTES = 12;
const HASH_BYTES = 64;
/** More than this would let a crafted hash (an operator's file, a corrupted row) stall every check. */
const MAX_ITERATIONS = 1_000_000;
const FORMAT = /^\$7\$(\d{1,7})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

export interface HashMosquittoPasswordOptions {
  iterations?: number;
  /** Tests pin it; otherwise 12 random bytes. */
  salt?: Uint8Array;
}

/** The `$7$...` hash of `password`, as mosquitto_passwd would write it. */
export function hashMosquittoPassword(password: string, { iterations = MOSQUITTO_DEFAULT_ITERATIONS, salt }: HashMosquittoPasswordOptions = {}): string {
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) throw new RangeError(`iterations must be an integer from 1 to ${MAX_ITERATIONS}`);
  const saltBytes = Buffer.from(salt ?? randomBytes(SALT_BYTES));
  const hash = pbkdf2Sync(Buffer.from(password, "utf8"), saltBytes, iterations, HASH_BYTES, "sha512");
  return `${MOSQUITTO_PBKDF2_PREFIX}${iterations}$${saltBytes.toString("base64")}$${hash.toString("base64")}`;
}

/** True when `password` matches `stored`; false for a wrong password and for anything not a `$7$` hash. */
export function verifyMosquittoPassword(password: string, stored: string): boolean {
  const m = FORMAT.exec(stored);
  if (!m) return false;
  const iterations = Number(m[1]);
  if (iterations < 1 || iterations > MAX_ITERATIONS) return false;
  const expected = Buffer.from(m[3]!, "base64");
  if (expected.length !== HASH_BYTES) return false;
  const actual = pbkdf2Sync(Buffer.from(password, "utf8"), Buffer.from(m[2]!, "base64"), iterations, HASH_BYTES, "sha512");
  return timingSafeEqual(actual, expected);
}

/** True for a string in the `$7$` format (what a password file line may carry after `username:`). */
export function isMosquittoPasswordHash(stored: string): boolean {
  return FORMAT.test(stored);
}
