// The dashboard in a real headless Chromium against a real node holding a small demo day: the
// page is built with Vite, the demo runs its community through the node and then keeps the node
// up (runDemo's beforeStop) while the browser checks the market view against the API, signs in
// with a test account, places and cancels orders, sees a crossing order fill it live over the
// WebSocket, and sees the trade's delivery once the meters report it (the simulated clock moves
// past the interval and its grace period). Every view is photographed on a desk and a 360 px
// phone into test-artifacts/dashboard/. Any console error or page error fails the test.
import { expect } from "chai";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Fastify from "fastify";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { createWalletClient, erc20Abi, http as viemHttp, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { runDemo, type RunDemoOptions } from "../../demo/runDemo.js";
import { connectMeterPublishers } from "../../demo/publishReadings.js";
import { testAccountDevicePassword } from "../../server/devices/deviceCredentials.js";
import type { SimClock } from "../../demo/simClock.js";
import { buildWeb } from "../../scripts/buildWeb.js";
import { handleApiError, problemSchema } from "../../server/problems.js";
import { webRoutes } from "../../server/routes/web.js";
import type { RunningNode } from "../../server/startNode.js";
import { approveMarket, fetchClient, signedOrder, signIn, waitFor, type ChainDescription, type Http } from "../server/helpers.js";

const ARTIFACTS = path.resolve("test-artifacts", "dashboard");
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 360, height: 740 };
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

type Running = { node: RunningNode; clock: SimClock };
/** The little of the DOM the page functions below touch (the test itself compiles without lib.dom). */
type Browserish = { document: { querySelector(s: string): { getAttribute(n: string): string | null } | null; documentElement: { scrollWidth: number; clientWidth: number } } };

/** A number shown on the page ("1,234.5000 tEUR/kWh" → 1234.5). */
const shown = (text: string | null) => Number((text ?? "").replace(/[^0-9.-]/g, ""));

describe("dashboard: serving without a build and off the local chain", () => {
  it("answers / with a 503 saying to build when web/dist is missing, and test accounts only on the local chain", async () => {
    const app = Fastify();
    app.decorate("node", { chain: { local: false }, testAccounts: [] } as never);
    app.addSchema(problemSchema);
    app.setErrorHandler(handleApiError);
    await app.register(webRoutes, { distDir: path.join(tmpdir(), "no-such-dashboard-build") });
    try {
      const root = await app.inject({ url: "/" });
      expect(root.statusCode).to.equal(503);
      expect(root.headers["content-type"]).to.match(/^text\/plain/);
      expect(root.body).to.contain("npm run build:web");
      const accounts = await app.inject({ url: "/v1/chain/test-accounts" });
      expect(accounts.statusCode).to.equal(404);
      expect(accounts.json()).to.include({ code: "not_found" });
    } finally {
      await app.close();
    }
  });
});

