// What verifyEvidence checks a delivery's evidence against, read from the chain and nothing
// else: the market's DeliveryConfirmed for the trade (evidence hash, delivered Wh, block time),
// the registry's MeterSignerSet history of every meter the evidence names (the registry found
// through the market's own `registry()`), and the TradeExecuted of every trade it lists. The
// node's route and the CLI both read through here, each with its own chain client.
import { getAbiItem, getAddress, type Address, type Hex, type PublicClient } from "viem";
import { energyMarketAbi, prosumerRegistryAbi } from "../contracts/client/abi.js";
import { bytes32ToMeterId, meterIdToBytes32 } from "./meterDirectory.js";
import type { ChainTrade, MeterSignerRecord, VerifyEvidenceParameters } from "./verifyEvidence.js";

export interface EvidenceOnChain {
  onChain: VerifyEvidenceParameters["onChain"];
  registry: Address;
  /** The report's transaction and block, when there is one. */
  reportTx: Hex | undefined;
  reportBlock: bigint | undefined;
}

export interface ReadEvidenceOnChainParameters {
  /** The market the caller trusts (not the one the evidence names). */
  market: Address;
  tradeId: bigint;
  /** The evidence, only to learn which meters and trades to look up. */
  evidence: string;
  /** First block to search (the deployment block, when known). */
  fromBlock?: bigint;
}

const deliveryConfirmed = getAbiItem({ abi: energyMarketAbi, name: "DeliveryConfirmed" });
const tradeExecuted = getAbiItem({ abi: energyMarketAbi, name: "TradeExecuted" });
const meterSignerSet = getAbiItem({ abi: prosumerRegistryAbi, name: "MeterSignerSet" });

export async function readEvidenceOnChain(client: PublicClient, { market, tradeId, evidence, fromBlock = 0n }: ReadEvidenceOnChainParameters): Promise<EvidenceOnChain> {
  const { meters, tradeIds } = namesIn(evidence);
  const registry = await client.readContract({ address: market, abi: energyMarketAbi, functionName: "registry" });
  // A window's evidence may name thousands of trades: topic lists go in slices a node will take.
  const [reports, signerLogs, tradeLogs] = await Promise.all([
    client.getLogs({ address: market, event: deliveryConfirmed, args: { tradeId }, fromBlock, toBlock: "latest", strict: true }),
    inSlices(meters, (slice) => client.getLogs({ address: registry, event: meterSignerSet, args: { meterId: slice }, fromBlock, toBlock: "latest", strict: true })),
    inSlices(tradeIds, (slice) => client.getLogs({ address: market, event: tradeExecuted, args: { tradeId: slice }, fromBlock, toBlock: "latest", strict: true })),
  ]);
  const times = new Map<bigint, bigint>();
  await Promise.all([...new Set([...reports, ...signerLogs].map((l) => l.blockNumber))].map(async (n) => {
    times.set(n, (await client.getBlock({ blockNumber: n })).timestamp);
  }));

  // The contract refuses a second report of a trade: there is at most one.
  const report = reports[0];
  const ordered = [...signerLogs].sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1));
  const signers: MeterSignerRecord[] = ordered.map((l, i) => {
    const next = ordered.slice(i + 1).find((n) => n.args.meterId === l.args.meterId);
    return {
      account: getAddress(l.args.account), meterId: bytes32ToMeterId(l.args.meterId), signer: l.args.signer,
      setAt: times.get(l.blockNumber)!, replacedAt: next ? times.get(next.blockNumber)! : null,
    };
  });
  const trades: ChainTrade[] = tradeLogs.map((l) => ({
    tradeId: l.args.tradeId, seller: getAddress(l.args.seller), buyer: getAddress(l.args.buyer), energyWh: l.args.energyWh,
    deliveryStart: l.args.deliveryStart, deliveryEnd: l.args.deliveryEnd,
  }));
  return {
    onChain: {
      market,
      report: report ? { evidenceHash: report.args.evidenceHash, deliveredWh: report.args.deliveredWh, reportedAt: times.get(report.blockNumber)! } : undefined,
      signers,
      trades,
    },
    registry,
    reportTx: report?.transactionHash,
    reportBlock: report?.blockNumber,
  };
}

const TOPICS_PER_QUERY = 200;

async function inSlices<T, R>(items: T[], read: (slice: T[]) => Promise<R[]>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += TOPICS_PER_QUERY) out.push(...(await read(items.slice(i, i + TOPICS_PER_QUERY))));
  return out;
}

/** The meters (as bytes32) and trade ids an evidence document (version 2 or 3) names; nothing on bad input. */
function namesIn(evidence: string): { meters: Hex[]; tradeIds: bigint[] } {
  const meters = new Set<Hex>();
  const tradeIds = new Set<bigint>();
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const addTrades = (trades: unknown) => {
    for (const t of list(trades) as { tradeId?: unknown }[]) if (typeof t?.tradeId === "string" && /^\d{1,78}$/.test(t.tradeId)) tradeIds.add(BigInt(t.tradeId));
  };
  try {
    const e = JSON.parse(evidence) as Record<string, unknown>;
    const parties = [e.seller, e.buyer, ...list(e.otherSellers), ...list(e.sellers), ...list(e.buyers)] as { meter?: unknown; trades?: unknown }[];
    for (const p of parties) {
      if (typeof p?.meter === "string") {
        const b = meterIdToBytes32(p.meter);
        if (b) meters.add(b);
      }
      addTrades(p?.trades);
    }
    addTrades(e.trades);
  } catch {
    // Malformed evidence: verifyEvidence says so; there is nothing to look up.
  }
  return { meters: [...meters], tradeIds: [...tradeIds] };
}
