// My wallet: connect an injected EIP-1193 wallet (window.ethereum) or, on the embedded chain,
// pick one of its test accounts (a local viem account in the page); sign in with SIWE; place
// orders signed as EIP-712 in the wallet with the domain and types GET /v1/chain gives; cancel
// them; see my fills, deliveries and savings.
import { createPublicClient, createWalletClient, custom, defineChain, erc20Abi, getAddress, http, parseUnits, type Address, type Chain, type EIP1193Provider, type Hex, type PublicClient, type WalletClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { createSiweMessage } from "viem/siwe";
import { api, session, type HistoryTrade, type MarketJson, type OrderRecordJson } from "./api.js";
import { h, fill, table, unavailable } from "./dom.js";
import { dateTime, interval, kwh, money, price, priceNumber, shortAddress, shortHash, units } from "./format.js";
import { subscribe } from "./realtime.js";
import { emit, marketOf, noteNodeNow, on, state } from "./state.js";

interface Signer {
  address: Address;
  label: string;
  signMessage(message: string): Promise<Hex>;
  signTypedData(args: { domain: any; types: any; primaryType: string; message: Record<string, unknown> }): Promise<Hex>;
  /** The market's allowance over my tEUR (a buy settles only within it), and setting it. */
  allowance(): Promise<bigint>;
  approve(amount: bigint): Promise<Hex>;
}
interface TestAccountJson { address: Address; privateKey: Hex; meterId: string; zone: string }

declare global {
  interface Window {
    ethereum?: EIP1193Provider;
  }
}

function communityChain(): Chain {
  return defineChain({
    id: state.chain.chainId, name: state.chain.local ? "Community chain (local)" : "Community chain",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [state.chain.rpcUrl] } },
  });
}

/** Allowance read and approve, through whichever client reaches the chain (the node's RPC, or the wallet's). */
function allowanceOf(reader: PublicClient, wallet: WalletClient, owner: Address): Pick<Signer, "allowance" | "approve"> {
  const token = state.chain.contracts.PaymentToken as Address;
  const market = state.chain.contracts.EnergyMarket as Address;
  return {
    allowance: () => reader.readContract({ address: token, abi: erc20Abi, functionName: "allowance", args: [owner, market] }),
    async approve(amount) {
      const hash = await wallet.writeContract({ account: wallet.account ?? owner, chain: reader.chain, address: token, abi: erc20Abi, functionName: "approve", args: [market, amount] });
      const receipt = await reader.waitForTransactionReceipt({ hash });
      if (receipt.status !== "success") throw new Error(`the approval ${hash} reverted`);
      return hash;
    },
  };
}

function localSigner(a: TestAccountJson): Signer {
  const account = privateKeyToAccount(a.privateKey);
  const chain = communityChain();
  const reader = createPublicClient({ chain, transport: http(state.chain.rpcUrl) });
  const wallet = createWalletClient({ account, chain, transport: http(state.chain.rpcUrl) });
  return {
    address: account.address, label: `test account ${shortAddress(account.address)} (${a.zone}, ${a.meterId})`,
    signMessage: (message) => account.signMessage({ message }),
    signTypedData: (args) => account.signTypedData(args as never),
    ...allowanceOf(reader as PublicClient, wallet, account.address),
  };
}

async function injectedSigner(): Promise<Signer> {
  const provider = window.ethereum!;
  const wallet = createWalletClient({ transport: custom(provider) });
  const [address] = await wallet.requestAddresses();
  if (!address) throw new Error("the wallet shared no account");
  const chainId = state.chain.chainId;
  // Typed data names the chain: the wallet must be on it (added from GET /v1/chain if it does not know it).
  if ((await wallet.getChainId()) !== chainId) {
    const chain = communityChain();
    try {
      await wallet.switchChain({ id: chainId });
    } catch {
      await wallet.addChain({ chain });
    }
  }
  return {
    address: getAddress(address), label: `browser wallet ${shortAddress(address)}`,
    signMessage: (message) => wallet.signMessage({ account: address, message }),
    signTypedData: (args) => wallet.signTypedData({ account: address, ...args } as never),
    // The wallet's own connection reads and sends: the node's RPC may not be reachable from here.
    ...allowanceOf(createPublicClient({ chain: communityChain(), transport: custom(provider) }) as PublicClient, wallet, getAddress(address)),
  };
}

