// Every event type lands decoded, and every trade's indexed lifecycle matches the contract's
// state machine, on the embedded chain with the real contracts, on PGlite and PostgreSQL.
import { expect } from "chai";
import { decodeEventLog, getAddress, type Hex } from "viem";
import { energyMarketAbi, prosumerRegistryAbi } from "../../contracts/client/abi.js";
import type { RawLog } from "../../indexer/indexing/decodeLogs.js";
import { indexBatch } from "../../indexer/indexing/indexBatch.js";
import { getCheckpoint } from "../../indexer/store/checkpoints.js";
import {
  databaseTargets, dumpTables, indexOnce, openTestDatabase, rpc, startMarketChain, ZONE_A,
  type MarketChain, type ProvenTrade,
} from "./fixtures.js";
import { runScenario, type Scenario } from "./scenario.js";

const CHAIN_STATUS = ["open", "proposed", "contested", "settled", "refunded"] as const;

describe("indexer: events and trade lifecycle", function () {
  let m: MarketChain;
  let scenario: Scenario;
  let chainLogs: RawLog[];

  before(async function () {
    m = await startMarketChain();
    scenario = await runScenario(m);
    chainLogs = await rpc<RawLog[]>(m, "eth_getLogs", [{ address: [m.market, m.registry], fromBlock: "0x0", toBlock: "latest" }]);
  });
  after(async () => {
    await m?.close();
  });

  for (const target of databaseTargets) {
    describe(`on ${target.name}`, () => {
      it("stores every log of the market and the registry once, decoded, with its block and transaction", async () => {
        const { db, close } = await openTestDatabase(target);
        try {
          await indexOnce(m, db);
          const rows = await db.selectFrom("indexer_events").selectAll().orderBy("block_number").orderBy("log_index").execute();
          expect(rows.length).to.equal(chainLogs.length);
          const byKey = new Map(rows.map((r) => [`${r.tx_hash}:${r.log_index}`, r]));
          for (const log of chainLogs) {
            const row = byKey.get(`${log.transactionHash}:${Number(log.logIndex)}`);
            expect(row, `log ${log.transactionHash}:${log.logIndex}`).to.not.equal(undefined);
            const abi = getAddress(log.address) === m.market ? energyMarketAbi : prosumerRegistryAbi;
            const decoded = decodeEventLog({ abi, data: log.data, topics: log.topics as [Hex, ...Hex[]] });
            expect(row!.event).to.equal(decoded.eventName);
            expect(row!.contract).to.equal(abi === energyMarketAbi ? "EnergyMarket" : "ProsumerRegistry");
            expect(row!.args).to.deep.equal(JSON.parse(JSON.stringify(decoded.args, (_k, v) => (typeof v === "bigint" ? v.toString() : v))));
            expect(row!.block_number).to.equal(BigInt(log.blockNumber));
            expect(row!.block_hash).to.equal(log.blockHash);
            expect(row!.block_timestamp).to.equal(BigInt(log.blockTimestamp!));
            expect(row!.tx_index).to.equal(Number(log.transactionIndex));
          }
          const names = new Set(rows.map((r) => `${r.contract}:${r.event}`));
          for (const expected of [
            "ProsumerRegistry:ProsumerRegistered", "ProsumerRegistry:ProsumerUpdated", "ProsumerRegistry:ProsumerStatusChanged",
            "ProsumerRegistry:RoleGranted", "EnergyMarket:RoleGranted", "EnergyMarket:RoleRevoked",
            "EnergyMarket:ListingCreated", "EnergyMarket:ListingCancelled", "EnergyMarket:TradeExecuted", "EnergyMarket:BatchSettled",
            "EnergyMarket:FillRejected", "EnergyMarket:OrderCancelled", "EnergyMarket:NonceIncremented",
            "EnergyMarket:DeliveryConfirmed", "EnergyMarket:DisputeOpened", "EnergyMarket:DisputeResolved", "EnergyMarket:TradeSettled",
            "EnergyMarket:EarlyReleased", "EnergyMarket:TradeRefunded", "EnergyMarket:FeesUpdated", "EnergyMarket:FeesClaimed",
            "EnergyMarket:DeliveryToleranceUpdated", "EnergyMarket:WindowsUpdated", "EnergyMarket:Paused", "EnergyMarket:Unpaused",
          ]) {
            expect(names, expected).to.include(expected);
          }
          const fill = rows.find((r) => r.event === "FillRejected")!;
          expect(fill.args).to.include({ fillIndex: "4", reason: 11 }); // PriceOutOfRange
          const cp = await getCheckpoint(db, m.chainId);
          const head = await m.client.getBlock({ blockTag: "latest" });
          expect(cp!.block_number).to.equal(head.number);
          expect(cp!.block_hash).to.equal(head.hash);
        } finally {
          await close();
        }
      });

      it("follows each trade through the escrow state machine to the contract's own status", async () => {
        const { db, close } = await openTestDatabase(target);
        try {
          await indexOnce(m, db);
          const trades = await db.selectFrom("indexer_trades").selectAll().orderBy("trade_id").execute();
          const onChainTrades = Object.values(scenario.trades);
          expect(trades.map((t) => t.trade_id)).to.deep.equal(onChainTrades.map((t) => t.trade.tradeId).sort((a, b) => Number(a - b)));
          for (const t of trades) {
            const status = await m.client.readContract({ address: m.market, abi: energyMarketAbi, functionName: "tradeStatus", args: [t.trade_id] });
            expect(t.chain_status, `trade ${t.trade_id}`).to.equal(CHAIN_STATUS[status]);
            const proven = onChainTrades.find((p) => p.trade.tradeId === t.trade_id)!;
            expectTradeFields(t, proven);
          }
          const row = (p: ProvenTrade) => trades.find((t) => t.trade_id === p.trade.tradeId)!;
          const s = scenario.trades;
          const fee = (amount: bigint, wh: bigint) => ({ community: (amount * 100n) / 10_000n, network: (wh * 1_000n) / 1_000n });

          const full = row(s.listingSettled);
          const f1 = fee(full.amount, full.energy_wh);
          expect(full).to.include({ status: "settled", listing_id: scenario.listingFilled, delivered_wh: full.energy_wh, within_tolerance: true, released_early: false });
          expect(full).to.include({ seller_payout: full.amount - f1.community - f1.network, buyer_refund: 0n, community_fee: f1.community, network_fee: f1.network });

          expect(row(s.listingOpen)).to.include({ status: "executed", chain_status: "open", listing_id: scenario.listingFilled, seller_payout: null, final_tx: null });

          const pro = row(s.proposalFinalized);
          const proRata = (pro.energy_wh / 2n) * pro.price_per_kwh / 1_000n;
          expect(pro).to.include({ status: "settled", within_tolerance: false, delivered_wh: pro.energy_wh / 2n, proposed_seller_amount: proRata, resolved_seller_amount: proRata, resolved_buyer_amount: pro.amount - proRata });
          expect(pro.dispute_opened_by).to.equal(m.oracle);
          expect(pro.buyer_refund).to.equal(pro.amount - proRata);

          const arb = row(s.contestedResolved);
          expect(arb).to.include({ status: "settled", dispute_opened_by: s.contestedResolved.trade.buyer, dispute_resolved_by: m.arbiter, resolved_seller_amount: scenario.arbiterSplit });
          expect(arb.buyer_refund).to.equal(arb.amount - scenario.arbiterSplit);

          const tmo = row(s.contestedTimeout);
          const tmoProRata = (tmo.energy_wh / 2n) * tmo.price_per_kwh / 1_000n;
          expect(tmo).to.include({ status: "settled", dispute_opened_by: s.contestedTimeout.trade.seller, delivered_wh: tmo.energy_wh / 2n, within_tolerance: false, resolved_seller_amount: tmoProRata, buyer_refund: tmo.amount - tmoProRata });

          expect(row(s.releasedEarly)).to.include({ status: "settled", released_early: true, delivered_wh: null, buyer_refund: 0n });
          expect(row(s.reclaimed)).to.include({ status: "refunded", chain_status: "refunded", buyer_refund: s.reclaimed.trade.amount, seller_payout: 0n });
          expect(row(s.proposalOpen)).to.include({ status: "disputed", chain_status: "proposed", delivered_wh: 100n, final_tx: null });

          // Payouts are the TradeSettled figures, not recomputed ones.
          const settledLogs = chainLogs
            .filter((l) => getAddress(l.address) === m.market)
            .map((l) => decodeEventLog({ abi: energyMarketAbi, data: l.data, topics: l.topics as [Hex, ...Hex[]] }))
            .filter((d) => d.eventName === "TradeSettled");
          for (const d of settledLogs) {
            const a = d.args as { tradeId: bigint; sellerPayout: bigint; buyerRefund: bigint; communityFee: bigint; networkFee: bigint };
            expect(trades.find((t) => t.trade_id === a.tradeId)).to.include({ seller_payout: a.sellerPayout, buyer_refund: a.buyerRefund, community_fee: a.communityFee, network_fee: a.networkFee });
          }
        } finally {
          await close();
        }
      });

      it("derives listings, batches, cancelled orders, nonce floors and prosumers", async () => {
        const { db, close } = await openTestDatabase(target);
        try {
          await indexOnce(m, db);
          const listings = await db.selectFrom("indexer_listings").selectAll().orderBy("listing_id").execute();
          expect(listings.map((l) => [l.listing_id, l.status, l.remaining_wh, l.trade_count])).to.deep.equal([
            [scenario.listingFilled, "filled", 0n, 2],
            [scenario.listingCancelled, "cancelled", 500n, 0],
          ]);
          const batches = await db.selectFrom("indexer_batches").selectAll().orderBy("batch_id").execute();
          expect(batches.map((b) => b.trade_count)).to.deep.equal([1n, 1n, 6n]);
          expect(batches[2]).to.include({ community_fee_bps: 100, network_fee_per_kwh: 1_000n });
          const onChainRoot = await m.client.readContract({ address: m.market, abi: energyMarketAbi, functionName: "batchRoot", args: [batches[2]!.batch_id] });
          expect(batches[2]!.root).to.equal(onChainRoot);
          const orders = await db.selectFrom("indexer_cancelled_orders").selectAll().execute();
          expect(orders.map((o) => [o.order_hash, o.maker])).to.deep.equal([[scenario.cancelledOrderHash, m.sellers[3]]]);
          const floors = await db.selectFrom("indexer_nonce_floors").selectAll().execute();
          expect(floors.map((f) => [f.maker, f.nonce_floor])).to.deep.equal([[m.sellers[2], 100n]]);
          const prosumers = await db.selectFrom("indexer_prosumers").selectAll().execute();
          expect(prosumers).to.have.length(11);
          const updated = prosumers.find((p) => p.account === m.sellers[4])!;
          expect(updated).to.include({ export_limit_w: 12_000n, import_limit_w: 9_000n, sources: 0b110, status: "active" });
          expect(updated.updated_block > updated.registered_block).to.equal(true);
          expect(prosumers.find((p) => p.account === m.buyers[0])).to.include({ zone: ZONE_A, status: "active", sources: 0 });
        } finally {
          await close();
        }
      });

      it("changes nothing when a block range is indexed a second time", async () => {
        const { db, close } = await openTestDatabase(target);
        try {
          await indexOnce(m, db);
          const before = await dumpTables(db);
          // Replay every event with the checkpoint it already has: all writes must be no-ops.
          const { buildEventLookup } = await import("../../indexer/contracts.js");
          const { logsToEvents } = await import("../../indexer/sync/toEvents.js");
          const { createChainRpc } = await import("../../indexer/sync/rpc.js");
          const events = await logsToEvents({ rpc: createChainRpc({ url: m.url }), lookup: buildEventLookup(m.contracts), contracts: m.contracts }, chainLogs);
          const cp = (await getCheckpoint(db, m.chainId))!;
          const tip = { number: cp.block_number, hash: cp.block_hash as Hex, parentHash: cp.block_hash as Hex, timestamp: cp.block_timestamp };
          await indexBatch(db, { chainId: m.chainId, events, blocks: [], checkpoint: tip, previousCheckpoint: { number: cp.block_number, hash: cp.block_hash }, recordUndo: false });
          // The later half of the blocks once more, reading rows first as the realtime path does.
          const mid = events[Math.floor(events.length / 2)]!.blockNumber;
          await indexBatch(db, { chainId: m.chainId, events: events.filter((e) => e.blockNumber >= mid), blocks: [], checkpoint: tip, previousCheckpoint: { number: cp.block_number, hash: cp.block_hash }, recordUndo: true });
          await db.deleteFrom("indexer_undo").execute();
          expect(await dumpTables(db)).to.deep.equal(before);
        } finally {
          await close();
        }
      });
    });
  }
});

