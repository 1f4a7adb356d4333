// Who may have the community wallet (the aggregator) bid for an EV, and how much: POST
// /v1/ev/plans is for an EV resource of an active registered prosumer, asked by its owner (or
// an operator, on the owner's account), within the owner's limits (open plans, kWh in 24 hours)
// and the wallet's daily spending cap (worst case: energy x limit price). A refused plan places
// nothing. One node with small limits: 2 open plans and 30 kWh a day per owner, 10 tEUR a day.
import { expect } from "chai";
import type { Kysely } from "kysely";
import { injectClient, intervalAhead, randomKey, signIn, startTestNode, type Http, type TestNode } from "./helpers.js";

describe("EV plans: who may plan with the community wallet, and its limits", function () {
  this.timeout(180_000);
  let t: TestNode;
  let http: Http;
  /** testAccounts[0..2]: registered prosumers; a stranger: signed in, never registered. */
  let tokens: { a: string; b: string; c: string; stranger: string; operator: string };
  let base: number;

  /** The aggregator's orders in the engine: what a refused plan must not change. */
  const aggregatorOrders = () => [...t.node.engine.state.orders.values()].filter((o) => o.accepted.order.maker === t.node.services.aggregator!.address).length;
  const plansStored = async () => (await (t.node.services.indexer.db as unknown as Kysely<any>).selectFrom("orchestrator_ev_plans").select("id").execute()).length;
  /** A plan over 8 intervals at 0.09 EUR/kWh, 22 kW: up to 44 kWh, all of it under any cap used here. */
  const plan = (token: string, resourceId: string, kwhNeeded: number, maxPrice: number) => http({
    method: "POST", url: "/v1/ev/plans", token,
    body: {
      resourceId, zone: "ZONE-A", kwhNeeded, maxPrice, chargerKw: 22,
      arrival: new Date(base * 1000).toISOString(), departure: new Date((base + 8 * 900) * 1000).toISOString(),
      prices: Array.from({ length: 8 }, (_, i) => ({ intervalStart: base + i * 900, price: 0.09 })),
    },
  });

  before(async () => {
    t = await startTestNode({ EV_PLAN_MAX_OPEN_PER_OWNER: "2", EV_PLAN_MAX_KWH_PER_DAY: "30", AGGREGATOR_MAX_SPEND_PER_DAY: "10" });
    http = injectClient(t.node.app);
    const accounts = t.node.testAccounts;
    tokens = {
      a: await signIn(http, t.node, accounts[0]!.privateKey),
      b: await signIn(http, t.node, accounts[1]!.privateKey),
      c: await signIn(http, t.node, accounts[2]!.privateKey),
      stranger: await signIn(http, t.node, randomKey()),
      operator: await signIn(http, t.node, t.node.operatorKey!),
    };
    for (const [token, resourceId, type] of [[tokens.a, "ev-a", "ev"], [tokens.b, "ev-b", "ev"], [tokens.c, "ev-c", "ev"], [tokens.stranger, "ev-stranger", "ev"], [tokens.a, "battery-a", "battery"]] as const) {
      const res = await http({ method: "POST", url: "/v1/resources", token, body: { resourceId, type, capabilities: {} } });
      expect(res.status, res.text).to.equal(201);
    }
    base = intervalAhead(Math.floor(Date.now() / 1000), 1_800);
  });

  after(async () => {
    await t?.close();
  });

  it("an unregistered wallet's EV: 403 prosumer_only, and the community wallet bids nothing", async () => {
    const orders = aggregatorOrders();
    const res = await plan(tokens.stranger, "ev-stranger", 10, 0.35);
    expect(res.status, res.text).to.equal(403);
    expect(res.json).to.include({ code: "prosumer_only", field: "resourceId" });
    expect(res.json.detail).to.include("not a registered prosumer");
    expect(aggregatorOrders()).to.equal(orders);
    expect(await plansStored()).to.equal(0);
  });

  it("a plan names the caller's own EV: without one 400, someone else's 403, an unknown one 404, not an EV 400", async () => {
    const orders = aggregatorOrders();
    const { resourceId: _omit, ...withoutResource } = (await planBody());
    const missing = await http({ method: "POST", url: "/v1/ev/plans", token: tokens.a, body: withoutResource });
    expect(missing.status).to.equal(400);
    expect(missing.json).to.include({ code: "invalid_request", field: "resourceId" });
    const theirs = await plan(tokens.a, "ev-b", 1, 0.1);
    expect(theirs.status).to.equal(403);
    expect(theirs.json).to.include({ code: "not_resource_owner", field: "resourceId" });
    expect((await plan(tokens.a, "ev-nobody", 1, 0.1)).json).to.include({ status: 404, code: "resource_not_found", field: "resourceId" });
    expect((await plan(tokens.a, "battery-a", 1, 0.1)).json).to.include({ status: 400, field: "resourceId" });
    expect(aggregatorOrders()).to.equal(orders);

    async function planBody() {
      return { resourceId: "ev-a", zone: "ZONE-A", kwhNeeded: 1, maxPrice: 0.1, chargerKw: 22, arrival: new Date(base * 1000).toISOString(), departure: new Date((base + 8 * 900) * 1000).toISOString() };
    }
  });

  it("per owner: at most 2 open plans (an operator planning for the owner counts too) and 30 kWh in 24 hours; 422 ev_plan_limit naming the setting", async () => {
    // A: two plans of 10 kWh at a 0.10 cap (1 tEUR each at worst).
    for (let i = 0; i < 2; i++) {
      const res = await plan(tokens.a, "ev-a", 10, 0.1);
      expect(res.status, res.text).to.equal(201);
      expect(res.json).to.include({ status: "feasible", owner: t.node.testAccounts[0]!.address });
      expect(res.json.orders.every((o: { outcome: string }) => o.outcome === "done")).to.equal(true);
    }
    const orders = aggregatorOrders();
    const third = await plan(tokens.a, "ev-a", 1, 0.1);
    expect(third.status).to.equal(422);
    expect(third.json).to.include({ code: "ev_plan_limit", field: "resourceId" });
    expect(third.json.detail).to.match(/has 2 EV charging plans before their departure.*limit is 2 plans \(EV_PLAN_MAX_OPEN_PER_OWNER\)/);
    // An operator may plan for any owner's EV, on that owner's account: the same limit holds.
    const forA = await plan(tokens.operator, "ev-a", 1, 0.1);
    expect(forA.json).to.include({ status: 422, code: "ev_plan_limit" });
    expect(aggregatorOrders()).to.equal(orders);

    // B: 25 kWh, then 10 more would make 35 of 30.
    expect((await plan(tokens.b, "ev-b", 25, 0.1)).status).to.equal(201);
    const tooMuch = await plan(tokens.b, "ev-b", 10, 0.1);
    expect(tooMuch.status).to.equal(422);
    expect(tooMuch.json).to.include({ code: "ev_plan_limit", field: "kwhNeeded" });
    expect(tooMuch.json.detail).to.match(/asked for 25 kWh; 10 kWh more.*limit is 30 kWh in 24 hours \(EV_PLAN_MAX_KWH_PER_DAY\)/);
    expect((await plan(tokens.b, "ev-b", 5, 0.1)).status).to.equal(201);
  });

  it("the community wallet's cap: orders whose worst case (energy x limit price) would pass 10 tEUR in 24 hours are refused with nothing placed; a re-plan counts what its cancelled orders give back", async () => {
    // Committed so far: A 2 x 1 + B 2.5 + 0.5 = 5 tEUR. C asks 20 kWh at the 0.35 ceiling: 7 more.
    const orders = aggregatorOrders();
    const stored = await plansStored();
    const over = await plan(tokens.c, "ev-c", 20, 0.35);
    expect(over.status, over.text).to.equal(422);
    expect(over.json).to.include({ code: "aggregator_spend_limit", field: "kwhNeeded" });
    expect(over.json.detail).to.equal(
      "the plan's orders could cost the community wallet up to 7 tEUR (energy x limit price), and its EV plans have committed 5 tEUR in the last 24 hours: " +
      "together over its cap of 10 tEUR a day; nothing was placed (AGGREGATOR_MAX_SPEND_PER_DAY)",
    );
    expect(aggregatorOrders()).to.equal(orders);
    expect(await plansStored()).to.equal(stored);

    // 14 kWh at 0.35 is 4.9: 9.9 of 10.
    const fits = await plan(tokens.c, "ev-c", 14, 0.35);
    expect(fits.status, fits.text).to.equal(201);
    expect(fits.json.orders.every((o: { outcome: string }) => o.outcome === "done")).to.equal(true);
    // Re-planned on other prices: its 4.9 are cancelled before 4.9 are placed again, so it fits.
    // The intervals it chose become the dearest: it moves to others.
    const chosen = new Set(fits.json.slots.map((x: { intervalStart: number }) => x.intervalStart));
    const cheaper = Array.from({ length: 8 }, (_, i) => ({ intervalStart: base + i * 900, price: chosen.has(base + i * 900) ? 0.2 : 0.09 }));
    const replanned = await http({ method: "POST", url: `/v1/ev/plans/${fits.json.id}/replan`, token: tokens.c, body: { prices: cheaper } });
    expect(replanned.status, replanned.text).to.equal(200);
    expect(replanned.json.orders.filter((o: { outcome: string }) => o.outcome === "cancelled").length).to.be.greaterThan(0);
    // Anything more is over the cap, also for an operator.
    const more = await plan(tokens.operator, "ev-c", 1, 0.35);
    expect(more.json).to.include({ status: 422, code: "aggregator_spend_limit" });
  });
});
