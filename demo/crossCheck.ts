// The demo's audit of its own books after the day: the chain (events and contract state), the
// indexer's tables and auditor API, the matching engine's fills, the meter bridge's decisions
// and the simulation's own record of who under-delivered must all tell the same story. Each
// check says what it compared and passes or fails; one failure fails the run.
import type { Kysely } from "kysely";
import { decodeFunctionResult, encodeFunctionData, erc20Abi, getAddress, type Address, type PublicClient } from "viem";
import { energyMarketAbi } from "../contracts/client/abi.js";
import type { Engine } from "../engine/createEngine.js";
import type { IndexerDatabase } from "../indexer/store/schema.js";
import type { BridgeDatabase } from "../bridge/database.js";
import type { KeeperDatabase } from "../server/keeper/database.js";
import type { ApiClient } from "./apiClient.js";
import type { ChainLedger } from "./chainLedger.js";
import { multicall3Abi } from "./multicall3Contract.js";

export interface CrossCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface CrossCheckParameters {
  client: PublicClient;
  chainId: number;
  contracts: { PaymentToken: Address; EnergyMarket: Address };
  multicall: Address;
  ledger: ChainLedger;
  engine: Engine;
  db: Kysely<IndexerDatabase & BridgeDatabase & KeeperDatabase>;
  api: ApiClient;
  /** Every household's address, and what the faucet gave each. */
  households: readonly Address[];
  /** The fee recipients (community treasury, grid operator); they start with no tEUR. */
  feeRecipients: readonly Address[];
  fundingPerHousehold: bigint;
  /** Accounts the node funded for itself (the community aggregator, test accounts): their
   *  tEUR counts towards the supply, whatever they did with it. */
  otherHolders?: readonly Address[];
  /** Sellers the simulation made under-deliver. */
  underDeliverers: ReadonlySet<string>;
  /** Order ids the API acknowledged, and how many orders it refused. */
  acceptedOrderIds: readonly `0x${string}`[];
  refusedOrders: number;
  /** Readings published over MQTT, and what the bridge counted. */
  readingsPublished: number;
  bridgeCounts: { accepted: number; duplicates: number; deadLettered: number };
  /** Calendar year the trades fall in, for the auditor's period report. */
  reportPeriod: string;
  /**
   * The node's keeper (its account), the arbiter, and the chain times the demo moved the clock
   * to after the day (closeTrades.ts: each just past a group of deadlines at most `stepSeconds`
   * apart). Absent: the keeper check is left out.
   */
  keeper?: { address: Address; arbiter: Address; steps: readonly number[]; stepSeconds: number };
}

const key = (a: string) => a.toLowerCase();

