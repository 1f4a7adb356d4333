// Community view: energy traded inside the community, what members saved against buying from
// the grid, and the CO2 the traded renewable energy avoided, for today, this month and this
// quarter. It uses /v1/savings/community and /v1/carbon when the node serves them, else the
// indexer's period report (/v1/reports/:period, the community's days too) with savings worked out here
// against each zone's retail price.
import { api, hasPath } from "./api.js";
import { h, fill, unavailable } from "./dom.js";
import { kg, kwhNumber, localDay, money, pct } from "./format.js";
import { nodeNowSeconds, state } from "./state.js";

interface Savings { period: { label: string }; kwhTraded: number; p2pCost: string; gridCost: string; savings: string; savingsPct: number; participants: number; avgSavingsPerParticipant: string }
interface Carbon { period: { label: string }; kwhRenewable: number; co2AvoidedKg: number; treeYears: number }
interface Report { period: string; energyWh: string; energyKWh: string; value: string; trades: string; co2: { avoidedKg: string; renewableDeliveredKWh: string }; zones: { zoneLabel: string | null; energyWh: string; value: string }[] }

interface Figures { label: string; kwh: number; trades?: number; gridCost: bigint; p2pCost: bigint; savings: bigint; savingsPct: number; participants?: number; co2Kg: number | null; treeYears?: number; source: string }

const PERIODS = [
  { key: "today", title: "Today" },
  { key: "month", title: "This month" },
  { key: "quarter", title: "This quarter" },
] as const;

function reportPeriod(key: (typeof PERIODS)[number]["key"]): string {
  const day = localDay(nodeNowSeconds());
  if (key === "today") return day;
  if (key === "month") return day.slice(0, 7);
  return `${day.slice(0, 4)}-Q${Math.floor((Number(day.slice(5, 7)) - 1) / 3) + 1}`;
}

export function mountCommunity(root: HTMLElement): { show(): void } {
  const cards = h("div", { class: "period-cards", id: "community-cards" });
  const note = h("p", { class: "note", id: "community-note" });
  fill(root, h("h2", {}, "Community"), cards, note);

  async function figures(key: (typeof PERIODS)[number]["key"], savingsRoute: boolean, carbonRoute: boolean): Promise<Figures> {
    const carbon = carbonRoute ? await api<Carbon>(`/v1/carbon?period=${key}`) : undefined;
    if (savingsRoute) {
      const s = await api<Savings>(`/v1/savings/community?period=${key}`);
      return {
        label: s.period.label, kwh: s.kwhTraded, gridCost: BigInt(s.gridCost), p2pCost: BigInt(s.p2pCost), savings: BigInt(s.savings), savingsPct: s.savingsPct, participants: s.participants,
        co2Kg: carbon ? carbon.co2AvoidedKg : null, ...(carbon ? { treeYears: carbon.treeYears } : {}), source: "/v1/savings/community",
      };
    }
    const period = reportPeriod(key);
    const r = await api<Report>(`/v1/reports/${period}`);
    let gridCost = 0n;
    for (const z of r.zones) {
      const retail = BigInt(state.chain.markets.find((m) => m.zone === z.zoneLabel)?.retailPrice ?? state.chain.markets[0]!.retailPrice);
      gridCost += (BigInt(z.energyWh) * retail) / 1000n;
    }
    const p2pCost = BigInt(r.value);
    const savings = gridCost - p2pCost;
    return {
      label: period, kwh: Number(r.energyWh) / 1000, trades: Number(r.trades), gridCost, p2pCost, savings,
      savingsPct: gridCost > 0n ? Number((savings * 10_000n) / gridCost) / 100 : 0,
      co2Kg: carbon ? carbon.co2AvoidedKg : Number(r.co2.avoidedKg), ...(carbon ? { treeYears: carbon.treeYears } : { treeYears: Number(r.co2.avoidedKg) / 21.77 }), source: "/v1/reports",
    };
  }

  async function load() {
    const [savingsRoute, carbonRoute] = await Promise.all([hasPath("/v1/savings/community"), hasPath("/v1/carbon")]);
    const results = await Promise.allSettled(PERIODS.map((p) => figures(p.key, savingsRoute, carbonRoute)));
    fill(cards, PERIODS.map((p, i) => {
      const r = results[i]!;
      if (r.status === "rejected") return h("article", { class: "card period" }, h("h3", {}, p.title), unavailable(p.title, (r.reason as Error).message));
      const f = r.value;
      return h("article", { class: "card period", id: `period-${p.key}`, "aria-labelledby": `period-${p.key}-h` },
        h("h3", { id: `period-${p.key}-h` }, p.title, h("span", { class: "period-label" }, ` ${f.label}`)),
        h("dl", { class: "figures" },
          h("div", {}, h("dt", {}, "Traded"), h("dd", { "data-figure": "kwh" }, kwhNumber(f.kwh, 3))),
          f.trades !== undefined ? h("div", {}, h("dt", {}, "Trades"), h("dd", {}, String(f.trades))) : null,
          h("div", {}, h("dt", {}, "Paid peer to peer"), h("dd", {}, money(f.p2pCost))),
          h("div", {}, h("dt", {}, "At the grid price"), h("dd", {}, money(f.gridCost))),
          h("div", {}, h("dt", {}, "Saved"), h("dd", { "data-figure": "savings" }, `${money(f.savings)} (${pct(f.savingsPct)})`)),
          f.participants !== undefined ? h("div", {}, h("dt", {}, "Members trading"), h("dd", {}, String(f.participants))) : null,
          h("div", {}, h("dt", {}, "CO₂ avoided"), h("dd", { "data-figure": "co2" }, f.co2Kg === null ? "–" : `${kg(f.co2Kg)}${f.treeYears !== undefined ? ` ≈ ${f.treeYears.toFixed(1)} tree-years` : ""}`)),
        ));
    }));
    fill(note, savingsRoute
      ? "Savings against the grid retail price, from the node's community savings report."
      : "Savings worked out against each zone's retail price from the indexer's period reports; CO₂ from renewable energy delivered.");
    root.dataset.loaded = "1";
  }

  return { show: () => void load().catch((err) => fill(cards, unavailable("Community figures", (err as Error).message))) };
}
