// The compliance, carbon and savings routes against one whole test node: trade validation as a
// table through the route, the calculators' worked examples, and the period routes over real
// trades. Two ZONE-A accounts trade both ways in two intervals (solar one way, storage back),
// the engine fills, the matcher settles, the meters report over MQTT, the bridge confirms
// delivery on-chain and the indexer records it; NODE_CLOCK=chain lets the test move time
// (evm_increaseTime) instead of waiting. Expected sums are computed here from the fills.
import { expect } from "chai";
import mqtt from "mqtt";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { signReading } from "../../bridge/readingSignature.js";
import { readNodeConfig } from "../../server/config.js";
import { approveMarket, injectClient, intervalAhead, meterLogin, signedOrder, signIn, startTestNode, waitFor, type ChainDescription, type Http, type TestNode } from "./helpers.js";

const berlinDay = (unixSeconds: number) => new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Berlin", year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(unixSeconds * 1000));
/** Half-up rounding of a non-negative count of 10^-scale units to `places` decimals (independent of the code under test). */
function fixed(value: bigint, scale: number, places: number): string {
  const div = 10n ** BigInt(scale - places);
  const r = (value + div / 2n) / div;
  const s = r.toString().padStart(places + 1, "0");
  return `${s.slice(0, s.length - places)}.${s.slice(s.length - places)}`;
}

