// The auditor API over a real index of the scenario chain: filters, cursor pagination that
// holds still while trades arrive, the CSV export read back, one trade's lifecycle with its
// Merkle proof, verify catching tampered rows, stats and period reports.
import { expect } from "chai";
import type { FastifyInstance } from "fastify";
import { sql } from "kysely";
import { concat, formatUnits, keccak256, type Hex } from "viem";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import Fastify from "fastify";
import { buildIndexerApp } from "../../indexer/api/app.js";
import { indexerApi } from "../../indexer/api/plugin.js";
import { createChainRpc } from "../../indexer/sync/rpc.js";
import {
  advanceTime, databaseTargets, indexOnce, latestTimestamp, openTestDatabase, settleFills, startMarketChain, ZONE_A,
  type MarketChain, type ProvenTrade, type TestDatabase,
} from "./fixtures.js";
import { runScenario, type Scenario } from "./scenario.js";

interface TradeItem {
  tradeId: string;
  seller: string;
  buyer: string;
  zone: string;
  zoneLabel: string | null;
  energyWh: string;
  pricePerKWh: string;
  amount: string;
  status: string;
  chainStatus: string;
  settlement: { sellerPayout: string | null; txHash: string } | null;
  executed: { txHash: string; blockNumber: string };
}

/** RFC 4180 reader: quoted fields, doubled quotes, CRLF. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\r" && text[i + 1] === "\n") { row.push(field); rows.push(row); row = []; field = ""; i++; }
    else field += c;
  }
  if (field !== "" || row.length > 0) { row.push(field); rows.push(row); }
  return rows;
}

for (const target of databaseTargets) {
  describe(`indexer API on ${target.name}`, function () {
    let m: MarketChain;
    let scenario: Scenario;
    let database: TestDatabase;
    let app: FastifyInstance;
    let all: ProvenTrade[];

    const get = async (url: string) => {
      const res = await app.inject({ method: "GET", url });
      return { status: res.statusCode, type: String(res.headers["content-type"]), body: res.headers["content-type"]?.toString().includes("json") ? res.json() : res.body };
    };
    const list = async (query: string) => {
      const res = await get(`/v1/trades?${query}`);
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      return res.body as { items: TradeItem[]; nextCursor: string | null };
    };

    before(async () => {
      m = await startMarketChain();
      scenario = await runScenario(m);
      all = Object.values(scenario.trades).sort((a, b) => Number(a.trade.tradeId - b.trade.tradeId));
      database = await openTestDatabase(target);
      await indexOnce(m, database.db);
      app = await buildIndexerApp({
        db: database.db,
        rpc: createChainRpc({ url: m.url, maxRetries: 1 }),
        chainId: m.chainId,
        contracts: m.contracts,
        tokenDecimals: 6,
        co2MicroKgPerKWh: 385_000n,
      });
    });
    after(async () => {
      await app?.close();
      await database?.close();
      await m?.close();
    });

    it("lists trades in id order and filters by seller, buyer, zone, status and period", async () => {
      const everything = await list("limit=100");
      expect(everything.items.map((t) => t.tradeId)).to.deep.equal(all.map((t) => t.trade.tradeId.toString()));
      expect(everything.nextCursor).to.equal(null);
      const first = everything.items[0]!;
      expect(first).to.include({ seller: all[0]!.trade.seller, buyer: all[0]!.trade.buyer, zone: ZONE_A, zoneLabel: "ZONE-A", energyWh: all[0]!.trade.energyWh.toString(), amount: all[0]!.trade.amount.toString() });

      const ids = (ts: ProvenTrade[]) => ts.map((t) => t.trade.tradeId.toString());
      const seller = m.sellers[2]!;
      expect((await list(`seller=${seller}`)).items.map((t) => t.tradeId)).to.deep.equal(ids(all.filter((t) => t.trade.seller === seller)));
      const buyer = m.buyers[1]!;
      expect((await list(`buyer=${buyer.toLowerCase()}`)).items.map((t) => t.tradeId)).to.deep.equal(ids(all.filter((t) => t.trade.buyer === buyer)));
      expect((await list("zone=ZONE-A")).items).to.have.length(all.length);
      expect((await list(`zone=${ZONE_A.toUpperCase().replace("0X", "0x")}`)).items).to.have.length(all.length);
      expect((await list("zone=ZONE-B")).items).to.deep.equal([]);
      const s = scenario.trades;
      expect((await list("status=refunded")).items.map((t) => t.tradeId)).to.deep.equal([s.reclaimed.trade.tradeId.toString()]);
      expect((await list("status=disputed")).items.map((t) => t.tradeId)).to.deep.equal([s.proposalOpen.trade.tradeId.toString()]);
      expect((await list("status=settled")).items).to.have.length(5);
      // Delivery is on 2031-01-06, an hour or so after chain start.
      expect((await list("period=2031-01-06")).items).to.have.length(all.length);
      expect((await list("period=2031-Q1")).items).to.have.length(all.length);
      expect((await list("period=2031-01-07")).items).to.deep.equal([]);
      const start = all[0]!.trade.deliveryStart;
      expect((await list(`from=${start}&to=${start + 1n}`)).items).to.have.length(all.length);
      expect((await list(`from=${new Date(Number(start + 1n) * 1000).toISOString()}`)).items).to.deep.equal([]);
      expect((await list(`seller=${seller}&status=settled&zone=ZONE-A&period=2031-01`)).items.map((t) => t.tradeId)).to.deep.equal(
        ids(all.filter((t) => t.trade.seller === seller && [s.proposalFinalized, s.contestedResolved, s.contestedTimeout, s.releasedEarly, s.listingSettled].includes(t))),
      );
    });

    it("answers bad input with a 400 problem naming the field", async () => {
      const cases: [string, string][] = [
        ["/v1/trades?seller=0x1234", "seller"],
        ["/v1/trades?buyer=alice", "buyer"],
        ["/v1/trades?status=paid", "status"],
        ["/v1/trades?period=2031-13", "period"],
        ["/v1/trades?period=2031-02-30", "period"],
        ["/v1/trades?period=2031&from=2031-01-01", "period"],
        ["/v1/trades?from=yesterday", "from"],
        ["/v1/trades?from=2031-02-01&to=2031-01-01", "to"],
        ["/v1/trades?limit=0", "limit"],
        ["/v1/trades?limit=5000", "limit"],
        ["/v1/trades?order=sideways", "order"],
        ["/v1/trades?cursor=not-a-cursor", "cursor"],
        ["/v1/trades?zone=this-zone-label-is-much-longer-than-31-bytes", "zone"],
        ["/v1/trades?sellr=0x0000000000000000000000000000000000000001", "sellr"],
        ["/v1/trades/abc", "tradeId"],
        ["/v1/trades.csv?status=nope", "status"],
        ["/v1/stats?interval=1w", "interval"],
        ["/v1/reports/2031-Q5", "period"],
        ["/v1/reports/2031?zone=", "zone"],
      ];
      for (const [url, field] of cases) {
        const res = await get(url);
        expect(res.status, url).to.equal(400);
        expect(res.type, url).to.match(/^application\/problem\+json/);
        expect(res.body, url).to.include({ code: "invalid_request", field, status: 400 });
        expect((res.body as { detail: string }).detail, url).to.contain(field);
      }
      const cursorFromAsc = (await list("limit=1")).nextCursor!;
      expect((await get(`/v1/trades?order=desc&cursor=${cursorFromAsc}`)).body).to.include({ field: "cursor" });
      const missing = await get("/v1/trades/999999");
      expect(missing.status).to.equal(404);
      expect(missing.body).to.include({ code: "trade_not_found" });
      expect((await get("/v1/nowhere")).body).to.include({ code: "route_not_found", status: 404 });
    });

    it("mounts as a plugin in a host app with its own 404 and error handling, under a prefix", async () => {
      const host = Fastify();
      host.setNotFoundHandler((_req, reply) => reply.code(404).send({ host: true }));
      host.get("/health", async () => ({ ok: true }));
      await host.register(indexerApi, { prefix: "/indexer", db: database.db, rpc: createChainRpc({ url: m.url }), chainId: m.chainId, contracts: m.contracts, tokenDecimals: 6, co2MicroKgPerKWh: 385_000n });
      try {
        const trades = await host.inject({ method: "GET", url: "/indexer/v1/trades?limit=1" });
        expect(trades.statusCode).to.equal(200);
        expect(trades.json().items).to.have.length(1);
        const bad = await host.inject({ method: "GET", url: "/indexer/v1/trades?status=x" });
        expect([bad.statusCode, bad.headers["content-type"]]).to.deep.equal([400, "application/problem+json; charset=utf-8"]);
        expect((await host.inject({ method: "GET", url: "/elsewhere" })).json()).to.deep.equal({ host: true });
        expect((await host.inject({ method: "GET", url: "/health" })).json()).to.deep.equal({ ok: true });
      } finally {
        await host.close();
      }
    });

    it("pages with a cursor that stays put while new trades arrive", async () => {
      const full = (await list("limit=1000")).items.map((t) => t.tradeId);
      const seen: string[] = [];
      let page = await list("limit=3");
      seen.push(...page.items.map((t) => t.tradeId));
      const descFirst = await list("order=desc&limit=3");

      // New trades land between the first page and the rest.
      const { trades: added } = await settleFills(m, [
        { buyer: m.buyers[3]!, seller: m.sellers[4]!, energyWh: 321n },
        { buyer: m.buyers[4]!, seller: m.sellers[0]!, energyWh: 654n },
      ]);
      await indexOnce(m, database.db);
      while (page.nextCursor) {
        page = await list(`limit=3&cursor=${page.nextCursor}`);
        seen.push(...page.items.map((t) => t.tradeId));
      }
      expect(seen).to.deep.equal([...full, ...added.map((t) => t.trade.tradeId.toString())]);

      // Newest first: the arrivals sort before the cursor, so the old pages go on unchanged.
      const descSeen = descFirst.items.map((t) => t.tradeId);
      let desc = descFirst;
      while (desc.nextCursor) {
        desc = await list(`order=desc&limit=3&cursor=${desc.nextCursor}`);
        descSeen.push(...desc.items.map((t) => t.tradeId));
      }
      expect(descSeen).to.deep.equal([...full].reverse());
    });

    it("exports CSV that reads back to the same trades", async () => {
      const res = await app.inject({ method: "GET", url: "/v1/trades.csv" });
      expect(res.statusCode).to.equal(200);
      expect(res.headers["content-type"]).to.match(/^text\/csv/);
      const [header, ...rows] = parseCsv(res.body);
      const json = (await list("limit=1000")).items;
      expect(rows).to.have.length(json.length);
      const col = (name: string) => header!.indexOf(name);
      rows.forEach((r, i) => {
        const t = json[i]!;
        expect([r[col("trade_id")], r[col("seller")], r[col("buyer")], r[col("zone")], r[col("zone_label")], r[col("energy_wh")], r[col("price_per_kwh")], r[col("amount")], r[col("status")], r[col("chain_status")], r[col("executed_tx")]])
          .to.deep.equal([t.tradeId, t.seller, t.buyer, t.zone, t.zoneLabel, t.energyWh, t.pricePerKWh, t.amount, t.status, t.chainStatus, t.executed.txHash]);
        expect(r[col("seller_payout")]).to.equal(t.settlement?.sellerPayout ?? "");
      });
      const settled = parseCsv((await app.inject({ method: "GET", url: "/v1/trades.csv?status=settled&order=desc" })).body).slice(1);
      expect(settled.map((r) => r[col("trade_id")])).to.deep.equal(json.filter((t) => t.status === "settled").map((t) => t.tradeId).reverse());
    });

    it("shows one trade's whole lifecycle with transaction hashes and a Merkle proof of the on-chain root", async () => {
      const t = scenario.trades.contestedResolved;
      const res = await get(`/v1/trades/${t.trade.tradeId}`);
      expect(res.status).to.equal(200);
      const body = res.body as { trade: TradeItem; lifecycle: { event: string; txHash: string; args: Record<string, unknown> }[]; batch: { root: Hex }; merkle: { leaf: Hex; proof: Hex[] } };
      expect(body.lifecycle.map((e) => e.event)).to.deep.equal(["TradeExecuted", "DeliveryConfirmed", "DisputeOpened", "DisputeOpened", "DisputeResolved", "TradeSettled"]);
      expect(body.lifecycle[0]!.txHash).to.equal(body.trade.executed.txHash);
      expect(body.lifecycle.at(-1)!.txHash).to.equal(body.trade.settlement!.txHash);
      expect(body.merkle.proof).to.deep.equal(t.proof);
      let node = body.merkle.leaf;
      for (const sibling of body.merkle.proof) node = BigInt(node) < BigInt(sibling) ? keccak256(concat([node, sibling])) : keccak256(concat([sibling, node]));
      const root = await m.client.readContract({ address: m.market, abi: energyMarketAbi, functionName: "batchRoot", args: [t.trade.batchId] });
      expect([node, body.batch.root]).to.deep.equal([root, root]);
    });

    it("verifies every stored trade against the chain, and catches tampered rows and events", async () => {
      for (const t of all) {
        const res = await get(`/v1/trades/${t.trade.tradeId}/verify`);
        expect(res.status).to.equal(200);
        expect(res.body, JSON.stringify(res.body)).to.include({ verified: true });
      }
      const db = database.db;
      const target = scenario.trades.proposalOpen.trade.tradeId;
      const checks = async () => {
        const res = await get(`/v1/trades/${target}/verify`);
        const body = res.body as { verified: boolean; checks: { name: string; ok: boolean; mismatches: { field: string; stored: string | null; chain: string | null }[] }[] };
        return { verified: body.verified, failed: body.checks.filter((c) => !c.ok).map((c) => c.name), mismatches: body.checks.flatMap((c) => c.mismatches) };
      };

      await db.updateTable("indexer_trades").set({ energy_wh: sql`energy_wh + 1` }).where("trade_id", "=", target).execute();
      let result = await checks();
      expect(result.verified).to.equal(false);
      expect(result.failed).to.include.members(["merkle", "row"]);
      expect(result.mismatches.find((x) => x.field === "energyWh")).to.deep.equal({ field: "energyWh", stored: String(scenario.trades.proposalOpen.trade.energyWh + 1n), chain: String(scenario.trades.proposalOpen.trade.energyWh) });
      await db.updateTable("indexer_trades").set({ energy_wh: sql`energy_wh - 1` }).where("trade_id", "=", target).execute();

      await db.updateTable("indexer_trades").set({ status: "settled", chain_status: "settled", seller_payout: 1n }).where("trade_id", "=", target).execute();
      result = await checks();
      expect(result.failed).to.have.members(["row", "status"]);
      expect(result.mismatches.map((x) => x.field)).to.include.members(["status", "chainStatus", "sellerPayout"]);
      await db.updateTable("indexer_trades").set({ status: "disputed", chain_status: "proposed", seller_payout: null }).where("trade_id", "=", target).execute();

      await db.updateTable("indexer_events").set({ args: sql`jsonb_set(args, '{deliveredWh}', '"999"')` as never }).where("trade_id", "=", target).where("event", "=", "DeliveryConfirmed").execute();
      result = await checks();
      expect(result.failed).to.deep.equal(["events"]);
      await db.updateTable("indexer_events").set({ args: sql`jsonb_set(args, '{deliveredWh}', '"100"')` as never }).where("trade_id", "=", target).where("event", "=", "DeliveryConfirmed").execute();

      // A lost event is missed too, even though every remaining row still looks consistent.
      await db.deleteFrom("indexer_events").where("trade_id", "=", target).where("event", "=", "DisputeOpened").execute();
      result = await checks();
      expect(result.failed).to.deep.equal(["events"]);
      expect(result.mismatches[0]!.stored).to.equal(null);
    });

    it("reports volume, VWAP per interval and zone, and dispute counts", async () => {
      const res = await get("/v1/stats?period=2031-01-06&interval=15m");
      expect(res.status).to.equal(200);
      const body = res.body as { totals: Record<string, unknown>; intervals: Record<string, unknown>[]; truncated: boolean };
      const rows = await database.db.selectFrom("indexer_trades").selectAll().execute();
      const energy = rows.reduce((a, t) => a + t.energy_wh, 0n);
      const value = rows.reduce((a, t) => a + t.amount, 0n);
      const notional = rows.reduce((a, t) => a + t.energy_wh * t.price_per_kwh, 0n);
      expect(body.totals).to.deep.include({ trades: String(rows.length), energyWh: String(energy), value: String(value), vwapPerKWh: String(notional / energy) });
      expect(body.totals.disputes).to.deep.equal({ opened: "4", open: "1", resolved: "3" });
      const byWindow = new Map<string, bigint>();
      for (const t of rows) byWindow.set(t.delivery_start.toString(), (byWindow.get(t.delivery_start.toString()) ?? 0n) + t.energy_wh);
      expect(body.intervals.map((i) => [i.start, i.zoneLabel, i.energyWh])).to.deep.equal([...byWindow].sort().map(([start, wh]) => [start, "ZONE-A", String(wh)]));
      expect(body.truncated).to.equal(false);
      const empty = (await get("/v1/stats?zone=ZONE-B")).body as { totals: { trades: string; vwapPerKWh: string | null }; intervals: unknown[] };
      expect(empty.totals).to.deep.include({ trades: "0", vwapPerKWh: null });
      expect(empty.intervals).to.deep.equal([]);
    });

    it("reports a period: trades, kWh, value, average price, disputes and CO2 avoided", async () => {
      const res = await get("/v1/reports/2031-01");
      expect(res.status).to.equal(200);
      const rows = await database.db.selectFrom("indexer_trades").selectAll().execute();
      const energy = rows.reduce((a, t) => a + t.energy_wh, 0n);
      const value = rows.reduce((a, t) => a + t.amount, 0n);
      // Every scenario trade is solar. Delivered energy is what the chain settled as delivered.
      const s = scenario.trades;
      const wh = (t: ProvenTrade) => t.trade.energyWh;
      const renewable = [
        wh(s.listingSettled), // reported in full: settled in full
        wh(s.proposalFinalized) / 2n, // finalised on the meter's half
        (wh(s.contestedResolved) * scenario.arbiterSplit) / s.contestedResolved.trade.amount, // the arbiter's third of the money, as energy
        wh(s.contestedTimeout) / 2n, // the meter's half (below tolerance, contested) after the arbiter's silence
        wh(s.releasedEarly), // released by the buyer: delivered in full, no report needed
        100n, // a proposal still open: its meter report so far
        // listingOpen and the later unreported trades (no report yet) and reclaimed (refunded): nothing
      ].reduce((a, b) => a + b, 0n);
      expect(renewable).to.equal(1_000n + 500n + 666n + 750n + 1_000n + 100n);
      expect(res.body).to.deep.include({
        period: "2031-01",
        // January in Berlin: from local midnight (UTC+1) to local midnight.
        from: "2030-12-31T23:00:00.000Z",
        to: "2031-01-31T23:00:00.000Z",
        timeZone: "Europe/Berlin",
        trades: String(rows.length),
        energyWh: String(energy),
        energyKWh: formatUnits(energy, 3),
        value: String(value),
        valueFormatted: formatUnits(value, 6),
        disputes: { opened: "4", open: "1", resolved: "3" },
        refunded: { trades: "1" },
        co2: { renewableDeliveredKWh: formatUnits(renewable, 3), emissionFactorKgPerKWh: "0.385", avoidedKg: formatUnits((renewable * 385_000n) / 1_000_000n, 3) },
      });
      const none = (await get("/v1/reports/2030")).body as Record<string, unknown>;
      expect(none).to.deep.include({ trades: "0", averagePricePerKWh: null, zones: [] });
      const status = (await get("/v1/status")).body as { checkpoint: { blockNumber: string }; behindBlocks: string };
      expect(status.behindBlocks).to.equal("0");
    });
  });
}

// Periods are days of the community's calendar (Europe/Berlin unless told otherwise), as on the
// node's compliance, carbon and savings routes: a trade delivered at 23:30 UTC belongs to the
// next Berlin day, and the day summer time starts has 23 hours.
for (const target of databaseTargets) {
  describe(`indexer API periods on the community's calendar, ${target.name}`, function () {
    let m: MarketChain;
    let database: TestDatabase;
    let app: FastifyInstance;
    const ids: Record<string, string> = {};
    const at = (iso: string) => BigInt(Date.parse(iso) / 1000);
    const tradeIn = async (name: string, deliveryStart: string) => {
      const w = { deliveryStart: at(deliveryStart), deliveryEnd: at(deliveryStart) + 900n };
      const { trades } = await settleFills(m, [{ buyer: m.buyers[0]!, seller: m.sellers[0]!, energyWh: 1_000n }], w);
      ids[name] = trades[0]!.trade.tradeId.toString();
    };
    const options = () => ({ db: database.db, rpc: createChainRpc({ url: m.url, maxRetries: 1 }), chainId: m.chainId, contracts: m.contracts, tokenDecimals: 6, co2MicroKgPerKWh: 385_000n });
    const get = async (url: string, on = app) => {
      const res = await on.inject({ method: "GET", url });
      expect(res.statusCode, `${url}: ${res.body}`).to.equal(200);
      return res.json();
    };
    const tradeIds = async (query: string, on = app) => ((await get(`/v1/trades?${query}`, on)).items as { tradeId: string }[]).map((t) => t.tradeId);

    before(async () => {
      m = await startMarketChain(); // 2031-01-06T00:00Z
      await tradeIn("winter", "2031-01-06T23:30:00Z"); // 00:30 on 7 January in Berlin (UTC+1)
      // Summer time starts 2031-03-30 at 01:00 UTC: that Berlin day runs 2031-03-29T23:00Z to 2031-03-30T22:00Z.
      await advanceTime(m, at("2031-03-29T12:00:00Z") - (await latestTimestamp(m)));
      await tradeIn("dstFirst", "2031-03-29T23:30:00Z"); // 00:30 on 30 March (still UTC+1)
      await tradeIn("dstLast", "2031-03-30T21:45:00Z"); // 23:45 on 30 March (UTC+2): its last interval
      await tradeIn("afterDst", "2031-03-30T22:30:00Z"); // 00:30 on 31 March
      database = await openTestDatabase(target);
      await indexOnce(m, database.db);
      app = await buildIndexerApp(options());
    });
    after(async () => {
      await app?.close();
      await database?.close();
      await m?.close();
    });

    it("a trade at 23:30 UTC counts in the next Berlin day's report, trade list and stats", async () => {
      const report = await get("/v1/reports/2031-01-07");
      expect(report).to.deep.include({ period: "2031-01-07", from: "2031-01-06T23:00:00.000Z", to: "2031-01-07T23:00:00.000Z", timeZone: "Europe/Berlin", trades: "1", energyWh: "1000" });
      expect((await get("/v1/reports/2031-01-06")).trades).to.equal("0");
      expect(await tradeIds("period=2031-01-07")).to.deep.equal([ids.winter]);
      expect(await tradeIds("period=2031-01-06")).to.deep.equal([]);
      const stats = await get("/v1/stats?period=2031-01-07&interval=1h");
      expect(stats).to.deep.include({ from: "2031-01-06T23:00:00.000Z", to: "2031-01-07T23:00:00.000Z", timeZone: "Europe/Berlin" });
      expect(stats.totals.trades).to.equal("1");
      expect((await get("/v1/stats?period=2031-01-06")).totals.trades).to.equal("0");
    });

    it("the day summer time starts has 23 hours; its 1d bucket starts at Berlin midnight", async () => {
      const report = await get("/v1/reports/2031-03-30");
      expect(report).to.deep.include({ period: "2031-03-30", from: "2031-03-29T23:00:00.000Z", to: "2031-03-30T22:00:00.000Z", trades: "2" });
      expect(await tradeIds("period=2031-03-30")).to.deep.equal([ids.dstFirst, ids.dstLast]);
      expect(await tradeIds("period=2031-03-31")).to.deep.equal([ids.afterDst]);
      expect(await tradeIds("period=2031-03-29")).to.deep.equal([]);
      // Months, quarters and years are local too: Q1 ends at Berlin midnight starting 1 April.
      expect(await get("/v1/reports/2031-Q1")).to.deep.include({ from: "2030-12-31T23:00:00.000Z", to: "2031-03-31T22:00:00.000Z", trades: "4" });
      const days = (await get("/v1/stats?period=2031-03&interval=1d")).intervals as { startTime: string; trades: string }[];
      expect(days.map((d) => [d.startTime, d.trades])).to.deep.equal([["2031-03-29T23:00:00.000Z", "2"], ["2031-03-30T22:00:00.000Z", "1"]]);
    });

    it("today, month, quarter and year resolve on the given clock; another time zone moves the days", async () => {
      const noon = Date.parse("2031-03-30T12:00:00Z");
      const utc = await buildIndexerApp({ ...options(), timeZone: "UTC", clock: () => noon });
      const berlin = await buildIndexerApp({ ...options(), clock: () => noon });
      try {
        expect(await get("/v1/reports/today", berlin)).to.deep.include({ period: "2031-03-30", trades: "2" });
        expect(await get("/v1/reports/quarter", berlin)).to.deep.include({ period: "2031-Q1", trades: "4" });
        expect(await tradeIds("period=month", berlin)).to.deep.equal([ids.dstFirst, ids.dstLast, ids.afterDst]);
        expect(await get("/v1/reports/2031-01-06", utc)).to.deep.include({ from: "2031-01-06T00:00:00.000Z", timeZone: "UTC", trades: "1" });
        expect(await tradeIds("period=today", utc)).to.deep.equal([ids.dstLast, ids.afterDst]);
      } finally {
        await utc.close();
        await berlin.close();
      }
      for (const bad of ["Mars/Olympus", "+05:30"]) {
        let error: unknown;
        await buildIndexerApp({ ...options(), timeZone: bad }).then((a) => a.close(), (err: unknown) => (error = err));
        expect(error, bad).to.be.instanceOf(Error).and.to.include({ field: "timeZone" });
      }
      const res = await app.inject({ method: "GET", url: "/v1/reports/yesterday" });
      expect(res.statusCode).to.equal(400);
      expect(res.json()).to.include({ code: "invalid_request", field: "period" });
    });
  });
}
