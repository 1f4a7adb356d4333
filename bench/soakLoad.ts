// The soak's load, in a worker thread so that the node's event loop, heap and CPU time are the
// node's alone (bench/soakRun.ts starts it): households placing signed orders over HTTP at a
// steady rate, and every household's meter publishing signed export/import registers once a
// minute over MQTT with its own device credential (plus the 15-minute interval reading when an
// interval ends), as real meters would. The main thread asks for a window's figures with
// "sample" and ends the load with "stop".
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { Pool } from "undici";
import { signReading, type MeterPrivateKey } from "../bridge/readingSignature.js";
import { createOrderHasher, hexToBytes, signDigest } from "../engine/intake/orderSignature.js";
import { connectMeterPublisher, type MeterPublisher } from "../demo/publishReadings.js";
import type { MarketDomain } from "../contracts/client/order.js";

type Hex = `0x${string}`;

export interface SoakHousehold {
  address: Hex;
  key: Hex;
  /** 0: a buyer (funded, approved), 1: a seller. */
  side: 0 | 1;
  token: string;
  meterId: string;
  meterKey: MeterPrivateKey;
  mqttUsername: string;
  mqttPassword: string;
}

export interface SoakLoadJob {
  url: string;
  mqttUrl: string;
  topicRoot: string;
  region: string;
  domain: MarketDomain;
  zone: string;
  zoneId: Hex;
  gateClosureSeconds: number;
  households: SoakHousehold[];
  /** Orders per second. */
  rate: number;
  /** Per cent of the buy orders priced to cross the asks. */
  crossPct: number;
  /** Seconds between one meter's readings. */
  readingEverySeconds: number;
}

/** One request, the slowest of its window (or of the run). */
export interface SlowRequest {
  ms: number;
  /** ISO time it was sent. */
  sentAt: string;
  status: number | "error";
}

/** What the load did since the previous window. */
export interface SoakLoadWindow {
  placed: number;
  accepted: number;
  refused: number;
  /** Network errors and timeouts. */
  errors: number;
  /** Status code tally of the refusals, with the first refusal's body of each status. */
  refusals: Record<string, { count: number; example: string }>;
  latencyMs: { p50: number; p99: number; max: number };
  /** Placements answered after more than 500 ms (the robustness goal: none). */
  over500Ms: number;
  slowest: SlowRequest | null;
  /** Orders due by the rate but not sent, because `MAX_IN_FLIGHT` requests were waiting. */
  behind: number;
  readingsPublished: number;
  readingErrors: number;
}

type ToWorker = { type: "sample" } | { type: "stop" };
export type FromWorker =
  | { type: "ready" }
  | { type: "window"; window: SoakLoadWindow; final: boolean }
  | { type: "error"; message: string };

