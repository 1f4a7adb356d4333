// The CLI's commands: each names its options and positionals, whether it needs the wallet,
// and runs one SDK call, returning what --json prints and what a person reads.
import type { ParseArgsOptionsConfig } from "node:util";
import { maxUint256 } from "viem";
import type { EnergyClient } from "../sdk/createEnergyClient.js";
import type { OrderStatus, TradeStatus } from "../sdk/types.js";
import { formatEnergy, formatPricePerKWh, formatTokenAmount } from "../sdk/units.js";
import { formatBalance, formatChain, formatEvidenceCheck, formatListings, formatOrder, formatOrders, formatTrades, toJson } from "./format.js";
import { UsageError } from "./usage.js";

export type OptionValues = Record<string, string | boolean | undefined>;

export interface CommandRun {
  client: EnergyClient;
  values: OptionValues;
  args: string[];
}

export interface CommandOutput {
  json: unknown;
  text: string;
  /** 0 unless the command's answer is itself a refusal (evidence that does not verify: 1). */
  exitCode?: number;
}

export interface Command {
  name: string;
  summary: string;
  /** Arguments and options after the command name. */
  usage: string;
  options: ParseArgsOptionsConfig;
  args: { required: string[]; optional?: string[] };
  wallet: boolean;
  run(c: CommandRun): Promise<CommandOutput>;
}

const str = (values: OptionValues, name: string): string | undefined => (typeof values[name] === "string" ? (values[name] as string) : undefined);

