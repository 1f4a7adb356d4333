// The bridge reports only final trades. Real reorgs on the embedded chain (evm_snapshot, a branch
// with a trade, evm_revert, a longer branch without it), the real indexer writing into the
// bridge's database, and the bridge deciding and reporting on that chain: a trade the reorg
// removed is never decided, never in the outbox, never reported, while one that stayed is
// reported exactly once; a trade waits until it is FINALITY_DEPTH blocks deep; and a reorg deeper
// than the depth (which stops the indexer) stops reports instead of letting stale rows through.
import { expect } from "chai";
import type { Bridge } from "../../bridge/startBridge.js";
import type { BridgeDatabase } from "../../bridge/database.js";
import { DeepReorgError } from "../../indexer/errors.js";
import type { Kysely } from "kysely";
import {
  addProsumer, asIndexerDatabase, brokerTargets, databaseTargets, deliveryEvents, dropSession, indexTestChain, pastWindow, settleTrades,
  startTestBridge, startTestChain, testSettings, type Prosumer, type TestChain,
} from "./harness.js";

async function rpc<T>(chain: TestChain, method: string, params: unknown[] = []): Promise<T> {
  return chain.client.request({ method, params } as never) as Promise<T>;
}

async function mine(chain: TestChain, blocks: number): Promise<void> {
  for (let i = 0; i < blocks; i++) await rpc(chain, "evm_mine");
}

/** What the bridge holds about a trade: its decision and its outbox row (both or neither). */
async function bridgeRows(db: Kysely<BridgeDatabase>, tradeId: bigint) {
  const decisions = await db.selectFrom("bridge_decisions").select("trade_id").where("trade_id", "=", tradeId).execute();
  const outbox = await db.selectFrom("bridge_outbox").select(["trade_id", "state", "outcome"]).where("trade_id", "=", tradeId).execute();
  return { decisions: decisions.length, outbox: outbox.map((r) => `${r.state}/${r.outcome}`) };
}

async function confirmationsOf(chain: TestChain, tradeId: bigint): Promise<number> {
  return (await deliveryEvents(chain)).confirmed.filter((c) => c.tradeId === tradeId).length;
}

