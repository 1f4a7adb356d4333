// Market view: per zone, the order book of an open interval, the day's dynamic price curve with
// the corridor (feed-in floor, retail ceiling) and the prices actually traded, and the latest
// trades, live from `trading.market.{zone}`.
import { api, indexedTrades, type BookJson, type IndexedTrade, type MarketJson } from "./api.js";
import { palette, stepped, timeChart, type Chart } from "./charts.js";
import { h, fill, table, unavailable } from "./dom.js";
import { clockTime, dayBounds, interval, kwh, localDay, money, price, priceValue, shortHash, units } from "./format.js";
import { subscribe } from "./realtime.js";
import { emit, marketOf, noteNodeNow, nodeNowSeconds, on, state } from "./state.js";

interface LiveTrade {
  key: string;
  tradeId?: string;
  intervalStart: number;
  energyWh: number | string;
  pricePerKWh: number | string;
  amount: string;
  status: string;
  txHash?: string;
  live: boolean;
}

export function mountMarket(root: HTMLElement): { show(): void } {
  const zoneButtons = h("div", { class: "zones", role: "group", "aria-label": "Grid zone" });
  const intervalSelect = h("select", { id: "book-interval", name: "interval" });
  const bookSummary = h("p", { id: "book-summary", class: "summary", "aria-live": "polite" });
  const bookTables = h("div", { class: "book", id: "book" });
  const daySelect = h("select", { id: "price-day", name: "day" });
  const chartBox = h("div", { class: "chart", id: "price-chart" });
  const chartData = h("div", { id: "price-data" });
  const tradesBox = h("div", { id: "recent-trades" });
  const liveBadge = h("span", { class: "badge", id: "live-badge" }, "live");

  fill(root,
    h("h2", {}, "Market"),
    zoneButtons,
    h("div", { class: "cols" },
      h("article", { class: "card", "aria-labelledby": "book-h" },
        h("h3", { id: "book-h" }, "Order book"),
        h("label", { for: "book-interval" }, "Delivery interval "), intervalSelect,
        bookSummary, bookTables),
      h("article", { class: "card", "aria-labelledby": "price-h" },
        h("h3", { id: "price-h" }, "Dynamic price and trades"),
        h("label", { for: "price-day" }, "Day "), daySelect,
        chartBox,
        h("details", {}, h("summary", {}, "The chart's numbers"), chartData)),
    ),
    h("article", { class: "card", "aria-labelledby": "trades-h" },
      h("h3", { id: "trades-h" }, "Recent trades ", liveBadge),
      tradesBox),
  );

  let markets: MarketJson[] = [];
  let chosenInterval: number | undefined;
  let chosenDay: string | undefined;
  let chart: Chart | undefined;
  let recent: LiveTrade[] = [];
  let unsubscribe: (() => void) | undefined;
  let bookTimer: ReturnType<typeof setTimeout> | undefined;

  function renderZones() {
    fill(zoneButtons, state.chain.markets.map((m) =>
      h("button", {
        type: "button", class: "zone", "aria-pressed": String(m.zone === state.zone), "data-zone": m.zone,
        onclick: () => {
          if (state.zone === m.zone) return;
          state.zone = m.zone;
          chosenInterval = undefined;
          emit("zone");
        },
      }, `${m.zone} · ${m.mode === "call" ? "call auction" : "continuous"}`)));
  }

  async function loadMarkets() {
    const res = await api<{ now?: number; markets: MarketJson[] }>(`/v1/trading/markets?zone=${encodeURIComponent(state.zone)}&status=all`);
    noteNodeNow(res.now);
    markets = res.markets.filter((m) => m.zone === state.zone);
  }

  function renderIntervals() {
    const open = markets.filter((m) => m.status === "open");
    if (chosenInterval === undefined || !open.some((m) => m.intervalStart === chosenInterval)) {
      chosenInterval = (open.find((m) => m.bestBid !== null || m.bestAsk !== null) ?? open[0])?.intervalStart;
    }
    fill(intervalSelect, open.slice(0, 96).map((m) =>
      h("option", { value: m.intervalStart, selected: m.intervalStart === chosenInterval }, `${interval(m.intervalStart)}${m.bestBid !== null || m.bestAsk !== null ? " · orders" : ""}`)));
  }

  async function loadBook() {
    if (chosenInterval === undefined) {
      fill(bookSummary, "No open interval.");
      fill(bookTables);
      return;
    }
    const m = markets.find((x) => x.intervalStart === chosenInterval);
    const book = await api<BookJson>(`/v1/trading/markets/${encodeURIComponent(state.zone)}/${chosenInterval}/book?levels=20`);
    const spread = m?.bestBid != null && m?.bestAsk != null ? ` · spread ${price(m.bestAsk - m.bestBid)}` : "";
    fill(bookSummary,
      `${interval(book.intervalStart)} · ${book.status}`,
      m ? ` · gate closes ${clockTime(m.closesAt)} · reference ${price(m.referencePricePerKWh)}${spread}` : "",
      book.lastPrice !== null ? ` · last ${price(book.lastPrice)}` : "");
    bookTables.dataset.interval = String(book.intervalStart);
    const rows = (levels: BookJson["bids"]) => levels.map((l) => [price(l.pricePerKWh), kwh(l.energyWh), String(l.orders)]);
    fill(bookTables,
      table("Bids (buy)", ["Price", "Energy", "Orders"], rows(book.bids), { id: "book-bids", numeric: [0, 1, 2], empty: "No bids" }),
      table("Asks (sell)", ["Price", "Energy", "Orders"], rows(book.asks), { id: "book-asks", numeric: [0, 1, 2], empty: "No asks" }));
  }

  function renderDays() {
    const today = localDay(nodeNowSeconds());
    const days = new Set<string>([today, ...markets.map((m) => localDay(m.intervalStart))]);
    for (const t of recent) days.add(localDay(t.intervalStart));
    const sorted = [...days].sort();
    chosenDay ??= today;
    fill(daySelect, sorted.map((d) => h("option", { value: d, selected: d === chosenDay }, d === today ? `${d} (today)` : d)));
  }

  let chartSeq = 0;
  async function loadChart() {
    const seq = ++chartSeq;
    const day = chosenDay ?? localDay(nodeNowSeconds());
    const { from, to } = dayBounds(day);
    const market = marketOf(state.zone)!;
    const { items } = await indexedTrades({ zone: state.zone, from: String(from), to: String(to) }, 2_000);
    // A later choice (another day, another zone) was made while this one loaded: it wins.
    if (seq !== chartSeq) return;
    // The reference price is the engine's dynamic price under today's conditions: it means
    // something for intervals still open (what the market will price them at), not for closed
    // ones, whose conditions are gone. Closed intervals show what was actually traded instead.
    const curve = markets.filter((m) => m.status === "open" && m.intervalStart >= from && m.intervalStart < to).sort((a, b) => a.intervalStart - b.intervalStart);
    // One x axis for both: each interval's start for the curve (held until the next start),
    // each trade in the middle of its interval (a second apart, so two trades never share an x).
    const trades = [...items].sort((a, b) => Number(a.deliveryStart) - Number(b.deliveryStart) || Number(a.tradeId) - Number(b.tradeId));
    const points = new Map<number, { ref?: number; trade?: number }>();
    for (const m of curve) points.set(m.intervalStart, { ref: priceValue(m.referencePricePerKWh) });
    let previous = -1;
    for (const t of trades) {
      let x = Number(t.deliveryStart) + 450;
      if (x <= previous) x = previous + 1;
      previous = x;
      points.set(x, { ...points.get(x), trade: priceValue(t.pricePerKWh) });
    }
    // The curve's last step runs to the end of the day.
    if (curve.length > 0) points.set(Math.min(to, curve[curve.length - 1]!.intervalStart + 900), { ...points.get(to), ref: priceValue(curve[curve.length - 1]!.referencePricePerKWh) });
    // Midnight to midnight always has points, so the corridor spans the whole day.
    for (const x of [from, to]) if (!points.has(x)) points.set(x, {});
    const xs = [...points.keys()].sort((a, b) => a - b);
    // The curve is a step function: every x inside an interval carries that interval's price,
    // so the line runs through the trades' x values instead of breaking at each of them.
    const refAt = new Map(curve.map((m) => [m.intervalStart, priceValue(m.referencePricePerKWh)]));
    const data: (number | null)[][] = [
      xs,
      xs.map((x) => points.get(x)!.ref ?? refAt.get(Math.floor(x / 900) * 900) ?? null),
      xs.map((x) => points.get(x)!.trade ?? null),
      xs.map(() => priceValue(market.feedInTariff)),
      xs.map(() => priceValue(market.retailPrice)),
    ];
    const label = `Price per kWh in ${state.zone} on ${day}: reference curve, ${trades.length} trades, corridor ${price(market.feedInTariff)} to ${price(market.retailPrice)}`;
    chart?.destroy();
    chart = timeChart(chartBox, {
      label, yLabel: `${units.symbol}/kWh`,
      // The whole community day, midnight to midnight, whatever the data covers.
      scales: { x: { time: true, range: () => [from, to] } },
      series: [
        { label: "Reference price", stroke: palette[0], width: 2, paths: stepped, spanGaps: false, points: { show: false } },
        { label: "Trades", stroke: palette[1], paths: () => null, points: { show: true, size: 7, fill: palette[1] } },
        { label: "Feed-in floor", stroke: palette[2], dash: [6, 4], width: 1, points: { show: false } },
        { label: "Retail ceiling", stroke: palette[3], dash: [6, 4], width: 1, points: { show: false } },
      ],
    }, data as never);
    chartBox.dataset.trades = String(trades.length);
    chartBox.dataset.day = day;
    fill(chartData,
      table(`Trades in ${state.zone} delivered on ${day}`, ["Trade", "Interval", "Energy", "Price"],
        trades.map((t) => [`#${t.tradeId}`, interval(t.deliveryStart), kwh(t.energyWh), price(t.pricePerKWh)]), { id: "price-trades", numeric: [2, 3], empty: "No trades that day" }),
      table(`Reference (dynamic) price of the open intervals in ${state.zone} on ${day}`, ["Interval", "Reference price"], curve.map((m) => [interval(m.intervalStart), price(m.referencePricePerKWh)]), { id: "price-curve", numeric: [1], empty: "No open interval that day" }));
  }

  async function loadRecent() {
    const res = await api<{ items: IndexedTrade[] }>(`/v1/trades?zone=${encodeURIComponent(state.zone)}&order=desc&limit=20`);
    const live = recent.filter((t) => t.live && !res.items.some((i) => i.tradeId === t.tradeId));
    recent = [...live, ...res.items.map((t) => ({
      key: `t${t.tradeId}`, tradeId: t.tradeId, intervalStart: Number(t.deliveryStart), energyWh: t.energyWh, pricePerKWh: t.pricePerKWh, amount: t.amount, status: t.status, txHash: t.executed.txHash, live: false,
    }))].slice(0, 30);
    renderRecent();
  }

  function renderRecent() {
    fill(tradesBox, table(`Latest trades in ${state.zone}`, ["Trade", "Interval", "Energy", "Price", "Amount", "State", "Transaction"],
      recent.map((t) => [
        t.tradeId ? h("a", { href: `/v1/trades/${t.tradeId}`, "aria-label": `Trade ${t.tradeId} lifecycle` }, `#${t.tradeId}`) : t.live ? "new fill" : "–",
        interval(t.intervalStart), kwh(t.energyWh), price(t.pricePerKWh), money(t.amount),
        h("span", { class: `state state-${t.status}` }, t.status), t.txHash ? h("code", { title: t.txHash }, shortHash(t.txHash)) : "pending",
      ]), { id: "trades-table", numeric: [2, 3, 4], empty: "No trades yet" }));
  }

  function onRealtime(type: string, data: any) {
    if (type === "book") {
      // Coalesce bursts (a call auction clearing moves many levels at once).
      clearTimeout(bookTimer);
      bookTimer = setTimeout(() => void refreshBook().catch(report), 150);
    } else if (type === "trade" || type === "tradeUpdate") {
      const key = `f${data.fillId}`;
      const existing = recent.find((t) => t.key === key || (data.tradeId && t.tradeId === data.tradeId));
      const row: LiveTrade = {
        key, intervalStart: data.intervalStart, energyWh: data.energyWh, pricePerKWh: data.pricePerKWh, amount: data.amount,
        status: data.status === "executed" ? "executed" : data.status, live: true, ...(data.tradeId ? { tradeId: data.tradeId } : {}), ...(data.txHash ? { txHash: data.txHash } : {}),
      };
      if (existing) Object.assign(existing, row);
      else recent.unshift(row);
      recent = recent.slice(0, 30);
      renderRecent();
      liveBadge.classList.add("pulse");
      setTimeout(() => liveBadge.classList.remove("pulse"), 800);
    }
  }

  async function refreshBook() {
    await loadMarkets();
    renderIntervals();
    await loadBook();
  }

  function report(err: unknown) {
    fill(bookSummary, unavailable("Market data", (err as Error).message));
  }

  async function refreshAll() {
    renderZones();
    await loadMarkets();
    renderIntervals();
    renderDays();
    await Promise.all([loadBook(), loadRecent()]);
    renderDays();
    await loadChart();
    root.dataset.loaded = state.zone;
  }

  function resubscribe() {
    unsubscribe?.();
    unsubscribe = subscribe(`trading.market.${state.zone}`, onRealtime);
  }

  intervalSelect.addEventListener("change", () => {
    chosenInterval = Number(intervalSelect.value);
    void loadBook().catch(report);
  });
  daySelect.addEventListener("change", () => {
    chosenDay = daySelect.value;
    void loadChart().catch(report);
  });
  on("zone", () => {
    recent = [];
    resubscribe();
    root.dataset.loaded = "";
    void refreshAll().catch(report);
  });
  on("orders", () => void refreshBook().catch(report));

  resubscribe();
  let started = false;
  return {
    show() {
      if (!started) {
        started = true;
        void refreshAll().catch(report);
        // An operator's screen: the list of intervals and the curve move on with the clock.
        setInterval(() => void refreshAll().catch(report), 30_000);
      } else if (chart) chart.plot.setSize({ width: Math.max(280, chartBox.clientWidth), height: 260 });
    },
  };
}