export async function crossCheck(p: CrossCheckParameters): Promise<CrossCheck[]> {
  const checks: CrossCheck[] = [];
  const add = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  const { ledger } = p;
  await ledger.sync();
  const trades = [...ledger.trades.values()];

  // ---- chain: lifecycle
  const byStatus: Record<string, number> = {};
  for (const t of trades) byStatus[t.status] = (byStatus[t.status] ?? 0) + 1;
  const unfinished = trades.filter((t) => t.status !== "settled" && t.status !== "refunded").length;
  add("chain: every trade in a final state", unfinished === 0, `${trades.length} trades: ${fmtCounts(byStatus)}`);

  const [escrowed, feesOutstanding, marketBalance, totalSupply, nextTradeId] = await Promise.all([
    p.client.readContract({ address: p.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "escrowedTotal" }),
    p.client.readContract({ address: p.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "feesOutstanding" }),
    p.client.readContract({ address: p.contracts.PaymentToken, abi: erc20Abi, functionName: "balanceOf", args: [p.contracts.EnergyMarket] }),
    p.client.readContract({ address: p.contracts.PaymentToken, abi: erc20Abi, functionName: "totalSupply" }),
    p.client.readContract({ address: p.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "nextTradeId" }),
  ]);
  add("chain: trade ids from events = market's trade counter", BigInt(trades.length) === nextTradeId - 1n, `${trades.length} TradeExecuted, nextTradeId ${nextTradeId}`);
  const statuses = await readTradeStatuses(p, trades.map((t) => t.trade.tradeId));
  const statusNames = ["open", "proposed", "contested", "settled", "refunded"];
  const statusMismatch = trades.filter((t, i) => statusNames[statuses[i]!] !== t.status);
  add("chain: tradeStatus() = status from events", statusMismatch.length === 0, statusMismatch.length === 0 ? `all ${trades.length} agree` : `${statusMismatch.length} differ, e.g. trade ${statusMismatch[0]!.trade.tradeId}`);
  const feesAccrued = trades.reduce((s, t) => s + (t.settlement ? t.settlement.communityFee + t.settlement.networkFee : 0n), 0n);
  const feesClaimed = [...ledger.feesClaimed.values()].reduce((a, b) => a + b, 0n);
  add(
    "chain: escrow holds exactly the open trades and unclaimed fees",
    escrowed === 0n && marketBalance === escrowed + feesOutstanding && feesOutstanding === feesAccrued - feesClaimed,
    `market balance ${marketBalance} = escrowed ${escrowed} + fees ${feesOutstanding} (accrued ${feesAccrued}, claimed ${feesClaimed})`,
  );

  // ---- chain: every household's balance from its trades
  const expected = new Map<string, bigint>(p.households.map((a) => [key(a), p.fundingPerHousehold]));
  const credit = (a: string, v: bigint) => expected.set(key(a), (expected.get(key(a)) ?? 0n) + v);
  for (const t of trades) {
    credit(t.trade.buyer, -t.trade.amount);
    if (t.settlement) {
      credit(t.trade.seller, t.settlement.sellerPayout);
      credit(t.trade.buyer, t.settlement.buyerRefund);
    }
    if (t.refunded !== undefined) credit(t.trade.buyer, t.refunded);
  }
  const balances = await readBalances(p, p.households);
  const wrong = p.households.filter((a, i) => balances[i] !== expected.get(key(a)));
  const householdTotal = balances.reduce((a, b) => a + b, 0n);
  add(
    "chain: household tEUR balances = funding − payments + payouts + refunds",
    wrong.length === 0,
    wrong.length === 0 ? `all ${p.households.length} households agree (total ${householdTotal})` : `${wrong.length} differ, e.g. ${wrong[0]} holds ${balances[p.households.indexOf(wrong[0]!)]}, expected ${expected.get(key(wrong[0]!))}`,
  );
  const recipientBalances = await readBalances(p, p.feeRecipients);
  const accruedTo = new Map<string, bigint>();
  for (const t of trades) {
    if (!t.settlement) continue;
    // Fees accrue to the recipients of the fee terms in force when the trade settled: the demo
    // sets them once, before the first trade; both recipients are listed in that order.
    if (t.settlement.communityFee > 0n) accruedTo.set(key(p.feeRecipients[0]!), (accruedTo.get(key(p.feeRecipients[0]!)) ?? 0n) + t.settlement.communityFee);
    if (t.settlement.networkFee > 0n) accruedTo.set(key(p.feeRecipients[1]!), (accruedTo.get(key(p.feeRecipients[1]!)) ?? 0n) + t.settlement.networkFee);
  }
  const recipientsWrong = p.feeRecipients.filter((a, i) => recipientBalances[i] !== (ledger.feesClaimed.get(key(a) as Address) ?? 0n) || recipientBalances[i] !== (accruedTo.get(key(a)) ?? 0n));
  add(
    "chain: fee recipients hold the fees the settlements accrued (claimed)",
    recipientsWrong.length === 0,
    p.feeRecipients.map((a, i) => `${a} holds ${recipientBalances[i]}, accrued ${accruedTo.get(key(a)) ?? 0n}, claimed ${ledger.feesClaimed.get(key(a) as Address) ?? 0n}`).join("; "),
  );
  const recipientTotal = recipientBalances.reduce((a, b) => a + b, 0n);
  const othersTotal = (p.otherHolders?.length ? await readBalances(p, p.otherHolders) : []).reduce((a, b) => a + b, 0n);
  add(
    "chain: no tEUR created or lost",
    householdTotal + marketBalance + recipientTotal + othersTotal === totalSupply,
    `households ${householdTotal} + market ${marketBalance} + fee recipients ${recipientTotal} + the node's own accounts ${othersTotal} = supply ${totalSupply}`,
  );

  // ---- bridge: one report per trade, decisions as reported, disputes only for real shortfalls
  const reportCounts = trades.map((t) => t.deliveries.length);
  const unreported = reportCounts.filter((n) => n === 0).length;
  const doubled = reportCounts.filter((n) => n > 1).length;
  add("bridge → chain: exactly one delivery report per trade", unreported === 0 && doubled === 0, `${trades.length - unreported} reported, ${unreported} unreported, ${doubled} reported twice`);
  const decisions = await p.db.selectFrom("bridge_decisions").select(["trade_id", "delivered_wh", "contracted_wh"]).execute();
  const decided = new Map(decisions.map((d) => [BigInt(d.trade_id), BigInt(d.delivered_wh)]));
  const decisionMismatch = trades.filter((t) => decided.get(t.trade.tradeId) !== t.deliveries[0]?.deliveredWh);
  add(
    "bridge decisions = delivery reports on-chain",
    decisions.length === trades.length && decisionMismatch.length === 0,
    `${decisions.length} decisions for ${trades.length} trades, ${decisionMismatch.length} differ`,
  );
  const shortfalls = trades.filter((t) => t.deliveries[0] && !t.deliveries[0].withinTolerance);
  const honestDisputed = shortfalls.filter((t) => !p.underDeliverers.has(key(t.trade.seller)));
  add(
    "disputes: opened for under-delivering sellers only, all resolved",
    honestDisputed.length === 0 && ledger.disputesOpened === shortfalls.length && ledger.disputesResolved === ledger.disputesOpened,
    `${ledger.disputesOpened} opened (${shortfalls.length} shortfalls reported, ${honestDisputed.length} against honest sellers), ${ledger.disputesResolved} resolved`,
  );
  const read = p.bridgeCounts.accepted + p.bridgeCounts.duplicates;
  add(
    "meters → bridge: every reading stored, none dead-lettered",
    p.bridgeCounts.accepted === p.readingsPublished && p.bridgeCounts.deadLettered === 0,
    `${p.readingsPublished} published, ${p.bridgeCounts.accepted} stored, ${p.bridgeCounts.duplicates} duplicates, ${p.bridgeCounts.deadLettered} dead-lettered (${read} read)`,
  );

  // ---- indexer ↔ chain
  const rows = await p.db
    .selectFrom("indexer_trades")
    .select(["trade_id", "energy_wh", "price_per_kwh", "amount", "buyer", "seller", "status", "chain_status", "delivered_wh", "seller_payout", "buyer_refund", "community_fee", "network_fee"])
    .where("chain_id", "=", p.chainId)
    .execute();
  const rowById = new Map(rows.map((r) => [BigInt(r.trade_id), r]));
  const rowMismatch: string[] = [];
  for (const t of trades) {
    const r = rowById.get(t.trade.tradeId);
    const d = t.deliveries[0];
    const problems = !r
      ? ["missing"]
      : [
          r.energy_wh !== t.trade.energyWh && "energy",
          r.price_per_kwh !== t.trade.pricePerKWh && "price",
          r.amount !== t.trade.amount && "amount",
          key(r.buyer) !== key(t.trade.buyer) && "buyer",
          key(r.seller) !== key(t.trade.seller) && "seller",
          r.chain_status !== t.status && `chain_status ${r.chain_status}≠${t.status}`,
          r.status !== (t.status === "refunded" ? "refunded" : t.status === "settled" ? "settled" : r.status) && `status ${r.status}`,
          (r.delivered_wh ?? undefined) !== d?.deliveredWh && "delivered_wh",
          (r.seller_payout ?? undefined) !== t.settlement?.sellerPayout && "seller_payout",
          (r.buyer_refund ?? undefined) !== t.settlement?.buyerRefund && "buyer_refund",
          (r.community_fee ?? undefined) !== t.settlement?.communityFee && "community_fee",
          (r.network_fee ?? undefined) !== t.settlement?.networkFee && "network_fee",
        ].filter((x): x is string => typeof x === "string");
    if (problems.length > 0) rowMismatch.push(`trade ${t.trade.tradeId}: ${problems.join(", ")}`);
  }
  add(
    "indexer ↔ chain: indexer_trades rows = trades (parties, energy, price, amount, status, delivery, payouts, fees)",
    rows.length === trades.length && rowMismatch.length === 0,
    `${rows.length} rows for ${trades.length} trades${rowMismatch.length ? `; ${rowMismatch.length} differ, e.g. ${rowMismatch[0]}` : ", all agree"}`,
  );
  const res = await p.api.request("GET", `/v1/reports/${p.reportPeriod}`);
  const energy = trades.reduce((s, t) => s + t.trade.energyWh, 0n);
  const value = trades.reduce((s, t) => s + t.trade.amount, 0n);
  const api = res.json ?? {};
  add(
    "auditor API report ↔ chain: trades, energy, value, disputes",
    res.status === 200 && api.trades === String(trades.length) && api.energyWh === String(energy) && api.value === String(value) &&
      api.disputes?.opened === String(ledger.disputesOpened) && api.disputes?.resolved === String(ledger.disputesResolved),
    `GET /v1/reports/${p.reportPeriod}: ${api.trades} trades, ${api.energyWh} Wh, ${api.value} value, disputes ${api.disputes?.opened}/${api.disputes?.resolved}; chain ${trades.length}, ${energy}, ${value}, ${ledger.disputesOpened}/${ledger.disputesResolved}`,
  );

  // ---- keeper: nobody closed a trade at a deadline by hand
  if (p.keeper) checks.push(await keeperCheck(p, p.keeper));

  // ---- engine ↔ chain
  const fills = p.engine.state.fills;
  const fillStatus: Record<string, number> = {};
  for (const f of fills) fillStatus[f.status] = (fillStatus[f.status] ?? 0) + 1;
  const executed = fills.filter((f) => f.status === "executed");
  const fillMismatch: string[] = [];
  const seen = new Set<bigint>();
  for (const f of executed) {
    const t = f.tradeId === undefined ? undefined : ledger.trades.get(f.tradeId);
    if (!t) {
      fillMismatch.push(`fill ${f.fillId}: no trade ${f.tradeId}`);
      continue;
    }
    seen.add(t.trade.tradeId);
    if (key(f.buyer) !== key(t.trade.buyer) || key(f.seller) !== key(t.trade.seller) || BigInt(f.energyWh) !== t.trade.energyWh || BigInt(f.price) !== t.trade.pricePerKWh || f.amount !== t.trade.amount) {
      fillMismatch.push(`fill ${f.fillId} ≠ trade ${t.trade.tradeId}`);
    }
  }
  add(
    "engine ↔ chain: executed fills = trades, one to one",
    executed.length === trades.length && seen.size === trades.length && fillMismatch.length === 0 && (fillStatus.pending ?? 0) === 0 && (fillStatus.settling ?? 0) === 0,
    `${fills.length} fills (${fmtCounts(fillStatus)}), ${trades.length} trades${fillMismatch.length ? `; ${fillMismatch[0]}` : ""}`,
  );
  const failed = fills.filter((f) => f.status === "failed").length;
  add("engine ↔ chain: fills refused on-chain = FillRejected events", failed === ledger.fillsRejected.length, `${failed} failed fills, ${ledger.fillsRejected.length} FillRejected`);
  const missingOrders = p.acceptedOrderIds.filter((id) => !p.engine.getOrder(id)).length;
  add(
    "API ↔ engine: every order accepted and on the books",
    p.refusedOrders === 0 && missingOrders === 0,
    `${p.acceptedOrderIds.length} acknowledged, ${p.refusedOrders} refused, ${missingOrders} missing from the engine`,
  );
  return checks;
}

