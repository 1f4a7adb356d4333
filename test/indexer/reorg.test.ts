// Reorgs on the embedded chain: evm_snapshot, a branch of blocks with events, evm_revert, and a
// different branch in their place. Afterwards the database must equal a fresh index of the
// chain as it now is; a reorg deeper than the finality depth must stop the indexer and leave
// the database untouched.
import { expect } from "chai";
import { energyMarketAbi, prosumerRegistryAbi } from "../../contracts/client/abi.js";
import { DeepReorgError } from "../../indexer/errors.js";
import { runIndexer, type IndexerCommit } from "../../indexer/runIndexer.js";
import { getCheckpoint } from "../../indexer/store/checkpoints.js";
import {
  advanceTime, CONNECTION_W, databaseTargets, dumpTables, indexerParams, indexOnce, latestTimestamp, meterId, mine, nextWindow, openTestDatabase,
  PRICE, report, rpc, send, settleFills, startMarketChain, ZONE_A, type MarketChain, type ProvenTrade, type TestDatabaseTarget,
} from "./fixtures.js";
import { mulberry32 } from "../../lib/random.js";

async function freshIndexEquals(m: MarketChain, target: TestDatabaseTarget, dump: Record<string, unknown[]>): Promise<void> {
  const fresh = await openTestDatabase(target);
  try {
    await indexOnce(m, fresh.db);
    expect(dump).to.deep.equal(await dumpTables(fresh.db));
  } finally {
    await fresh.close();
  }
}

/** A small deterministic generator (mulberry32), so every run makes the same branches. */
const random = mulberry32;