function wholeNumber(values: OptionValues, name: string, usage: string): number | undefined {
  const raw = str(values, name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new UsageError(`--${name} must be a whole number, got ${JSON.stringify(raw)}`, usage);
  return Number(raw);
}

function oneOf<T extends string>(values: OptionValues, name: string, allowed: readonly T[], usage: string): T | undefined {
  const raw = str(values, name);
  if (raw === undefined) return undefined;
  if (!allowed.includes(raw as T)) throw new UsageError(`--${name} must be one of ${allowed.join(", ")}, got ${JSON.stringify(raw)}`, usage);
  return raw as T;
}

const orderStatuses = ["open", "filled", "cancelled", "expired", "closed", "rejected"] as const satisfies readonly OrderStatus[];
const tradeStatuses = ["executed", "delivered", "disputed", "settled", "refunded"] as const satisfies readonly TradeStatus[];

function orderCommand(side: "buy" | "sell"): Command {
  const usage =
    side === "buy"
      ? "buy --kwh <kWh> (--price <tokens/kWh> | --market) [--interval next|<ISO time>|<unix s>] [--zone <zone>] [--accept solar,wind,...] [--min-reputation <bps>] [--tif gtc|ioc|fok] [--post-only]"
      : "sell --kwh <kWh> (--price <tokens/kWh> | --market) [--interval next|<ISO time>|<unix s>] [--zone <zone>] [--source solar|wind|storage|mixed] [--tif gtc|ioc|fok] [--post-only]";
  return {
    name: side,
    summary: side === "buy" ? "place a signed buy order for a delivery interval" : "place a signed sell order for a delivery interval",
    usage,
    options: {
      kwh: { type: "string" },
      price: { type: "string" },
      market: { type: "boolean" },
      interval: { type: "string" },
      zone: { type: "string" },
      tif: { type: "string" },
      "post-only": { type: "boolean" },
      ...(side === "buy" ? { accept: { type: "string" }, "min-reputation": { type: "string" } } : { source: { type: "string" } }),
    },
    args: { required: [] },
    wallet: true,
    async run({ client, values }) {
      const kWh = str(values, "kwh");
      if (kWh === undefined) throw new UsageError("--kwh is required: how much energy, in kWh", usage);
      const price = str(values, "price");
      if (price === undefined && values.market !== true) throw new UsageError("give a limit price with --price <tokens per kWh>, or --market", usage);
      if (price !== undefined && values.market === true) throw new UsageError("--price and --market exclude each other", usage);
      const tif = oneOf(values, "tif", ["gtc", "ioc", "fok"] as const, usage);
      const minRep = wholeNumber(values, "min-reputation", usage);
      const accept = str(values, "accept");
      const order = await client.placeOrder({
        side, kWh, pricePerKWh: price, market: values.market === true, interval: str(values, "interval") ?? "next", zone: str(values, "zone"),
        source: str(values, "source"), acceptedSources: accept ? accept.split(",").map((s) => s.trim()).filter(Boolean) : undefined,
        minSellerReputationBps: minRep, timeInForce: tif, postOnly: values["post-only"] === true,
      });
      const info = await client.chainInfo();
      return { json: order, text: formatOrder(order, info.token) };
    },
  };
}

export const commands: Command[] = [
  {
    name: "login",
    summary: "sign in with Ethereum and show the session",
    usage: "login",
    options: {},
    args: { required: [] },
    wallet: true,
    async run({ client }) {
      const s = await client.login();
      const json = { address: s.address, operator: s.operator, expiresAt: s.expiresAt.toISOString() };
      return { json, text: `signed in as ${s.address}${s.operator ? " (operator)" : ""}; the session lasts until ${json.expiresAt}` };
    },
  },
  {
    name: "chain",
    summary: "chain id, contracts, token and markets with their price corridors",
    usage: "chain",
    options: {},
    args: { required: [] },
    wallet: false,
    async run({ client }) {
      const info = await client.chainInfo();
      return { json: info, text: formatChain(info) };
    },
  },
  {
    name: "balance",
    summary: "token balance, allowance to the market, and ETH for gas",
    usage: "balance",
    options: {},
    args: { required: [] },
    wallet: true,
    async run({ client }) {
      const b = await client.balance();
      return { json: b, text: formatBalance(b) };
    },
  },
  {
    name: "faucet",
    summary: "test tokens and gas money (the node's local chain only)",
    usage: "faucet [--amount <whole tokens>]",
    options: { amount: { type: "string" } },
    args: { required: [] },
    wallet: true,
    async run({ client, values }) {
      const amount = wholeNumber(values, "amount", "faucet [--amount <whole tokens>]");
      const r = await client.faucet(amount === undefined ? {} : { amount });
      const info = await client.chainInfo();
      return { json: r, text: `received ${formatTokenAmount(r.amount, info.token)} (tx ${r.txHash})` };
    },
  },
  {
    name: "approve",
    summary: "let the market draw payments: an amount in tokens, or max",
    usage: "approve <amount|max>",
    options: {},
    args: { required: ["amount"] },
    wallet: true,
    async run({ client, args }) {
      const r = await client.approve({ amount: args[0]! });
      const info = await client.chainInfo();
      const what = r.allowance === maxUint256 ? "an unlimited amount" : formatTokenAmount(r.allowance, info.token);
      return { json: r, text: `approved ${what} for the market ${info.contracts.EnergyMarket} (tx ${r.txHash})` };
    },
  },
  orderCommand("buy"),
  orderCommand("sell"),
  {
    name: "orders",
    summary: "your orders, newest first, with their fills",
    usage: `orders [--status ${orderStatuses.join("|")}] [--limit <n>]`,
    options: { status: { type: "string" }, limit: { type: "string" } },
    args: { required: [] },
    wallet: true,
    async run({ client, values }) {
      const usage = `orders [--status ${orderStatuses.join("|")}] [--limit <n>]`;
      const orders = await client.listOrders({ status: oneOf(values, "status", orderStatuses, usage), limit: wholeNumber(values, "limit", usage) });
      const info = await client.chainInfo();
      return { json: orders, text: formatOrders(orders, info.token) };
    },
  },
  {
    name: "cancel",
    summary: "cancel one of your open orders",
    usage: "cancel <orderId>",
    options: {},
    args: { required: ["orderId"] },
    wallet: true,
    async run({ client, args }) {
      const order = await client.cancelOrder({ orderId: args[0]! });
      const info = await client.chainInfo();
      return { json: order, text: `cancelled\n${formatOrder(order, info.token)}` };
    },
  },
  {
    name: "listings",
    summary: "fixed-price listings on the market contract",
    usage: "listings [--zone <zone>] [--status open|filled|cancelled] [--limit <n>]",
    options: { zone: { type: "string" }, status: { type: "string" }, limit: { type: "string" } },
    args: { required: [] },
    wallet: false,
    async run({ client, values }) {
      const usage = "listings [--zone <zone>] [--status open|filled|cancelled] [--limit <n>]";
      const listings = await client.listings({ zone: str(values, "zone"), status: oneOf(values, "status", ["open", "filled", "cancelled"] as const, usage), limit: wholeNumber(values, "limit", usage) });
      const info = await client.chainInfo();
      return { json: listings, text: formatListings(listings, info) };
    },
  },
  {
    name: "take",
    summary: "buy from a listing straight from your wallet (all of it, or --kwh)",
    usage: "take <listingId> [--kwh <kWh>]",
    options: { kwh: { type: "string" } },
    args: { required: ["listingId"] },
    wallet: true,
    async run({ client, args, values }) {
      const r = await client.takeListing({ listingId: args[0]!, kWh: str(values, "kwh") });
      const info = await client.chainInfo();
      return {
        json: r,
        text: `took ${formatEnergy(r.energyWh)} from listing ${r.listingId} at ${formatPricePerKWh(r.pricePerKWh, info.token)}: trade ${r.tradeId}, ${formatTokenAmount(r.amount, info.token)} in escrow (tx ${r.txHash})`,
      };
    },
  },
  {
    name: "trades",
    summary: "your trades with their delivery status",
    usage: `trades [--status ${tradeStatuses.join("|")}] [--limit <n>]`,
    options: { status: { type: "string" }, limit: { type: "string" } },
    args: { required: [] },
    wallet: true,
    async run({ client, values }) {
      const usage = `trades [--status ${tradeStatuses.join("|")}] [--limit <n>]`;
      const r = await client.trades({ status: oneOf(values, "status", tradeStatuses, usage), limit: wholeNumber(values, "limit", usage) });
      const info = await client.chainInfo();
      return { json: r, text: formatTrades(r.trades, info) };
    },
  },
  {
    name: "dispute",
    summary: "dispute a trade after its delivery window",
    usage: "dispute <tradeId> --reason <text>",
    options: { reason: { type: "string" } },
    args: { required: ["tradeId"] },
    wallet: true,
    async run({ client, args, values }) {
      const reason = str(values, "reason");
      if (reason === undefined) throw new UsageError("--reason is required: say why (its hash goes on-chain)", "dispute <tradeId> --reason <text>");
      const r = await client.openDispute({ tradeId: args[0]!, reason });
      return { json: r, text: `disputed trade ${r.tradeId}; reason hash ${r.reasonHash} (tx ${r.txHash})` };
    },
  },
  {
    name: "verify-evidence",
    summary: "re-derive a trade's delivery report from its evidence, checked against the chain only",
    usage: "verify-evidence <tradeId> [--market <address>]",
    options: { market: { type: "string" } },
    args: { required: ["tradeId"] },
    wallet: false,
    async run({ client, args, values }) {
      // From the node only the evidence bytes; the report, the meters' keys and the trades are
      // read from the chain's JSON-RPC (--rpc to use one the node does not choose).
      const r = await client.verifyTradeEvidence({ tradeId: args[0]!, market: str(values, "market") });
      const json = {
        tradeId: r.tradeId, verified: r.ok, deliveredWh: r.deliveredWh ?? null, basis: r.basis ?? null, market: r.market, registry: r.registry,
        reported: r.report ?? null, evidenceHash: r.evidenceHash, readings: r.readings, problems: r.problems,
      };
      return { json, text: formatEvidenceCheck(r), exitCode: r.ok ? 0 : 1 };
    },
  },
  {
    name: "release",
    summary: "as the buyer, pay the seller in full from escrow now",
    usage: "release <tradeId>",
    options: {},
    args: { required: ["tradeId"] },
    wallet: true,
    async run({ client, args }) {
      const r = await client.releaseEarly({ tradeId: args[0]! });
      const info = await client.chainInfo();
      return { json: r, text: `released ${formatTokenAmount(r.amount, info.token)} to the seller of trade ${r.tradeId} (tx ${r.txHash})` };
    },
  },
  {
    name: "finalize",
    summary: "as anyone, close a dispute past its deadline (the proposal, or the meter's word after the arbitration timeout)",
    usage: "finalize <tradeId>",
    options: {},
    args: { required: ["tradeId"] },
    wallet: true,
    async run({ client, args }) {
      const r = await client.finalizeTrade({ tradeId: args[0]! });
      const info = await client.chainInfo();
      return {
        json: r,
        text: `finalised trade ${r.tradeId}: ${formatTokenAmount(r.sellerPayout, info.token)} to the seller, ${formatTokenAmount(r.buyerRefund, info.token)} back to the buyer (tx ${r.txHash})`,
      };
    },
  },
  {
    name: "reclaim",
    summary: "as anyone, refund the buyer of a trade with no meter report after its confirmation deadline",
    usage: "reclaim <tradeId>",
    options: {},
    args: { required: ["tradeId"] },
    wallet: true,
    async run({ client, args }) {
      const r = await client.reclaimTrade({ tradeId: args[0]! });
      const info = await client.chainInfo();
      return { json: r, text: `reclaimed trade ${r.tradeId}: ${formatTokenAmount(r.amount, info.token)} back to the buyer ${r.buyer} (tx ${r.txHash})` };
    },
  },
];

export { toJson };