/**
 * Every trade is final; each one closed at a deadline (a finalised proposal or contest, a
 * reclaim) was closed by the keeper's own transaction, from its outbox, after the deadline and
 * before the demo moved the clock on: no later than its deadline plus one clock step plus one
 * block per keeper transaction of that step (the embedded chain mines one block, a second
 * apart, per transaction).
 */
async function keeperCheck(p: CrossCheckParameters, k: NonNullable<CrossCheckParameters["keeper"]>): Promise<CrossCheck> {
  const name = "keeper: every trade reached a final state by its deadlines without a manual call";
  const [confirmationWindow] = await p.client.readContract({ address: p.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "windows" });
  const rows = await p.db
    .selectFrom("indexer_trades")
    .select(["trade_id", "status", "chain_status", "delivery_end", "dispute_deadline", "dispute_resolved_by", "resolved_tx", "final_tx", "final_at"])
    .where("chain_id", "=", p.chainId)
    .execute();
  const closings = await p.db
    .selectFrom("keeper_actions as a")
    .innerJoin("keeper_txs as x", "x.tx_hash", "a.tx_hash")
    .select(["a.trade_id", "a.action", "a.due_at", "a.tx_hash", "x.sender"])
    .where("a.chain_id", "=", p.chainId)
    .where("a.outcome", "=", "closed")
    .execute();
  const closingOf = new Map(closings.map((c) => [BigInt(c.trade_id), c]));
  const problems: string[] = [];
  const closed: { id: bigint; action: string; due: number; at: number; step: number }[] = [];
  for (const r of rows) {
    const id = BigInt(r.trade_id);
    if (r.status !== "settled" && r.status !== "refunded") {
      problems.push(`trade ${id} is still ${r.chain_status}`);
      continue;
    }
    // Settled by the meter's report, a release or the arbiter's decision: no deadline involved.
    const reclaimed = r.status === "refunded";
    const finalized = r.resolved_tx !== null && key(r.dispute_resolved_by ?? "") !== key(k.arbiter);
    if (!reclaimed && !finalized) continue;
    const c = closingOf.get(id);
    const action = reclaimed ? "reclaim" : "finalize";
    if (!c || c.action !== action || c.tx_hash !== r.final_tx || key(c.sender) !== key(k.address)) {
      problems.push(`trade ${id} was closed (${action}) in ${r.final_tx}, not by a keeper transaction`);
      continue;
    }
    const due = Number(reclaimed ? r.delivery_end + confirmationWindow : r.dispute_deadline!);
    const at = Number(r.final_at);
    if (Number(c.due_at) !== due) problems.push(`trade ${id}: the keeper planned it due at ${c.due_at}, the chain says ${due}`);
    const step = k.steps.find((s) => s > due);
    if (step === undefined || step - due > k.stepSeconds + 1) problems.push(`trade ${id}: the clock never moved just past its deadline ${due}`);
    closed.push({ id, action, due, at, step: step ?? 0 });
  }
  const perStep = new Map<number, number>();
  for (const c of closed) perStep.set(c.step, (perStep.get(c.step) ?? 0) + 1);
  let latest = 0;
  for (const c of closed) {
    const late = c.at - c.due;
    latest = Math.max(latest, late);
    const allowed = k.stepSeconds + 1 + perStep.get(c.step)!;
    if (late <= 0 || late > allowed) problems.push(`trade ${c.id} closed ${late} s after its deadline (allowed 1 to ${allowed})`);
  }
  const finalizedCount = closed.filter((c) => c.action === "finalize").length;
  return {
    name,
    ok: problems.length === 0,
    detail: `${rows.length} trades final; ${finalizedCount} finalised and ${closed.length - finalizedCount} reclaimed by the keeper ${k.address} over ${k.steps.length} clock steps, ` +
      `at most ${latest} s after a deadline (a step is ≤ ${k.stepSeconds} s)${problems.length ? `; ${problems.length} problems, e.g. ${problems[0]}` : ""}`,
  };
}