for (const target of databaseTargets) {
  describe(`indexer: reorgs on ${target.name}`, function () {
    let m: MarketChain;
    let base: ProvenTrade[];

    before(async () => {
      m = await startMarketChain();
      ({ trades: base } = await settleFills(m, [
        { buyer: m.buyers[0]!, seller: m.sellers[0]!, energyWh: 1_000n },
        { buyer: m.buyers[1]!, seller: m.sellers[1]!, energyWh: 2_000n },
        { buyer: m.buyers[2]!, seller: m.sellers[2]!, energyWh: 3_000n },
        { buyer: m.buyers[3]!, seller: m.sellers[3]!, energyWh: 4_000n },
      ]));
    });
    after(async () => {
      await m?.close();
    });

    it("replaces a branch of blocks with another: rows of the old branch are undone, the new one applied", async () => {
      const { db, close } = await openTestDatabase(target);
      try {
        await indexOnce(m, db);
        const snapshot = await rpc<string>(m, "evm_snapshot");

        // Branch A: reports change existing trades, a new batch and a prosumer update add rows.
        const now = await latestTimestamp(m);
        await advanceTime(m, base[0]!.trade.deliveryEnd - now + 1n);
        await report(m, base[0]!, base[0]!.trade.energyWh);
        await report(m, base[1]!, 10n);
        const { trades: onlyInA } = await settleFills(m, [{ buyer: m.buyers[4]!, seller: m.sellers[4]!, energyWh: 500n }]);
        await send(m, m.admin, m.registry, prosumerRegistryAbi, "updateProsumer", [m.sellers[4]!, meterId(77), ZONE_A, 1n, 1n, 2]);
        await mine(m, 2);
        await indexOnce(m, db);
        expect((await db.selectFrom("indexer_trades").select("status").where("trade_id", "=", base[0]!.trade.tradeId).executeTakeFirstOrThrow()).status).to.equal("settled");
        expect(await db.selectFrom("indexer_trades").select("trade_id").where("trade_id", "=", onlyInA[0]!.trade.tradeId).executeTakeFirst()).to.not.equal(undefined);

        // Branch B, longer, from the same parent.
        expect(await rpc<boolean>(m, "evm_revert", [snapshot])).to.equal(true);
        await send(m, base[2]!.trade.buyer, m.market, energyMarketAbi, "releaseEarly", [base[2]!.trade, base[2]!.proof]);
        const w = await nextWindow(m);
        await send(m, m.sellers[1]!, m.market, energyMarketAbi, "createListing", [ZONE_A, 900n, PRICE, Number(w.deliveryStart), Number(w.deliveryEnd), Number(w.deliveryStart), 1]);
        const { trades: onlyInB } = await settleFills(m, [
          { buyer: m.buyers[2]!, seller: m.sellers[3]!, energyWh: 250n },
          { buyer: m.buyers[0]!, seller: m.sellers[1]!, energyWh: 260n },
        ]);
        await mine(m, 5);

        const commits: IndexerCommit[] = [];
        await indexOnce(m, db, { onCommit: (c) => commits.push(c) });
        expect(commits.filter((c) => c.kind === "reorg")).to.have.length(1);

        const rows = await db.selectFrom("indexer_trades").selectAll().orderBy("trade_id").execute();
        expect(rows.find((r) => r.trade_id === base[0]!.trade.tradeId)).to.include({ status: "executed", delivered_wh: null, seller_payout: null });
        expect(rows.find((r) => r.trade_id === base[1]!.trade.tradeId)).to.include({ status: "executed", chain_status: "open" });
        expect(rows.find((r) => r.trade_id === base[2]!.trade.tradeId)).to.include({ status: "settled", released_early: true });
        // Trade ids are reused by the new branch: the rows are B's trades, not A's.
        expect(rows.find((r) => r.trade_id === onlyInB[0]!.trade.tradeId)).to.include({ buyer: m.buyers[2], energy_wh: 250n });
        expect(onlyInA[0]!.trade.tradeId).to.equal(onlyInB[0]!.trade.tradeId);
        expect((await db.selectFrom("indexer_prosumers").selectAll().where("account", "=", m.sellers[4]!).executeTakeFirstOrThrow()).export_limit_w).to.equal(CONNECTION_W);
        expect(await db.selectFrom("indexer_undo").select("id").where("block_number", "<=", (await getCheckpoint(db, m.chainId))!.block_number - 12n).execute()).to.deep.equal([]);

        await freshIndexEquals(m, target, await dumpTables(db));
      } finally {
        await close();
      }
    });

    it("notices a branch that is shorter than the one indexed", async () => {
      const { db, close } = await openTestDatabase(target);
      try {
        await indexOnce(m, db);
        const snapshot = await rpc<string>(m, "evm_snapshot");
        await settleFills(m, [{ buyer: m.buyers[1]!, seller: m.sellers[2]!, energyWh: 111n }]);
        await send(m, base[3]!.trade.buyer, m.market, energyMarketAbi, "releaseEarly", [base[3]!.trade, base[3]!.proof]);
        await mine(m, 4);
        await indexOnce(m, db);
        await rpc(m, "evm_revert", [snapshot]);
        await settleFills(m, [{ buyer: m.buyers[3]!, seller: m.sellers[0]!, energyWh: 222n }]);
        const head = await m.client.getBlock({ blockTag: "latest" });
        expect(head.number < (await getCheckpoint(db, m.chainId))!.block_number).to.equal(true);

        await indexOnce(m, db);
        const cp = (await getCheckpoint(db, m.chainId))!;
        expect([cp.block_number, cp.block_hash]).to.deep.equal([head.number, head.hash]);
        expect(await db.selectFrom("indexer_trades").select("status").where("trade_id", "=", base[3]!.trade.tradeId).executeTakeFirstOrThrow()).to.deep.equal({ status: "executed" });
        await freshIndexEquals(m, target, await dumpTables(db));
      } finally {
        await close();
      }
    });

    it("after a stop, rolls back a reorg the chain has since built on beyond the finality depth", async () => {
      const { db, close } = await openTestDatabase(target);
      try {
        await indexOnce(m, db, { finalityDepth: 4 });
        const snapshot = await rpc<string>(m, "evm_snapshot");
        const { trades: doomed } = await settleFills(m, [{ buyer: m.buyers[2]!, seller: m.sellers[1]!, energyWh: 555n }]);
        await mine(m, 2);
        await indexOnce(m, db, { finalityDepth: 4 });
        // While the indexer is stopped: another branch, longer than the finality depth.
        await rpc(m, "evm_revert", [snapshot]);
        await settleFills(m, [{ buyer: m.buyers[3]!, seller: m.sellers[1]!, energyWh: 666n }]);
        await mine(m, 9);
        const commits: IndexerCommit[] = [];
        await indexOnce(m, db, { finalityDepth: 4, onCommit: (c) => commits.push(c) });
        expect(commits[0]!.kind).to.equal("reorg");
        expect((await db.selectFrom("indexer_trades").select("energy_wh").where("trade_id", "=", doomed[0]!.trade.tradeId).executeTakeFirstOrThrow()).energy_wh).to.equal(666n);
        const fresh = await openTestDatabase(target);
        try {
          await indexOnce(m, fresh.db, { finalityDepth: 4 });
          expect(await dumpTables(db)).to.deep.equal(await dumpTables(fresh.db));
        } finally {
          await fresh.close();
        }
      } finally {
        await close();
      }
    });

    it("follows seeded random reorgs while running, and ends equal to a fresh index", async function () {
      const { db, close } = await openTestDatabase(target);
      const controller = new AbortController();
      let lastCommit: IndexerCommit | undefined;
      let reorgs = 0;
      const running = runIndexer(indexerParams(m, db, {
        mode: "follow",
        signal: controller.signal,
        pollIntervalMs: 5,
        onCommit: (c) => {
          lastCommit = c;
          if (c.kind === "reorg") reorgs++;
        },
      }));
      try {
        const rand = random(42);
        const atHead = async () => {
          const head = await m.client.getBlock({ blockTag: "latest" });
          for (let i = 0; i < 2_000; i++) {
            const cp = await getCheckpoint(db, m.chainId);
            if (cp?.block_hash === head.hash) return;
            await new Promise((r) => setTimeout(r, 5));
          }
          throw new Error(`indexer did not reach block ${head.number}; last commit ${JSON.stringify(lastCommit, (_k, v) => (typeof v === "bigint" ? String(v) : v))}`);
        };
        const branch = async () => {
          const steps = 1 + Math.floor(rand() * 5);
          for (let s = 0; s < steps; s++) {
            const r = rand();
            if (r < 0.35) {
              await settleFills(m, [{ buyer: m.buyers[Math.floor(rand() * 5)]!, seller: m.sellers[Math.floor(rand() * 5)]!, energyWh: BigInt(1 + Math.floor(rand() * 900)) }]);
            } else if (r < 0.55) {
              const t = base[Math.floor(rand() * base.length)]!;
              const status = await m.client.readContract({ address: m.market, abi: energyMarketAbi, functionName: "tradeStatus", args: [t.trade.tradeId] });
              if (status === 0) await send(m, t.trade.buyer, m.market, energyMarketAbi, "releaseEarly", [t.trade, t.proof]);
              else await mine(m);
            } else if (r < 0.7) {
              await send(m, m.admin, m.registry, prosumerRegistryAbi, "updateProsumer", [m.sellers[0]!, meterId(200 + s), ZONE_A, BigInt(1 + Math.floor(rand() * 1e6)), 5n, 2]);
            } else {
              await mine(m, 1 + Math.floor(rand() * 3));
            }
          }
        };
        await atHead();
        for (let round = 0; round < 6; round++) {
          const snapshot = await rpc<string>(m, "evm_snapshot");
          await branch();
          // Sometimes the indexer sees the doomed branch before it is replaced, sometimes not.
          if (rand() < 0.7) await atHead();
          await rpc(m, "evm_revert", [snapshot]);
          await branch();
          await atHead();
        }
        expect(reorgs).to.be.greaterThan(0);
        controller.abort();
        await running;
        await freshIndexEquals(m, target, await dumpTables(db));
      } finally {
        controller.abort();
        await running.catch(() => undefined);
        await close();
      }
    });

    it("stops with DeepReorgError when a reorg is deeper than the finality depth, and writes nothing", async () => {
      const { db, close } = await openTestDatabase(target);
      try {
        await indexOnce(m, db, { finalityDepth: 3 });
        const snapshot = await rpc<string>(m, "evm_snapshot");
        await settleFills(m, [{ buyer: m.buyers[0]!, seller: m.sellers[3]!, energyWh: 333n }]);
        await mine(m, 5);
        await indexOnce(m, db, { finalityDepth: 3 });
        const before = await dumpTables(db);
        await rpc(m, "evm_revert", [snapshot]);
        await settleFills(m, [{ buyer: m.buyers[1]!, seller: m.sellers[3]!, energyWh: 444n }]);
        await mine(m, 6);
        let error: unknown;
        try {
          await indexOnce(m, db, { finalityDepth: 3 });
        } catch (err) {
          error = err;
        }
        expect(error).to.be.instanceOf(DeepReorgError);
        expect((error as Error).message).to.match(/deeper than the finality depth \(3 blocks\)/);
        expect(await dumpTables(db)).to.deep.equal(before);
      } finally {
        await close();
      }
    });
  });
}
