// The node's escrow keeper as a panel: escrows past their deadline that the keeper is closing
// (finalising a dispute, reclaiming for the buyer), the next deadlines, and what it closed
// lately with the transaction. Read from GET /v1/keeper/actions, public; a node that runs no
// keeper (or does not serve the route) shows "not available".
import { api, hasPath, type KeeperActionJson, type KeeperActionsJson } from "./api.js";
import { fill, h, table, unavailable } from "./dom.js";
import { dateTime, shortAddress, shortHash } from "./format.js";

const ACTION: Record<KeeperActionJson["action"], string> = { finalize: "finalise dispute", reclaim: "refund buyer" };
const REASON: Record<KeeperActionJson["reason"], string> = {
  dispute_window_ended: "proposal uncontested",
  arbitration_timeout: "arbiter silent: meter's word",
  confirmation_deadline: "no meter report",
};
const STATE: Record<KeeperActionJson["state"], string> = {
  scheduled: "scheduled", due: "due", pending: "queued", in_flight: "sent", done: "done", failed: "failed",
};

function txCell(hash: string | null) {
  return hash ? h("code", { title: hash }, shortHash(hash)) : "–";
}

function rows(list: KeeperActionJson[], when: (a: KeeperActionJson) => string) {
  return list.map((a) => [
    h("a", { href: `/v1/trades/${a.tradeId}`, "aria-label": `Lifecycle of trade ${a.tradeId}` }, `#${a.tradeId}`),
    `${ACTION[a.action]} (${REASON[a.reason]})`,
    h("code", { title: a.buyer }, shortAddress(a.buyer)),
    when(a),
    h("span", { class: `keeper-state keeper-${a.state}`, title: a.lastError ?? "" }, a.outcome ? `${STATE[a.state]}: ${a.outcome.replace("_", " ")}` : STATE[a.state]),
    txCell(a.txHash),
  ]);
}

/** Mounts the panel into `root`; load() reads the route again. */
export function mountKeeperActions(root: HTMLElement): { load(): Promise<void> } {
  const summary = h("p", { class: "summary", id: "keeper-summary", "aria-live": "polite" });
  const pendingBox = h("div", { id: "keeper-pending" });
  const scheduledBox = h("div", { id: "keeper-scheduled" });
  const recentBox = h("div", { id: "keeper-recent" });
  fill(root, h("h3", { id: "keeper-h" }, "Escrows closing themselves"), summary, pendingBox, scheduledBox, recentBox);

  return {
    async load() {
      if (!(await hasPath("/v1/keeper/actions"))) {
        fill(summary, unavailable("Keeper", "this node does not serve /v1/keeper/actions"));
        return;
      }
      let view: KeeperActionsJson;
      try {
        view = await api<KeeperActionsJson>("/v1/keeper/actions?limit=25");
      } catch (err) {
        fill(summary, unavailable("Keeper", (err as Error).message));
        return;
      }
      fill(summary,
        "The node's keeper ", h("code", { title: view.keeper.address }, shortAddress(view.keeper.address)),
        ` closes what the market lets anyone close once chain time passes a deadline; the money goes to the trade's parties. Chain time ${view.chainTime ? dateTime(view.chainTime) : "–"}`,
        view.keeper.lastError ? ` · last tick failed: ${view.keeper.lastError}` : "", ".");
      fill(pendingBox, table("Due now", ["Trade", "Action", "Buyer", "Due", "State", "Transaction"], rows(view.pending, (a) => dateTime(a.dueAt)), { id: "keeper-pending-table", empty: "Nothing due" }));
      fill(scheduledBox, table("Next deadlines", ["Trade", "Action", "Buyer", "Due", "State", "Transaction"], rows(view.scheduled, (a) => dateTime(a.dueAt)), { id: "keeper-scheduled-table", empty: "No escrow waits for a deadline" }));
      fill(recentBox, table("Closed lately", ["Trade", "Action", "Buyer", "Closed", "State", "Transaction"], rows(view.recent, (a) => (a.closedAt ? dateTime(a.closedAt) : "–")), { id: "keeper-recent-table", empty: "Nothing closed yet" }));
      root.dataset.loaded = "1";
    },
  };
}
