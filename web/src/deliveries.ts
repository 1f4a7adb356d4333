// Deliveries view: the indexed trades by lifecycle state (executed → delivered / disputed →
// settled / refunded), the disputes with the meter evidence and their outcome, each trade's
// transactions, and the escrows the node's keeper closes at their deadlines (keeperActions.ts). A local chain has no block explorer: the hash is shown and linked to the
// indexer's lifecycle and verify routes, which re-read the chain.
import { api, indexedTrades, type IndexedTrade } from "./api.js";
import { h, fill, table, unavailable } from "./dom.js";
import { dateTime, interval, kwh, money, price, shortAddress, shortHash } from "./format.js";
import { mountKeeperActions } from "./keeperActions.js";

const STATES = ["executed", "delivered", "disputed", "settled", "refunded"] as const;
const STATE_HELP: Record<(typeof STATES)[number], string> = {
  executed: "paid into escrow, delivery not reported yet",
  delivered: "meter confirmed delivery",
  disputed: "delivered short: a pro-rata split is proposed",
  settled: "seller paid, escrow closed",
  refunded: "buyer got the payment back",
};

function txCell(hash: string | null | undefined, tradeId: string) {
  if (!hash) return "–";
  return h("span", { class: "tx" },
    h("code", { title: hash }, shortHash(hash)), " ",
    h("a", { href: `/v1/trades/${tradeId}`, "aria-label": `Lifecycle of trade ${tradeId} with its transactions` }, "lifecycle"));
}

