// The node's REST API from the page: JSON in and out, problem+json turned into an Error that
// carries the node's detail. Routes other parts of the node may not offer (yet) are looked up
// in the OpenAPI document first: a request that 404s shows as an error in the browser console,
// a missing path in /docs/json is just a "not available" state.
export class ApiProblem extends Error {
  constructor(readonly status: number, readonly code: string, detail: string, readonly field?: string) {
    super(detail);
  }
}

let token: string | null = sessionStorage.getItem("energy.token");
const tokenListeners = new Set<() => void>();

export const session = {
  get token() {
    return token;
  },
  set(next: string | null) {
    token = next;
    if (next) sessionStorage.setItem("energy.token", next);
    else sessionStorage.removeItem("energy.token");
    for (const f of tokenListeners) f();
  },
  onChange(f: () => void) {
    tokenListeners.add(f);
  },
};

export async function api<T = any>(path: string, init: { method?: string; body?: unknown; auth?: boolean } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (init.body !== undefined) headers["content-type"] = "application/json";
  if (init.auth && token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, {
    method: init.method ?? "GET", headers,
    ...(init.body !== undefined ? { body: JSON.stringify(init.body, (_k, v) => (typeof v === "bigint" ? v.toString() : v)) } : {}),
  });
  const text = await res.text();
  const json = text && /json/.test(res.headers.get("content-type") ?? "") ? JSON.parse(text) : undefined;
  if (!res.ok) {
    if (res.status === 401 && init.auth) session.set(null);
    throw new ApiProblem(res.status, json?.code ?? "http_error", json?.detail ?? `${res.status} ${res.statusText}`, json?.field);
  }
  return json as T;
}

let paths: Promise<Set<string>> | undefined;

/** The API paths this node serves, from its OpenAPI document (templated: /v1/trades/{tradeId}). */
export function apiPaths(): Promise<Set<string>> {
  paths ??= api<{ paths?: Record<string, unknown> }>("/docs/json").then((doc) => new Set(Object.keys(doc.paths ?? {}))).catch(() => new Set<string>());
  return paths;
}

export async function hasPath(path: string): Promise<boolean> {
  return (await apiPaths()).has(path);
}

// ---- shapes the page reads (subsets of the routes' schemas)

export interface ChainJson {
  chainId: number;
  rpcUrl: string;
  local: boolean;
  contracts: { EnergyMarket: string; ProsumerRegistry: string; PaymentToken: string };
  token: { address: string; symbol: string; decimals: number };
  eip712: { domain: Record<string, unknown>; primaryType: string; types: Record<string, { name: string; type: string }[]> };
  intervalSeconds: number;
  timeZone?: string;
  sources: Record<string, number>;
  markets: { zone: string; zoneId: string; mode: string; feedInTariff: number; retailPrice: number; basePrice: number; gateClosureMinutes: number; capacityKWh: number | null }[];
}

export interface MarketJson {
  zone: string;
  zoneId: string;
  intervalStart: number;
  intervalEnd: number;
  mode: string;
  status: "open" | "closed";
  closesAt: number;
  bestBid: number | null;
  bestAsk: number | null;
  lastPrice: number | null;
  referencePricePerKWh: number;
  feedInTariff: number;
  retailPrice: number;
}

export interface Level { pricePerKWh: number; energyWh: number; orders: number }
export interface BookJson { zone: string; intervalStart: number; status: string; lastPrice: number | null; bids: Level[]; asks: Level[] }

export interface IndexedTrade {
  tradeId: string;
  seller: string;
  buyer: string;
  zone: string;
  zoneLabel: string | null;
  energyWh: string;
  pricePerKWh: string;
  amount: string;
  deliveryStart: string;
  deliveryEnd: string;
  source: string;
  status: "executed" | "delivered" | "disputed" | "settled" | "refunded";
  chainStatus: string;
  executed: { txHash: string; blockNumber: string; time: string | null };
  delivery: { deliveredWh: string | null; withinTolerance: boolean | null; evidenceHash: string | null; txHash: string } | null;
  dispute: {
    openedBy: string | null; reasonHash: string | null; proposedSellerAmount: string | null; deadline: string | null; txHash: string;
    resolvedBy: string | null; sellerAmount: string | null; buyerAmount: string | null; resolvedTxHash: string | null;
  } | null;
  settlement: { sellerPayout: string | null; buyerRefund: string | null; txHash: string } | null;
}

/** GET /v1/keeper/actions (server/routes/keeper.ts). */
export interface KeeperActionJson {
  tradeId: string;
  action: "finalize" | "reclaim";
  reason: "dispute_window_ended" | "arbitration_timeout" | "confirmation_deadline";
  dueAt: string;
  state: "scheduled" | "due" | "pending" | "in_flight" | "done" | "failed";
  outcome: "closed" | "already_closed" | "superseded" | "rejected" | null;
  txHash: string | null;
  lastError: string | null;
  buyer: string;
  seller: string;
  closedAt: string | null;
}
export interface KeeperActionsJson {
  chainTime: string | null;
  keeper: { address: string; running: boolean; lastError: string | null };
  pending: KeeperActionJson[];
  scheduled: KeeperActionJson[];
  recent: KeeperActionJson[];
}

export interface FillJson { fillId: number; side: "buy" | "sell"; counterparty?: string; energyWh: number; pricePerKWh: number; amount: string; status: string; tradeId?: string; txHash?: string; reason?: string }
export interface OrderRecordJson {
  orderId: string; maker: string; side: "buy" | "sell"; zone: string; intervalStart: number; kind?: string; status: string; reason?: string;
  sizeWh: number; filledWh: number; limitPricePerKWh: number; fills: FillJson[];
}
export interface HistoryTrade {
  tradeId: string; role: "buyer" | "seller"; buyer: string; seller: string; zone: string; energyWh: string; pricePerKWh: string; amount: string;
  deliveryStart: number; deliveryEnd: number; status: string; deliveredWh: string | null; txHash: string;
}

/** All indexed trades matching `query`, newest first, up to `max` (pages of 1,000). */
export async function indexedTrades(query: Record<string, string>, max = 2_000): Promise<{ items: IndexedTrade[]; more: boolean }> {
  const items: IndexedTrade[] = [];
  let cursor: string | null = null;
  do {
    const q = new URLSearchParams({ ...query, order: "desc", limit: String(Math.min(1_000, max - items.length)) });
    if (cursor) q.set("cursor", cursor);
    const page: { items: IndexedTrade[]; nextCursor: string | null } = await api(`/v1/trades?${q}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && items.length < max);
  return { items, more: cursor !== null };
}
