// Seed derivation for the demo's independent random streams. Every stream (one household's
// attributes, one zone's clouds, one agent's price jitter) gets its own mulberry32 seeded from
// the community seed and a key, so a stream never depends on how many draws another made or on
// the order a runner calls things in. The PRNG itself is lib/random.ts; this only mixes seeds.
import { mulberry32 } from "../lib/random.js";

/** FNV-1a over the key's UTF-16 code units, mixed with the seed and finalised (murmur3 fmix32). */
export function deriveSeed(seed: number, ...keys: readonly (string | number)[]): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (const key of keys) {
    const s = `${key}\u0000`;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A mulberry32 stream for (seed, keys...). */
export function streamFor(seed: number, ...keys: readonly (string | number)[]): () => number {
  return mulberry32(deriveSeed(seed, ...keys));
}

/** A standard normal draw (Box-Muller, one of the pair) from a uniform [0, 1) stream. */
export function gaussian(random: () => number): number {
  const u = 1 - random(); // (0, 1]: log(0) never happens
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Uniform in [min, max). */
export function uniform(random: () => number, min: number, max: number): number {
  return min + (max - min) * random();
}

/** Uniform integer in [min, max] (both inclusive). */
export function uniformInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}