export function mountDeliveries(root: HTMLElement): { show(): void } {
  const counts = h("div", { class: "counts", id: "delivery-counts" });
  const stateSelect = h("select", { id: "delivery-state", name: "state" },
    h("option", { value: "" }, "All states"), STATES.map((s) => h("option", { value: s }, s)));
  const tradesBox = h("div", { id: "delivery-trades" });
  const disputesBox = h("div", { id: "disputes" });
  const note = h("p", { class: "summary", "aria-live": "polite" });
  const keeperCard = h("article", { class: "card", id: "keeper-actions", "aria-labelledby": "keeper-h" });
  fill(root,
    h("h2", {}, "Deliveries"),
    h("article", { class: "card", "aria-labelledby": "counts-h" }, h("h3", { id: "counts-h" }, "Trades by state"), counts, note),
    h("article", { class: "card", "aria-labelledby": "dtrades-h" },
      h("h3", { id: "dtrades-h" }, "Trades"),
      h("label", { for: "delivery-state" }, "Show "), stateSelect, tradesBox),
    h("article", { class: "card", "aria-labelledby": "disputes-h" }, h("h3", { id: "disputes-h" }, "Disputes"), disputesBox),
    keeperCard,
  );
  const keeper = mountKeeperActions(keeperCard);

  let trades: IndexedTrade[] = [];
  let more = false;

  function renderCounts() {
    const by = new Map<string, number>();
    for (const t of trades) by.set(t.status, (by.get(t.status) ?? 0) + 1);
    fill(counts, STATES.map((s) =>
      h("div", { class: `count state-${s}`, id: `count-${s}` },
        h("span", { class: "count-n" }, String(by.get(s) ?? 0)), h("span", { class: "count-label" }, s), h("span", { class: "count-help" }, STATE_HELP[s]))));
    fill(note, more ? `Counts over the latest ${trades.length} trades.` : `${trades.length} trades indexed.`);
  }

  let limit = 25;
  function renderTrades() {
    const shown = stateSelect.value ? trades.filter((t) => t.status === stateSelect.value) : trades;
    const moreButton = shown.length > limit ? h("button", { type: "button", class: "secondary", id: "delivery-more" }, `Show more (${shown.length - limit} not shown)`) : null;
    moreButton?.addEventListener("click", () => {
      limit += 100;
      renderTrades();
    });
    fill(tradesBox);
    tradesBox.append(table("Trades, newest first", ["Trade", "Zone", "Interval", "Energy", "Delivered", "Price", "Amount", "State", "Executed in", "Check"],
      shown.slice(0, limit).map((t) => {
        const verify = h("button", { type: "button", class: "small", "aria-label": `Verify trade ${t.tradeId} against the chain` }, "Verify");
        const out = h("span", { class: "verify", "aria-live": "polite" });
        verify.addEventListener("click", async () => {
          verify.disabled = true;
          try {
            const r = await api<{ verified: boolean; checks: { name: string; ok: boolean }[] }>(`/v1/trades/${t.tradeId}/verify`);
            fill(out, r.verified ? " matches the chain" : ` differs: ${r.checks.filter((c) => !c.ok).map((c) => c.name).join(", ")}`);
          } catch (err) {
            fill(out, ` ${(err as Error).message}`);
          } finally {
            verify.disabled = false;
          }
        });
        return [
          `#${t.tradeId}`, t.zoneLabel ?? shortHash(t.zone), interval(t.deliveryStart), kwh(t.energyWh),
          t.delivery?.deliveredWh != null ? kwh(t.delivery.deliveredWh) : "–", price(t.pricePerKWh), money(t.amount),
          h("span", { class: `state state-${t.status}` }, t.status), txCell(t.executed.txHash, t.tradeId), h("span", {}, verify, out),
        ];
      }), { id: "delivery-table", numeric: [3, 4, 5, 6], empty: "No trades in this state" }));
    if (moreButton) tradesBox.append(moreButton);
  }

  function renderDisputes() {
    const disputed = trades.filter((t) => t.dispute !== null);
    fill(disputesBox, table("Disputes: meter evidence and outcome", ["Trade", "Seller", "Contracted", "Delivered (meter)", "Evidence", "Proposal to seller", "Outcome", "Transactions"],
      disputed.map((t) => {
        const d = t.dispute!;
        const outcome = d.sellerAmount !== null
          ? `resolved: seller ${money(d.sellerAmount)}, buyer ${money(d.buyerAmount ?? 0)}${d.resolvedBy ? ` (by ${shortAddress(d.resolvedBy)})` : ""}`
          : t.settlement
            ? `settled: seller ${money(t.settlement.sellerPayout ?? 0)}, buyer refund ${money(t.settlement.buyerRefund ?? 0)}`
            : `open until ${d.deadline ? dateTime(d.deadline) : "–"}`;
        return [
          `#${t.tradeId}`, h("code", { title: t.seller }, shortAddress(t.seller)), kwh(t.energyWh),
          t.delivery?.deliveredWh != null ? `${kwh(t.delivery.deliveredWh)}${t.delivery.withinTolerance === false ? " (short)" : ""}` : "–",
          t.delivery?.evidenceHash ? h("code", { title: t.delivery.evidenceHash }, shortHash(t.delivery.evidenceHash)) : "–",
          d.proposedSellerAmount !== null ? money(d.proposedSellerAmount) : "–", outcome,
          h("span", {}, "opened ", txCell(d.txHash, t.tradeId), d.resolvedTxHash ? [" · resolved ", h("code", { title: d.resolvedTxHash }, shortHash(d.resolvedTxHash))] : null),
        ];
      }), { id: "dispute-table", numeric: [2, 3, 5], empty: "No disputes" }));
  }

  async function load() {
    try {
      ({ items: trades, more } = await indexedTrades({}, 2_000));
      renderCounts();
      renderTrades();
      renderDisputes();
      await keeper.load();
      root.dataset.loaded = "1";
    } catch (err) {
      fill(counts, unavailable("Indexed trades", (err as Error).message));
    }
  }

  stateSelect.addEventListener("change", renderTrades);
  let timer: ReturnType<typeof setInterval> | undefined;
  return {
    show() {
      void load();
      timer ??= setInterval(() => {
        if (!root.hidden) void load();
      }, 15_000);
    },
  };
}
