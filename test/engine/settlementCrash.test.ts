// The node (`npm start`, a child process with a data folder: the embedded chain's journal and
// the PGlite op log survive it) killed with SIGKILL at every step of a settlement batch's life
// (ENERGY_FAULT_CRASH_AT, honoured under NODE_ENV=test). Each run first finishes what the last
// one left, and is checked once quiet: on-chain filledWh equals the engine's for every order,
// every trade on the chain is exactly one engine fill, and every fill acknowledged with a 201
// ended executed (or failed with its reason). Then the fault is armed and the run trades a
// round through the HTTP API with EIP-712 orders signed by the test accounts: a
// capacity-capped partial fill (both orders stay open, so a second copy of the fill would pass
// the contract's overfill check), which dies at the step. Two runs also die while finishing the
// previous run's batch. A last run without a fault must settle everything.
import { expect } from "chai";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createPublicClient, http, type Address, type Hex, type PublicClient } from "viem";
import { hardhat } from "viem/chains";
import { settlementFaultPoints, settlementFaultsFromEnv, type SettlementFaultPoint } from "../../engine/settlement/settlementFaults.js";
import type { RunningNode } from "../../server/startNode.js";
import { spawnStart, type StartedChild } from "../scripts/spawnStart.js";
import { approveMarket, fetchClient, intervalAhead, signedOrder, signIn, waitFor, type ChainDescription, type Http } from "../server/helpers.js";
import { cappedMarket, chainTrades, filledOnChain } from "./settlementHarness.js";

interface FillView {
  fillId: number;
  side: "buy" | "sell";
  energyWh: number;
  status: "pending" | "settling" | "executed" | "failed";
  tradeId?: string;
  reason?: string;
}

interface OrderView {
  orderId: Hex;
  maker: Address;
  side: "buy" | "sell";
  intervalStart: number;
  status: string;
  sizeWh: number;
  filledWh: number;
  fills: FillView[];
}

interface RunningApi {
  http: Http;
  rpcUrl: string;
  chain: ChainDescription;
  accounts: { address: Address; key: Hex }[];
  tokens: Map<Address, string>;
}

/** SETTLEMENT_CRASH_DEBUG=1 prints each run's step, start and round. */
const debug = process.env.SETTLEMENT_CRASH_DEBUG ? (...args: unknown[]) => console.log("    [crash test]", ...args) : () => undefined;