const INTERVAL_SECONDS = 900;
/** Requests waiting for an answer before the pacer holds back (the rest counts as `behind`). */
const MAX_IN_FLIGHT = 256;
const TICK_MS = 20;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function runSoakLoad(job: SoakLoadJob, port: NonNullable<typeof parentPort>): Promise<void> {
  const hash = createOrderHasher(job.domain);
  const buyers = job.households.filter((h) => h.side === 0).map((h) => ({ ...h, keyBytes: hexToBytes(h.key), nonce: 0 }));
  const sellers = job.households.filter((h) => h.side === 1).map((h) => ({ ...h, keyBytes: hexToBytes(h.key), nonce: 0 }));
  let seed = 7;
  const rnd = () => {
    // mulberry32: the same order stream on every run.
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };

  // ---- meters: one broker connection each, with the meter's own credential
  const publishers: MeterPublisher[] = [];
  for (let i = 0; i < job.households.length; i += 16) {
    const batch = job.households.slice(i, i + 16);
    publishers.push(...await Promise.all(batch.map((h) => {
      const url = new URL(job.mqttUrl);
      url.username = encodeURIComponent(h.mqttUsername);
      url.password = encodeURIComponent(h.mqttPassword);
      return connectMeterPublisher({ url: url.toString(), topicRoot: job.topicRoot, region: job.region, clientId: h.mqttUsername });
    })));
  }

  const pool = new Pool(job.url, { connections: 32, pipelining: 1, headersTimeout: 30_000, bodyTimeout: 30_000 });
  let window = freshWindow();
  let durations: number[] = [];
  let inFlight = 0;
  let stopping = false;

  function freshWindow(): SoakLoadWindow {
    return { placed: 0, accepted: 0, refused: 0, errors: 0, refusals: {}, latencyMs: { p50: 0, p99: 0, max: 0 }, over500Ms: 0, slowest: null, behind: 0, readingsPublished: 0, readingErrors: 0 };
  }

  function nextOrderBody(): { token: string; body: string } {
    const nowS = Math.floor(Date.now() / 1000);
    // The next interval still open (30 s of margin before its gate closes): every order's book
    // closes within ~15 minutes, so a soak reaches its steady state (books closing and leaving
    // memory as fast as new ones fill) about 20 minutes in.
    const first = (Math.floor((nowS + job.gateClosureSeconds + 30) / INTERVAL_SECONDS) + 1) * INTERVAL_SECONDS;
    const interval = first;
    const side = rnd() < 0.5 ? 0 : 1;
    const group = side === 0 ? buyers : sellers;
    const maker = group[Math.floor(rnd() * group.length)]!;
    const crosses = side === 0 && rnd() * 100 < job.crossPct;
    // Resting bids 90,000-180,000, asks 250,000-340,000 (tick 10); crossing bids at 345,000.
    const price = crosses ? 345_000 : side === 0 ? 90_000 + 10 * Math.floor(rnd() * 9_000) : 250_000 + 10 * Math.floor(rnd() * 9_000);
    const energyWh = 100 * (1 + Math.floor(rnd() * 10));
    const nonce = ++maker.nonce;
    const source = side === 1 ? 1 : 0;
    const order = {
      maker: maker.address, side, zone: job.zoneId, deliveryStart: BigInt(interval), deliveryEnd: BigInt(interval + INTERVAL_SECONDS), energyWh: BigInt(energyWh),
      limitPricePerKWh: BigInt(price), source, acceptedSources: 0, minSellerReputationBps: 0, nonce: BigInt(nonce), expiry: BigInt(interval),
    };
    const signature = signDigest(maker.keyBytes, hash(order));
    const body = JSON.stringify({
      order: { maker: maker.address, side, zone: job.zone, deliveryStart: interval, deliveryEnd: interval + INTERVAL_SECONDS, energyWh, limitPricePerKWh: price, source, nonce, expiry: interval },
      signature,
    });
    return { token: maker.token, body };
  }

  function record(ms: number, sentAt: number, status: number | "error", text: string) {
    durations.push(ms);
    if (status === "error") window.errors++;
    else if (status === 201) window.accepted++;
    else {
      window.refused++;
      const r = (window.refusals[status] ??= { count: 0, example: text.slice(0, 300) });
      r.count++;
    }
    if (!window.slowest || ms > window.slowest.ms) window.slowest = { ms: Math.round(ms * 10) / 10, sentAt: new Date(sentAt).toISOString(), status };
  }

  function placeOrder() {
    const { token, body } = nextOrderBody();
    const sentAt = Date.now();
    const t0 = performance.now();
    inFlight++;
    window.placed++;
    pool.request({ method: "POST", path: "/v1/trading/orders", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body })
      .then(async (res) => {
        const text = await res.body.text();
        record(performance.now() - t0, sentAt, res.statusCode, text);
      })
      .catch((err: Error) => record(performance.now() - t0, sentAt, "error", err.message))
      .finally(() => inFlight--);
  }

  // ---- orders at `rate`, paced every TICK_MS
  const started = performance.now();
  let due = 0;
  let sent = 0;
  const orderTimer = setInterval(() => {
    if (stopping) return;
    due = Math.floor(((performance.now() - started) / 1000) * job.rate);
    while (sent < due) {
      if (inFlight >= MAX_IN_FLIGHT) {
        // Dropped, not queued: a backlog would only measure the pacer.
        window.behind += due - sent;
        sent = due;
        break;
      }
      placeOrder();
      sent++;
    }
  }, TICK_MS);

  // ---- readings: meter i publishes at second i mod `readingEverySeconds` of each period, so
  // the broker sees a steady trickle rather than a burst a minute.
  const registers = job.households.map(() => ({ export: 0, import: 0 }));
  const intervalTotals = job.households.map(() => ({ export: 0, import: 0 }));
  const WH_PER_MINUTE = 50;
  let lastSecond = -1;
  let lastInterval = Math.floor(Date.now() / 1000 / INTERVAL_SECONDS);
  const readingTimer = setInterval(() => {
    if (stopping) return;
    const nowS = Math.floor(Date.now() / 1000);
    if (nowS === lastSecond) return;
    lastSecond = nowS;
    const currentInterval = Math.floor(nowS / INTERVAL_SECONDS);
    const endedInterval = currentInterval !== lastInterval ? lastInterval : undefined;
    lastInterval = currentInterval;
    const step = job.readingEverySeconds;
    job.households.forEach((h, i) => {
      const publisher = publishers[i]!;
      const metrics: { metric: "interval" | "export" | "import"; payload: Record<string, unknown> }[] = [];
      if (endedInterval !== undefined) {
        // The interval that just ended, from what the registers counted in it.
        const t = intervalTotals[i]!;
        metrics.push({
          metric: "interval",
          payload: {
            meter_id: h.meterId, interval_start: new Date(endedInterval * INTERVAL_SECONDS * 1000).toISOString(), interval_minutes: INTERVAL_SECONDS / 60,
            export_kwh: t.export / 1000, import_kwh: t.import / 1000,
          },
        });
        intervalTotals[i] = { export: 0, import: 0 };
      }
      if (nowS % step === i % step) {
        const wh = Math.round((WH_PER_MINUTE * step) / 60);
        const r = registers[i]!;
        const t = intervalTotals[i]!;
        if (h.side === 1) {
          r.export += wh;
          t.export += wh;
        } else {
          r.import += wh;
          t.import += wh;
        }
        const at = new Date(nowS * 1000).toISOString();
        metrics.push({ metric: "export", payload: { meter_id: h.meterId, timestamp: at, value: r.export, unit: "Wh" } });
        metrics.push({ metric: "import", payload: { meter_id: h.meterId, timestamp: at, value: r.import, unit: "Wh" } });
      }
      for (const m of metrics) {
        const signed = signReading({ meterId: h.meterId, metric: m.metric, payload: m.payload, privateKey: h.meterKey });
        // As given (signed here): connectMeterPublisher sends the payload of the named metric.
        publisher.publish([{ meterId: h.meterId, [m.metric]: signed } as never], [m.metric])
          .then((n) => (window.readingsPublished += n), () => window.readingErrors++);
      }
    });
  }, 200);

  const takeWindow = (): SoakLoadWindow => {
    const w = window;
    const d = durations.sort((a, b) => a - b);
    const round = (x: number) => Math.round(x * 10) / 10;
    w.latencyMs = { p50: round(percentile(d, 50)), p99: round(percentile(d, 99)), max: round(d[d.length - 1] ?? 0) };
    w.over500Ms = d.filter((x) => x > 500).length;
    window = freshWindow();
    durations = [];
    return w;
  };

  port.on("message", (m: ToWorker) => {
    if (m.type === "sample") {
      port.postMessage({ type: "window", window: takeWindow(), final: false } satisfies FromWorker);
      return;
    }
    stopping = true;
    clearInterval(orderTimer);
    clearInterval(readingTimer);
    void (async () => {
      // The answers still due belong to the last window.
      const until = Date.now() + 30_000;
      while (inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      const last = takeWindow();
      await Promise.all(publishers.map((p) => p.close().catch(() => undefined)));
      await pool.close();
      port.postMessage({ type: "window", window: last, final: true } satisfies FromWorker);
    })();
  });
  port.postMessage({ type: "ready" } satisfies FromWorker);
}

if (!isMainThread && parentPort && (workerData as { soakLoad?: SoakLoadJob } | undefined)?.soakLoad) {
  const port = parentPort;
  runSoakLoad((workerData as { soakLoad: SoakLoadJob }).soakLoad, port).catch((err: Error) => {
    port.postMessage({ type: "error", message: err.stack ?? err.message } satisfies FromWorker);
  });
}
