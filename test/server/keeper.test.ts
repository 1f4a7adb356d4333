// The node's escrow keeper through a real node (embedded chain, indexer, bridge, API), with the
// chain's clock moved past each deadline (evm_setNextBlockTimestamp): a delivery the bridge reports short
// and nobody contests is finalised after its dispute window; one the buyer contests is finalised
// by the arbitration-timeout fallback; one the meter oracle never reports is reclaimed for its
// buyer after the confirmation deadline. Each exactly once, by the keeper's own account, with
// nobody building a trade struct or proof by hand; GET /v1/keeper/actions shows them meanwhile.
import { expect } from "chai";
import { erc20Abi } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import { createEnergyClient } from "../../sdk/createEnergyClient.js";
import { readNodeConfig } from "../../server/config.js";
import { escrowActions, type PlannedTrade } from "../../server/keeper/planActions.js";
import { chainNow, closingEvents, listingTrades, moveChainTo, nextWindow, setMeterOracleRole, waitForTrades, INTERVAL } from "../cli/escrowTrades.js";
import { injectClient, publicClientOf, startTestNode, type Http, type TestNode } from "./helpers.js";

const DAY = 86_400;

describe("keeper: settings and what closes an escrow when (no node)", () => {
  it("reads KEEPER_ENABLED, KEEPER_TICK_MS and KEEPER_PRIVATE_KEY, refusing bad values by name", () => {
    expect(readNodeConfig({}, {}).keeper).to.deep.equal({ enabled: true, tickMs: 1_000 });
    const key = `0x${"ab".repeat(32)}` as const;
    expect(readNodeConfig({ KEEPER_ENABLED: "0", KEEPER_TICK_MS: "250", KEEPER_PRIVATE_KEY: key }, {}).keeper).to.deep.equal({ enabled: false, tickMs: 250, key });
    for (const [env, setting] of [[{ KEEPER_ENABLED: "yes" }, "KEEPER_ENABLED"], [{ KEEPER_TICK_MS: "10" }, "KEEPER_TICK_MS"], [{ KEEPER_PRIVATE_KEY: "0x12" }, "KEEPER_PRIVATE_KEY"]] as const) {
      expect(() => readNodeConfig(env, {}), setting).to.throw(setting);
    }
  });

  it("plans each state's ways out with the contract's deadlines, earliest first", () => {
    const windows = { confirmationWindow: 172_800n, disputeWindow: 86_400n, arbitrationTimeout: 1_209_600n };
    const trade = (over: Partial<PlannedTrade>): PlannedTrade => ({
      trade_id: 1n, batch_id: 1n, buyer: "0xb", seller: "0xs", chain_status: "open", delivery_end: 1_000n, dispute_deadline: null, delivered_tx: null, last_event_seq: 1n, ...over,
    });
    expect(escrowActions(trade({}), windows)).to.deep.equal([{ action: "reclaim", reason: "confirmation_deadline", dueAt: 173_800n }]);
    expect(escrowActions(trade({ chain_status: "proposed", dispute_deadline: 90_000n, delivered_tx: "0x1" }), windows)).to.deep.equal([{ action: "finalize", reason: "dispute_window_ended", dueAt: 90_000n }]);
    // Contested after a report: only the meter's word after the arbitration timeout.
    expect(escrowActions(trade({ chain_status: "contested", dispute_deadline: 1_300_000n, delivered_tx: "0x1" }), windows)).to.deep.equal([{ action: "finalize", reason: "arbitration_timeout", dueAt: 1_300_000n }]);
    // Contested before any report: the buyer's refund at the confirmation deadline comes first.
    expect(escrowActions(trade({ chain_status: "contested", dispute_deadline: 1_300_000n }), windows).map((a) => a.action)).to.deep.equal(["reclaim", "finalize"]);
    expect(escrowActions(trade({ chain_status: "settled" }), windows)).to.deep.equal([]);
    expect(escrowActions(trade({ chain_status: "refunded" }), windows)).to.deep.equal([]);
  });
});

