// Human output of the CLI: energy in kWh, prices in tokens per kWh, amounts in tokens, times
// in UTC. Machine output (--json) does not come through here: it keeps base units as strings.
import { maxUint256 } from "viem";
import type { GetBalanceReturnType } from "../sdk/actions/getBalance.js";
import type { VerifyTradeEvidenceReturnType } from "../sdk/actions/verifyTradeEvidence.js";
import { isoMinute } from "../sdk/markets.js";
import type { ChainInfo, ListingJson, OrderRecord, TradeHistoryItem } from "../sdk/types.js";
import { formatDecimal, formatEnergy, formatPricePerKWh, formatTokenAmount } from "../sdk/units.js";

type Token = ChainInfo["token"];

export function sourceName(info: ChainInfo, id: number): string {
  return Object.entries(info.sources).find(([, v]) => v === id)?.[0] ?? (id === 0 ? "any" : `source ${id}`);
}

export function formatChain(info: ChainInfo): string {
  const lines = [
    `chain      ${info.chainId}${info.local ? " (embedded local chain, faucet available)" : ""}`,
    `rpc        ${info.rpcUrl}`,
    `market     ${info.contracts.EnergyMarket}`,
    `registry   ${info.contracts.ProsumerRegistry}`,
    `token      ${info.token.symbol} (${info.token.decimals} decimals) ${info.token.address}`,
    `intervals  ${info.intervalSeconds / 60} min`,
    "markets:",
  ];
  for (const m of info.markets) {
    lines.push(
      `  ${m.zone.padEnd(8)} ${m.mode.padEnd(10)} corridor ${formatPricePerKWh(m.feedInTariff, info.token)} to ${formatPricePerKWh(m.retailPrice, info.token)}, ` +
        `base ${formatPricePerKWh(m.basePrice, info.token)}, gate closes ${m.gateClosureMinutes} min before delivery${m.capacityKWh !== null ? `, capacity ${m.capacityKWh} kWh per interval` : ""}`,
    );
  }
  return lines.join("\n");
}

export function formatBalance(b: GetBalanceReturnType): string {
  const allowance = b.allowance === maxUint256 ? "unlimited" : formatTokenAmount(b.allowance, b.token);
  return [
    `address    ${b.address}`,
    `balance    ${formatTokenAmount(b.tokenBalance, b.token)}`,
    `allowance  ${allowance} for the market ${b.spender}`,
    `gas        ${formatDecimal(b.eth, 18, 1)} ETH`,
  ].join("\n");
}

export function formatOrder(o: OrderRecord, token: Token): string {
  const bound = o.side === "buy" ? "at most" : "at least";
  const head =
    `order ${o.orderId}\n  ${o.side} ${formatEnergy(o.sizeWh)} ${o.kind === "market" ? "at market" : `${bound} ${formatPricePerKWh(o.limitPricePerKWh, token)}`} in ${o.zone}, ` +
    `delivery ${isoMinute(o.intervalStart)}: ${o.status}${o.reason ? ` (${o.reason})` : ""}, ${formatEnergy(o.filledWh)} of ${formatEnergy(o.sizeWh)} filled`;
  const fills = o.fills.map(
    (f) =>
      `  fill ${f.fillId}: ${formatEnergy(f.energyWh)} at ${formatPricePerKWh(f.pricePerKWh, token)} = ${formatTokenAmount(f.amount, token)}, ${f.status}` +
      `${f.tradeId ? `, trade ${f.tradeId}` : ""}${f.txHash ? `, tx ${f.txHash}` : ""}${f.reason ? ` (${f.reason})` : ""}`,
  );
  return [head, ...fills].join("\n");
}

export function formatOrders(orders: OrderRecord[], token: Token): string {
  return orders.length === 0 ? "no orders" : orders.map((o) => formatOrder(o, token)).join("\n");
}

export function formatListings(listings: ListingJson[], info: ChainInfo): string {
  if (listings.length === 0) return "no listings";
  return listings
    .map(
      (l) =>
        `listing ${l.listingId}: ${formatEnergy(l.remainingWh)} of ${formatEnergy(l.energyWh)} left at ${formatPricePerKWh(l.pricePerKWh, info.token)}, ${sourceName(info, l.source)}, ` +
        `${l.zone}, delivery ${isoMinute(l.deliveryStart)}, expires ${isoMinute(l.expiry)}, ${l.status}, seller ${l.seller}`,
    )
    .join("\n");
}

export function formatTrades(trades: TradeHistoryItem[], info: ChainInfo): string {
  if (trades.length === 0) return "no trades";
  return trades
    .map(
      (t) =>
        `trade ${t.tradeId}: ${t.role === "buyer" ? "bought" : "sold"} ${formatEnergy(t.energyWh)} at ${formatPricePerKWh(t.pricePerKWh, info.token)} = ${formatTokenAmount(t.amount, info.token)}, ` +
        `${sourceName(info, t.source)}, ${t.zone}, delivery ${isoMinute(t.deliveryStart)}: ${t.status}${t.deliveredWh !== null ? `, delivered ${formatEnergy(t.deliveredWh)}` : ""}, ` +
        `${t.role === "buyer" ? `seller ${t.seller}` : `buyer ${t.buyer}`}`,
    )
    .join("\n");
}

/** JSON with bigints as decimal strings (uint256 does not fit a JSON number). */
/** A delivery report re-derived from its evidence: what the chain says, what the readings give, what failed. */
export function formatEvidenceCheck(r: VerifyTradeEvidenceReturnType): string {
  const lines = [
    r.ok
      ? `trade ${r.tradeId}: the evidence verifies against the chain`
      : `trade ${r.tradeId}: the evidence does NOT verify (${r.problems.length} problem${r.problems.length === 1 ? "" : "s"})`,
    r.report
      ? `  reported     ${formatEnergy(r.report.deliveredWh)} (DeliveryConfirmed in ${r.report.txHash}, block ${r.report.blockNumber}, ${new Date(Number(r.report.reportedAt) * 1000).toISOString()})`
      : "  reported     nothing: the chain has no DeliveryConfirmed for this trade",
    `  re-derived   ${r.deliveredWh === undefined ? "nothing (the evidence is too broken)" : `${formatEnergy(r.deliveredWh)} (${r.basis})`} from the ${r.readings.filter((x) => x.signer).length} of ${r.readings.length} reading${r.readings.length === 1 ? "" : "s"} whose signature verifies`,
    `  evidence     keccak256 ${r.evidenceHash}${r.report ? (r.report.evidenceHash.toLowerCase() === r.evidenceHash.toLowerCase() ? " (matches the report)" : ` (the report says ${r.report.evidenceHash})`) : ""}`,
    `  contracts    market ${r.market}, registry ${r.registry} (the market's)`,
    ...r.readings.map((x) => `  reading      ${x.party} meter ${x.meter} ${x.metric}: ${x.signer ? `signed by registered key ${x.signer}` : "NOT signed by a key the registry held"}`),
    ...r.problems.map((p) => `  problem      [${p.code}] ${p.path ? `${p.path}: ` : ""}${p.detail}`),
  ];
  return lines.join("\n");
}

export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2);
}
