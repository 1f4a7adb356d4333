// Intake's signature workers: the same ids and signers as the in-thread path for good and bad
// signatures alike, a worker stopped mid-batch fails only its orders (retryable) and is replaced,
// and idle workers never keep a process alive.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import type { Hex } from "viem";
import type { Order } from "../../contracts/client/order.js";
import { createEngine, IntakeInterruptedError, type Engine, type PlaceOrderRequest } from "../../engine/createEngine.js";
import { createSignaturePool, type SignaturePool } from "../../engine/intake/createSignaturePool.js";
import { bytesToHex, createOrderRecoverer, hexToBytes } from "../../engine/intake/orderSignature.js";
import { engineSnapshot, freshDatabase, makeOrder, market, signer, staticDirectory, T0, testDomain, wallet, ZONE_HEX } from "./helpers.js";

const sign = signer(testDomain);
const wallets = ["alice", "bob", "carol", "dave", "erin"].map(wallet);
const now = T0;

/** mulberry32: the same "random" orders on every run. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function randomBytes(rnd: () => number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256));
}

/** Signed orders with every kind of bad signature and a few orders the hasher refuses. */
function mixedRequests(count: number, seed: number): { order: Order; signature: Hex }[] {
  const rnd = random(seed);
  const out: { order: Order; signature: Hex }[] = [];
  for (let i = 0; i < count; i++) {
    const maker = wallets[Math.floor(rnd() * wallets.length)]!;
    const order: Order = {
      maker: maker.address, side: rnd() < 0.5 ? 0 : 1, zone: rnd() < 0.5 ? ZONE_HEX : bytesToHex(randomBytes(rnd, 32)),
      deliveryStart: BigInt(Math.floor(rnd() * 2 ** 40)), deliveryEnd: BigInt(Math.floor(rnd() * 2 ** 40)), energyWh: BigInt(Math.floor(rnd() * 2 ** 53)),
      limitPricePerKWh: BigInt(bytesToHex(randomBytes(rnd, 16))), source: Math.floor(rnd() * 256), acceptedSources: Math.floor(rnd() * 256),
      minSellerReputationBps: Math.floor(rnd() * 65_536), nonce: BigInt(bytesToHex(randomBytes(rnd, 32))), expiry: BigInt(Math.floor(rnd() * 2 ** 53)),
    };
    const good = sign(maker, order);
    const bytes = hexToBytes(good);
    let signature: string;
    switch (i % 12) {
      case 0: signature = sign(wallets[(wallets.indexOf(maker) + 1) % wallets.length]!, order); break; // someone else's key
      case 1: signature = sign(maker, { ...order, nonce: order.nonce + 1n }); break; // another order
      case 2: signature = bytesToHex(randomBytes(rnd, 65)); break;
      case 3: bytes[64] = 29; signature = bytesToHex(bytes); break; // no such recovery id
      case 4: bytes[64] = bytes[64]! - 27; signature = bytesToHex(bytes); break; // raw 0/1 recovery id: no signer
      case 5: bytes.fill(0, 0, 32); signature = bytesToHex(bytes); break; // r = 0
      case 6: signature = good.slice(2).toUpperCase(); break; // no 0x, upper case
      case 7: signature = good.slice(0, 100); break; // too short: stays in-thread
      case 8: signature = `${good.slice(0, 130)}zz`; break; // not hex
      case 9: out.push({ order: { ...order, maker: "0xnot-an-address" as Hex }, signature: good }); continue; // the hasher throws
      case 10: out.push({ order: { ...order, source: 1.5, nonce: -order.nonce }, signature: good }); continue; // odd values hash alike
      default: signature = good;
    }
    out.push({ order, signature: signature as Hex });
  }
  return out;
}

async function settle<T>(p: Promise<T>): Promise<T | { error: string; name: string }> {
  try {
    return await p;
  } catch (err) {
    return { error: (err as Error).message, name: (err as Error).name };
  }
}