function fmtCounts(counts: Record<string, number>): string {
  return Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
}

async function aggregateRead(p: CrossCheckParameters, calls: { target: Address; callData: `0x${string}` }[]): Promise<`0x${string}`[]> {
  const out: `0x${string}`[] = [];
  for (let i = 0; i < calls.length; i += 500) {
    const chunk = calls.slice(i, i + 500).map((c) => ({ ...c, allowFailure: false }));
    const { data } = await p.client.call({ to: p.multicall, data: encodeFunctionData({ abi: multicall3Abi, functionName: "aggregate3", args: [chunk] }) });
    const results = decodeFunctionResult({ abi: multicall3Abi, functionName: "aggregate3", data: data! });
    for (const r of results) out.push(r.returnData);
  }
  return out;
}

async function readBalances(p: CrossCheckParameters, accounts: readonly Address[]): Promise<bigint[]> {
  const data = await aggregateRead(p, accounts.map((a) => ({ target: p.contracts.PaymentToken, callData: encodeFunctionData({ abi: erc20Abi, functionName: "balanceOf", args: [getAddress(a)] }) })));
  return data.map((d) => decodeFunctionResult({ abi: erc20Abi, functionName: "balanceOf", data: d }));
}

async function readTradeStatuses(p: CrossCheckParameters, tradeIds: readonly bigint[]): Promise<number[]> {
  const data = await aggregateRead(p, tradeIds.map((id) => ({ target: p.contracts.EnergyMarket, callData: encodeFunctionData({ abi: energyMarketAbi, functionName: "tradeStatus", args: [id] }) })));
  return data.map((d) => Number(decodeFunctionResult({ abi: energyMarketAbi, functionName: "tradeStatus", data: d })));
}
