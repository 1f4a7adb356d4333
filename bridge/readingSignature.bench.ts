// The cost of the meter signature per reading, on this machine: signing (what a simulated meter
// or the benchmark's publisher pays) and verifying (what the bridge pays for every energy
// reading it takes in), each including the canonical JSON of the payload. One core, warm keys.
//   sh scripts/with-node.sh tsx bridge/readingSignature.bench.ts [--n 20000]
import { parseArgs } from "node:util";
import { createMeterKeyPair, signReading, verifyReadingSignature } from "./readingSignature.js";

const { values } = parseArgs({ options: { n: { type: "string", default: "20000" } } });
const n = Number(values.n);
const key = createMeterKeyPair();
const start = Date.parse("2026-02-14T10:00:00Z");
const payloads = Array.from({ length: n }, (_, i) => ({
  interval_start: new Date(start + (i % 96) * 900_000).toISOString(), interval_minutes: 15,
  generation_kwh: 2.14, consumption_kwh: 0.87, export_kwh: (i % 2000) / 1000, import_kwh: 0, battery_soc_pct: 78.3,
}));
const register = { timestamp: "2026-02-14T10:15:00Z", value: 1234.567, unit: "kWh", quality: "high" };

function time(label: string, fn: (i: number) => unknown): number {
  for (let i = 0; i < Math.min(1_000, n); i++) fn(i); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const us = Number(process.hrtime.bigint() - t0) / 1_000 / n;
  console.log(`${label.padEnd(34)} ${us.toFixed(1).padStart(7)} µs   (${Math.round(1e6 / us).toLocaleString("en")}/s on one core)`);
  return us;
}

const signed = payloads.map((payload) => signReading({ meterId: "SM-001", metric: "interval", payload, privateKey: key.privateKey }));
const signedRegister = signReading({ meterId: "SM-001", metric: "export", payload: register, privateKey: key.privateKey });
console.log(`Ed25519 meter signatures, ${n.toLocaleString("en")} readings, node ${process.version}`);
time("sign an interval reading", (i) => signReading({ meterId: "SM-001", metric: "interval", payload: payloads[i]!, privateKey: key.privateKey }));
time("verify an interval reading", (i) => {
  if (!verifyReadingSignature({ meterId: "SM-001", metric: "interval", payload: signed[i]!, signer: key.signer }).ok) throw new Error("bad signature");
});
time("sign a register reading", () => signReading({ meterId: "SM-001", metric: "export", payload: register, privateKey: key.privateKey }));
time("verify a register reading", () => {
  if (!verifyReadingSignature({ meterId: "SM-001", metric: "export", payload: signedRegister, signer: key.signer }).ok) throw new Error("bad signature");
});
