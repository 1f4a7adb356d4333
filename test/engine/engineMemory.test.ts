// The engine's memory follows the open market: books closed, settled and final leave memory
// (their orders stay readable from the archive), a restart loads the latest snapshot and replays
// only what follows, and the log a snapshot covers can be pruned without changing what a restart
// rebuilds.
import v8 from "node:v8";
import vm from "node:vm";
import { expect } from "chai";
import { mulberry32 } from "../../lib/random.js";
import { findArchivedOrder, latestSnapshot, pruneOpLog, saveSnapshot } from "../../engine/store/engineArchive.js";
import { encodePayload } from "../../engine/store/engineStore.js";
import type { Engine } from "../../engine/createEngine.js";
import { engineSnapshot, INTERVAL, makeOrder, memoryEngine, signer, testDomain, wallet } from "./helpers.js";

const sign = signer(testDomain);
const makers = ["alice", "bob", "carol", "dave"].map(wallet);
const [alice, bob] = makers as [ReturnType<typeof wallet>, ReturnType<typeof wallet>];
const INTERVALS = [INTERVAL, INTERVAL + 900, INTERVAL + 1_800];
const now = INTERVAL - 7_200;
const RETAIN = 3_600;

/** Crossing orders spread over three intervals from four makers. */
function orders(n: number, seed: number) {
  const rnd = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const w = makers[Math.floor(rnd() * makers.length)]!;
    const side = rnd() < 0.5 ? 0 : 1;
    const start = INTERVALS[Math.floor(rnd() * INTERVALS.length)]!;
    const price = (side === 1 ? 190_000 : 195_000) + 1_000 * Math.floor(rnd() * 20);
    const order = makeOrder(w, side, 100 * (1 + Math.floor(rnd() * 10)), price, { deliveryStart: BigInt(start), deliveryEnd: BigInt(start + 900), expiry: BigInt(start) });
    return { order, signature: sign(w, order) };
  });
}

/** The chain's verdict on every pending fill: executed, tradeIds from 1. */
async function settleAll(engine: Engine, at: number, batchId: number): Promise<void> {
  const pending = engine.settleableFills();
  if (pending.length === 0) return;
  await engine.markSettling(batchId, pending.map((f) => f.fillId));
  await engine.recordSettlement(batchId, "0x01", pending.map((f) => ({ fillId: f.fillId, executed: true, tradeId: BigInt(f.fillId + 1) })), at);
}

/** How many of `refs` still hold their object after full collections (turns apart: a WeakRef
 *  made or read in a turn keeps its object alive until that turn ends). */
async function aliveAfterCollection(refs: readonly WeakRef<object>[]): Promise<number> {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  return refs.filter((r) => r.deref() !== undefined).length;
}

/** Books in memory with their depth, as one comparable string. */
function booksView(engine: Engine): string {
  return JSON.stringify([...engine.state.books.values()].map((b) => [b.key, b.status, b.lastPrice, b.book.matchedWh, b.book.depth(1_000)]));
}

