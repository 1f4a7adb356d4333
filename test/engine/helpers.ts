// Shared by the engine tests: deterministic wallets that sign with libsecp256k1, a static
// prosumer directory, and an engine on an in-memory PGlite.
import { InsertQueryNode, type KyselyPlugin, type QueryId } from "kysely";
import type { Address, Hex } from "viem";
import { keccak256, toHex } from "viem";
import { marketDomain, type MarketDomain, type Order } from "../../contracts/client/order.js";
import { openDatabase } from "../../lib/database.js";
import { createEngine, type ProsumerDirectory } from "../../engine/createEngine.js";
import { addressOfKey, createOrderHasher, hexToBytes, signDigest } from "../../engine/intake/orderSignature.js";
import type { MarketConfig } from "../../engine/markets.js";
import { zoneToHex } from "../../engine/markets.js";
import type { EngineDatabase } from "../../engine/store/engineStore.js";

export const ZONE = "ZONE-A";
export const ZONE_HEX = zoneToHex(ZONE);
export const T0 = 1_800_000_000 - (1_800_000_000 % 900); // an interval boundary
export const INTERVAL = T0 + 7_200; // a delivery interval two hours after T0

export interface TestWallet {
  key: Uint8Array;
  address: Address;
}

export function wallet(name: string): TestWallet {
  const key = hexToBytes(keccak256(toHex(`engine test wallet ${name}`)));
  return { key, address: addressOfKey(key) };
}

export const market: MarketConfig = { zone: ZONE, mode: "continuous", feedInTariff: 80_000, retailPrice: 350_000, basePrice: 200_000, gateClosureMinutes: 5 };

export function staticDirectory(sources = 0x1e, reputation: Record<string, number> = {}): ProsumerDirectory & { inactive: Set<string> } {
  const inactive = new Set<string>();
  return {
    inactive,
    profile: async (a) => ({ zone: ZONE_HEX, active: !inactive.has(a.toLowerCase()), sources }),
    reputationBps: async (a) => reputation[a.toLowerCase()] ?? 10_000,
  };
}

let nonce = 1n;
export function makeOrder(w: TestWallet, side: 0 | 1, energyWh: number, price: number, extra: Partial<Order> = {}): Order {
  return {
    maker: w.address, side, zone: ZONE_HEX, deliveryStart: BigInt(INTERVAL), deliveryEnd: BigInt(INTERVAL + 900),
    energyWh: BigInt(energyWh), limitPricePerKWh: BigInt(price), source: side === 1 ? 1 : 0, acceptedSources: 0,
    minSellerReputationBps: 0, nonce: nonce++, expiry: BigInt(INTERVAL), ...extra,
  };
}

export function signer(domain: MarketDomain) {
  const hash = createOrderHasher(domain);
  return (w: TestWallet, order: Order): Hex => signDigest(w.key, hash(order));
}

export const testDomain = marketDomain(31337, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0");

type Opened = Awaited<ReturnType<typeof openDatabase<EngineDatabase>>>;
let shared: Opened | undefined;

/** One in-memory PGlite for the whole run (it takes seconds to start), emptied per call. */
export async function freshDatabase(): Promise<Opened> {
  shared ??= await openDatabase<EngineDatabase>();
  const tables = await shared.db.introspection.getTables();
  for (const t of tables) {
    if (t.name.startsWith("engine_") && !t.name.startsWith("engine_migrations")) await shared.db.deleteFrom(t.name as "engine_ops").execute();
  }
  // Closing is a no-op for the shared instance; the process exit releases it.
  return { ...shared, close: async () => undefined };
}

export async function memoryEngine(
  options: {
    markets?: MarketConfig[]; directory?: ProsumerDirectory; db?: Opened; referencePrice?: number; probe?: LogProbe;
    /** Watches the writes through `logDb` only (the operation log's own connection). */
    logDbProbe?: LogProbe; maxOpsPerWrite?: number; snapshotEveryOps?: number; forgetSliceOrders?: number;
  } = {},
) {
  const opened = options.db ?? (await freshDatabase());
  const engine = await createEngine({
    db: options.probe ? opened.db.withPlugin(options.probe.plugin) : opened.db,
    ...(options.logDbProbe ? { logDb: opened.db.withPlugin(options.logDbProbe.plugin) } : {}),
    ...(options.maxOpsPerWrite !== undefined ? { maxOpsPerWrite: options.maxOpsPerWrite } : {}),
    ...(options.snapshotEveryOps !== undefined ? { snapshotEveryOps: options.snapshotEveryOps } : {}),
    ...(options.forgetSliceOrders !== undefined ? { forgetSliceOrders: options.forgetSliceOrders } : {}),
    markets: options.markets ?? [market],
    domain: testDomain,
    directory: options.directory ?? staticDirectory(),
    ...(options.referencePrice !== undefined ? { referencePrice: () => options.referencePrice! } : {}),
  });
  return { engine, opened };
}

/**
 * Watches the engine's writes to engine_ops through a kysely plugin: counts the insert
 * statements, fails them (`failing`: before they reach the database), or holds their results
 * (`hold()`: the rows are written, the engine does not know yet) until released.
 */
export interface LogProbe {
  plugin: KyselyPlugin;
  inserts: number;
  failing: boolean;
  hold(): () => void;
}

export function logProbe(): LogProbe {
  const opsInserts = new WeakSet<QueryId>();
  let gate: Promise<void> | undefined;
  const probe: LogProbe = {
    inserts: 0,
    failing: false,
    plugin: {
      transformQuery({ node, queryId }) {
        if (InsertQueryNode.is(node) && node.into?.table.identifier.name === "engine_ops") {
          if (probe.failing) throw new Error("disk I/O error (injected by the test)");
          probe.inserts++;
          opsInserts.add(queryId);
        }
        return node;
      },
      async transformResult({ result, queryId }) {
        if (gate && opsInserts.has(queryId)) await gate;
        return result;
      },
    },
    hold() {
      let release!: () => void;
      gate = new Promise<void>((resolve) => (release = resolve));
      return () => {
        gate = undefined;
        release();
      };
    },
  };
  return probe;
}

/** Orders (id, status, filled) and fills as one string: equal strings, equal books. */
export function engineSnapshot(engine: { state: { fills: Iterable<unknown>; orders: Map<Hex, { id: Hex; status: string; filledWh: number; sizeWh: number; seq: number }> } }): string {
  return JSON.stringify(
    { fills: [...engine.state.fills], orders: [...engine.state.orders.values()].map((o) => [o.id, o.seq, o.status, o.sizeWh, o.filledWh]) },
    (_k, v) => (typeof v === "bigint" ? v.toString() : v),
  );
}

/** Lets the event loop turn a few times (setImmediate callbacks, pending writes). */
export async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}
