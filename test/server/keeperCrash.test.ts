// The keeper's outbox survives a crash at every step: three proposals are due at once; the first
// keeper dies right after storing its first signed transaction (never broadcast), a second dies
// after broadcasting the next one (receipt never recorded), a third party finalises the last
// trade meanwhile, and a third keeper finishes. Each escrow is closed exactly once: the stored
// bytes are what reached the chain, no action cost a second transaction, and the trade someone
// else closed counts as done. The node's own keeper is off (KEEPER_ENABLED=0); these keepers
// run on its database and chain, ticked by hand, and GET /v1/keeper/actions shows them. Last, a
// second node on the same chain through CHAIN_RPC_URL runs its keeper alike (KEEPER_PRIVATE_KEY).
import { expect } from "chai";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Kysely } from "kysely";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { writeDeployment } from "../../contracts/client/deploy.js";
import type { IndexerDatabase } from "../../indexer/store/schema.js";
import { createLogger } from "../../lib/logger.js";
import { hardhatKey } from "../../scripts/localChain.js";
import { createEnergyClient } from "../../sdk/createEnergyClient.js";
import { createKeeper, type Keeper } from "../../server/keeper/createKeeper.js";
import { migrateKeeperDatabase, type KeeperDatabase } from "../../server/keeper/database.js";
import type { KeeperFaults } from "../../server/keeper/sendActions.js";
import { closingEvents, listingTrades, moveChainTo, nextWindow, waitForTrades, INTERVAL } from "../cli/escrowTrades.js";
import { injectClient, publicClientOf, startTestNode, type Http, type TestNode } from "./helpers.js";

class Crash extends Error {}