for (const target of databaseTargets()) {
  describe(`bridge reports only final trades (${target.name})`, function () {
    let chain: TestChain;
    let broker: { url: string; close(): Promise<void> };
    const cleanup: (() => Promise<unknown>)[] = [];

    // One chain for the tests, a database each: a later test's bridge also decides the earlier
    // tests' final trades (its database has no decision for them; the chain refuses the second
    // report), so assertions look at each test's own trades.
    before(async () => {
      [chain, broker] = await Promise.all([startTestChain(), brokerTargets()[0]!.start()]);
    });
    afterEach(async () => {
      for (const c of cleanup.splice(0).reverse()) await c();
    });
    after(async () => {
      await Promise.all([chain?.close(), broker?.close()]);
    });

    /** A database, prosumers and a bridge reading trades `finalityDepth` deep; windows decided at `now`. */
    async function setup(ids: string[], finalityDepth: number, options: { indexBeforeTick?: boolean } = {}) {
      const settings = testSettings();
      const database = await target.open();
      cleanup.push(() => database.close());
      const suffix = settings.topicRoot.slice(-4);
      const people = (await Promise.all(ids.map((id) => addProsumer(chain, `${id}-${suffix}`, { buyer: id.startsWith("B") })))) as Prosumer[];
      const w = pastWindow(2);
      // Connected a whole grace period before the close, so windows are decided at the first tick.
      let nowMs = w.endMs + 1_000;
      const bridge: Bridge = await startTestBridge({ chain, mqttUrl: broker.url, db: database.db, settings, clock: () => nowMs, finalityDepth, ...options });
      cleanup.push(async () => {
        await bridge.close();
        await dropSession(broker.url, settings.mqttClientId).catch(() => {});
      });
      nowMs = w.endMs + 301_000;
      return { db: database.db, people, w, bridge };
    }

    it("never reports a trade a reorg removed, and reports the trade that stayed exactly once", async () => {
      const DEPTH = 2;
      const { db, people: [s1, b1, s2, b2], w, bridge } = await setup(["S1", "B1", "S2", "B2"], DEPTH);

      const [kept] = await settleTrades(chain, [{ seller: s1!, buyer: b1!, energyWh: 500n }], w.start, w.end);
      await mine(chain, DEPTH);
      await bridge.tick();
      expect(await bridgeRows(db, kept!.tradeId), "the final trade").to.deep.equal({ decisions: 1, outbox: ["done/disputed"] });

      // A branch with a second trade in the same (closed) window: indexed, listed as due, not final.
      const snapshot = await rpc<string>(chain, "evm_snapshot");
      const [doomed] = await settleTrades(chain, [{ seller: s2!, buyer: b2!, energyWh: 700n }], w.start, w.end);
      await mine(chain, DEPTH - 1);
      await bridge.tick();
      const indexed = await asIndexerDatabase(db).selectFrom("indexer_trades").select(["trade_id", "energy_wh"]).where("trade_id", "=", doomed!.tradeId).executeTakeFirst();
      expect(indexed, "the indexer has the trade: only finality holds it back").to.deep.equal({ trade_id: doomed!.tradeId, energy_wh: 700n });
      expect(await bridgeRows(db, doomed!.tradeId), "a trade not yet final").to.deep.equal({ decisions: 0, outbox: [] });

      // The reorg: a longer branch from before the trade, without it.
      expect(await rpc<boolean>(chain, "evm_revert", [snapshot])).to.equal(true);
      await mine(chain, DEPTH + 3);
      await bridge.tick();
      const afterReorg = await asIndexerDatabase(db).selectFrom("indexer_trades").select("trade_id").where("trade_id", "=", doomed!.tradeId).executeTakeFirst();
      expect(afterReorg, "the indexer rolled the trade back").to.equal(undefined);
      await mine(chain, DEPTH + 1);
      await bridge.tick();

      expect(await bridgeRows(db, doomed!.tradeId), "the reorged trade").to.deep.equal({ decisions: 0, outbox: [] });
      expect(await confirmationsOf(chain, doomed!.tradeId), "reports of the reorged trade on the chain").to.equal(0);
      expect(await bridgeRows(db, kept!.tradeId)).to.deep.equal({ decisions: 1, outbox: ["done/disputed"] });
      expect(await confirmationsOf(chain, kept!.tradeId), "reports of the trade that stayed").to.equal(1);
    });

    it("does not report a trade before it is FINALITY_DEPTH blocks deep, then reports it once", async () => {
      const DEPTH = 3;
      const { db, people: [s, b], w, bridge } = await setup(["S", "B"], DEPTH);
      const [trade] = await settleTrades(chain, [{ seller: s!, buyer: b!, energyWh: 800n }], w.start, w.end);

      for (let deep = 0; deep < DEPTH; deep++) {
        await bridge.tick();
        expect(await bridgeRows(db, trade!.tradeId), `${deep} blocks deep`).to.deep.equal({ decisions: 0, outbox: [] });
        await mine(chain, 1);
      }
      await bridge.tick();
      expect(await bridgeRows(db, trade!.tradeId), `${DEPTH} blocks deep`).to.deep.equal({ decisions: 1, outbox: ["done/disputed"] });
      await mine(chain, DEPTH);
      await bridge.tick();
      expect(await confirmationsOf(chain, trade!.tradeId)).to.equal(1);
    });

    it("reports nothing while the chain no longer has the indexer's head (a reorg deeper than the depth)", async () => {
      const DEPTH = 1;
      const { db, people: [s, b], w, bridge } = await setup(["S", "B"], DEPTH, { indexBeforeTick: false });
      const snapshot = await rpc<string>(chain, "evm_snapshot");
      const [trade] = await settleTrades(chain, [{ seller: s!, buyer: b!, energyWh: 900n }], w.start, w.end);
      await mine(chain, DEPTH);
      await indexTestChain(chain, db, DEPTH); // the trade is final as far as the indexer can tell

      // Two blocks replaced: deeper than the depth. The indexer stops and keeps what it had.
      await rpc(chain, "evm_revert", [snapshot]);
      await mine(chain, 4);
      let stopped: unknown;
      await indexTestChain(chain, db, DEPTH).catch((err: unknown) => (stopped = err));
      expect(stopped).to.be.instanceOf(DeepReorgError);
      const stale = await asIndexerDatabase(db).selectFrom("indexer_trades").select("trade_id").where("trade_id", "=", trade!.tradeId).executeTakeFirst();
      expect(stale, "the indexer's stale row").to.deep.equal({ trade_id: trade!.tradeId });

      await bridge.tick();
      await bridge.tick();
      expect(await bridgeRows(db, trade!.tradeId)).to.deep.equal({ decisions: 0, outbox: [] });
      expect(await confirmationsOf(chain, trade!.tradeId)).to.equal(0);
      // Nothing at all: the earlier tests' trades on this chain are final and still the chain's,
      // but while the chain disagrees with the indexer's head no row of it is trusted.
      expect(bridge.metrics().tradesDecided).to.equal(0);
    });
  });
}