describe("settlement across SIGKILL at every step of a batch's life (npm start, restarted)", function () {
  // About 13 starts of the node: under 3 minutes on an idle 2-core machine, more under load.
  this.timeout(600_000);
  let dataDir: string;
  let env: Record<string, string>;

  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "settlement-crash-"));
    const configFile = path.join(dataDir, "energy.config.json");
    await writeFile(configFile, JSON.stringify({ markets: [cappedMarket], settlementMaxFills: 1, settlementMaxLatencyMs: 10, testAccounts: 3 }));
    env = {
      NODE_ENV: "test", DATA_DIR: dataDir, DEPLOYMENTS_DIR: path.join(dataDir, "deployments"), CONFIG_FILE: configFile,
      PORT: "0", CHAIN_PORT: "0", MQTT_PORT: "0", INTAKE_WORKERS: "0",
    };
  });
  after(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("ENERGY_FAULT_CRASH_AT is honoured only under NODE_ENV=test and names a known step", () => {
    expect(settlementFaultsFromEnv({ ENERGY_FAULT_CRASH_AT: "after-batch-row" })).to.equal(undefined);
    expect(settlementFaultsFromEnv({ NODE_ENV: "production", ENERGY_FAULT_CRASH_AT: "after-batch-row" })).to.equal(undefined);
    expect(settlementFaultsFromEnv({ NODE_ENV: "test", ENERGY_FAULT_CRASH_AT: "after-batch-row@2" })).to.have.property("hook");
    expect(() => settlementFaultsFromEnv({ NODE_ENV: "test", ENERGY_FAULT_CRASH_AT: "somewhere" })).to.throw(/must be one of before-batch-row/);
  });

  it("every fill settles exactly once, whichever step the node dies at", async () => {
    /** Orders answered 201, with the fills the answer listed. */
    const acknowledged: OrderView[] = [];
    const base = intervalAhead(Math.floor(Date.now() / 1000), 3_600);
    let round = 0;
    let approved = false;

    /** A round in a fresh book (1 kWh cap): a 2 kWh sell and a 2 kWh buy fill 1,000 Wh and
     *  both stay open. The settler cuts it at once (one fill a batch, 10 ms latency), so a
     *  restart that re-cut it while finishing its stored batch would do so before that ends. */
    async function tradeRound(api: RunningApi): Promise<void> {
      const at = base + 900 * round;
      const [seller, buyerA, buyerB] = api.accounts;
      const buyer = round++ % 2 === 0 ? buyerA! : buyerB!;
      if (!approved) {
        for (const b of [buyerA!, buyerB!]) await approveMarket(api.rpcUrl, api.chain, b.key);
        approved = true;
      }
      const place = async (who: { address: Address; key: Hex }, side: 0 | 1, energyWh: number, price: number) => {
        const body = await signedOrder(api.chain, who.key, { side, intervalStart: at, energyWh, price });
        // A buy waits until the node has seen the approval (intake checks what a buyer can pay).
        const res = await waitFor(`order ${side} ${energyWh} Wh accepted`, async () => {
          const r = await api.http({ method: "POST", url: "/v1/trading/orders", token: api.tokens.get(who.address)!, body });
          if (r.status === 422 && /insufficient_(allowance|balance)/.test(r.text)) return undefined;
          return r;
        }, 10_000, 200);
        expect(res.status, res.text).to.equal(201);
        acknowledged.push(res.json as OrderView);
        return res.json as OrderView;
      };
      await place(seller!, 1, 2_000, 190_000);
      const capped = await place(buyer, 0, 2_000, 250_000);
      expect([capped.status, capped.fills.map((f) => f.energyWh)]).to.deep.equal(["open", [1_000]]);
    }

    /** Waits until every fill has its verdict, then holds the engine against the chain. */
    async function expectSettledOnce(api: RunningApi, client: PublicClient): Promise<OrderView[]> {
      const market = api.chain.contracts.EnergyMarket;
      const orders = await waitFor("every fill to have its verdict", async () => {
        const all = await allOrders(api);
        return all.every((o) => o.fills.every((f) => f.status === "executed" || f.status === "failed")) ? all : undefined;
      }, 60_000, 250);
      // The chain agrees with the engine, order by order.
      for (const o of orders) expect(await filledOnChain(client, market, o.orderId), `filledWh of ${o.side} ${o.orderId}`).to.equal(BigInt(o.filledWh));
      // Every trade on the chain is one engine fill: none twice, none unknown.
      const fills = new Map<number, FillView>();
      for (const o of orders) for (const f of o.fills) fills.set(f.fillId, f);
      const executedTradeIds = [...fills.values()].filter((f) => f.status === "executed").map((f) => f.tradeId!).sort();
      const trades = await chainTrades(client, market);
      expect(trades.map((t) => t.tradeId.toString()).sort()).to.deep.equal(executedTradeIds);
      const perFill = new Map<string, number>();
      for (const t of trades) perFill.set(`${t.buyer}/${t.seller}/${t.deliveryStart}`, (perFill.get(`${t.buyer}/${t.seller}/${t.deliveryStart}`) ?? 0) + 1);
      expect([...perFill.entries()].filter(([, n]) => n > 1)).to.deep.equal([]);
      // Every acknowledged fill ended executed, or failed with its reason.
      for (const f of acknowledged.flatMap((o) => o.fills)) {
        const now = fills.get(f.fillId);
        expect(now?.status === "executed" || (now?.status === "failed" && Boolean(now.reason)), JSON.stringify(now ?? f)).to.equal(true);
      }
      return orders;
    }

    const armFile = path.join(dataDir, "fault-armed");
    /**
     * One run that dies at `point`. "fresh": the fault is armed only once the run has finished
     * what the previous one left (checked), for a batch cut by this run's own round.
     * "recovering": armed from the start, so the run dies finishing the previous run's batch.
     */
    async function runUntilCrash(point: SettlementFaultPoint, mode: "fresh" | "recovering"): Promise<void> {
      const started = Date.now();
      if (mode === "recovering") await writeFile(armFile, "");
      else await rm(armFile, { force: true });
      const node = await spawnStart({ ...env, ENERGY_FAULT_CRASH_AT: point, ENERGY_FAULT_ARM_FILE: armFile });
      debug(point, mode, node.started ? `started in ${Date.now() - started} ms` : "died before its banner");
      if (mode === "fresh") {
        expect(node.started, node.output()).to.equal(true);
        try {
          const api = await connect(node);
          await expectSettledOnce(api, clientOf(api));
          await writeFile(armFile, "");
          await tradeRound(api);
        } catch (err) {
          // Cut short by the crash (its exit may not be reaped yet), or a real failure.
          const gone = await Promise.race([node.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5_000).unref())]);
          debug(point, `round ${round - 1} cut short (${gone ? "crashed" : "failed"}): ${(err as Error).message.split("\n")[0]}`);
          if (!gone) {
            node.child.kill("SIGKILL");
            throw err;
          }
        }
      }
      await dies(node, point);
      debug(point, `died after ${Date.now() - started} ms; ${acknowledged.length} orders acknowledged so far`);
    }

    for (const point of settlementFaultPoints) {
      await runUntilCrash(point, "fresh");
      // Twice more, dying again while the restart finishes that batch: claiming a stored row's
      // fills (Row 2's repair itself), and recording a verdict read from the chain.
      if (point === "after-batch-row") await runUntilCrash("settling-write", "recovering");
      if (point === "after-broadcast") await runUntilCrash("after-receipt", "recovering");
    }

    await rm(armFile, { force: true });
    const node = await spawnStart(env);
    try {
      expect(node.started, node.output()).to.equal(true);
      const api = await connect(node);
      const client = clientOf(api);
      await expectSettledOnce(api, client);
      await tradeRound(api);
      const orders = await expectSettledOnce(api, client);
      // One capped partial fill a round, each settled once: 1,000 Wh of each 2 kWh order, on-chain too.
      const filled = orders.filter((o) => o.fills.length > 0);
      debug(`${acknowledged.length} orders acknowledged; ${filled.length / 2} rounds filled`);
      expect(filled.length).to.equal(2 * round);
      for (const o of filled) expect([o.sizeWh, o.filledWh, await filledOnChain(client, api.chain.contracts.EnergyMarket, o.orderId)]).to.deep.equal([2_000, 1_000, 1_000n]);
    } finally {
      await node.stop();
    }
  });

  /** Signs in every test account of the node the banner describes. */
  async function connect(node: StartedChild): Promise<RunningApi> {
    const out = node.output();
    const apiUrl = /^\s+API\s+(http:\/\/\S+)\/v1\b/m.exec(out)![1]!;
    const rpcUrl = /^\s+JSON-RPC\s+(http:\/\/\S+)/m.exec(out)![1]!;
    const accounts = [...out.matchAll(/^\s+(0x[0-9a-fA-F]{40})\s+\S+\s+meter \S+\s+key (0x[0-9a-f]{64})$/gm)].map((m) => ({ address: m[1] as Address, key: m[2] as Hex }));
    expect(accounts).to.have.length(3);
    const client = fetchClient(apiUrl);
    const chain = (await client({ url: "/v1/chain" })).json as ChainDescription;
    const tokens = new Map<Address, string>();
    for (const a of accounts) tokens.set(a.address, await signIn(client, { chainId: chain.chainId } as RunningNode, a.key));
    return { http: client, rpcUrl, chain, accounts, tokens };
  }

  function clientOf(api: RunningApi): PublicClient {
    return createPublicClient({ chain: { ...hardhat, rpcUrls: { default: { http: [api.rpcUrl] } } }, transport: http(api.rpcUrl) }) as PublicClient;
  }

  async function allOrders(api: RunningApi): Promise<OrderView[]> {
    const out: OrderView[] = [];
    for (const a of api.accounts) {
      const res = await api.http({ url: "/v1/trading/orders?limit=500", token: api.tokens.get(a.address)! });
      expect(res.status, res.text).to.equal(200);
      out.push(...(res.json.orders as OrderView[]));
    }
    return out;
  }

  /** The node killed itself at `point` (SIGKILL: no handler ran, nothing was flushed). */
  async function dies(node: StartedChild, point: string): Promise<void> {
    const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 60_000).unref());
    if ((await Promise.race([node.exited, timeout])) === "timeout" && node.child.exitCode === null && node.child.signalCode === null) {
      node.child.kill("SIGKILL");
      throw new Error(`the node never reached ${point}; output:\n${node.output()}`);
    }
    expect(node.child.signalCode, node.output()).to.equal("SIGKILL");
    expect(node.output()).to.contain(`fault: crashing at ${point}`);
  }
});