async function untilReady(pool: SignaturePool | undefined, workers: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((pool?.stats().ready ?? 0) < workers) {
    if (Date.now() > deadline) throw new Error(`signature workers not ready after 30 s: ${JSON.stringify(pool?.stats())}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Calls `stop` in this turn's check phase right after the pool's flush (queued before it), before any answer can be read. */
function rightAfterFlush(stop: () => void): Promise<void> {
  return new Promise((resolve) => setImmediate(() => {
    stop();
    resolve();
  }));
}

async function workerEngine(workers: number): Promise<Engine> {
  const opened = await freshDatabase();
  return createEngine({ db: opened.db, markets: [market], domain: testDomain, directory: staticDirectory(), intakeWorkers: workers });
}

describe("intake signature workers", () => {
  it("recover with libsecp256k1's native binding, not the package's pure-JS fallback", () => {
    // `secp256k1` falls back to elliptic without a word when neither a prebuilt binary fits the
    // platform nor its install script built one (npm 11 runs a dependency's install script only
    // when package.json's allowScripts lists it); intake would then recover signatures at a
    // fraction of the speed the README quotes.
    const require = createRequire(import.meta.url);
    expect(() => require("secp256k1/bindings"), "run `npm rebuild secp256k1`; check allowScripts in package.json").to.not.throw();
    expect(require("secp256k1")).to.equal(require("secp256k1/bindings"));
  });

  it("recover the same digests and signers as the main thread, bad signatures and refused orders included", async () => {
    const inThread = createOrderRecoverer(testDomain);
    const pool = createSignaturePool({ domain: testDomain, workers: 2 });
    try {
      await untilReady(pool, 2);
      const requests = mixedRequests(600, 7);
      const expected = requests.map((r) => {
        try {
          return inThread(r.order, r.signature);
        } catch (err) {
          return { error: (err as Error).message, name: (err as Error).name };
        }
      });
      const actual = await Promise.all(requests.map((r) => settle(pool.recover(r.order, r.signature))));
      expect(actual).to.deep.equal(expected);
      // Every kind of result is there: signers, wrong signers, no signer, the hasher's refusal.
      expect(expected.filter((e) => "signer" in e && e.signer === null).length).to.be.greaterThan(100);
      // The maker's own signatures, as signed and with no 0x in upper case; a raw 0/1 recovery id
      // recovers no signer (the market's ECDSA check refuses it).
      expect(expected.filter((e, i) => "signer" in e && e.signer === requests[i]!.order.maker).length).to.equal(100);
      expect(expected.filter((e) => "error" in e).length).to.equal(50);
      const stats = pool.stats();
      // Too short, not hex, not an address: checked in-thread. The rest went to the workers, a few messages for all.
      expect(stats.inThread).to.equal(150);
      expect(stats.offloaded).to.equal(450);
      expect(stats.batches).to.be.within(2, 8);
    } finally {
      await pool.close();
    }
  });

  it("an engine with workers takes and refuses the same orders as one without, with the same ids and books", async () => {
    const rnd = random(11);
    const requests: PlaceOrderRequest[] = Array.from({ length: 300 }, (_, i) => {
      const maker = wallets[i % wallets.length]!;
      const side = rnd() < 0.5 ? 0 : 1;
      const order = makeOrder(maker, side, 100 * (1 + Math.floor(rnd() * 20)), side === 0 ? 150_000 + 10 * Math.floor(rnd() * 10_000) : 200_000 + 10 * Math.floor(rnd() * 10_000));
      const bad = i % 7 === 3;
      return { order, signature: sign(bad ? wallets[(i + 1) % wallets.length]! : maker, order) };
    });
    const outcomes: string[] = [];
    const snapshots: string[] = [];
    for (const workers of [0, 1]) {
      const engine = await workerEngine(workers);
      try {
        await untilReady(engine.signaturePool, workers);
        const results = await Promise.all(requests.map((r) => settle(engine.placeOrder(r, now))));
        outcomes.push(JSON.stringify(results.map((r) => ("error" in r ? r : { orderId: r.orderId, status: r.status, fills: r.fills.length }))));
        snapshots.push(engineSnapshot(engine));
        if (workers > 0) expect(engine.signaturePool!.stats().offloaded).to.equal(requests.length);
        else expect(engine.signaturePool).to.equal(undefined);
      } finally {
        await engine.close();
      }
    }
    expect(outcomes[1]).to.equal(outcomes[0]);
    expect(snapshots[1]).to.equal(snapshots[0]);
    expect(JSON.parse(outcomes[0]!).filter((r: { name?: string }) => r.name === "ValidationError").length).to.equal(43);
  });

  it("a worker stopped mid-batch fails just its orders with a retryable error and is replaced", async () => {
    const engine = await workerEngine(1);
    try {
      const pool = engine.signaturePool!;
      await untilReady(pool, 1);
      const first = pool.threads()[0]!;
      // Enough orders that the worker is still busy with them when it is stopped.
      const doomed = Array.from({ length: 2_000 }, (_, i) => {
        const w = wallets[i % wallets.length]!;
        const order = makeOrder(w, 1, 1_000, 300_000);
        return settle(engine.placeOrder({ order, signature: sign(w, order) }, now));
      });
      await rightAfterFlush(() => void first.terminate());
      const results = await Promise.all(doomed);
      const failures = results.filter((r) => "error" in r);
      expect(failures.length, "orders the stopped worker held").to.equal(results.length);
      const error = await engine.placeOrder({ order: makeOrder(wallets[0]!, 1, 1_000, 300_000), signature: "0x" as Hex }, now).catch((e: unknown) => e);
      expect(error, "an order after the crash is still checked (in-thread until the new worker is up)").to.have.property("field", "signature");
      expect(engine.state.orders.size).to.equal(0);

      // What the callers saw: the retryable error, by name, code and reason.
      const crash = await (async () => {
        await untilReady(pool, 1);
        const w = wallets[0]!;
        const orders = Array.from({ length: 1_000 }, () => makeOrder(w, 1, 1_000, 300_000));
        const pending = orders.map((order) => engine.placeOrder({ order, signature: sign(w, order) }, now).then(() => undefined, (e: unknown) => e));
        await rightAfterFlush(() => void pool.threads()[0]!.terminate());
        return (await Promise.all(pending))[0];
      })();
      expect(crash).to.be.instanceOf(IntakeInterruptedError);
      expect(crash).to.include({ code: "unavailable", retryable: true });
      expect((crash as Error).message).to.match(/send it again[\s\S]*signature worker 0 exited with code 1/);
      expect(pool.stats().crashes).to.equal(2);

      // Replaced: later orders go to the new worker and are taken.
      await untilReady(pool, 1);
      expect(pool.threads()[0]).to.not.equal(first);
      const offloaded = pool.stats().offloaded;
      const later = await Promise.all(Array.from({ length: 50 }, (_, i) => {
        const w = wallets[i % wallets.length]!;
        const order = makeOrder(w, 0, 1_000, 150_000);
        return engine.placeOrder({ order, signature: sign(w, order) }, now);
      }));
      expect(later.every((r) => r.status === "open")).to.equal(true);
      expect(pool.stats().offloaded).to.equal(offloaded + 50);
      expect(engine.state.orders.size).to.equal(50);
    } finally {
      await engine.close();
    }
    expect(engine.signaturePool!.threads()).to.deep.equal([]);
  });

  it("a worker that does not answer in time is stopped and replaced; its orders fail, retryable", async () => {
    // 2,000 recoveries take a worker far longer than 1 ms.
    const pool = createSignaturePool({ domain: testDomain, workers: 1, batchTimeoutMs: 1 });
    try {
      await untilReady(pool, 1);
      const first = pool.threads()[0];
      const w = wallets[2]!;
      const results = await Promise.all(Array.from({ length: 2_000 }, () => {
        const order = makeOrder(w, 0, 1_000, 150_000);
        return pool.recover(order, sign(w, order)).then(() => undefined, (e: unknown) => e);
      }));
      expect(results.every((e) => e instanceof IntakeInterruptedError && /did not answer a batch within 1 ms/.test(e.message))).to.equal(true);
      await untilReady(pool, 1);
      expect(pool.threads()[0]).to.not.equal(first);
      expect(pool.stats()).to.include({ crashes: 1, offloaded: 0 });
    } finally {
      await pool.close();
    }
  });

  it("a closed engine stops its workers and still checks orders, in-thread", async () => {
    const engine = await workerEngine(2);
    await untilReady(engine.signaturePool, 2);
    await engine.close();
    expect(engine.signaturePool!.threads()).to.deep.equal([]);
    const order = makeOrder(wallets[1]!, 0, 500, 150_000);
    const placed = await engine.placeOrder({ order, signature: sign(wallets[1]!, order) }, now);
    expect(placed.status).to.equal("open");
    expect(engine.signaturePool!.stats()).to.include({ ready: 0, inThread: 1 });
  });

  it("idle workers do not keep a process alive, whether or not the pool is closed", async () => {
    const poolModule = new URL("../../engine/intake/createSignaturePool.ts", import.meta.url).href;
    const helpers = new URL("./helpers.ts", import.meta.url).href;
    for (const closeIt of [false, true]) {
      const script = `
        import { createSignaturePool } from ${JSON.stringify(poolModule)};
        import { makeOrder, signer, testDomain, wallet } from ${JSON.stringify(helpers)};
        const pool = createSignaturePool({ domain: testDomain, workers: 2 });
        while (pool.stats().ready < 2) await new Promise((r) => setTimeout(r, 10));
        const w = wallet("alice"), sign = signer(testDomain);
        const orders = Array.from({ length: 100 }, () => makeOrder(w, 1, 1000, 200000));
        const results = await Promise.all(orders.map((o) => pool.recover(o, sign(w, o))));
        if (!results.every((r) => r.signer === w.address)) throw new Error("wrong signer");
        ${closeIt ? "await pool.close();" : ""}
        console.log(JSON.stringify(pool.stats()));
      `;
      const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx/esm"), "--input-type=module", "-e", script], {
        cwd: fileURLToPath(new URL("../..", import.meta.url)), stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d));
      child.stderr.on("data", (d: Buffer) => (err += d));
      const code = await new Promise<number | string>((resolve) => {
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          resolve("still running after 30 s");
        }, 30_000);
        child.on("exit", (c) => {
          clearTimeout(timer);
          resolve(c ?? -1);
        });
      });
      expect(code, `close: ${closeIt}; stderr: ${err}`).to.equal(0);
      expect(JSON.parse(out)).to.include({ offloaded: 100, crashes: 0 });
    }
  });
});