describe("dashboard: the page in a real browser against a node with a demo day", function () {
  this.timeout(240_000);
  let outDir: string;
  let running: Running;
  let demo: Promise<unknown>;
  let release!: () => void;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let http: Http;
  let chain: ChainDescription & { timeZone: string; token: { symbol: string; decimals: number }; intervalSeconds: number };
  const problems: string[] = [];
  // The interval the test trades in, its prices, and the accounts (both in ZONE-A).
  let intervalStart: number;
  let buyerKey: Hex;
  let sellerAddress: string;
  let restingBid: number;
  let askPrice: number;
  let sellOrderId: string;
  let demoDay: string;

  const watch = (p: Page, name: string) => {
    p.on("console", (m) => {
      if (m.type() === "error") problems.push(`${name} console: ${m.text()} (${m.location().url})`);
    });
    p.on("pageerror", (err) => problems.push(`${name} page error: ${err.message}`));
  };

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await buildWeb();
    outDir = mkdtempSync(path.join(tmpdir(), "dashboard-e2e-"));
    const released = new Promise<void>((resolve) => (release = resolve));
    // The demo test's day (20 homes, two midday hours, some under-deliverers so disputes open),
    // with test accounts on the chain; the node stays up until `after` releases it.
    running = await new Promise<Running>((resolve, reject) => {
      const options: RunDemoOptions = {
        households: 20, hours: 2, start: "11:00", date: "2026-06-21", seed: 4, outDir, dayKind: "clear", shares: { underDeliveringOfPv: 0.25 },
        underDelivererMarginBps: 1_500, httpConcurrency: 1, testAccounts: 4,
        beforeStop: async (r) => {
          resolve(r);
          await released;
        },
      };
      demo = runDemo(options);
      demo.catch(reject);
    });
    http = fetchClient(running.node.url);
    chain = (await http({ url: "/v1/chain" })).json;
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: DESKTOP });
    page = await context.newPage();
    watch(page, "desktop");
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    release?.();
    await demo?.catch(() => undefined);
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  const open = async (p: Page, view: string) => {
    await p.goto(`${running.node.url}/#${view}`);
    await p.waitForSelector("body[data-ready='1']");
  };
  const shot = (p: Page, name: string) => p.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  const nodeNow = () => Math.floor(running.node.services.clock() / 1000);
  const localDay = (unixSeconds: number) => new Intl.DateTimeFormat("en-CA", { timeZone: chain.timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(unixSeconds * 1000));

  it("serves the page at / and keeps the API's routes and 404s", async () => {
    const index = await http({ url: "/" });
    expect(index.status).to.equal(200);
    expect(index.text).to.contain("view-market");
    expect((await http({ url: "/healthz" })).status).to.be.oneOf([200, 503]);
    expect((await http({ url: "/docs/json" })).json.paths).to.have.property("/v1/chain/test-accounts");
    const missing = await http({ url: "/v1/no-such-route" });
    expect(missing.status).to.equal(404);
    expect(missing.json.code).to.equal("route_not_found");
    expect(chain.timeZone).to.be.a("string").and.not.equal("");
  });

  it("shows the market: the book, the day's price curve with the demo's trades, and the latest trades, as the API says", async () => {
    const [zoneA, sellerAccount, , buyerAccount] = [chain.markets[0]!, running.node.testAccounts[0]!, running.node.testAccounts[1]!, running.node.testAccounts[2]!];
    expect(sellerAccount.zone).to.equal(zoneA.zone);
    expect(buyerAccount.zone).to.equal(zoneA.zone);
    sellerAddress = sellerAccount.address;
    buyerKey = buyerAccount.privateKey;
    // A resting bid from the buyer in the interval after next: the book has something to show.
    intervalStart = (Math.floor((nodeNow() + 1_200) / 900) + 1) * 900;
    const markets = (await http({ url: `/v1/trading/markets?zone=${zoneA.zone}` })).json.markets as { intervalStart: number; referencePricePerKWh: number }[];
    const reference = markets.find((m) => m.intervalStart === intervalStart)!.referencePricePerKWh;
    restingBid = Math.max(zoneA.feedInTariff, reference - 40_000);
    askPrice = Math.min(zoneA.retailPrice, reference + 10_000);
    await approveMarket(running.node.rpcUrl, chain, buyerKey);
    const buyerToken = await signIn(http, running.node, buyerKey);
    const bid = await http({ method: "POST", url: "/v1/trading/orders", token: buyerToken, body: await signedOrder(chain, buyerKey, { side: 0, intervalStart, energyWh: 2_000, price: restingBid, expiry: intervalStart + 900 }) });
    expect(bid.status, bid.text).to.equal(201);

    await open(page, "market");
    await page.waitForSelector("#view-market[data-loaded='ZONE-A']");
    expect(await page.locator("#book-interval").inputValue()).to.equal(String(intervalStart));
    const book = (await http({ url: `/v1/trading/markets/${zoneA.zone}/${intervalStart}/book` })).json;
    const bidRows = page.locator("#book-bids tbody tr");
    expect(await bidRows.count()).to.equal(book.bids.length);
    for (let i = 0; i < book.bids.length; i++) {
      const cells = bidRows.nth(i).locator("td");
      expect(shown(await cells.nth(0).textContent())).to.equal(book.bids[i].pricePerKWh / 10 ** chain.token.decimals);
      expect(shown(await cells.nth(1).textContent())).to.equal(book.bids[i].energyWh / 1000);
    }
    expect(await page.locator("#book-asks tbody tr.empty").count()).to.equal(1);

    // The demo's day in the price chart: the same trades the indexer has for that day and zone.
    const latest = (await http({ url: `/v1/trades?zone=${zoneA.zone}&order=desc&limit=20` })).json.items as { tradeId: string; deliveryStart: string; pricePerKWh: string }[];
    expect(latest.length).to.be.greaterThan(0);
    demoDay = localDay(Number(latest[0]!.deliveryStart));
    await page.selectOption("#price-day", demoDay);
    await page.waitForSelector(`#price-chart[data-day='${demoDay}'] canvas`);
    const dayTrades = (await http({ url: `/v1/trades?zone=${zoneA.zone}&order=asc&limit=1000&from=${Number(latest.at(-1)!.deliveryStart) - 86_400}&to=${Number(latest[0]!.deliveryStart) + 86_400}` })).json.items as { tradeId: string; deliveryStart: string; pricePerKWh: string }[];
    const onDay = dayTrades.filter((t) => localDay(Number(t.deliveryStart)) === demoDay);
    expect(await page.locator("#price-chart").getAttribute("data-trades")).to.equal(String(onDay.length));
    const chartIds = await page.locator("#price-trades tbody tr td:first-child").allTextContents();
    expect(chartIds).to.deep.equal(onDay.map((t) => `#${t.tradeId}`));
    const chartPrices = (await page.locator("#price-trades tbody tr td:nth-child(4)").allTextContents()).map(shown);
    expect(chartPrices).to.deep.equal(onDay.map((t) => Number(t.pricePerKWh) / 10 ** chain.token.decimals));

    // The latest trades table: the indexer's newest trades of the zone, in order.
    const tableIds = await page.locator("#trades-table tbody tr td:first-child").allTextContents();
    expect(tableIds.slice(0, latest.length)).to.deep.equal(latest.map((t) => `#${t.tradeId}`));
    await shot(page, "market-desktop");
  });

  it("signs in with a test account, places an order that shows in the book, and cancels another", async () => {
    await page.click("#tab-wallet");
    await page.waitForSelector("#test-account");
    await page.selectOption("#test-account", "0");
    await page.click("#use-test-account");
    await page.click("#sign-in");
    await page.waitForSelector("#signed-in-as");
    expect(await page.locator("#signed-in-as").textContent()).to.contain(sellerAddress.slice(0, 6));

    // The allowance a buy needs: set from the page (a transaction the test account signs there).
    const allowanceOnChain = () => running.node.services.chain.publicClient.readContract({
      address: chain.contracts.PaymentToken, abi: erc20Abi, functionName: "allowance", args: [sellerAddress as Address, chain.contracts.EnergyMarket],
    });
    await page.waitForSelector("#allowance-amount");
    expect(await page.locator("#allowance-amount").getAttribute("data-base-units")).to.equal((await allowanceOnChain()).toString());
    await page.fill("#approve-amount", "50");
    await page.click("#approve-market");
    await page.waitForSelector(`#allowance-amount[data-base-units='${50n * 10n ** BigInt(chain.token.decimals)}']`);
    expect(await allowanceOnChain()).to.equal(50n * 10n ** BigInt(chain.token.decimals));
    expect(await page.locator("#allowance-amount").textContent()).to.contain("50.00");

    // An order to cancel: a sell far above the other.
    const place = async (priceBase: number, kwh: string) => {
      await page.selectOption("#order-zone", "ZONE-A");
      await page.waitForSelector(`#order-interval option[value='${intervalStart}']`, { state: "attached" });
      await page.selectOption("#order-interval", String(intervalStart));
      await page.selectOption("#order-side", "1");
      await page.fill("#order-kwh", kwh);
      await page.fill("#order-price", (priceBase / 10 ** chain.token.decimals).toFixed(chain.token.decimals));
      const before = (await page.locator("#order-placed").count()) > 0 ? await page.locator("#order-placed").getAttribute("data-order-id") : null;
      await page.click("#place-order");
      await page.waitForFunction((prev) => {
        const el = (globalThis as unknown as Browserish).document.querySelector("#order-placed");
        return el !== null && el.getAttribute("data-order-id") !== prev;
      }, before);
      return (await page.locator("#order-placed").getAttribute("data-order-id"))!;
    };
    const high = chain.markets[0]!.retailPrice;
    const cancelId = await place(high, "0.5");
    await page.waitForSelector(`#my-orders [data-cancel='${cancelId}']`);
    await page.click(`#my-orders [data-cancel='${cancelId}']`);
    await page.waitForSelector(`#my-orders span[data-order-id='${cancelId}']:text("cancelled")`);
    expect(running.node.engine.getOrder(cancelId as Hex)!.status).to.equal("cancelled");

    sellOrderId = await place(askPrice, "1.5");
    const order = running.node.engine.getOrder(sellOrderId as Hex)!;
    expect(order.status).to.equal("open");
    expect(order.accepted.order.maker).to.equal(sellerAddress);
    expect(order.sizeWh).to.equal(1_500);
    await shot(page, "wallet-desktop");

    await page.click("#tab-market");
    const book = (await http({ url: `/v1/trading/markets/ZONE-A/${intervalStart}/book` })).json;
    expect(book.asks).to.deep.equal([{ pricePerKWh: askPrice, energyWh: 1_500, orders: 1 }]);
    const ask = page.locator("#book-asks tbody tr").first().locator("td");
    await waitFor("the ask in the page's book", async () => (shown(await ask.nth(0).textContent()) === askPrice / 10 ** chain.token.decimals ? true : undefined), 10_000);
    expect(shown(await ask.nth(1).textContent())).to.equal(1.5);
    expect(await page.locator("#book-asks tbody tr").count()).to.equal(1);
  });

  it("shows the fill live when a crossing order matches, then the trade's delivery", async () => {
    const buyerToken = await signIn(http, running.node, buyerKey);
    const buy = await http({ method: "POST", url: "/v1/trading/orders", token: buyerToken, body: await signedOrder(chain, buyerKey, { side: 0, intervalStart, energyWh: 1_500, price: askPrice, expiry: intervalStart + 900 }) });
    expect(buy.status, buy.text).to.equal(201);
    expect(buy.json.filledWh).to.equal(1_500);
    // Live over the WebSocket: the new fill heads the trades table, at the ask's price.
    const first = page.locator("#trades-table tbody tr").first().locator("td");
    await waitFor("the live fill in the trades table", async () => (shown(await first.nth(3).textContent()) === askPrice / 10 ** chain.token.decimals ? true : undefined), 15_000);
    expect(shown(await first.nth(2).textContent())).to.equal(1.5);
    // The book, refreshed on the channel's book message: the ask is gone, the resting bid stays.
    await page.waitForSelector("#book-asks tbody tr.empty", { timeout: 10_000 });
    expect(shown(await page.locator("#book-bids tbody tr td").first().textContent())).to.equal(restingBid / 10 ** chain.token.decimals);

    // Settled on-chain and indexed: my fills and my deliveries show the trade as executed.
    const fill = await waitFor("the fill to settle on-chain", async () => {
      const f = running.node.engine.fillsOf(running.node.engine.getOrder(sellOrderId as Hex)!)[0];
      return f?.status === "executed" && f.tradeId !== undefined ? f : undefined;
    }, 60_000);
    const tradeId = fill.tradeId!.toString();
    await running.node.indexedBlock();
    // Today's curve: the open intervals' reference prices as the API gives them, and the new trade.
    const today = localDay(nodeNow());
    await page.selectOption("#price-day", demoDay);
    await page.waitForSelector(`#price-chart[data-day='${demoDay}']`);
    await page.selectOption("#price-day", today);
    await page.waitForSelector(`#price-chart[data-day='${today}'] canvas`);
    const openToday = ((await http({ url: "/v1/trading/markets?zone=ZONE-A" })).json.markets as { intervalStart: number; referencePricePerKWh: number }[]).filter((m) => localDay(m.intervalStart) === today);
    expect(await page.locator("#price-chart").getAttribute("data-trades")).to.equal("1");
    expect(shown(await page.locator("#price-trades tbody tr td:nth-child(4)").textContent())).to.equal(askPrice / 10 ** chain.token.decimals);
    const curve = (await page.locator("#price-curve tbody tr td:nth-child(2)").allTextContents()).map(shown);
    expect(curve).to.deep.equal(openToday.map((m) => m.referencePricePerKWh / 10 ** chain.token.decimals));
    await shot(page, "market-today-desktop");

    await page.click("#tab-wallet");
    await page.waitForSelector(`#my-trades span[data-trade-id='${tradeId}']:text("executed")`, { timeout: 20_000 });
    expect(await page.locator("#my-fills tbody tr").count()).to.equal(1);
    expect(await page.locator("#my-fills tbody tr td").nth(5).textContent()).to.equal("executed");

    // The interval passes; the meters report it (the seller exported what it sold, the buyer
    // imported it); after the bridge's grace period it confirms delivery on-chain.
    const end = intervalStart + 900;
    await running.clock.advanceTo(end + 240);
    // The two meters log in with their own credentials (the node issues the test accounts'
    // meters theirs) and sign with their own keys, as real meters do.
    const metered = [running.node.testAccounts[0]!, running.node.testAccounts[2]!];
    const meters = await connectMeterPublishers({
      url: running.node.mqttUrl, topicRoot: running.node.bridge.topicRoot, region: "wbg",
      logins: new Map(metered.map((a) => [a.meterId, { username: a.meterId, password: testAccountDevicePassword(a.privateKey) }])),
      keys: new Map(metered.map((a) => [a.meterId, a.meterKey])),
    });
    try {
      const reading = (meterId: string, exportWh: number, importWh: number) => ({
        meterId,
        interval: {
          meter_id: meterId, interval_start: new Date(intervalStart * 1000).toISOString(), interval_minutes: 15, export_kwh: exportWh / 1000, import_kwh: importWh / 1000,
          generation_kwh: exportWh / 1000, consumption_kwh: importWh / 1000, battery_charge_kwh: 0, battery_discharge_kwh: 0,
        },
        export: { meter_id: meterId, timestamp: new Date(end * 1000).toISOString(), value: 0, unit: "Wh" as const },
        import: { meter_id: meterId, timestamp: new Date(end * 1000).toISOString(), value: 0, unit: "Wh" as const },
      });
      const accepted = running.node.bridge.metrics().accepted;
      await meters.publish([reading(running.node.testAccounts[0]!.meterId, 1_500, 0), reading(running.node.testAccounts[2]!.meterId, 0, 1_500)], ["interval"]);
      await waitFor("the bridge to take the readings", async () => (running.node.bridge.metrics().accepted >= accepted + 2 ? true : undefined), 20_000, 20);
    } finally {
      await meters.close();
    }
    await running.clock.advanceTo(end + 301);
    const delivered = await waitFor("the delivery report to be indexed", async () => {
      await running.node.bridge.tick();
      await running.node.indexedBlock();
      const t = (await http({ url: `/v1/trades/${tradeId}` })).json.trade;
      return t.status !== "executed" ? t : undefined;
    }, 60_000, 250);
    expect(delivered.status).to.be.oneOf(["delivered", "settled"]);
    expect(delivered.delivery.deliveredWh).to.equal("1500");
    await page.waitForSelector(`#my-trades span[data-trade-id='${tradeId}']:text("${delivered.status}")`, { timeout: 20_000 });
    await shot(page, "wallet-desktop");

    // The deliveries view counts states as the indexer does.
    await page.click("#tab-deliveries");
    await page.waitForSelector("#view-deliveries[data-loaded='1']");
    const all = (await http({ url: "/v1/trades?limit=1000" })).json.items as { status: string; tradeId: string; dispute: unknown }[];
    for (const s of ["executed", "delivered", "disputed", "settled", "refunded"]) {
      await waitFor(`the ${s} count`, async () => (Number(await page.locator(`#count-${s} .count-n`).textContent()) === all.filter((t) => t.status === s).length ? true : undefined), 20_000);
    }
    const disputed = all.filter((t) => t.dispute !== null);
    expect(disputed.length).to.be.greaterThan(0);
    expect(await page.locator("#dispute-table tbody tr").count()).to.equal(disputed.length);
    expect(await page.locator(`#delivery-table tbody tr td:first-child:text-is("#${tradeId}")`).count()).to.equal(1);
    // The row links the trade's lifecycle (with its transactions) and re-verifies it on the chain.
    const row = page.locator("#delivery-table tbody tr", { has: page.locator(`td:first-child:text-is("#${tradeId}")`) });
    expect(await row.locator("code").getAttribute("title")).to.equal(fill.txHash);
    expect(await row.locator("a").getAttribute("href")).to.equal(`/v1/trades/${tradeId}`);
    await row.getByRole("button", { name: `Verify trade ${tradeId} against the chain` }).click();
    await row.locator(".verify:text('matches the chain')").waitFor({ timeout: 15_000 });
    await shot(page, "deliveries-desktop");
  });

  it("shows the grid and community views, with API figures or not-available states", async () => {
    // The operator sets up a VPP and optimises it: the page stacks its dispatch by resource type.
    const operator = await signIn(http, running.node, running.node.operatorKey!);
    const vpp = await http({
      method: "POST", url: "/v1/vpp", token: operator,
      body: {
        id: "VPP-DASH", name: "Dashboard street", zone: "ZONE-A",
        resources: [
          { id: "PV-ROOFS", type: "solar", capacityKw: 30, availability: [0.9, 0.8, 0.7, 0.5, 0.3, 0.1, 0, 0] },
          { id: "BAT-1", type: "storage", capacityKw: 10, energyCapacityKwh: 20, soc: 0.6 },
          { id: "GRID", type: "grid", capacityKw: 100, costPerKWh: 0.3, exportCapacityKw: 50, exportPricePerKWh: 0.08 },
        ],
      },
    });
    expect(vpp.status, vpp.text).to.equal(201);
    const run = await http({ method: "POST", url: "/v1/vpp/VPP-DASH/optimize", token: operator, body: { demand: [20, 22, 25, 28, 30, 26, 22, 18] } });
    expect(run.json.status, run.text).to.equal("completed");
    await page.click("#tab-grid");
    await page.waitForSelector("#view-grid[data-loaded='1']");
    await page.waitForSelector("#vpp section[aria-label='VPP Dashboard street'] canvas");
    expect(await page.locator("#vpp").textContent()).to.contain(`last run #${run.json.runId} completed`);
    const legend = await page.locator("#vpp .u-legend").textContent();
    const supplying = new Set((run.json.allocation as { type: string; outputs: number[] }[]).filter((a) => a.outputs.some((x) => x > 0)).map((a) => a.type));
    expect(supplying.size).to.be.greaterThan(1);
    const names: Record<string, string> = { grid: "grid import", storage: "battery discharge", solar: "solar" };
    for (const type of supplying) expect(legend).to.contain(`${names[type] ?? type} (kW)`);
    expect(await page.locator("#soc-table").textContent()).to.contain("60 %");
    const paths = (await http({ url: "/docs/json" })).json.paths as Record<string, unknown>;
    if (!paths["/v1/grid/balance"]) expect(await page.locator("#grid-balance .unavailable").count()).to.equal(1);
    else {
      // The page asks for the 24 hours around the node's now, as here.
      const from = Math.floor((nodeNow() - 12 * 3600) / 900) * 900;
      const balance = (await http({ url: `/v1/grid/balance?zone=ZONE-A&from=${from}&to=${from + 86_400}` })).json.intervals as { supplyKwh: number }[];
      const rows = page.locator("#balance-table tbody tr:not(.empty)");
      expect(await rows.count()).to.equal(balance.length);
      for (let i = 0; i < balance.length; i++) expect(shown(await rows.nth(i).locator("td").nth(1).textContent())).to.be.below(balance[i]!.supplyKwh + 0.006).and.above(balance[i]!.supplyKwh - 0.006);
    }
    if (!paths["/v1/orchestrator/actions"]) expect(await page.locator("#orchestrator-actions .unavailable").count()).to.equal(1);
    else {
      const actions = (await http({ url: "/v1/orchestrator/actions?limit=30&zone=ZONE-A" })).json.actions as unknown[];
      expect(await page.locator("#actions-table tbody tr:not(.empty)").count()).to.equal(actions.length);
    }
    await shot(page, "grid-desktop");

    await page.click("#tab-community");
    await page.waitForSelector("#view-community[data-loaded='1']");
    const month = localDay(nodeNow()).slice(0, 7);
    if (!paths["/v1/savings/community"]) {
      const report = (await http({ url: `/v1/reports/${month}` })).json;
      expect(shown(await page.locator("#period-month [data-figure='kwh']").textContent())).to.equal(Number(report.energyKWh));
      expect(Number(report.energyKWh)).to.be.greaterThan(0);
    } else {
      const s = (await http({ url: "/v1/savings/community?period=month" })).json;
      const kwh = shown(await page.locator("#period-month [data-figure='kwh']").textContent());
      expect(Math.abs(kwh - s.kwhTraded), `${kwh} shown, ${s.kwhTraded} reported`).to.be.below(0.001);
      expect(s.kwhTraded).to.be.greaterThan(0);
    }
    await shot(page, "community-desktop");
  });

  it("signs in and places an order through an injected EIP-1193 wallet (window.ethereum)", async () => {
    // A stand-in for a browser extension: the page's window.ethereum forwards each request to
    // this test, which answers as a wallet holding test account 3 (ZONE-B) would.
    const holder = running.node.testAccounts[3]!;
    const account = privateKeyToAccount(holder.privateKey);
    const walletPage = await context.newPage();
    watch(walletPage, "injected");
    const requests: string[] = [];
    await walletPage.exposeFunction("eip1193Request", async (method: string, params: unknown[]) => {
      requests.push(method);
      switch (method) {
        case "eth_requestAccounts":
        case "eth_accounts":
          return [account.address];
        case "eth_chainId":
          return `0x${chain.chainId.toString(16)}`;
        case "personal_sign":
          return account.signMessage({ message: { raw: params[0] as Hex } });
        case "eth_signTypedData_v4": {
          const typed = JSON.parse(params[1] as string) as { domain: Record<string, unknown>; types: Record<string, { name: string; type: string }[]>; primaryType: string; message: Record<string, unknown> };
          const { EIP712Domain: _domain, ...types } = typed.types;
          const message = Object.fromEntries(Object.entries(typed.message).map(([k, v]) => [k, /^u?int/.test(types[typed.primaryType]!.find((f) => f.name === k)!.type) ? BigInt(v as string) : v]));
          return account.signTypedData({ domain: typed.domain, types, primaryType: typed.primaryType, message } as never);
        }
        case "eth_sendTransaction": {
          const tx = params[0] as { to: Address; data?: Hex; value?: Hex; gas?: Hex };
          const sender = createWalletClient({ account, chain: running.node.services.chain.publicClient.chain!, transport: viemHttp(running.node.rpcUrl) });
          return sender.sendTransaction({ to: tx.to, ...(tx.data ? { data: tx.data } : {}), ...(tx.value ? { value: BigInt(tx.value) } : {}) } as never);
        }
        default: {
          // Reads and receipts go to the chain, as an extension's own node connection would.
          if (!/^(eth_call|eth_blockNumber|eth_getTransactionReceipt|eth_getBlockByNumber|eth_estimateGas|eth_getTransactionCount|eth_gasPrice|eth_feeHistory|eth_maxPriorityFeePerGas)$/.test(method)) {
            throw new Error(`the test wallet does not do ${method}`);
          }
          const res = await fetch(running.node.rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
          const body = (await res.json()) as { result?: unknown; error?: { message: string } };
          if (body.error) throw new Error(body.error.message);
          return body.result;
        }
      }
    });
    // As text: the test's compiler would wrap a function with helpers the page does not have.
    await walletPage.addInitScript({ content: "window.ethereum = { request: ({ method, params }) => window.eip1193Request(method, params ?? []), on() {}, removeListener() {} };" });
    await open(walletPage, "wallet");
    await walletPage.click("#connect-injected");
    await walletPage.waitForSelector("#wallet-status:has-text('browser wallet')");
    await walletPage.click("#sign-in");
    await walletPage.waitForSelector("#signed-in-as");
    expect(await walletPage.locator("#signed-in-as").textContent()).to.contain(account.address.slice(0, 6));
    await walletPage.selectOption("#order-zone", holder.zone);
    const start = (Math.floor((nodeNow() + 1_200) / 900) + 1) * 900;
    await walletPage.waitForSelector(`#order-interval option[value='${start}']`, { state: "attached" });
    await walletPage.selectOption("#order-interval", String(start));
    await walletPage.selectOption("#order-side", "1");
    await walletPage.fill("#order-kwh", "0.75");
    await walletPage.click("#place-order");
    await walletPage.waitForSelector("#order-placed");
    const orderId = (await walletPage.locator("#order-placed").getAttribute("data-order-id")) as Hex;
    const order = running.node.engine.getOrder(orderId)!;
    expect(order.accepted.order.maker).to.equal(account.address);
    expect(order.sizeWh).to.equal(750);
    expect(order.status).to.equal("open");
    expect(requests).to.include.members(["eth_requestAccounts", "personal_sign", "eth_signTypedData_v4"]);
    // The allowance through the wallet: it sends the approve transaction itself.
    await walletPage.waitForSelector("#allowance-amount");
    await walletPage.fill("#approve-amount", "25");
    await walletPage.click("#approve-market");
    const want = 25n * 10n ** BigInt(chain.token.decimals);
    await walletPage.waitForSelector(`#allowance-amount[data-base-units='${want}']`);
    expect(await running.node.services.chain.publicClient.readContract({ address: chain.contracts.PaymentToken, abi: erc20Abi, functionName: "allowance", args: [account.address, chain.contracts.EnergyMarket] })).to.equal(want);
    expect(requests).to.include("eth_sendTransaction");
    await walletPage.close();
  });

  it("reads on a 360 px phone: every view fits the screen", async () => {
    const phone = await context.newPage();
    watch(phone, "phone");
    await phone.setViewportSize(PHONE);
    for (const view of ["market", "deliveries", "grid", "community", "wallet"]) {
      await open(phone, view);
      await phone.waitForSelector(`#view-${view}:not([hidden])`);
      if (view === "wallet") {
        await phone.waitForSelector("#test-account");
        await phone.selectOption("#test-account", "0");
        await phone.click("#use-test-account");
        await phone.click("#sign-in");
        await phone.waitForSelector("#signed-in-as");
        await phone.waitForSelector("#my-orders tbody tr:not(.empty)");
      } else if (view !== "grid") {
        await phone.waitForSelector(`#view-${view}[data-loaded]`);
      }
      await phone.waitForLoadState("networkidle").catch(() => undefined);
      // Nothing wider than the screen but the tables' own scrolling boxes.
      const overflow = await phone.evaluate(() => {
        const root = (globalThis as unknown as Browserish).document.documentElement;
        return root.scrollWidth - root.clientWidth;
      });
      expect(overflow, `${view} overflows by ${overflow}px`).to.be.at.most(0);
      await shot(phone, `${view}-phone`);
    }
    await phone.close();
  });

  it("logged no console error and no page error", () => {
    expect(problems).to.deep.equal([]);
  });
});