describe("keeper: escrows close themselves after their deadlines", function () {
  this.timeout(240_000);
  let t: TestNode;
  let http: Http;
  let proposed: bigint; // reported short, nobody contests
  let contested: bigint; // reported short, the buyer contests, the arbiter stays silent
  let unreported: bigint; // the meter oracle cannot report it
  let reportedAt: number;
  let contestedAt: number;
  let windowEnd: number;

  const seller = () => t.node.testAccounts[0]!; // ZONE-A, solar
  const buyer = () => t.node.testAccounts[2]!; // ZONE-A
  const actions = async () => {
    const res = await http({ url: "/v1/keeper/actions?limit=100" });
    expect(res.status, res.text).to.equal(200);
    return res.json as { chainTime: string; keeper: { address: string; running: boolean }; pending: any[]; scheduled: any[]; recent: any[] };
  };

  before(async () => {
    t = await startTestNode({ NODE_CLOCK: "chain", KEEPER_TICK_MS: "100" });
    http = injectClient(t.node.app);
  });

  after(async () => {
    await setMeterOracleRole(t.node, true).catch(() => undefined);
    await t?.close();
  });

  it("sets up: two trades reported short (one contested by its buyer), one the oracle cannot report", async () => {
    const start = await nextWindow(t.node);
    [proposed, contested] = (await listingTrades(t.node, { sellerKey: seller().privateKey, buyerKey: buyer().privateKey, start, energies: [1_000n, 800n] })) as [bigint, bigint];
    [unreported] = (await listingTrades(t.node, { sellerKey: seller().privateKey, buyerKey: buyer().privateKey, start: start + INTERVAL, energies: [600n] })) as [bigint];
    // No meter publishes: past the bridge's grace period it reports 0 Wh, short of tolerance.
    await moveChainTo(t.node, start + INTERVAL + 301);
    const rows = await waitForTrades(t.node, [proposed, contested], (r) => r.chain_status === "proposed", "the bridge's short reports");
    reportedAt = Number(rows[0]!.delivered_at);
    expect(rows.map((r) => r.delivered_wh)).to.deep.equal([0n, 0n]);

    const buyerClient = createEnergyClient({ apiUrl: t.node.url, privateKey: buyer().privateKey });
    await buyerClient.openDispute({ tradeId: contested, reason: "I was charged for energy I did not get" });
    contestedAt = Number((await waitForTrades(t.node, [contested], (r) => r.chain_status === "contested", "the contest"))[0]!.disputed_at);

    // The oracle loses its role: the third trade's report reverts and is retried in vain.
    await setMeterOracleRole(t.node, false);
    windowEnd = start + 2 * INTERVAL;
    await moveChainTo(t.node, windowEnd + 301);
    await new Promise((r) => setTimeout(r, 1_500)); // the bridge tries (and fails) meanwhile
    expect((await waitForTrades(t.node, [unreported], () => true, "the unreported trade"))[0]!.chain_status).to.equal("open");
  });

  it("lists each trade's next action with its deadline before it is due", async () => {
    const list = await actions();
    expect(list.keeper.running).to.equal(true);
    expect(list.keeper.address).to.equal(t.node.keeper!.address);
    const [confirmationWindow, disputeWindow, arbitrationTimeout] = await publicClientOf(t.node.rpcUrl).readContract({
      address: t.node.services.chain.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "windows",
    });
    const byTrade = new Map(list.scheduled.map((a) => [a.tradeId, a]));
    expect(byTrade.get(String(proposed))).to.deep.include({ action: "finalize", reason: "dispute_window_ended", state: "scheduled", dueAt: String(reportedAt + Number(disputeWindow)) });
    expect(byTrade.get(String(contested))).to.deep.include({ action: "finalize", reason: "arbitration_timeout", state: "scheduled", dueAt: String(contestedAt + Number(arbitrationTimeout)) });
    expect(byTrade.get(String(unreported))).to.deep.include({ action: "reclaim", reason: "confirmation_deadline", state: "scheduled", dueAt: String(windowEnd + Number(confirmationWindow)) });
    expect(list.pending).to.deep.equal([]);
    expect(Number(list.chainTime)).to.be.at.least(windowEnd + 301);
  });

  it("the API's OpenAPI document lists the route", async () => {
    const doc = await http({ url: "/docs/json" });
    expect(doc.json.paths).to.have.property("/v1/keeper/actions");
    expect(doc.json.paths["/v1/keeper/actions"].get.tags).to.deep.equal(["keeper"]);
  });

  it("finalises the uncontested proposal once chain time passes its dispute window", async () => {
    const due = reportedAt + DAY;
    // One second before the deadline: nothing may happen.
    await moveChainTo(t.node, due - 1);
    await new Promise((r) => setTimeout(r, 800));
    expect((await waitForTrades(t.node, [proposed], () => true, "the proposal"))[0]!.chain_status).to.equal("proposed");
    await moveChainTo(t.node, due + 1);
    const [row] = await waitForTrades(t.node, [proposed], (r) => r.chain_status === "settled", "the keeper to finalise the proposal");
    expect(row!.dispute_resolved_by!.toLowerCase()).to.equal(t.node.keeper!.address.toLowerCase());
    expect(row!.resolved_seller_amount).to.equal(0n); // the meter's 0 Wh, as proposed
    expect(Number(row!.final_at)).to.be.greaterThan(due);
    const list = await actions();
    expect(list.recent.find((a) => a.tradeId === String(proposed))).to.deep.include({ action: "finalize", state: "done", outcome: "closed", txHash: row!.final_tx, closedAt: String(row!.final_at) });
  });

  it("reclaims the unreported trade for its buyer after the confirmation deadline", async () => {
    const client = publicClientOf(t.node.rpcUrl);
    const token = t.node.services.chain.contracts.PaymentToken;
    const balanceOf = (a: `0x${string}`) => client.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [a] });
    const before = await balanceOf(buyer().address);
    const [confirmationWindow] = await client.readContract({ address: t.node.services.chain.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "windows" });
    await moveChainTo(t.node, windowEnd + Number(confirmationWindow) + 1);
    const [row] = await waitForTrades(t.node, [unreported], (r) => r.chain_status === "refunded", "the keeper to reclaim the unreported trade");
    expect(row!.buyer_refund).to.equal(row!.amount);
    expect(await balanceOf(buyer().address)).to.equal(before + row!.amount);
    const list = await actions();
    expect(list.recent.find((a) => a.tradeId === String(unreported))).to.deep.include({ action: "reclaim", reason: "confirmation_deadline", outcome: "closed", txHash: row!.final_tx });
    const sender = await client.getTransaction({ hash: row!.final_tx as `0x${string}` });
    expect(sender.from.toLowerCase()).to.equal(t.node.keeper!.address.toLowerCase());
    expect(sender.from.toLowerCase()).to.not.equal(buyer().address.toLowerCase());
  });

  it("finalises the contest the arbiter left undecided on the meter's word after the arbitration timeout", async () => {
    await moveChainTo(t.node, contestedAt + 14 * DAY + 1);
    const [row] = await waitForTrades(t.node, [contested], (r) => r.chain_status === "settled", "the keeper's arbitration-timeout fallback");
    expect(row!.dispute_resolved_by!.toLowerCase()).to.equal(t.node.keeper!.address.toLowerCase());
    expect(row!.buyer_refund).to.equal(row!.amount); // the meter said 0 Wh
  });

  it("did each exactly once: one closing event per trade, one keeper transaction per action", async () => {
    const { resolved, refunded } = await closingEvents(t.node, [proposed, contested, unreported]);
    expect(resolved.map((e) => e.args.tradeId).sort()).to.deep.equal([proposed, contested].sort());
    expect(refunded.map((e) => e.args.tradeId)).to.deep.equal([unreported]);
    const nonce = await publicClientOf(t.node.rpcUrl).getTransactionCount({ address: t.node.keeper!.address });
    expect(nonce).to.equal(3);
    const list = await actions();
    expect(list.pending).to.deep.equal([]);
    expect(list.scheduled.filter((a) => [proposed, contested, unreported].map(String).includes(a.tradeId))).to.deep.equal([]);
    expect(t.node.keeper!.metrics()).to.include({ finalized: 2, reclaimed: 1, alreadyClosed: 0, pending: 0, inFlight: 0, failed: 0 });
    const metrics = (await http({ url: "/metrics" })).text;
    expect(metrics).to.match(/^keeper_finalized 2$/m).and.match(/^keeper_reclaimed 1$/m).and.match(/^keeper_pending 0$/m);
    expect(privateKeyToAccount(t.node.testAccounts[0]!.privateKey).address).to.not.equal(t.node.keeper!.address);
    expect(await chainNow(t.node)).to.be.greaterThan(contestedAt + 14 * DAY);
  });
});