describe("compliance, carbon and savings routes", function () {
  this.timeout(180_000);
  let t: TestNode;
  let http: Http;
  let chain: ChainDescription;
  let keys: { a: Hex; b: Hex; outsider: Hex; operator: Hex };

  before(async () => {
    t = await startTestNode({ SETTLEMENT_MAX_LATENCY_MS: "50", NODE_CLOCK: "chain" });
    http = injectClient(t.node.app);
    // Accounts 0 and 2 are ZONE-A prosumers (solar and storage); account 1 is in ZONE-B.
    keys = { a: t.node.testAccounts[0]!.privateKey, b: t.node.testAccounts[2]!.privateKey, outsider: t.node.testAccounts[1]!.privateKey, operator: t.node.operatorKey! };
    chain = (await http({ url: "/v1/chain" })).json as ChainDescription;
    await approveMarket(t.node.rpcUrl, chain, keys.a);
    await approveMarket(t.node.rpcUrl, chain, keys.b);
  });

  after(async () => {
    await t?.close();
  });

  describe("POST /v1/compliance/validate-trade", () => {
    const ok = { sellerId: "prosumer-hamburg-2847", buyerId: "consumer-hamburg-5012", kwh: 8, pricePerKwh: 0.19, durationHours: 2 };
    const cases: [string, Record<string, unknown>, { valid: boolean; missingFields?: string[]; errors?: string[]; warnings?: string[] }][] = [
      ["the guide's well-formed trade", ok, { valid: true }],
      ["the guide's risky trade", { ...ok, kwh: 1_500, pricePerKwh: 0.55, durationHours: 48 }, { valid: true, warnings: ["large_trade", "above_market_rate", "extended_delivery_window"] }],
      ["the guide's incomplete trade", { sellerId: ok.sellerId, kwh: -5 }, { valid: false, missingFields: ["buyerId", "pricePerKwh", "durationHours"], errors: ["kwh_must_be_positive"] }],
      ["the guide's own snake_case names", { seller_id: "s", buyer_id: "b", kwh: 1_500, price_per_kwh: 0.55, duration_hours: 48 }, { valid: true, warnings: ["large_trade", "above_market_rate", "extended_delivery_window"] }],
      ["exactly at every threshold (the market rate is ZONE-A's retail price, 0.35)", { ...ok, kwh: 1_000, pricePerKwh: 0.35, durationHours: 24 }, { valid: true }],
      ["just past every threshold", { ...ok, kwh: 1_000.001, pricePerKwh: 0.350001, durationHours: 24.001 }, { valid: true, warnings: ["large_trade", "above_market_rate", "extended_delivery_window"] }],
      ["zeros and nulls", { ...ok, kwh: 0, pricePerKwh: null, durationHours: -2, buyerId: "" }, { valid: false, missingFields: ["buyerId", "pricePerKwh"], errors: ["kwh_must_be_positive", "duration_must_be_positive"] }],
      ["an empty body lists every field", {}, { valid: false, missingFields: ["sellerId", "buyerId", "kwh", "pricePerKwh", "durationHours"] }],
      ["a zone's retail price as the market rate", { ...ok, pricePerKwh: 0.36, zone: "ZONE-B" }, { valid: true, warnings: ["above_market_rate"] }],
    ];
    for (const [name, body, want] of cases) {
      it(name, async () => {
        const res = await http({ method: "POST", url: "/v1/compliance/validate-trade", body });
        expect(res.status, res.text).to.equal(200);
        expect(res.json).to.deep.equal({
          valid: want.valid, missingFields: want.missingFields ?? [], errors: want.errors ?? [], warnings: want.warnings ?? [],
          thresholds: { largeTradeKwh: 1_000, marketRatePerKwh: 0.35, maxDeliveryHours: 24 },
        });
      });
    }

    it("wrong types, unknown fields, both spellings and unknown zones are 400 problems naming the field", async () => {
      const bad: [Record<string, unknown>, string][] = [
        [{ ...ok, kwh: "8" }, "kwh"], [{ ...ok, kwh: true }, "kwh"], [{ ...ok, price_per_kwh: "0.2" }, "price_per_kwh"], [{ ...ok, sellerId: 42 }, "sellerId"],
        [{ ...ok, colour: "green" }, "colour"], [{ ...ok, seller_id: "x" }, "seller_id"], [{ ...ok, zone: "ZONE-Q" }, "zone"],
      ];
      for (const [body, field] of bad) {
        const res = await http({ method: "POST", url: "/v1/compliance/validate-trade", body });
        expect(res.status, JSON.stringify(body)).to.equal(400);
        expect(res.headers["content-type"]).to.match(/^application\/problem\+json/);
        expect(res.json, JSON.stringify(body)).to.include({ code: "invalid_request", field });
      }
      expect((await http({ method: "POST", url: "/v1/compliance/validate-trade", body: [ok] })).status).to.equal(400);
    });

    it("thresholds come from the node's compliance settings", async () => {
      const services = t.node.services as { config?: unknown };
      services.config = readNodeConfig({ COMPLIANCE_LARGE_TRADE_KWH: "5", COMPLIANCE_MARKET_RATE_PER_KWH: "0.18", COMPLIANCE_MAX_DELIVERY_HOURS: "1" }, {});
      try {
        const res = await http({ method: "POST", url: "/v1/compliance/validate-trade", body: ok });
        expect(res.json).to.deep.include({ valid: true, warnings: ["large_trade", "above_market_rate", "extended_delivery_window"], thresholds: { largeTradeKwh: 5, marketRatePerKwh: 0.18, maxDeliveryHours: 1 } });
      } finally {
        delete services.config;
      }
    });
  });

  describe("calculators", () => {
    it("POST /v1/carbon: the guide's 847,000 kWh at 0.385 (its formula's tree-years, not its printed 14,981.9)", async () => {
      const res = await http({ method: "POST", url: "/v1/carbon", body: { kwhRenewable: 847_000 } });
      expect(res.status, res.text).to.equal(200);
      // 847,000 x 0.385 = 326,095 kg exactly; 326,095 / 21.77 = 14,979.0997 -> 14,979.1
      expect(res.json).to.deep.equal({ kwhRenewable: 847_000, emissionFactorKgPerKwh: 0.385, co2AvoidedKg: 326_095, co2AvoidedTonnes: 326.095, treeYears: 14_979.1 });
      const own = await http({ method: "POST", url: "/v1/carbon", body: { kwhRenewable: 1_234.567, emissionFactor: 0.4 } });
      // 1,234.567 x 0.4 = 493.8268 kg -> 493.83; 0.4938 t; 22.68 -> 22.7 tree-years
      expect(own.json).to.deep.equal({ kwhRenewable: 1_234.567, emissionFactorKgPerKwh: 0.4, co2AvoidedKg: 493.83, co2AvoidedTonnes: 0.4938, treeYears: 22.7 });
      for (const [body, field] of [[{ kwhRenewable: -1 }, "kwhRenewable"], [{ kwhRenewable: 0.0001 }, "kwhRenewable"], [{ kwhRenewable: "5" }, "kwhRenewable"], [{ kwhRenewable: 1, emissionFactor: 0.1234567 }, "emissionFactor"], [{}, "kwhRenewable"]] as const) {
        const r = await http({ method: "POST", url: "/v1/carbon", body });
        expect(r.status, JSON.stringify(body)).to.equal(400);
        expect(r.json, JSON.stringify(body)).to.include({ code: "invalid_request", field });
      }
    });

    it("POST /v1/savings/estimate: the guide's month, 350 kWh at 0.32 grid vs 0.18 P2P", async () => {
      const res = await http({ method: "POST", url: "/v1/savings/estimate", body: { kwh: 350, gridPrice: 0.32, p2pPrice: 0.18 } });
      expect(res.status, res.text).to.equal(200);
      expect(res.json).to.deep.equal({
        kwh: 350, gridCost: "112000000", p2pCost: "63000000", savings: "49000000", savingsPct: 43.75,
        gridCostEur: "112.00", p2pCostEur: "63.00", savingsEur: "49.00", currency: { symbol: "tEUR", decimals: 6 },
      });
      const year = await http({ method: "POST", url: "/v1/savings/estimate", body: { kwh: 4_200, gridPrice: 0.32, p2pPrice: 0.18 } });
      expect(year.json.savingsEur).to.equal("588.00");
      for (const [body, field] of [[{ kwh: 1, gridPrice: "0.3", p2pPrice: 0.1 }, "gridPrice"], [{ kwh: 1, gridPrice: 0.3 }, "p2pPrice"], [{ kwh: 1, gridPrice: 0.3, p2pPrice: 0.0000001 }, "p2pPrice"], [{ kwh: -1, gridPrice: 0.3, p2pPrice: 0.1 }, "kwh"]] as const) {
        const r = await http({ method: "POST", url: "/v1/savings/estimate", body });
        expect(r.status, JSON.stringify(body)).to.equal(400);
        expect(r.json, JSON.stringify(body)).to.include({ code: "invalid_request", field });
      }
    });

    it("periods are counted in the community's time zone", async () => {
      const berlin = await http({ url: "/v1/carbon?period=2026-Q1" });
      expect(berlin.json.period).to.deep.equal({ label: "2026-Q1", from: "2025-12-31T23:00:00.000Z", to: "2026-03-31T22:00:00.000Z", timeZone: "Europe/Berlin" });
      // The auditor API mounted in the node reads a period the same way.
      expect((await http({ url: "/v1/reports/2026-Q1" })).json).to.deep.include({ period: "2026-Q1", from: "2025-12-31T23:00:00.000Z", to: "2026-03-31T22:00:00.000Z", timeZone: "Europe/Berlin" });
      expect((await http({ url: "/v1/stats?period=2026-01-01" })).json).to.deep.include({ from: "2025-12-31T23:00:00.000Z", to: "2026-01-01T23:00:00.000Z" });
      const services = t.node.services as { config?: unknown };
      services.config = readNodeConfig({ TIME_ZONE: "Asia/Kolkata" }, {});
      try {
        const kolkata = await http({ url: "/v1/savings/community?period=2026-01-01" });
        expect(kolkata.json.period).to.deep.equal({ label: "2026-01-01", from: "2025-12-31T18:30:00.000Z", to: "2026-01-01T18:30:00.000Z", timeZone: "Asia/Kolkata" });
      } finally {
        delete services.config;
      }
    });

    it("GET /v1/compliance/regions lists the configured regions", async () => {
      const res = await http({ url: "/v1/compliance/regions" });
      expect(res.status).to.equal(200);
      expect(res.json.regions).to.have.length(1);
      expect(res.json.regions[0]).to.deep.include({ region: "EU-DE", energySharingDirective: true, meteringCompliant: true, consumerProtection: true, gridCode: true, gridCodeName: "VDE-AR-N 4105" });
    });
  });

  describe("over real trades", () => {
    let tokens: { a: string; b: string; outsider: string; operator: string };
    let day: string;
    let fills: { interval: number; buyer: Hex; seller: Hex; energyWh: number; pricePerKWh: number; source: number }[] = [];
    const rpc = async (method: string, params: unknown[] = []) => {
      const res = await fetch(t.node.rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
      const body = (await res.json()) as { result?: unknown; error?: { message: string } };
      if (body.error) throw new Error(`${method}: ${body.error.message}`);
      return body.result;
    };
    const nodeNow = async () => (await http({ url: "/v1/trading/markets?zone=ZONE-A" })).json.now as number;
    const moveTimeTo = async (target: number) => {
      const latest = Number(BigInt(((await rpc("eth_getBlockByNumber", ["latest", false])) as { timestamp: Hex }).timestamp));
      if (target > latest) await rpc("evm_increaseTime", [target - latest]);
      await rpc("evm_mine");
      await waitFor(`the node's clock to reach ${target}`, async () => ((await nodeNow()) >= target ? true : undefined), 15_000);
    };
    const signInAll = async () => {
      tokens = { a: await signIn(http, t.node, keys.a), b: await signIn(http, t.node, keys.b), outsider: await signIn(http, t.node, keys.outsider), operator: await signIn(http, t.node, keys.operator) };
    };
    const addr = (key: Hex) => privateKeyToAccount(key).address;

    before(async function () {
      await signInAll();
      let interval = intervalAhead(await nodeNow());
      // Both intervals on one Berlin day, so one day's period holds all the trades.
      while (berlinDay(interval) !== berlinDay(interval + 900)) interval += 900;
      day = berlinDay(interval);
    });

    it("empty periods: zero carbon, zero savings, compliant on declarations alone", async () => {
      const carbon = await http({ url: `/v1/carbon?period=${day}` });
      expect(carbon.status, carbon.text).to.equal(200);
      expect(carbon.json).to.deep.include({ kwhRenewable: 0, co2AvoidedKg: 0, treeYears: 0, emissionFactorKgPerKwh: 0.385, zone: null });
      const savings = await http({ url: `/v1/savings/community?period=${day}` });
      expect(savings.json).to.deep.include({ trades: 0, kwhTraded: 0, p2pCost: "0", gridCost: "0", savings: "0", savingsPct: 0, participants: 0, avgSavingsPerParticipant: "0" });
      const report = await http({ url: `/v1/compliance/report?period=${day}&region=EU-DE`, token: tokens.operator });
      expect(report.status, report.text).to.equal(200);
      expect(report.json.analytics).to.deep.include({ totalTrades: 0, totalKwh: 0, totalValue: "0", avgPricePerKwh: null });
      expect(report.json.compliance).to.deep.include({ compliant: true, metering: true, meteredSharePct: null });
    });

    it("two accounts trade both ways; the trades settle, are delivered and indexed", async () => {
      let interval = intervalAhead(await nodeNow());
      while (berlinDay(interval) !== berlinDay(interval + 900)) interval += 900;
      expect(berlinDay(interval)).to.equal(day);
      const place = async (key: Hex, token: string, side: 0 | 1, at: number, energyWh: number, price: number, source?: number) => {
        const res = await http({ method: "POST", url: "/v1/trading/orders", token, body: await signedOrder(chain, key, { side, intervalStart: at, energyWh, price, ...(source !== undefined ? { source } : {}) }) });
        expect(res.status, res.text).to.equal(201);
        return res.json as { orderId: Hex; status: string; fills: { energyWh: number; pricePerKWh: number }[] };
      };
      // Interval 1: a sells solar to b at two prices. Interval 2: b sells from storage to a.
      await place(keys.a, tokens.a, 1, interval, 600, 200_000);
      await place(keys.a, tokens.a, 1, interval, 400, 250_000);
      const first = await place(keys.b, tokens.b, 0, interval, 1_000, 260_000);
      expect(first.fills.map((f) => [f.energyWh, f.pricePerKWh])).to.deep.equal([[600, 200_000], [400, 250_000]]);
      await place(keys.b, tokens.b, 1, interval + 900, 500, 150_000, 3);
      const second = await place(keys.a, tokens.a, 0, interval + 900, 500, 150_000);
      expect(second.fills.map((f) => [f.energyWh, f.pricePerKWh])).to.deep.equal([[500, 150_000]]);
      fills = [
        ...first.fills.map((f) => ({ interval, buyer: addr(keys.b), seller: addr(keys.a), energyWh: f.energyWh, pricePerKWh: f.pricePerKWh, source: 1 })),
        ...second.fills.map((f) => ({ interval: interval + 900, buyer: addr(keys.a), seller: addr(keys.b), energyWh: f.energyWh, pricePerKWh: f.pricePerKWh, source: 3 })),
      ];
      for (const [order, token] of [[first.orderId, tokens.b], [second.orderId, tokens.a]] as const) {
        await waitFor("the fills to settle on-chain", async () => {
          const r = await http({ url: `/v1/trading/orders/${order}`, token });
          if (r.json.fills.some((f: { status: string }) => f.status === "failed")) throw new Error(`a fill failed: ${r.text}`);
          return r.json.fills.every((f: { status: string }) => f.status === "executed") ? true : undefined;
        });
      }

      // Each window passes and its meters report before the bridge's grace runs out (a decision
      // without readings would be a shortfall); past the grace it confirms delivery.
      const root = t.node.bridge.topicRoot;
      // Each meter logs in as itself (the broker takes no anonymous client) and signs its readings.
      const [accountA, accountB] = [t.node.testAccounts[0]!, t.node.testAccounts[2]!];
      const meters = new Map(await Promise.all([accountA, accountB].map(async (a) =>
        [a.meterId, await mqtt.connectAsync(t.node.mqttUrl, { clean: true, reconnectPeriod: 0, ...meterLogin(a) })] as const)));
      try {
        const publish = (account: typeof accountA, at: number, exportKWh: number, importKWh: number) => meters.get(account.meterId)!.publishAsync(
          `${root}/ZONE-A/smart-meter/${account.meterId}/interval`,
          JSON.stringify(signReading({
            meterId: account.meterId, metric: "interval", privateKey: account.meterKey,
            payload: { interval_start: new Date(at * 1000).toISOString(), interval_minutes: 15, export_kwh: exportKWh, import_kwh: importKWh, generation_kwh: exportKWh + 0.3, consumption_kwh: importKWh + 0.3 },
          })), { qos: 1 });
        const accepted = (n: number) => waitFor(`the bridge to accept ${n} readings`, async () => {
          const metrics = await (await http({ url: "/metrics" })).text;
          return Number(/^bridge_accepted (\d+)/m.exec(metrics)?.[1] ?? 0) >= n ? true : undefined;
        });
        await moveTimeTo(interval + 900 + 1);
        await publish(accountA, interval, 1.25, 0);
        await publish(accountB, interval, 0, 1.1);
        await accepted(2);
        await moveTimeTo(interval + 1_800 + 1);
        await publish(accountB, interval + 900, 0.6, 0);
        await publish(accountA, interval + 900, 0, 0.55);
        await accepted(4);
      } finally {
        await Promise.all([...meters.values()].map((m) => m.endAsync()));
      }
      // The chain (and the node's clock) moved half an hour on; the tokens, on the wall clock, still work.
      await moveTimeTo(interval + 1_800 + 300 + 2);
      await waitFor("every trade delivered and indexed", async () => {
        await t.node.indexedBlock();
        const trades = [
          ...(await http({ url: "/v1/trading/history", token: tokens.b })).json.trades, ...(await http({ url: "/v1/trading/history", token: tokens.a })).json.trades,
        ] as { tradeId: string; deliveredWh: string | null }[];
        const unique = new Map(trades.map((x) => [x.tradeId, x]));
        return unique.size === 3 && [...unique.values()].every((x) => x.deliveredWh !== null) ? true : undefined;
      }, 60_000, 250);
    });

    it("GET /v1/savings/community: the buyers' savings against ZONE-A's retail price, from the fills", async () => {
      expect(fills).to.have.length(3);
      const retail = 350_000n;
      // Group each buyer's energy per price, cost it rounded down (amountFor), sum.
      const groups = new Map<string, bigint>();
      for (const f of fills) groups.set(`${f.buyer}:${f.pricePerKWh}`, (groups.get(`${f.buyer}:${f.pricePerKWh}`) ?? 0n) + BigInt(f.energyWh));
      let grid = 0n;
      let p2p = 0n;
      for (const [k, wh] of groups) {
        grid += (wh * retail) / 1000n;
        p2p += (wh * BigInt(k.split(":")[1]!)) / 1000n;
      }
      const saved = grid - p2p;
      const res = await http({ url: `/v1/savings/community?period=${day}` });
      expect(res.status, res.text).to.equal(200);
      expect(res.json).to.deep.include({
        zone: null, trades: 3, kwhTraded: fills.reduce((s, f) => s + f.energyWh, 0) / 1000,
        gridCost: grid.toString(), p2pCost: p2p.toString(), savings: saved.toString(), savingsPct: Number((saved * 10_000n) / grid) / 100,
        participants: 2, avgSavingsPerParticipant: (saved / 2n).toString(), savingsEur: fixed(saved, 6, 2), currency: { symbol: "tEUR", decimals: 6 },
      });
      expect(res.json.period).to.deep.include({ label: day, timeZone: "Europe/Berlin" });
      const zoneB = await http({ url: `/v1/savings/community?period=${day}&zone=ZONE-B` });
      expect(zoneB.json).to.deep.include({ trades: 0, participants: 0, zone: "ZONE-B" });
      expect((await http({ url: `/v1/savings/community?period=${day}&zone=ZONE-Q` })).json).to.include({ status: 400, field: "zone" });
      expect((await http({ url: "/v1/savings/community?period=2026-13" })).json).to.include({ status: 400, field: "period" });
    });

    it("GET /v1/carbon: delivered solar only (the storage trade displaced nothing renewable)", async () => {
      const trades = (await http({ url: "/v1/trading/history", token: tokens.b })).json.trades as { role: string; source: number; energyWh: string; deliveredWh: string }[];
      const solarWh = trades.filter((x) => x.role === "buyer" && x.source === 1).reduce((s, x) => s + BigInt(Math.min(Number(x.deliveredWh), Number(x.energyWh))), 0n);
      expect(solarWh).to.equal(1_000n);
      const nanoKg = solarWh * 385_000n;
      const res = await http({ url: `/v1/carbon?period=${day}` });
      expect(res.status, res.text).to.equal(200);
      expect(res.json).to.deep.include({ kwhRenewable: Number(solarWh) / 1000, emissionFactorKgPerKwh: 0.385, co2AvoidedKg: Number(fixed(nanoKg, 9, 2)), co2AvoidedTonnes: Number(fixed(nanoKg, 12, 4)) });
      expect(res.json.period.label).to.equal(day);
      // The day before holds none of it.
      const before = new Date(Date.parse(`${day}T12:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
      expect((await http({ url: `/v1/carbon?period=${before}` })).json.kwhRenewable).to.equal(0);
    });

    it("GET /v1/compliance/report: analytics from the trades; metering counts once the windows are an hour past", async () => {
      const energy = fills.reduce((s, f) => s + BigInt(f.energyWh), 0n);
      const value = fills.reduce((s, f) => s + (BigInt(f.energyWh) * BigInt(f.pricePerKWh)) / 1000n, 0n);
      const notional = fills.reduce((s, f) => s + BigInt(f.energyWh) * BigInt(f.pricePerKWh), 0n);
      const url = `/v1/compliance/report?period=${day}&region=EU-DE`;
      const soon = await http({ url, token: tokens.operator });
      expect(soon.status, soon.text).to.equal(200);
      expect(soon.json.analytics).to.deep.equal({
        totalTrades: 3, totalKwh: Number(energy) / 1000, totalValue: value.toString(), totalValueEur: fixed(value, 6, 2),
        avgPricePerKwh: (notional / energy).toString(), avgPricePerKwhEur: fixed(notional / energy, 6, 4),
        disputes: { opened: 0, resolved: 0, open: 0 }, renewableKwh: 1, co2AvoidedKg: Number(fixed(1_000n * 385_000n, 9, 2)), currency: { symbol: "tEUR", decimals: 6 },
      });
      // Delivered minutes ago: not yet "completed" for the metering check.
      expect(soon.json.compliance).to.deep.include({ region: "EU-DE", meteredSharePct: null, compliant: true });

      const lastEnd = Math.max(...fills.map((f) => f.interval)) + 900;
      await moveTimeTo(lastEnd + 3_600 + 1);
      const later = await http({ url, token: tokens.operator });
      expect(later.json.compliance).to.deep.equal({
        region: "EU-DE", energySharing: true, metering: true, consumerProtection: true, gridCode: true, gridCodeName: "VDE-AR-N 4105",
        openDisputes: 0, overdueDisputes: 0, meteredSharePct: 100, minMeteredSharePct: 95, compliant: true, notes: [],
      });
      expect(later.json).to.deep.include({ region: "EU-DE", zone: null });
      expect(later.json.period).to.deep.include({ label: day });

      // A region declared non-compliant in the settings says so.
      const services = t.node.services as { config?: unknown };
      services.config = readNodeConfig({}, { compliance: { regions: { "EU-NL": { energySharingDirective: true, meteringCompliant: true, consumerProtection: true, gridCode: false } } } });
      try {
        const nl = await http({ url: `/v1/compliance/report?period=${day}&region=EU-NL`, token: tokens.operator });
        expect(nl.json.compliance).to.deep.include({ gridCode: false, compliant: false });
        expect(nl.json.compliance.notes.join(" ")).to.match(/grid code/);
        const unknown = await http({ url, token: tokens.operator });
        expect(unknown.status).to.equal(400);
        expect(unknown.json).to.include({ code: "invalid_request", field: "region" });
        expect(unknown.json.detail).to.match(/known: EU-NL/);
      } finally {
        delete services.config;
      }
    });

    it("GET /v1/compliance/report is for operators; bad queries name the field", async () => {
      const url = `/v1/compliance/report?period=${day}&region=EU-DE`;
      expect((await http({ url })).json).to.include({ status: 401, code: "unauthorized" });
      expect((await http({ url, token: tokens.outsider })).json).to.include({ status: 403, code: "operator_only" });
      expect((await http({ url: `/v1/compliance/report?period=${day}&region=US-NYISO`, token: tokens.operator })).json).to.include({ status: 400, field: "region" });
      expect((await http({ url: `/v1/compliance/report?region=EU-DE`, token: tokens.operator })).json).to.include({ status: 400, field: "period" });
      expect((await http({ url: `/v1/compliance/report?period=soon&region=EU-DE`, token: tokens.operator })).json).to.include({ status: 400, field: "period" });
    });
  });
});
