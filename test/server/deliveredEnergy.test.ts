// GET /v1/savings/community and GET /v1/carbon count the same delivered energy, and so does the
// auditor API's period report: over a real index of the indexer's scenario chain, where trades
// settle in full, settle after a dispute on the meter's word or on the arbiter's split, are
// released early, refunded, or still wait for their report. The routes run in an app of their
// own over that index, with ZONE-A's market as the node configures it.
import { expect } from "chai";
import Fastify, { type FastifyInstance } from "fastify";
import { toMarket } from "../../engine/markets.js";
import { indexerApi } from "../../indexer/api/plugin.js";
import { createChainRpc } from "../../indexer/sync/rpc.js";
import type { NodeServices } from "../../server/context.js";
import { handleApiError, problemSchema } from "../../server/problems.js";
import { carbonRoutes } from "../../server/routes/carbon.js";
import { savingsRoutes } from "../../server/routes/savings.js";
import { databaseTargets, indexOnce, openTestDatabase, PRICE, startMarketChain, START_TIME, type MarketChain, type ProvenTrade, type TestDatabase } from "../indexer/fixtures.js";
import { runScenario, type Scenario } from "../indexer/scenario.js";

const RETAIL = 350_000n;

describe("delivered energy: community savings, carbon and the period report agree", function () {
  this.timeout(120_000);
  let m: MarketChain;
  let scenario: Scenario;
  let database: TestDatabase;
  let app: FastifyInstance;

  before(async () => {
    m = await startMarketChain();
    scenario = await runScenario(m);
    database = await openTestDatabase(databaseTargets[0]!);
    await indexOnce(m, database.db);
    app = Fastify({ logger: false, ajv: { customOptions: { coerceTypes: "array", useDefaults: true, removeAdditional: false, allowUnionTypes: true } } }) as unknown as FastifyInstance;
    const services = {
      chain: { token: { symbol: "tEUR", decimals: 6 } },
      engine: { markets: [toMarket({ zone: "ZONE-A", mode: "continuous", feedInTariff: 80_000, retailPrice: Number(RETAIL), basePrice: 200_000, gateClosureMinutes: 5 })] },
      indexer: { db: database.db, chainId: m.chainId },
      clock: () => Number(START_TIME) * 1000,
      timeZone: "Europe/Berlin",
    };
    app.decorate("node", services as unknown as NodeServices);
    app.addSchema(problemSchema);
    app.setErrorHandler(handleApiError);
    carbonRoutes(app);
    savingsRoutes(app);
    await app.register(indexerApi, { db: database.db, rpc: createChainRpc({ url: m.url, maxRetries: 1 }), chainId: m.chainId, contracts: m.contracts, tokenDecimals: 6, co2MicroKgPerKWh: 385_000n });
  });

  after(async () => {
    await app?.close();
    await database?.close();
    await m?.close();
  });

  const get = async (url: string) => {
    const res = await app.inject({ method: "GET", url });
    expect(res.statusCode, res.body).to.equal(200);
    return res.json();
  };

  it("counts a trade delivered in full whole, a disputed one only its delivered part, a refunded one not at all", async () => {
    const s = scenario.trades;
    const wh = (t: ProvenTrade) => t.trade.energyWh;
    // What each trade delivered, by the path it took (every scenario trade is solar, at PRICE, in ZONE-A).
    const delivered: [ProvenTrade, bigint][] = [
      [s.listingSettled, wh(s.listingSettled)], // meter reported it all: settled in full
      [s.releasedEarly, wh(s.releasedEarly)], // the buyer released it: settled in full without a report
      [s.contestedTimeout, wh(s.contestedTimeout) / 2n], // contested, then the meter reported half and the arbiter stayed silent: pro rata
      [s.proposalFinalized, wh(s.proposalFinalized) / 2n], // meter reported half: settled pro rata after the dispute window
      [s.contestedResolved, (wh(s.contestedResolved) * scenario.arbiterSplit) / s.contestedResolved.trade.amount], // the arbiter paid the seller a third
      [s.proposalOpen, 100n], // meter reported 100 Wh, the dispute is still open: its report so far
      [s.reclaimed, 0n], // no report, the buyer reclaimed: refunded
      [s.listingOpen, 0n], // no report yet
    ];
    expect(delivered.map(([, d]) => d)).to.deep.equal([1_000n, 1_000n, 750n, 500n, 666n, 100n, 0n, 0n]);
    expect(s.contestedResolved.trade.pricePerKWh).to.equal(PRICE);

    // Savings: per buyer, delivered Wh costed at the retail price and at the trade price, each rounded down.
    const byBuyer = new Map<string, { wh: bigint; trades: number }>();
    for (const [t, d] of delivered) {
      if (d === 0n) continue;
      const b = byBuyer.get(t.trade.buyer) ?? { wh: 0n, trades: 0 };
      byBuyer.set(t.trade.buyer, { wh: b.wh + d, trades: b.trades + 1 });
    }
    let grid = 0n;
    let p2p = 0n;
    for (const { wh: w } of byBuyer.values()) {
      grid += (w * RETAIL) / 1000n;
      p2p += (w * PRICE) / 1000n;
    }
    const totalWh = delivered.reduce((a, [, d]) => a + d, 0n);
    const savings = await get("/v1/savings/community?period=2031-01-06");
    expect(savings).to.deep.include({
      trades: 6, kwhTraded: Number(totalWh) / 1000, participants: byBuyer.size,
      gridCost: grid.toString(), p2pCost: p2p.toString(), savings: (grid - p2p).toString(), savingsPct: Number(((grid - p2p) * 10_000n) / grid) / 100,
      avgSavingsPerParticipant: ((grid - p2p) / BigInt(byBuyer.size)).toString(),
    });
    expect(savings.period).to.deep.include({ label: "2031-01-06", timeZone: "Europe/Berlin" });

    // Carbon: the same delivered energy (all of it solar).
    const carbon = await get("/v1/carbon?period=2031-01-06");
    expect(carbon.kwhRenewable).to.equal(Number(totalWh) / 1000);
    expect(totalWh).to.equal(4_016n);
    expect(carbon.co2AvoidedKg).to.equal(1.55); // 4.016 kWh x 0.385 kg/kWh = 1.54616 kg

    // The auditor API's report counts it too.
    const report = await get("/v1/reports/2031-01-06");
    expect(report.co2.renewableDeliveredKWh).to.equal(String(Number(totalWh) / 1000));
  });
});
