// The dashboard's entry: reads the node's chain description (markets, token, time zone), then
// shows one view at a time by the URL's hash (#market, #deliveries, #grid, #community,
// #wallet), so a screen can be left open on any of them.
import "./style.css";
import { api, type ChainJson } from "./api.js";
import { mountCommunity } from "./community.js";
import { mountDeliveries } from "./deliveries.js";
import { byId, fill, unavailable } from "./dom.js";
import { units } from "./format.js";
import { mountGrid } from "./grid.js";
import { mountMarket } from "./market.js";
import { onConnection } from "./realtime.js";
import { mountWallet } from "./wallet.js";
import { state } from "./state.js";

const VIEWS = ["market", "deliveries", "grid", "community", "wallet"] as const;
type View = (typeof VIEWS)[number];

async function start() {
  const status = byId("node-status");
  let chain: ChainJson;
  try {
    chain = await api<ChainJson>("/v1/chain");
  } catch (err) {
    fill(status, unavailable("Node", `could not read /v1/chain: ${(err as Error).message}`));
    return;
  }
  state.chain = chain;
  state.zone = chain.markets[0]?.zone ?? "";
  units.symbol = chain.token.symbol;
  units.decimals = chain.token.decimals;
  units.timeZone = chain.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
  fill(byId("tz"), units.timeZone);
  const describe = (live: boolean) => `Chain ${chain.chainId}${chain.local ? " (local)" : ""} · ${chain.markets.length} zones · ${units.timeZone} · ${live ? "live" : "reconnecting…"}`;
  fill(status, describe(false));
  onConnection((live) => fill(status, describe(live)));

  const views: Record<View, { show(): void }> = {
    market: mountMarket(byId("view-market")),
    deliveries: mountDeliveries(byId("view-deliveries")),
    grid: mountGrid(byId("view-grid")),
    community: mountCommunity(byId("view-community")),
    wallet: mountWallet(byId("view-wallet")),
  };

  const route = () => {
    const wanted = location.hash.slice(1) as View;
    const view: View = VIEWS.includes(wanted) ? wanted : "market";
    for (const v of VIEWS) {
      const panel = byId(`view-${v}`);
      panel.hidden = v !== view;
      const tab = byId(`tab-${v}`);
      tab.setAttribute("aria-selected", String(v === view));
      if (v === view) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    }
    document.title = `${byId(`tab-${view}`).textContent} · Community energy market`;
    views[view].show();
  };
  window.addEventListener("hashchange", route);
  route();
  document.body.dataset.ready = "1";
}

void start();