function expectTradeFields(row: { [k: string]: unknown }, p: ProvenTrade): void {
  const t = p.trade;
  expect(row).to.include({
    batch_id: t.batchId, seller: t.seller, buyer: t.buyer, zone: t.zone, energy_wh: t.energyWh, price_per_kwh: t.pricePerKWh,
    amount: t.amount, delivery_start: t.deliveryStart, delivery_end: t.deliveryEnd, source: t.source,
    community_fee_bps: t.communityFeeBps, network_fee_per_kwh: t.networkFeePerKWh,
  });
}

describe("indexer: decoding", () => {
  it("decodes like viem, and keeps a log it cannot decode as unknown:<topic0> instead of dropping it", async () => {
    const { buildEventLookup } = await import("../../indexer/contracts.js");
    const { decodeLogs } = await import("../../indexer/indexing/decodeLogs.js");
    const { encodeEventTopics, encodeAbiParameters, toEventSelector } = await import("viem");
    const market = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0" as const;
    const lookup = buildEventLookup({ EnergyMarket: market, ProsumerRegistry: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512" });
    const base = { address: market.toLowerCase() as Hex, blockNumber: "0x5" as Hex, blockHash: `0x${"ab".repeat(32)}` as Hex, blockTimestamp: "0x10" as Hex, transactionHash: `0x${"cd".repeat(32)}` as Hex, transactionIndex: "0x0" as Hex };
    const topics = encodeEventTopics({ abi: energyMarketAbi, eventName: "DeliveryConfirmed", args: { tradeId: 2n ** 200n } }) as Hex[];
    const data = encodeAbiParameters([{ type: "uint64" }, { type: "bytes32" }, { type: "bool" }], [2n ** 63n, `0x${"11".repeat(32)}`, true]);
    const [good, truncated, stranger] = decodeLogs(lookup, [
      { ...base, topics, data, logIndex: "0x0" },
      { ...base, topics, data: data.slice(0, -64) as Hex, logIndex: "0x1" },
      { ...base, topics: [toEventSelector("Something(uint256)")], data: "0x", logIndex: "0x2" },
    ]);
    expect(good!.args).to.deep.equal(decodeEventLog({ abi: energyMarketAbi, data, topics: topics as [Hex, ...Hex[]] }).args);
    expect(good!.args).to.deep.equal({ tradeId: 2n ** 200n, deliveredWh: 2n ** 63n, evidenceHash: `0x${"11".repeat(32)}`, withinTolerance: true });
    expect(good!.seq).to.equal((5n << 24n) | 0n);
    expect(truncated!.event).to.equal(`unknown:${topics[0]}`);
    expect(truncated!.args).to.deep.equal({ topics, data: data.slice(0, -64) });
    expect(stranger!.key).to.equal(`EnergyMarket:unknown:${toEventSelector("Something(uint256)")}`);
  });
});
