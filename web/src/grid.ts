// Grid view: supply and demand per interval with the balance state (the orchestrator's
// /v1/grid/balance), VPP dispatch stacked by resource type with its status and last run,
// batteries' states of charge, the orchestrator's latest actions (live on
// `orchestrator.actions`) and, signed in, the demand-response events. Parts the node does not
// serve show as "not available"; parts that need a session say so.
import { api, hasPath, session } from "./api.js";
import { palette, stepped, timeChart, type Chart } from "./charts.js";
import { h, fill, table, unavailable } from "./dom.js";
import { dateTime, interval, kwhNumber, pct } from "./format.js";
import { subscribe } from "./realtime.js";
import { nodeNowSeconds, on, state } from "./state.js";

interface BalanceInterval { intervalStart: number; supplyKwh: number; demandKwh: number; ratio: number | null; state: string; source: string }
interface OrchestratorAction {
  id: string; at: string; zone: string; intervalStart: number; state: string; kind: string; resourceId: string | null; energyKwh: number | null; reason: string;
}
interface Allocation { resourceId: string; type: string; output: number; outputs: number[]; socKwh?: number[] }
interface VppStatus {
  vppId: string; status: string;
  lastOptimization: null | { runId: number; status: string; horizon?: number; intervalMinutes?: number; allocation: Allocation[]; totalCost: number | null; renewableShare: number | null; createdAt: string; reason?: string };
  lastApply: null | { applyId: number; appliedAt: string; sent: number; skipped: number; failed: number };
}
interface VppDetail { id: string; name: string; zone: string; resources: { id: string; type: string; name?: string; energyCapacityKwh?: number; soc?: number }[] }

/** What a resource type's output means when it is positive (supply) and negative (draw). */
const SUPPLY_NAMES: Record<string, string> = { grid: "grid import", storage: "battery discharge", solar: "solar", wind: "wind" };
const DRAW_NAMES: Record<string, string> = { grid: "grid export", storage: "battery charge", flexibleLoad: "flexible load" };