describe("engine memory: forgetting settled books, snapshots", () => {
  it("a closed, settled book leaves memory with its orders and fills; they are still read from the archive, and a restart forgets the same", async () => {
    const { engine, opened } = await memoryEngine();
    const placed = [];
    for (const req of orders(120, 7)) placed.push(await engine.placeOrder(req, now));
    expect(engine.state.fills.size).to.be.greaterThan(20);
    // The first interval's gate closes; its fills are decided; the others stay open.
    const gate = INTERVAL - 300;
    await engine.advance(gate);
    await settleAll(engine, gate, 1);
    const firstKey = [...engine.state.books.keys()].find((k) => k.endsWith(`:${INTERVAL}`))!;
    const inFirst = engine.state.ordersInBook(firstKey).map((o) => o.id);
    const fillsInFirst = [...engine.state.fills].filter((f) => f.book === firstKey);
    expect(inFirst.length).to.be.greaterThan(10);
    expect(fillsInFirst.length).to.be.greaterThan(3);
    const before = new Map(await Promise.all(inFirst.map(async (id) => [id, JSON.stringify((await engine.findOrder(id))!, big)] as const)));

    // Not yet: the retention after the gate closure has not passed.
    expect(await engine.forgetSettled(gate + RETAIN - 1, RETAIN)).to.equal(0);
    const later = gate + RETAIN;
    expect(await engine.forgetSettled(later, RETAIN)).to.equal(1);
    expect(engine.state.books.has(firstKey)).to.equal(false);
    for (const id of inFirst) expect(engine.getOrder(id)).to.equal(undefined);
    for (const f of fillsInFirst) expect(engine.state.fills.get(f.fillId)).to.equal(undefined);
    // The other books are untouched and still trade.
    expect(engine.state.books.size).to.equal(2);

    // Still readable, exactly as they were, from the archive.
    for (const id of inFirst) expect(JSON.stringify((await engine.findOrder(id))!, big)).to.equal(before.get(id));
    const mine = await engine.ordersOf(alice.address, { limit: 1_000 });
    const aliceAll = placed.filter((p) => p.orderId && engine.state.orders.get(p.orderId)?.accepted.order.maker === alice.address).length;
    expect(mine.length).to.be.greaterThan(aliceAll);
    expect(mine.map((m) => m.order.seq)).to.deep.equal([...mine.map((m) => m.order.seq)].sort((a, b) => b - a));
    expect(mine.every((m) => m.order.accepted.order.maker === alice.address)).to.equal(true);
    const filledOnly = await engine.ordersOf(bob.address, { limit: 5, status: "filled" });
    expect(filledOnly.length).to.be.within(1, 5);
    expect(filledOnly.every((m) => m.order.status === "filled")).to.equal(true);

    // A restart replays the log, forget included: the same state.
    const restarted = await memoryEngine({ db: opened });
    expect(engineSnapshot(restarted.engine)).to.equal(engineSnapshot(engine));
    expect(booksView(restarted.engine)).to.equal(booksView(engine));
    expect(restarted.engine.state.books.has(firstKey)).to.equal(false);
    await opened.close();
  });

  it("a forgotten book's orders and fills are garbage at once: nothing in the engine keeps them until their delivery starts", async () => {
    const { engine, opened } = await memoryEngine();
    for (const req of orders(120, 13)) await engine.placeOrder(req, now);
    const gate = INTERVAL - 300;
    await engine.advance(gate);
    await settleAll(engine, gate, 1);
    const firstKey = [...engine.state.books.keys()].find((k) => k.endsWith(`:${INTERVAL}`))!;
    // Weak references only: the test itself must not keep them.
    const refs = engine.state.ordersInBook(firstKey).flatMap((o) => [new WeakRef(o), new WeakRef(o.accepted.order), ...o.fillIds.map((f) => new WeakRef(engine.state.fills.get(f)!))]);
    expect(refs.length).to.be.greaterThan(40);
    // Forgotten after its retention, still before its delivery starts (the node does not advance
    // the clock again before the next gate closure).
    expect(await engine.forgetSettled(gate + 60, 60)).to.equal(1);
    expect(gate + 60).to.be.lessThan(INTERVAL);
    const alive = await aliveAfterCollection(refs);
    expect(alive, "objects of the forgotten book still reachable").to.equal(0);
    await opened.close();
  });

  it("a big book leaves in slices, oldest orders first, each slice its own logged step; a restart replays them to the same state", async () => {
    const { engine, opened } = await memoryEngine({ forgetSliceOrders: 7 });
    for (const req of orders(120, 11)) await engine.placeOrder(req, now);
    const gate = INTERVAL - 300;
    await engine.advance(gate);
    await settleAll(engine, gate, 1);
    const firstKey = [...engine.state.books.keys()].find((k) => k.endsWith(`:${INTERVAL}`))!;
    const inFirst = engine.state.ordersInBook(firstKey).map((o) => o.id);
    expect(inFirst.length).to.be.greaterThan(21);
    const heldBefore = engine.state.orders.size;

    // What one slice does, applied to a copy of the state: the 7 oldest go, the book stays.
    const copy = (await memoryEngine({ db: opened })).engine;
    copy.state.apply(copy.state.lastSeq + 1, { type: "forget", books: [firstKey], maxOrders: 7 });
    expect(copy.state.ordersInBook(firstKey).map((o) => o.id)).to.deep.equal(inFirst.slice(7));
    expect(inFirst.slice(0, 7).every((id) => copy.getOrder(id) === undefined)).to.equal(true);
    expect(copy.state.books.has(firstKey)).to.equal(true);
    expect(copy.state.orders.size).to.equal(heldBefore - 7);
    await copy.close();

    expect(await engine.forgetSettled(gate + RETAIN, RETAIN)).to.equal(1);
    expect(engine.state.books.has(firstKey)).to.equal(false);
    expect(engine.state.orders.size).to.equal(heldBefore - inFirst.length);
    const steps = await opened.db.selectFrom("engine_ops").select("payload").where("kind", "=", "forget").orderBy("seq").execute();
    expect(steps.length).to.equal(Math.ceil(inFirst.length / 7));
    // Every order is still readable, from the archive; the maker index holds none of them.
    for (const id of inFirst) expect((await engine.findOrder(id))?.order.id).to.equal(id);
    for (const w of makers) expect(engine.state.ordersOf(w.address).some((o) => o.book === firstKey)).to.equal(false);

    const restarted = await memoryEngine({ db: opened });
    expect(engineSnapshot(restarted.engine)).to.equal(engineSnapshot(engine));
    expect(booksView(restarted.engine)).to.equal(booksView(engine));
    await opened.close();
  });

  it("a book with a fill the chain has not decided is not forgotten", async () => {
    const { engine, opened } = await memoryEngine();
    const sell = makeOrder(alice, 1, 1_000, 190_000);
    const buy = makeOrder(bob, 0, 1_000, 200_000);
    await engine.placeOrder({ order: sell, signature: sign(alice, sell) }, now);
    const taken = await engine.placeOrder({ order: buy, signature: sign(bob, buy) }, now);
    expect(taken.fills).to.have.length(1);
    await engine.advance(INTERVAL - 300);
    const later = INTERVAL - 300 + RETAIN;
    expect(await engine.forgetSettled(later, RETAIN)).to.equal(0);
    await engine.markSettling(1, [taken.fills[0]!.fillId]);
    expect(await engine.forgetSettled(later, RETAIN)).to.equal(0);
    await engine.recordSettlement(1, "0x01", [{ fillId: taken.fills[0]!.fillId, executed: true, tradeId: 9n }], later);
    expect(await engine.forgetSettled(later, RETAIN)).to.equal(1);
    expect((await engine.findOrder(taken.orderId))!.fills[0]!.tradeId).to.equal(9n);
    await opened.close();
  });

  it("a restart from a snapshot, with the log it covers pruned, rebuilds what a full replay does", async () => {
    const rnd = mulberry32(42);
    // Snapshot at every forget: a restart then replays only the operations after the last one.
    const { engine, opened } = await memoryEngine({ snapshotEveryOps: 1 });
    let t = now;
    let batch = 1;
    const reqs = orders(300, 11);
    for (let i = 0; i < reqs.length; i++) {
      const r = await engine.placeOrder(reqs[i]!, t).catch(() => undefined);
      // Now and then: a cancel, the clock, the chain's verdicts.
      if (r && rnd() < 0.1 && engine.getOrder(r.orderId)?.status === "open") await engine.cancelOrder(r.orderId, engine.getOrder(r.orderId)!.accepted.order.maker, t);
      if (rnd() < 0.05) await settleAll(engine, t, batch++);
      if (i === 150) {
        t = INTERVAL - 300;
        await engine.advance(t);
        await settleAll(engine, t, batch++);
        expect(await engine.forgetSettled(INTERVAL - 300 + RETAIN, RETAIN)).to.equal(1);
        t = INTERVAL + 600;
      }
    }
    const snaps = await opened.db.selectFrom("engine_snapshots").select("seq").execute();
    expect(snaps).to.have.length(1);
    const snapSeq = Number(snaps[0]!.seq);
    expect(snapSeq).to.be.greaterThan(150).and.lessThan(engine.state.lastSeq);

    // A full replay (snapshot set aside) and a restart from the snapshot agree.
    const saved = await opened.db.selectFrom("engine_snapshots").selectAll().execute();
    await opened.db.deleteFrom("engine_snapshots").execute();
    const full = await memoryEngine({ db: opened });
    await opened.db.insertInto("engine_snapshots").values(saved as never).execute();
    const pruned = await pruneOpLog(opened.db, new Date(Date.now() + 60_000));
    expect(pruned).to.equal(snapSeq);
    const left = await opened.db.selectFrom("engine_ops").select((eb) => eb.fn.min("seq").as("min")).executeTakeFirstOrThrow();
    expect(Number(left.min)).to.equal(snapSeq + 1);
    const fromSnapshot = await memoryEngine({ db: opened });
    for (const e of [full.engine, fromSnapshot.engine]) {
      expect(engineSnapshot(e)).to.equal(engineSnapshot(engine));
      expect(booksView(e)).to.equal(booksView(engine));
      expect(e.state.lastSeq).to.equal(engine.state.lastSeq);
      expect(e.state.fills.length).to.equal(engine.state.fills.length);
    }
    // It goes on trading the same way: the same next order gives the same fills in both.
    const next = makeOrder(alice, 0, 5_000, 214_000, { deliveryStart: BigInt(INTERVAL + 1_800), deliveryEnd: BigInt(INTERVAL + 2_700), expiry: BigInt(INTERVAL + 1_800) });
    const a = await full.engine.placeOrder({ order: next, signature: sign(alice, next) }, t);
    // Both engines share the database: take the first one's row out before the second writes it.
    await opened.db.deleteFrom("engine_ops").where("seq", "=", BigInt(engine.state.lastSeq + 1) as never).execute();
    const b = await fromSnapshot.engine.placeOrder({ order: next, signature: sign(alice, next) }, t);
    expect(JSON.stringify(b, big)).to.equal(JSON.stringify(a, big));
    await opened.close();
  });

  it("orders go to the archive as each becomes final, while their book still trades; open ones and undecided fills wait", async () => {
    const { engine, opened } = await memoryEngine();
    for (const req of orders(200, 3)) await engine.placeOrder(req, now).catch(() => undefined);
    const pendingFills = new Set(engine.settleableFills().map((f) => f.fillId));
    // Half the fills decided, the rest still pending.
    const decided = [...pendingFills].filter((_, i) => i % 2 === 0);
    await engine.markSettling(1, decided);
    await engine.recordSettlement(1, "0x01", decided.map((fillId) => ({ fillId, executed: true, tradeId: BigInt(fillId + 1) })), now);
    // No book is past its retention: nothing is forgotten, but the final orders are archived.
    expect(await engine.forgetSettled(now, RETAIN)).to.equal(0);
    const rows = await opened.db.selectFrom("engine_archived_orders").select(["id", "status"]).execute();
    const inMemory = [...engine.state.orders.values()];
    const final = inMemory.filter((o) => o.status !== "open" && o.fillIds.every((f) => ["executed", "failed"].includes(engine.state.fills.get(f)!.status)));
    expect(final.length).to.be.greaterThan(5);
    expect(final.length).to.be.lessThan(inMemory.length);
    expect(rows.map((r) => r.id).sort()).to.deep.equal(final.map((o) => o.id.toLowerCase()).sort());
    for (const o of final.slice(0, 20)) {
      const stored = (await findArchivedOrder(opened.db, o.id))!;
      expect(stored).to.deep.equal({ order: o, fills: engine.fillsOf(o) });
    }
    // An archived row is a third of the first archive's (the whole record as JSON).
    const one = final.find((o) => o.fillIds.length > 0)!;
    const row = await opened.db.selectFrom("engine_archived_orders").select("record").where("id", "=", one.id.toLowerCase()).executeTakeFirstOrThrow();
    const legacy = encodePayload({ order: one, fills: engine.fillsOf(one) });
    expect(row.record.length).to.be.lessThan(legacy.length * 0.6);
    // Rows the first archive wrote still read back.
    await opened.db.updateTable("engine_archived_orders").set({ record: legacy }).where("id", "=", one.id.toLowerCase()).execute();
    expect(await findArchivedOrder(opened.db, one.id)).to.deep.equal({ order: one, fills: engine.fillsOf(one) });
    await opened.close();
  });

  it("a snapshot is written in parts over many turns and reads back whole; a missing part is an error, and a later save drops a cut-short one", async () => {
    const { engine, opened } = await memoryEngine();
    for (const req of orders(150, 5)) await engine.placeOrder(req, now).catch(() => undefined);
    await settleAll(engine, now, 1);
    const snap = engine.state.snapshot();
    expect(snap.orders.length).to.be.greaterThan(100);
    let turns = 0;
    await saveSnapshot(opened.db, snap, { ordersPerPart: 7, fillsPerPart: 5, pause: async () => void turns++ });
    const parts = await opened.db.selectFrom("engine_snapshot_parts").select("part").execute();
    expect(parts.length).to.equal(Math.ceil(snap.orders.length / 7) + Math.ceil(snap.fills.length / 5));
    expect(turns).to.equal(parts.length);
    expect(await latestSnapshot(opened.db)).to.deep.equal(snap);
    // The copy is the state at that point: trading on does not change it.
    const copy = JSON.stringify(snap, big);
    for (const req of orders(30, 6)) await engine.placeOrder(req, now).catch(() => undefined);
    expect(JSON.stringify(snap, big)).to.equal(copy);

    // A save cut short (parts of a later seq, no header) is not a snapshot; the next save drops its parts.
    await opened.db.insertInto("engine_snapshot_parts").values({ seq: BigInt(snap.lastSeq + 5), part: 0, payload: "[]" } as never).execute();
    expect((await latestSnapshot(opened.db))!.lastSeq).to.equal(snap.lastSeq);
    const second = engine.state.snapshot();
    await saveSnapshot(opened.db, second, { ordersPerPart: 50, fillsPerPart: 50 });
    const seqs = await opened.db.selectFrom("engine_snapshot_parts").select("seq").distinct().orderBy("seq").execute();
    expect(seqs.map((r) => Number(r.seq))).to.deep.equal([snap.lastSeq, second.lastSeq]);

    await opened.db.deleteFrom("engine_snapshot_parts").where("seq", "=", BigInt(second.lastSeq) as never).where("part", "=", 1).execute();
    let error: Error | undefined;
    await latestSnapshot(opened.db).catch((e: Error) => (error = e));
    expect(error?.message).to.match(/names \d+ parts and \d+ are stored/);
    await opened.close();
  });
});

function big(_k: string, v: unknown) {
  return typeof v === "bigint" ? v.toString() : v;
}