function randomNonce(): bigint {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return BigInt(`0x${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`);
}

export function mountWallet(root: HTMLElement): { show(): void } {
  const connectBox = h("div", { id: "connect" });
  const who = h("p", { id: "wallet-status", class: "summary", role: "status", "aria-live": "polite" });
  const signInButton = h("button", { type: "button", id: "sign-in" }, "Sign in with Ethereum");
  const signOutButton = h("button", { type: "button", id: "sign-out", class: "secondary" }, "Sign out");
  const zoneSelect = h("select", { id: "order-zone", name: "zone" });
  const intervalSelect = h("select", { id: "order-interval", name: "interval" });
  const sideSelect = h("select", { id: "order-side", name: "side" }, h("option", { value: "1" }, "Sell"), h("option", { value: "0" }, "Buy"));
  const kwhInput = h("input", { id: "order-kwh", name: "kwh", type: "number", min: "0.001", step: "0.001", value: "1", inputmode: "decimal", required: true });
  const priceInput = h("input", { id: "order-price", name: "price", type: "number", min: "0", step: "any", inputmode: "decimal", required: true });
  const sourceSelect = h("select", { id: "order-source", name: "source" });
  const corridor = h("p", { class: "hint", id: "order-corridor" });
  const result = h("p", { id: "order-result", role: "status", "aria-live": "polite" });
  const form = h("form", { id: "order-form", class: "order-form", "aria-labelledby": "order-h" },
    h("div", { class: "field" }, h("label", { for: "order-zone" }, "Zone"), zoneSelect),
    h("div", { class: "field" }, h("label", { for: "order-interval" }, "Delivery interval"), intervalSelect),
    h("div", { class: "field" }, h("label", { for: "order-side" }, "Side"), sideSelect),
    h("div", { class: "field" }, h("label", { for: "order-kwh" }, "Energy (kWh)"), kwhInput),
    h("div", { class: "field" }, h("label", { for: "order-price", id: "order-price-label" }, `Limit price (${units.symbol}/kWh)`), priceInput),
    h("div", { class: "field" }, h("label", { for: "order-source" }, "Source (what you sell)"), sourceSelect),
    corridor,
    h("button", { type: "submit", id: "place-order" }, "Sign and place order"),
    result);
  const allowanceText = h("p", { id: "allowance", role: "status", "aria-live": "polite" }, "");
  const approveInput = h("input", { id: "approve-amount", name: "approveAmount", type: "number", min: "0", step: "any", value: "100", inputmode: "decimal" });
  const approveButton = h("button", { type: "button", id: "approve-market" }, "Allow the market");
  const allowanceCard = h("article", { class: "card", "aria-labelledby": "allowance-h" }, h("h3", { id: "allowance-h" }, "Paying for what I buy"),
    h("p", { class: "hint" }, "A buy settles only within what you allow the market to take from your wallet (held in escrow until delivery)."),
    allowanceText,
    h("div", { class: "field inline" }, h("label", { for: "approve-amount" }, `Allow up to (${units.symbol})`), approveInput, approveButton));
  const ordersBox = h("div", { id: "my-orders-box" });
  const fillsBox = h("div", { id: "my-fills-box" });
  const tradesBox = h("div", { id: "my-trades-box" });
  const savingsBox = h("div", { id: "my-savings" });
  const mine = h("div", { id: "mine" },
    h("article", { class: "card", "aria-labelledby": "order-h" }, h("h3", { id: "order-h" }, "Place an order"), form),
    allowanceCard,
    h("article", { class: "card", "aria-labelledby": "myorders-h" }, h("h3", { id: "myorders-h" }, "My orders"), ordersBox),
    h("div", { class: "cols" },
      h("article", { class: "card", "aria-labelledby": "myfills-h" }, h("h3", { id: "myfills-h" }, "My fills"), fillsBox),
      h("article", { class: "card", "aria-labelledby": "mysavings-h" }, h("h3", { id: "mysavings-h" }, "My savings"), savingsBox)),
    h("article", { class: "card", "aria-labelledby": "mytrades-h" }, h("h3", { id: "mytrades-h" }, "My deliveries"), tradesBox));

  fill(root, h("h2", {}, "My wallet"),
    h("article", { class: "card", "aria-labelledby": "connect-h" }, h("h3", { id: "connect-h" }, "Wallet"), connectBox, who,
      h("div", { class: "actions" }, signInButton, signOutButton)),
    mine);

  let signer: Signer | undefined;
  let address: string | null = sessionStorage.getItem("energy.address");
  let operator = sessionStorage.getItem("energy.operator") === "1";
  let testAccounts: TestAccountJson[] = [];
  let openMarkets: MarketJson[] = [];
  let unsubscribe: (() => void) | undefined;

  function renderWho() {
    const signedIn = Boolean(session.token && address);
    fill(who,
      signer ? `Connected: ${signer.label}. ` : "No wallet connected. ",
      signedIn ? h("strong", { id: "signed-in-as" }, `Signed in as ${shortAddress(address!)}${operator ? " (operator)" : ""}.`) : "Not signed in.");
    signInButton.disabled = !signer || (signedIn && signer.address === address);
    signOutButton.hidden = !signedIn;
    mine.hidden = !signedIn;
    root.dataset.signedIn = signedIn ? "1" : "";
  }

  async function renderConnect() {
    const parts: (HTMLElement | string)[] = [];
    const injected = h("button", { type: "button", id: "connect-injected", disabled: !window.ethereum }, "Connect browser wallet");
    injected.addEventListener("click", () => void connect(injectedSigner));
    parts.push(h("div", { class: "actions" }, injected, window.ethereum ? "" : h("span", { class: "hint" }, " No browser wallet found (window.ethereum).")));
    if (state.chain.local) {
      try {
        ({ accounts: testAccounts } = await api<{ accounts: TestAccountJson[] }>("/v1/chain/test-accounts"));
      } catch {
        testAccounts = [];
      }
      if (testAccounts.length > 0) {
        const select = h("select", { id: "test-account", name: "testAccount" },
          testAccounts.map((a, i) => h("option", { value: i }, `${shortAddress(a.address)} · ${a.zone} · ${a.meterId}`)));
        const use = h("button", { type: "button", id: "use-test-account" }, "Use test account");
        use.addEventListener("click", () => {
          const a = testAccounts[Number(select.value)]!;
          sessionStorage.setItem("energy.testAccount", select.value);
          void connect(async () => localSigner(a));
        });
        parts.push(h("div", { class: "field inline" }, h("label", { for: "test-account" }, "Local chain test account"), select, use));
        const saved = sessionStorage.getItem("energy.testAccount");
        if (saved !== null && testAccounts[Number(saved)]) {
          select.value = saved;
          signer ??= localSigner(testAccounts[Number(saved)]!);
        }
      }
    }
    fill(connectBox, parts);
    renderWho();
  }

  async function connect(make: () => Promise<Signer>) {
    try {
      signer = await make();
      renderWho();
    } catch (err) {
      fill(who, unavailable("Wallet", (err as Error).message));
    }
  }

  signInButton.addEventListener("click", async () => {
    if (!signer) return;
    signInButton.disabled = true;
    try {
      const nonce = await api<{ nonce: string; chainId: number; domain: string; uri: string }>("/v1/auth/nonce");
      const message = createSiweMessage({
        address: signer.address, chainId: nonce.chainId, domain: nonce.domain, nonce: nonce.nonce, uri: nonce.uri, version: "1",
        statement: "Sign in to the community energy market.",
      });
      const signature = await signer.signMessage(message);
      const login = await api<{ token: string; address: string; operator: boolean }>("/v1/auth/login", { method: "POST", body: { message, signature } });
      address = login.address;
      operator = login.operator;
      sessionStorage.setItem("energy.address", address);
      sessionStorage.setItem("energy.operator", operator ? "1" : "");
      session.set(login.token);
      emit("session");
    } catch (err) {
      fill(who, unavailable("Sign-in", (err as Error).message));
    } finally {
      renderWho();
    }
  });

  signOutButton.addEventListener("click", async () => {
    try {
      await api("/v1/auth/logout", { method: "POST", auth: true });
    } catch {
      // The token may have expired already: signed out either way.
    }
    session.set(null);
    address = null;
    sessionStorage.removeItem("energy.address");
    emit("session");
    renderWho();
  });

  async function loadIntervals() {
    const zone = zoneSelect.value || state.zone;
    const res = await api<{ now?: number; markets: MarketJson[] }>(`/v1/trading/markets?zone=${encodeURIComponent(zone)}&status=open`);
    noteNodeNow(res.now);
    openMarkets = res.markets.filter((m) => m.zone === zone);
    const previous = Number(intervalSelect.value);
    fill(intervalSelect, openMarkets.slice(0, 96).map((m) => h("option", { value: m.intervalStart, selected: m.intervalStart === previous }, interval(m.intervalStart))));
    updatePriceHint(true);
  }

  function updatePriceHint(prefill: boolean) {
    const m = openMarkets.find((x) => x.intervalStart === Number(intervalSelect.value));
    const market = marketOf(zoneSelect.value);
    if (!m || !market) return fill(corridor, "");
    fill(corridor, `Reference ${price(m.referencePricePerKWh)}; allowed ${price(market.feedInTariff)} to ${price(market.retailPrice)}. Gate closes ${dateTime(m.closesAt)}.`);
    if (prefill || !priceInput.value) priceInput.value = priceNumber(m.referencePricePerKWh).replace(/,/g, "");
    priceInput.min = String(market.feedInTariff / 10 ** units.decimals);
    priceInput.max = String(market.retailPrice / 10 ** units.decimals);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!signer || !address) return fill(result, "Connect the wallet you signed in with first.");
    if (signer.address !== getAddress(address)) return fill(result, `The connected wallet is not the signed-in account ${shortAddress(address)}.`);
    const market = marketOf(zoneSelect.value);
    const start = Number(intervalSelect.value);
    if (!market || !start) return fill(result, "Pick a zone and an open interval.");
    let energyWh: bigint;
    let limit: bigint;
    try {
      energyWh = parseUnits(kwhInput.value, 3);
      limit = parseUnits(priceInput.value, units.decimals);
    } catch {
      return fill(result, "Energy and price must be decimal numbers.");
    }
    if (energyWh <= 0n) return fill(result, "Energy must be more than 0 kWh.");
    if (limit < BigInt(market.feedInTariff) || limit > BigInt(market.retailPrice)) return fill(result, `The price must be within ${price(market.feedInTariff)} and ${price(market.retailPrice)}.`);
    const side = Number(sideSelect.value);
    const source = side === 1 ? Number(sourceSelect.value) : 0;
    const end = start + state.chain.intervalSeconds;
    const nonce = randomNonce();
    const message = {
      maker: signer.address, side, zone: market.zoneId, deliveryStart: BigInt(start), deliveryEnd: BigInt(end), energyWh, limitPricePerKWh: limit,
      source, acceptedSources: 0, minSellerReputationBps: 0, nonce, expiry: BigInt(end),
    };
    const button = form.querySelector<HTMLButtonElement>("#place-order")!;
    button.disabled = true;
    fill(result, "Waiting for the wallet's signature…");
    try {
      const { EIP712Domain: _omit, ...types } = state.chain.eip712.types;
      const signature = await signer.signTypedData({ domain: state.chain.eip712.domain, types, primaryType: "Order", message });
      const order = await api<OrderRecordJson>("/v1/trading/orders", {
        method: "POST", auth: true,
        body: {
          order: {
            maker: signer.address, side, zone: market.zone, deliveryStart: start, deliveryEnd: end, energyWh: energyWh.toString(), limitPricePerKWh: limit.toString(),
            source, acceptedSources: 0, minSellerReputationBps: 0, nonce: nonce.toString(), expiry: end,
          },
          signature,
        },
      });
      fill(result, h("span", { id: "order-placed", "data-order-id": order.orderId }, `Order ${shortHash(order.orderId)} ${order.status}: ${order.side} ${kwh(order.sizeWh)} at ${price(order.limitPricePerKWh)}${order.filledWh > 0 ? `, ${kwh(order.filledWh)} filled` : ""}.`));
      emit("orders");
    } catch (err) {
      fill(result, unavailable("Order", (err as Error).message));
    } finally {
      button.disabled = false;
    }
  });

  async function loadAllowance() {
    if (!signer || !address || signer.address !== getAddress(address)) return fill(allowanceText, "Connect the wallet you signed in with to see its allowance.");
    const allowed = await signer.allowance();
    fill(allowanceText, h("span", { id: "allowance-amount", "data-base-units": allowed.toString() }, allowed >= 2n ** 255n ? "The market may take any amount (no limit set)." : `The market may take up to ${money(allowed)}.`));
  }

  approveButton.addEventListener("click", async () => {
    if (!signer) return;
    let amount: bigint;
    try {
      amount = parseUnits(approveInput.value || "0", units.decimals);
    } catch {
      return fill(allowanceText, "The amount must be a decimal number.");
    }
    approveButton.disabled = true;
    fill(allowanceText, "Waiting for the wallet…");
    try {
      await signer.approve(amount);
      await loadAllowance();
    } catch (err) {
      fill(allowanceText, unavailable("Approval", (err as Error).message));
    } finally {
      approveButton.disabled = false;
    }
  });

  async function loadMine() {
    if (!session.token || !address) return;
    void loadAllowance().catch((err) => fill(allowanceText, unavailable("Allowance", (err as Error).message)));
    const [orders, history] = await Promise.all([
      api<{ orders: OrderRecordJson[] }>("/v1/trading/orders?limit=50", { auth: true }),
      api<{ trades: HistoryTrade[] }>("/v1/trading/history?limit=100", { auth: true }),
    ]);
    fill(ordersBox, table("My orders, newest first", ["Order", "Zone", "Interval", "Side", "Size", "Filled", "Limit", "Status", ""],
      orders.orders.map((o) => {
        const cancel = o.status === "open" ? h("button", { type: "button", class: "small secondary", "aria-label": `Cancel order ${o.orderId}`, "data-cancel": o.orderId }, "Cancel") : null;
        cancel?.addEventListener("click", async () => {
          cancel.disabled = true;
          try {
            await api(`/v1/trading/orders/${o.orderId}`, { method: "DELETE", auth: true });
            emit("orders");
          } catch (err) {
            fill(result, unavailable("Cancel", (err as Error).message));
          }
        });
        return [h("code", { title: o.orderId }, shortHash(o.orderId)), o.zone, interval(o.intervalStart), o.side, kwh(o.sizeWh), kwh(o.filledWh), price(o.limitPricePerKWh),
          h("span", { class: `state order-${o.status}`, "data-order-id": o.orderId }, o.status), cancel];
      }), { id: "my-orders", numeric: [4, 5, 6], empty: "No orders yet" }));
    const fills = orders.orders.flatMap((o) => o.fills.map((f) => ({ o, f })));
    fill(fillsBox, table("Fills of my orders", ["Interval", "Side", "Energy", "Price", "Amount", "Settlement", "Trade"],
      fills.map(({ o, f }) => [interval(o.intervalStart), f.side, kwh(f.energyWh), price(f.pricePerKWh), money(f.amount), h("span", { class: `state fill-${f.status}` }, f.status),
        f.tradeId ? h("a", { href: `/v1/trades/${f.tradeId}`, "aria-label": `Trade ${f.tradeId} lifecycle` }, `#${f.tradeId}`) : "–"]), { id: "my-fills", numeric: [2, 3, 4], empty: "No fills yet" }));
    fill(tradesBox, table("My trades on-chain and their delivery", ["Trade", "Role", "Interval", "Energy", "Delivered", "Price", "Amount", "State", "Transaction"],
      history.trades.map((t) => [`#${t.tradeId}`, t.role, interval(t.deliveryStart), kwh(t.energyWh), t.deliveredWh === null ? "–" : kwh(t.deliveredWh), price(t.pricePerKWh), money(t.amount),
        h("span", { class: `state state-${t.status}`, "data-trade-id": t.tradeId }, t.status),
        h("span", {}, h("code", { title: t.txHash }, shortHash(t.txHash)), " ", h("a", { href: `/v1/trades/${t.tradeId}/verify`, "aria-label": `Verify trade ${t.tradeId} against the chain` }, "verify"))]),
      { id: "my-trades", numeric: [3, 4, 5, 6], empty: "No trades yet" }));
    // Savings: a buyer against the zone's retail price, a seller against its feed-in tariff.
    let bought = 0n;
    let sold = 0n;
    let saved = 0n;
    let earned = 0n;
    for (const t of history.trades) {
      const m = marketOf(t.zone);
      if (!m) continue;
      const wh = BigInt(t.energyWh);
      if (t.role === "buyer") {
        bought += wh;
        saved += (wh * BigInt(m.retailPrice)) / 1000n - BigInt(t.amount);
      } else {
        sold += wh;
        earned += BigInt(t.amount) - (wh * BigInt(m.feedInTariff)) / 1000n;
      }
    }
    fill(savingsBox, h("dl", { class: "figures" },
      h("div", {}, h("dt", {}, "Bought"), h("dd", {}, kwh(bought))),
      h("div", {}, h("dt", {}, "Saved against the grid"), h("dd", { id: "my-saved" }, money(saved))),
      h("div", {}, h("dt", {}, "Sold"), h("dd", {}, kwh(sold))),
      h("div", {}, h("dt", {}, "Earned above feed-in"), h("dd", { id: "my-earned" }, money(earned)))));
    root.dataset.mineLoaded = String(Date.now());
  }

  function renderForm() {
    fill(zoneSelect, state.chain.markets.map((m) => h("option", { value: m.zone, selected: m.zone === state.zone }, m.zone)));
    fill(sourceSelect, Object.entries(state.chain.sources).map(([name, id]) => h("option", { value: id }, name)));
    fill(document.getElementById("order-price-label")!, `Limit price (${units.symbol}/kWh)`);
  }

  function watchZone() {
    unsubscribe?.();
    // My fills and their settlement arrive on the zone's channel; the lists are re-read then.
    unsubscribe = subscribe(`trading.market.${zoneSelect.value || state.zone}`, (type) => {
      if (type === "trade" || type === "tradeUpdate") void loadMine().catch(() => undefined);
    });
  }

  zoneSelect.addEventListener("change", () => {
    watchZone();
    void loadIntervals();
  });
  intervalSelect.addEventListener("change", () => updatePriceHint(true));
  on("orders", () => void loadMine().catch(() => undefined));
  on("session", () => void loadMine().catch(() => undefined));
  session.onChange(renderWho);

  let started = false;
  return {
    show() {
      if (!started) {
        started = true;
        renderForm();
        watchZone();
        void renderConnect();
        setInterval(() => {
          if (!root.hidden) void loadMine().catch(() => undefined);
        }, 5_000);
      }
      renderWho();
      void loadIntervals().catch((err) => fill(corridor, unavailable("Markets", (err as Error).message)));
      void loadMine().catch((err) => fill(ordersBox, unavailable("My orders", (err as Error).message)));
    },
  };
}