export function mountGrid(root: HTMLElement): { show(): void } {
  const balanceBox = h("div", { id: "grid-balance" });
  const balanceChart = h("div", { class: "chart", id: "balance-chart" });
  const vppBox = h("div", { id: "vpp" });
  const socBox = h("div", { id: "battery-soc" });
  const actionsBox = h("div", { id: "orchestrator-actions" });
  const eventsBox = h("div", { id: "dr-events" });
  fill(root,
    h("h2", {}, "Grid"),
    h("div", { class: "cols" },
      h("article", { class: "card", "aria-labelledby": "balance-h" }, h("h3", { id: "balance-h" }, "Supply, demand and balance"), balanceChart, balanceBox),
      h("article", { class: "card", "aria-labelledby": "vpp-h" }, h("h3", { id: "vpp-h" }, "VPP dispatch"), vppBox)),
    h("div", { class: "cols" },
      h("article", { class: "card", "aria-labelledby": "soc-h" }, h("h3", { id: "soc-h" }, "Batteries"), socBox),
      h("article", { class: "card", "aria-labelledby": "dr-h" }, h("h3", { id: "dr-h" }, "Demand-response events"), eventsBox)),
    h("article", { class: "card", "aria-labelledby": "actions-h" }, h("h3", { id: "actions-h" }, "Orchestrator actions"), actionsBox),
  );

  const charts: Chart[] = [];
  let actions: OrchestratorAction[] = [];
  let actionsLive = false;

  async function loadBalance() {
    if (!(await hasPath("/v1/grid/balance"))) {
      fill(balanceBox, unavailable("Grid balance", "this node does not serve /v1/grid/balance (no orchestrator)."));
      balanceChart.hidden = true;
      return;
    }
    const now = nodeNowSeconds();
    const from = Math.floor((now - 12 * 3600) / 900) * 900;
    const res = await api<{ zone: string; intervals: BalanceInterval[] }>(`/v1/grid/balance?zone=${encodeURIComponent(state.zone)}&from=${from}&to=${from + 24 * 3600}`);
    const rows = res.intervals;
    balanceChart.hidden = rows.length === 0;
    if (rows.length > 0) {
      const xs = rows.map((r) => r.intervalStart);
      charts.push(timeChart(balanceChart, {
        label: `Supply and demand per interval in ${res.zone}`, yLabel: "kWh",
        // The 24 hours asked for, however few intervals have figures.
        scales: { x: { time: true, range: () => [from, from + 24 * 3600] } },
        series: [
          { label: "Supply", stroke: palette[2], width: 2, paths: stepped, points: { show: rows.length < 4, size: 7 } },
          { label: "Demand", stroke: palette[1], width: 2, paths: stepped, points: { show: rows.length < 4, size: 7 } },
        ],
      }, [xs, rows.map((r) => r.supplyKwh), rows.map((r) => r.demandKwh)]));
    }
    const latest = rows.filter((r) => r.intervalStart <= now).at(-1);
    fill(balanceBox,
      latest ? h("p", { class: "summary" }, "Now: ", h("span", { class: `state balance-${latest.state}` }, latest.state.replace("_", " ")), ` (supply/demand ${latest.ratio === null ? "–" : latest.ratio.toFixed(2)})`) : null,
      h("details", {}, h("summary", {}, "Per interval"),
        table(`Balance in ${res.zone}`, ["Interval", "Supply", "Demand", "Ratio", "State", "Source"],
          rows.map((r) => [interval(r.intervalStart), kwhNumber(r.supplyKwh), kwhNumber(r.demandKwh), r.ratio === null ? "–" : r.ratio.toFixed(2), h("span", { class: `state balance-${r.state}` }, r.state), r.source]),
          { id: "balance-table", numeric: [1, 2, 3], empty: "No intervals" })));
  }

  async function loadVpp() {
    if (!session.token) {
      fill(vppBox, h("p", { class: "note" }, "Sign in (My wallet) to see the VPPs' dispatch."));
      fill(socBox, h("p", { class: "note" }, "Sign in as the operator to see the batteries' states of charge."));
      return;
    }
    fill(socBox, h("p", { class: "note" }, "No battery has reported a state of charge."));
    const { vpps } = await api<{ vpps: { id: string; name: string; zone: string }[] }>("/v1/vpp", { auth: true });
    if (vpps.length === 0) {
      fill(vppBox, h("p", { class: "note" }, "No VPP is set up on this node."));
    } else {
      const blocks: HTMLElement[] = [];
      const socRows: (string | HTMLElement)[][] = [];
      for (const v of vpps.slice(0, 6)) {
        const [status, detail] = await Promise.all([api<VppStatus>(`/v1/vpp/${encodeURIComponent(v.id)}/status`, { auth: true }), api<VppDetail>(`/v1/vpp/${encodeURIComponent(v.id)}`, { auth: true })]);
        const run = status.lastOptimization;
        const box = h("div", { class: "chart" });
        blocks.push(h("section", { class: "vpp", "aria-label": `VPP ${v.name}` },
          h("h4", {}, `${v.name} (${v.zone})`),
          h("p", { class: "summary" }, `Status ${status.status}`,
            run ? ` · last run #${run.runId} ${run.status} at ${dateTime(Date.parse(run.createdAt) / 1000)}${run.renewableShare !== null ? ` · renewable ${pct(run.renewableShare * 100)}` : ""}` : " · never optimised",
            status.lastApply ? ` · applied ${dateTime(Date.parse(status.lastApply.appliedAt) / 1000)}: ${status.lastApply.sent} sent, ${status.lastApply.failed} failed` : ""),
          run?.status === "completed" && run.allocation.length > 0 ? box : run?.reason ? h("p", {}, run.reason) : null));
        if (run?.status === "completed" && run.allocation.length > 0) stackedDispatch(box, v.name, run);
        for (const r of detail.resources.filter((x) => x.type === "storage")) {
          const soc = r.soc ?? 0;
          socRows.push([r.name ?? r.id, v.name, socMeter(`${r.name ?? r.id}`, soc * 100), r.energyCapacityKwh ? kwhNumber(r.energyCapacityKwh * soc) : "–"]);
        }
      }
      fill(vppBox, blocks);
      if (socRows.length > 0) fill(socBox, table("Storage in the VPPs", ["Battery", "VPP", "State of charge", "Stored"], socRows, { id: "soc-table", numeric: [3] }));
    }
    if (await hasPath("/v1/resources")) {
      try {
        const res = await api<{ resources?: any[] } | any[]>("/v1/resources?type=battery", { auth: true });
        const list = (Array.isArray(res) ? res : res.resources ?? []).filter((r) => r.type === "battery");
        if (list.length > 0) {
          if (socBox.querySelector("table") === null) fill(socBox);
          socBox.append(table("Batteries (last report)", ["Battery", "Zone", "State of charge", "Capacity", "Reported"],
            list.map((r) => [r.resourceId, r.zone ?? "–", socMeter(r.resourceId, r.lastReport?.state?.socPct ?? null), r.capabilities?.capacityKwh ? kwhNumber(r.capabilities.capacityKwh) : "–",
              r.lastReport ? dateTime(r.lastReport.atMs / 1000) : "never"]), { id: "resource-soc-table" }));
        }
      } catch (err) {
        socBox.append(unavailable("Resources", (err as Error).message));
      }
    }
  }

  function stackedDispatch(box: HTMLElement, name: string, run: NonNullable<VppStatus["lastOptimization"]>) {
    const step = (run.intervalMinutes ?? 15) * 60;
    const start = Math.floor(Date.parse(run.createdAt) / 1000 / step) * step;
    const horizon = run.horizon ?? run.allocation[0]!.outputs.length;
    const xs = Array.from({ length: horizon }, (_, i) => start + i * step);
    const types = [...new Set(run.allocation.map((a) => a.type))];
    const perType = types.map((t) => xs.map((_, i) => run.allocation.filter((a) => a.type === t).reduce((s, a) => s + (a.outputs[i] ?? 0), 0)));
    // Stacked: supply (positive) upwards, charging/export/loads (negative) downwards; each band
    // is drawn as the running total, largest first, so the later (smaller) ones sit on top.
    // A type's draw (charging, export) keeps its colour, lighter and dashed, so the legend tells
    // "battery discharge" from "battery charge" at a glance.
    const bands: { label: string; values: number[]; color: string; draw: boolean }[] = [];
    const up = xs.map(() => 0);
    const down = xs.map(() => 0);
    types.forEach((t, k) => {
      const color = palette[k % palette.length]!;
      const pos = perType[k]!.map((v, i) => (up[i]! += Math.max(0, v)));
      const neg = perType[k]!.map((v, i) => (down[i]! += Math.min(0, v)));
      if (perType[k]!.some((v) => v > 0)) bands.push({ label: `${SUPPLY_NAMES[t] ?? t} (kW)`, values: [...pos], color, draw: false });
      if (perType[k]!.some((v) => v < 0)) bands.push({ label: `${DRAW_NAMES[t] ?? `${t} draw`} (kW)`, values: [...neg], color, draw: true });
    });
    const ups = bands.filter((b) => b.values.some((v) => v > 0)).reverse();
    const downs = bands.filter((b) => b.values.some((v) => v < 0)).reverse();
    const ordered = [...ups, ...downs];
    charts.push(timeChart(box, {
      label: `Dispatch of ${name} stacked by resource type, kW per interval`, yLabel: "kW",
      series: ordered.map((b) => ({ label: b.label, stroke: b.color, fill: `${b.color}${b.draw ? "55" : "cc"}`, ...(b.draw ? { dash: [6, 4] } : {}), paths: stepped, points: { show: false } })),
    }, [xs, ...ordered.map((b) => b.values)]));
  }

  function socMeter(name: string, socPct: number | null) {
    if (socPct === null) return "–";
    return h("span", { class: "soc" }, h("meter", { min: 0, max: 100, low: 20, high: 80, optimum: 60, value: socPct, "aria-label": `${name} state of charge` }), ` ${pct(socPct, 0)}`);
  }

  async function loadActions() {
    if (!(await hasPath("/v1/orchestrator/actions"))) {
      fill(actionsBox, unavailable("Orchestrator", "this node does not serve /v1/orchestrator/actions."));
      return;
    }
    const res = await api<{ actions: OrchestratorAction[] }>(`/v1/orchestrator/actions?limit=30&zone=${encodeURIComponent(state.zone)}`);
    actions = res.actions;
    renderActions();
    if (!actionsLive) {
      actionsLive = true;
      subscribe("orchestrator.actions", (type, data: OrchestratorAction) => {
        if (type !== "action" || data.zone !== state.zone) return;
        actions = [data, ...actions.filter((a) => a.id !== data.id)].slice(0, 30);
        renderActions();
      });
    }
  }

  function renderActions() {
    fill(actionsBox, table(`Latest actions in ${state.zone}`, ["At", "Interval", "State", "Action", "Resource", "Energy", "Why"],
      actions.map((a) => [dateTime(Date.parse(a.at) / 1000), interval(a.intervalStart), h("span", { class: `state balance-${a.state}` }, a.state), a.kind.replace(/_/g, " "),
        a.resourceId ?? "–", a.energyKwh === null ? "–" : kwhNumber(a.energyKwh), a.reason]), { id: "actions-table", numeric: [5], empty: "No actions yet" }));
  }

  async function loadEvents() {
    if (!(await hasPath("/v1/events"))) {
      fill(eventsBox, unavailable("Demand response", "this node does not serve /v1/events."));
      return;
    }
    if (!session.token) {
      fill(eventsBox, h("p", { class: "note" }, "Sign in (My wallet) to see the events for your resources (the operator sees all)."));
      return;
    }
    const res = await api<{ events: any[]; poll?: { nextPollAt: string } }>("/v1/events", { auth: true });
    fill(eventsBox, table("Events", ["Event", "Status", "Starts", "Duration", "Signal", "Targets", "Responses"],
      res.events.map((e) => [e.event_id, h("span", { class: `state event-${e.status}` }, e.status), dateTime(Date.parse(e.active_period?.dtstart) / 1000), e.active_period?.duration ?? "–",
        (e.event_signals ?? []).map((s: any) => `${s.signal_name} ${s.intervals?.map((i: any) => i.signal_payload).join("/") ?? ""}`).join("; "),
        (e.targets ?? []).map((t: Record<string, string>) => Object.values(t).join(" ")).join(", "),
        (e.responses ?? []).map((r: any) => `${r.resourceId}: ${r.response}`).join(", ") || "–"]), { id: "events-table", empty: "No events" }));
  }

  async function load() {
    for (const c of charts.splice(0)) c.destroy();
    const parts = [loadBalance(), loadVpp(), loadActions(), loadEvents()];
    const results = await Promise.allSettled(parts);
    const boxes = [balanceBox, vppBox, actionsBox, eventsBox];
    results.forEach((r, i) => {
      if (r.status === "rejected") fill(boxes[i]!, unavailable("This part", (r.reason as Error).message));
    });
    root.dataset.loaded = "1";
  }

  on("session", () => {
    if (!root.hidden) void load();
  });
  on("zone", () => {
    if (!root.hidden) void load();
  });
  return { show: () => void load() };
}
