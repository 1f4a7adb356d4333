// `energy finalize` and `energy reclaim` as a third party (a wallet that is neither buyer nor
// seller) against a real node whose own keeper is off: the trade struct and its proof come from
// the node's auditor API and are checked against the batch root, the deadline is judged by chain
// time, and the money goes where the contract says (the parties), never to the caller.
import { expect } from "chai";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { erc20Abi } from "viem";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import { publicClientOf } from "../server/helpers.js";
import { listingTrades, moveChainTo, nextWindow, setMeterOracleRole, waitForTrades, INTERVAL } from "./escrowTrades.js";
import { startTestNode, type TestNode } from "./helpers.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

describe("cli: finalize and reclaim by anyone", function () {
  this.timeout(240_000);
  let t: TestNode;
  let proposed: bigint;
  let unreported: bigint;
  let reportedAt: number;
  let windowEnd: number;

  function energy(args: string[], key?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ENERGY_API_URL: t.node.url, ENERGY_PRIVATE_KEY: key })) if (v !== undefined) env[k] = v;
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "cli", "energy.ts"), ...args], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
  }
  const outsider = () => t.node.testAccounts[1]!; // ZONE-B: no party to any trade here
  const buyer = () => t.node.testAccounts[2]!;
  const balanceOf = (address: `0x${string}`) =>
    publicClientOf(t.node.rpcUrl).readContract({ address: t.node.services.chain.contracts.PaymentToken, abi: erc20Abi, functionName: "balanceOf", args: [address] });

  before(async () => {
    t = await startTestNode({ NODE_CLOCK: "chain", KEEPER_ENABLED: "0" });
    const start = await nextWindow(t.node);
    [proposed] = (await listingTrades(t.node, { sellerKey: t.node.testAccounts[0]!.privateKey, buyerKey: buyer().privateKey, start, energies: [700n] })) as [bigint];
    [unreported] = (await listingTrades(t.node, { sellerKey: t.node.testAccounts[0]!.privateKey, buyerKey: buyer().privateKey, start: start + INTERVAL, energies: [400n] })) as [bigint];
    await moveChainTo(t.node, start + INTERVAL + 301);
    reportedAt = Number((await waitForTrades(t.node, [proposed], (r) => r.chain_status === "proposed", "the short report"))[0]!.delivered_at);
    await setMeterOracleRole(t.node, false);
    windowEnd = start + 2 * INTERVAL;
    await moveChainTo(t.node, windowEnd + 301);
  });

  after(async function () {
    this.timeout(60_000);
    await setMeterOracleRole(t.node, true).catch(() => undefined);
    await t?.close();
  });

  it("--help lists finalize and reclaim", async () => {
    const run = await energy(["--help"]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.match(/^ {2}finalize /m).and.match(/^ {2}reclaim /m);
    expect(run.stdout).to.contain("energy finalize <tradeId>").and.contain("energy reclaim <tradeId>");
  });

  it("refuses before the deadlines and in the wrong state, naming the rule (exit 1)", async () => {
    const early = await energy(["finalize", String(proposed)], outsider().privateKey);
    expect(early.code, early.stdout).to.equal(1);
    expect(early.stderr).to.contain("[dispute_window_open]").and.contain("dispute window");
    const notYet = await energy(["reclaim", String(unreported)], outsider().privateKey);
    expect(notYet.code, notYet.stdout).to.equal(1);
    expect(notYet.stderr).to.contain("[confirmation_deadline_not_reached]");
    const wrongState = await energy(["reclaim", String(proposed), "--json"], outsider().privateKey);
    expect(wrongState.code).to.equal(1);
    expect(JSON.parse(wrongState.stderr).error).to.include({ code: "invalid_trade_status", field: "tradeId", source: "client" });
    const noWallet = await energy(["finalize", String(proposed)]);
    expect(noWallet.code).to.equal(2);
  });

  it("a third party finalises the proposal after its dispute window: the meter's split goes to the parties", async () => {
    await moveChainTo(t.node, reportedAt + 86_400 + 1);
    const sellerBefore = await balanceOf(t.node.testAccounts[0]!.address);
    const buyerBefore = await balanceOf(buyer().address);
    const outsiderBefore = await balanceOf(outsider().address);
    const run = await energy(["finalize", String(proposed), "--json"], outsider().privateKey);
    expect(run.code, run.stderr).to.equal(0);
    const json = JSON.parse(run.stdout) as { tradeId: string; txHash: string; sellerPayout: string; buyerRefund: string };
    const [row] = await waitForTrades(t.node, [proposed], (r) => r.chain_status === "settled", "the finalisation indexed");
    expect(json).to.deep.include({ tradeId: String(proposed), txHash: row!.final_tx, sellerPayout: "0", buyerRefund: String(row!.amount) });
    expect(row!.dispute_resolved_by!.toLowerCase()).to.equal(outsider().address.toLowerCase());
    expect(await balanceOf(buyer().address)).to.equal(buyerBefore + row!.amount);
    expect(await balanceOf(t.node.testAccounts[0]!.address)).to.equal(sellerBefore);
    expect(await balanceOf(outsider().address)).to.equal(outsiderBefore);
    const again = await energy(["finalize", String(proposed)], outsider().privateKey);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.contain("[invalid_trade_status]").and.contain("settled");
  });

  it("a third party reclaims the unreported trade after its confirmation deadline: the buyer gets the payment back", async () => {
    const [confirmationWindow] = await publicClientOf(t.node.rpcUrl).readContract({ address: t.node.services.chain.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "windows" });
    await moveChainTo(t.node, windowEnd + Number(confirmationWindow) + 1);
    const buyerBefore = await balanceOf(buyer().address);
    const run = await energy(["reclaim", String(unreported)], outsider().privateKey);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.match(new RegExp(`^reclaimed trade ${unreported}: 0\\.08 tEUR back to the buyer ${buyer().address} \\(tx 0x[0-9a-f]{64}\\)`));
    const [row] = await waitForTrades(t.node, [unreported], (r) => r.chain_status === "refunded", "the reclaim indexed");
    expect(await balanceOf(buyer().address)).to.equal(buyerBefore + row!.amount);
    const tx = await publicClientOf(t.node.rpcUrl).getTransaction({ hash: row!.final_tx as `0x${string}` });
    expect(tx.from.toLowerCase()).to.equal(outsider().address.toLowerCase());
  });
});