describe("keeper: exactly once across crashes", function () {
  this.timeout(240_000);
  let t: TestNode;
  let http: Http;
  let ids: bigint[];
  const keeperKey = hardhatKey(10); // funded by the embedded chain's genesis, used by nothing else
  const keeperAddress = privateKeyToAccount(keeperKey).address;
  const keepers: Keeper[] = [];

  const db = () => t.node.services.indexer.db as unknown as Kysely<KeeperDatabase>;
  const startKeeper = async (faults?: KeeperFaults, maxActionsPerTick?: number) => {
    const keeper = await createKeeper({
      db: db(), indexerDb: t.node.services.indexer.db as Kysely<IndexerDatabase>, client: t.node.services.chain.publicClient, account: privateKeyToAccount(keeperKey),
      market: t.node.services.chain.contracts.EnergyMarket, chainId: t.node.chainId, logger: createLogger("keeper-test", "silent"), tickMs: 100, autoTick: false,
      ...(faults ? { faults } : {}), ...(maxActionsPerTick ? { maxActionsPerTick } : {}),
    });
    keepers.push(keeper);
    t.node.services.keeper = keeper; // what the route reads
    return keeper;
  };
  const rows = () => db().selectFrom("keeper_actions").selectAll().where("chain_id", "=", t.node.chainId).orderBy("trade_id").execute();

  before(async () => {
    t = await startTestNode({ NODE_CLOCK: "chain", KEEPER_ENABLED: "0" });
    http = injectClient(t.node.app);
    await migrateKeeperDatabase(db());
    const start = await nextWindow(t.node);
    ids = await listingTrades(t.node, { sellerKey: t.node.testAccounts[0]!.privateKey, buyerKey: t.node.testAccounts[2]!.privateKey, start, energies: [500n, 400n, 300n] });
    await moveChainTo(t.node, start + INTERVAL + 301);
    const reported = await waitForTrades(t.node, ids, (r) => r.chain_status === "proposed", "the bridge's short reports");
    const deadline = Number(reported.reduce((m, r) => (r.dispute_deadline! > m ? r.dispute_deadline! : m), 0n));
    await moveChainTo(t.node, deadline + 1);
  });

  after(async () => {
    for (const k of keepers) await k.close();
    await t?.close();
  });

  it("answers 503 while the node runs no keeper", async () => {
    const saved = t.node.services.keeper;
    delete t.node.services.keeper;
    const res = await http({ url: "/v1/keeper/actions" });
    expect(res.status).to.equal(503);
    expect(res.json).to.include({ code: "unavailable" });
    if (saved) t.node.services.keeper = saved;
  });

  let storedHash: Hex;
  it("a keeper that dies after storing a signed transaction leaves it in flight, listed with its hash", async () => {
    const k1 = await startKeeper({ afterStore: () => { throw new Crash("killed after storing the transaction"); } });
    let crashed: unknown;
    await k1.tick().catch((err: unknown) => (crashed = err));
    expect(crashed).to.be.instanceOf(Crash);
    await k1.close();
    const stored = await rows();
    expect(stored.map((r) => [r.trade_id, r.action, r.state])).to.deep.equal([[ids[0], "finalize", "in_flight"], [ids[1], "finalize", "pending"], [ids[2], "finalize", "pending"]]);
    storedHash = stored[0]!.tx_hash as Hex;
    const txs = await db().selectFrom("keeper_txs").selectAll().execute();
    expect(txs.map((x) => x.tx_hash)).to.deep.equal([storedHash]);
    // Never broadcast: the chain does not know it, and the keeper's nonce is unused.
    const client = publicClientOf(t.node.rpcUrl);
    expect(await client.getTransactionCount({ address: keeperAddress })).to.equal(0);

    const res = await http({ url: "/v1/keeper/actions" });
    expect(res.status, res.text).to.equal(200);
    expect(res.json.pending.map((a: { tradeId: string; state: string; txHash: string | null }) => [a.tradeId, a.state, a.txHash])).to.deep.equal([
      [String(ids[0]), "in_flight", storedHash], [String(ids[1]), "pending", null], [String(ids[2]), "pending", null],
    ]);
    expect(res.json.pending[0]).to.include({ action: "finalize", reason: "dispute_window_ended" });
  });

  it("the next keeper sends the same bytes; one that dies after its broadcast leaves a mined transaction to find", async () => {
    // One new action per tick: the third stays pending for someone else to close.
    const k2 = await startKeeper({ afterBroadcast: () => { throw new Crash("killed before recording the receipt"); } }, 1);
    await k2.tick().catch((err: unknown) => {
      if (!(err instanceof Crash)) throw err;
    });
    await k2.close();
    const after = await rows();
    expect(after[0]).to.include({ state: "done", outcome: "closed", tx_hash: storedHash });
    expect(after[1]!.state).to.equal("in_flight");
    expect(after[2]!.state).to.equal("pending");
    expect(await publicClientOf(t.node.rpcUrl).getTransactionCount({ address: keeperAddress })).to.equal(2);
  });

  it("someone else finalises the last trade meanwhile; the third keeper finishes and counts it as done", async () => {
    const outsider = createEnergyClient({ apiUrl: t.node.url, privateKey: t.node.testAccounts[1]!.privateKey });
    const closedByOutsider = await outsider.finalizeTrade({ tradeId: ids[2]! });
    await waitForTrades(t.node, [ids[2]!], (r) => r.chain_status === "settled", "the outsider's finalisation indexed");
    const k3 = await startKeeper();
    await k3.tick();
    const done = await rows();
    expect(done.map((r) => [r.state, r.outcome])).to.deep.equal([["done", "closed"], ["done", "closed"], ["done", "already_closed"]]);
    const settled = await waitForTrades(t.node, ids, (r) => r.chain_status === "settled", "every trade settled");
    expect(settled.map((r) => r.final_tx)).to.deep.equal([done[0]!.tx_hash, done[1]!.tx_hash, closedByOutsider.txHash]);
    expect(done[2]!.tx_hash).to.equal(closedByOutsider.txHash);

    // Exactly once: one DisputeResolved per trade, two keeper transactions for two closings.
    const { resolved } = await closingEvents(t.node, ids);
    expect(resolved.map((e) => e.args.tradeId)).to.deep.equal(ids);
    expect(resolved.map((e) => e.args.resolvedBy)).to.deep.equal([keeperAddress, keeperAddress, outsider.address]);
    expect(await publicClientOf(t.node.rpcUrl).getTransactionCount({ address: keeperAddress })).to.equal(2);
    expect(await db().selectFrom("keeper_txs").select("tx_hash").orderBy("nonce").execute()).to.deep.equal([{ tx_hash: done[0]!.tx_hash }, { tx_hash: done[1]!.tx_hash }]);

    // A later tick finds nothing left to do.
    expect(await k3.tick()).to.deep.equal([]);
    const res = await http({ url: "/v1/keeper/actions" });
    expect(res.json.pending).to.deep.equal([]);
    expect(res.json.recent.map((a: { tradeId: string; outcome: string }) => [a.tradeId, a.outcome]).sort()).to.deep.equal(
      [[String(ids[0]), "closed"], [String(ids[1]), "closed"], [String(ids[2]), "already_closed"]].sort(),
    );
  });

  it("a node on CHAIN_RPC_URL runs its keeper alike, with KEEPER_PRIVATE_KEY", async () => {
    const start = await nextWindow(t.node);
    const [late] = (await listingTrades(t.node, { sellerKey: t.node.testAccounts[0]!.privateKey, buyerKey: t.node.testAccounts[2]!.privateKey, start, energies: [200n] })) as [bigint];
    await moveChainTo(t.node, start + INTERVAL + 301);
    const [reported] = await waitForTrades(t.node, [late], (r) => r.chain_status === "proposed", "the short report");
    await moveChainTo(t.node, Number(reported!.dispute_deadline) + 1);

    // The same chain and contracts, its own database and broker; keys without roles for the
    // matcher and oracle (nothing to settle, nothing to report), and a keeper key of its own.
    const deployments = await mkdtemp(path.join(tmpdir(), "keeper-remote-"));
    await writeDeployment(deployments, t.node.deployment);
    const remoteKeeperKey = hardhatKey(13);
    const remote = await startTestNode({
      CHAIN_RPC_URL: t.node.rpcUrl, DEPLOYMENTS_DIR: deployments, SIWE_DOMAINS: "127.0.0.1", MATCHER_PRIVATE_KEY: hardhatKey(11), METER_ORACLE_PRIVATE_KEY: hardhatKey(12),
      KEEPER_PRIVATE_KEY: remoteKeeperKey, KEEPER_TICK_MS: "100", FINALITY_DEPTH: "0",
    });
    try {
      expect(remote.node.keeper?.address).to.equal(privateKeyToAccount(remoteKeeperKey).address);
      const [row] = await waitForTrades(t.node, [late], (r) => r.chain_status === "settled", "the remote node's keeper to finalise");
      expect(row!.dispute_resolved_by!.toLowerCase()).to.equal(remote.node.keeper!.address.toLowerCase());
      const res = await injectClient(remote.node.app)({ url: "/v1/keeper/actions" });
      expect(res.json.recent.find((a: { tradeId: string }) => a.tradeId === String(late))).to.include({ outcome: "closed", txHash: row!.final_tx });
    } finally {
      await remote.close();
      await rm(deployments, { recursive: true, force: true });
    }
  });
});
