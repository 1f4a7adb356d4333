// Closes delivery windows: once a window's grace period has passed, every trade of it that is
// still undecided gets its delivered energy from the two meters (allocateDeliveredEnergy), its
// evidence (evidence.ts: one document per window with the signed readings and every input and
// outcome of the allocation, so anyone can re-derive the result), and an outbox row. The
// document and the energy it credits are the decision, in one transaction; the rows follow in
// chunks, made from the document again after a crash. Then the outbox sender takes over;
// nothing here talks to the chain but the trade source.
//
// The decision is the close: readings stored before it count (late ones within the grace period
// and any that arrived before the tick), readings after it are kept but never reopen the window.
// Windows are only decided while the bridge has been connected to the broker for a whole grace
// period, so readings the broker queued for us during an outage arrive before we judge: an
// outage delays decisions, it does not turn queued readings into missing data.
//
// A trade's window may span several intervals, and a seller may hold trades with overlapping
// windows (a 10:00-11:00 listing and a 10:15-10:30 order). bridge_slot_usage records, per meter
// and interval, the energy already credited, so no Wh is ever credited twice; windows are
// decided in order of their end and take the earliest unused energy first.
import type { Insertable, Kysely } from "kysely";
import type { Address } from "viem";
import type { Logger } from "../lib/logger.js";
import { allocateDeliveredEnergy, type TradeClaim } from "./allocateDeliveredEnergy.js";
import type { AllocationRule } from "./config.js";
import type { BridgeDatabase, BridgeDecisionsTable, BridgeOutboxTable } from "./database.js";
import { encodeEvidence, evidenceHashInSlices, EVIDENCE_SIGNATURES, EVIDENCE_VERSION, type EvidenceParty, type EvidenceReading, type EvidenceTrade } from "./evidence.js";
import { measureMeterEnergy, meterKey, type Direction, type SlotEnergy } from "./measureMeterEnergy.js";
import type { MeterDirectory } from "./meterDirectory.js";
import type { BridgeMetrics } from "./metrics.js";
import { encodeTrade } from "./outbox.js";
import type { ProvenTrade, TradesDue } from "./tradesDue.js";

export interface DecideDependencies {
  db: Kysely<BridgeDatabase>;
  tradesDue: TradesDue;
  directory: MeterDirectory;
  /** Unix milliseconds. */
  clock: () => number;
  /** Since when (bridge clock) the MQTT link has been up without a break; undefined while down. */
  connectedSinceMs: () => number | undefined;
  intervalSeconds: number;
  graceSeconds: number;
  allocation: AllocationRule;
  market: Address;
  /** Trades known to be decided (filled as we go; the database is the truth). */
  decided: Set<bigint>;
  /** Commits every reading received so far, so the window sees all of them. */
  flushReadings: () => Promise<void>;
  metrics: BridgeMetrics;
  logger: Logger;
}

export interface DecidedTrade {
  tradeId: bigint;
  deliveredWh: bigint;
  contractedWh: bigint;
  basis: string;
  evidenceHash: string;
}

export interface DecidedWindow {
  deliveryStart: bigint;
  deliveryEnd: bigint;
  trades: DecidedTrade[];
}

const INSERT_CHUNK = 500;

export async function decideDueDeliveries(deps: DecideDependencies): Promise<DecidedWindow[]> {
  const { db, clock, graceSeconds } = deps;
  const connectedSince = deps.connectedSinceMs();
  if (connectedSince === undefined || connectedSince > clock() - graceSeconds * 1000) return [];
  const endBy = BigInt(Math.floor(clock() / 1000) - graceSeconds);
  const listed = await deps.tradesDue.listTradesEndingBy(endBy);
  const candidates = listed.filter((t) => !deps.decided.has(t.trade.tradeId));
  if (candidates.length > 0) {
    // After a restart the trade source lists trades decided before: the database knows.
    const known = await db
      .selectFrom("bridge_decisions")
      .select("trade_id")
      .where("trade_id", "in", candidates.map((t) => t.trade.tradeId))
      .execute();
    for (const r of known) deps.decided.add(r.trade_id);
  }
  // Taken before `decided` lets go of the decided ones below: a trade the database knows is decided
  // is never due again (before, one listed again after a restart was decided a second time).
  const due = candidates.filter((t) => !deps.decided.has(t.trade.tradeId));
  const done = listed.filter((t) => deps.decided.has(t.trade.tradeId)).map((t) => t.trade.tradeId);
  deps.tradesDue.forget(done);
  // Forgotten by the source, a trade is never listed again: `decided` need not remember it.
  for (const id of done) deps.decided.delete(id);
  if (due.length === 0) return [];

  await deps.flushReadings();
  const windows = new Map<string, ProvenTrade[]>();
  for (const t of due) {
    const key = `${t.trade.deliveryEnd}:${t.trade.deliveryStart}`;
    const list = windows.get(key) ?? [];
    list.push(t);
    windows.set(key, list);
  }
  const ordered = [...windows.values()].sort((a, b) => compareWindows(a[0]!, b[0]!));
  const decided: DecidedWindow[] = [];
  for (const trades of ordered) {
    // A window whose document is stored was decided: a crash between the document and its rows
    // (written in chunks after it) left some rows unwritten. They are made from the document,
    // never by allocating again over fewer trades.
    const stored = await storedDecisions(deps, trades);
    const rest = trades.filter((t) => !stored.has(t.trade.tradeId));
    if (stored.size > 0) decided.push(await finishStored(deps, trades.filter((t) => stored.has(t.trade.tradeId)), stored));
    if (rest.length > 0) decided.push(await decideWindow(deps, rest));
  }
  return decided;
}

function compareWindows(a: ProvenTrade, b: ProvenTrade): number {
  if (a.trade.deliveryEnd !== b.trade.deliveryEnd) return a.trade.deliveryEnd < b.trade.deliveryEnd ? -1 : 1;
  if (a.trade.deliveryStart !== b.trade.deliveryStart) return a.trade.deliveryStart < b.trade.deliveryStart ? -1 : 1;
  return 0;
}

interface PartyEnergy {
  account: Address;
  meterId: string | undefined;
  direction: Direction;
  slots: (SlotEnergy & { usedBeforeWh: bigint; availableWh: bigint | undefined })[];
  /** Sum over the window, or undefined when any interval is missing or the account has no meter. */
  availableWh: bigint | undefined;
}

async function decideWindow(deps: DecideDependencies, trades: ProvenTrade[]): Promise<DecidedWindow> {
  const { db, directory, intervalSeconds } = deps;
  const { deliveryStart, deliveryEnd } = trades[0]!.trade;
  const intervalMs = intervalSeconds * 1000;
  // Intervals the window touches; a window off the interval grid is widened to it.
  const slotStartsMs: number[] = [];
  for (let s = Math.floor(Number(deliveryStart) / intervalSeconds) * intervalSeconds; s < Number(deliveryEnd); s += intervalSeconds) {
    slotStartsMs.push(s * 1000);
  }
  // Every reading stored up to now counts (the ingest was flushed just before).
  const closeMs = deps.clock();

  const sellers = [...new Set(trades.map((t) => t.trade.seller))];
  const buyers = [...new Set(trades.map((t) => t.trade.buyer))];
  // The market only trades registered prosumers and the registry never forgets one, so an
  // unknown party means our copy of the registry is behind: catch up, or try again next tick
  // (reporting "no meter, nothing delivered" would be a false dispute).
  const unknown = () => [...sellers, ...buyers].filter((a) => !directory.byAccount(a));
  if (unknown().length > 0) await directory.refresh();
  if (unknown().length > 0) {
    throw new Error(`window ${deliveryStart}-${deliveryEnd}: the registry copy does not know ${unknown().join(", ")} yet; retrying`);
  }
  const meterOf = (a: Address) => directory.byAccount(a)?.meterId;
  const sellerMeters = sellers.map(meterOf).filter((m): m is string => m !== undefined);
  const buyerMeters = buyers.map(meterOf).filter((m): m is string => m !== undefined);

  const [exports, imports, usage] = await Promise.all([
    measureMeterEnergy(db, { meterIds: sellerMeters, direction: "export", slotStartsMs, intervalMs, closeMs }),
    measureMeterEnergy(db, { meterIds: buyerMeters, direction: "import", slotStartsMs, intervalMs, closeMs }),
    loadUsage(db, [...sellerMeters, ...buyerMeters], slotStartsMs),
  ]);

  const party = (account: Address, direction: Direction): PartyEnergy => {
    const meterId = meterOf(account);
    const measured = meterId === undefined ? undefined : (direction === "export" ? exports : imports).get(meterKey(meterId, direction));
    const slots = (measured ?? []).map((s) => {
      const usedBeforeWh = usage.get(`${meterId}/${direction}/${s.slotStartMs}`) ?? 0n;
      const availableWh = s.wh === undefined ? undefined : s.wh > usedBeforeWh ? s.wh - usedBeforeWh : 0n;
      return { ...s, usedBeforeWh, availableWh };
    });
    const complete = meterId !== undefined && slots.length === slotStartsMs.length && slots.every((s) => s.availableWh !== undefined);
    return { account, meterId, direction, slots, availableWh: complete ? slots.reduce((a, s) => a + s.availableWh!, 0n) : undefined };
  };
  const sellerEnergy = new Map(sellers.map((a) => [a, party(a, "export")]));
  const buyerEnergy = new Map(buyers.map((a) => [a, party(a, "import")]));

  const claims: TradeClaim[] = trades.map((t) => ({ tradeId: t.trade.tradeId, seller: t.trade.seller, buyer: t.trade.buyer, contractedWh: t.trade.energyWh }));
  const deliveries = allocateDeliveredEnergy({
    trades: claims,
    sellerExportWh: new Map([...sellerEnergy].map(([a, e]) => [a, e.availableWh])),
    buyerImportWh: new Map([...buyerEnergy].map(([a, e]) => [a, e.availableWh])),
    rule: deps.allocation,
  });
  const byId = new Map(trades.map((t) => [t.trade.tradeId, t]));
  const nowMs = BigInt(deps.clock());

  // One evidence document for the whole window: every party and every trade once, so its size
  // grows with the window's trades and readings, not with how they interconnect.
  const evidence = encodeEvidence({
    v: EVIDENCE_VERSION,
    signatures: EVIDENCE_SIGNATURES,
    market: deps.market,
    window: { start: deliveryStart, end: deliveryEnd, closedAtMs: closeMs },
    intervalSeconds,
    allocation: deps.allocation,
    sellers: [...sellerEnergy.values()].sort(byAccount).map(partyEvidence),
    buyers: [...buyerEnergy.values()].sort(byAccount).map(partyEvidence),
    trades: deliveries.map((d): EvidenceTrade => {
      const { trade } = byId.get(d.tradeId)!;
      return {
        tradeId: trade.tradeId, batchId: trade.batchId, seller: trade.seller, buyer: trade.buyer, contractedWh: trade.energyWh,
        sellerAllocatedWh: d.sellerAllocatedWh, deliveredWh: d.deliveredWh, basis: d.basis,
      };
    }),
  });
  const hash = await evidenceHashInSlices(evidence);

  // Energy credited in this window, taken from the earliest unused energy of each interval.
  const used = new Map<string, bigint>();
  const consume = (e: PartyEnergy, wh: bigint) => {
    if (!e.meterId) return;
    let left = wh;
    for (const s of e.slots) {
      if (left === 0n) break;
      const take = s.availableWh! < left ? s.availableWh! : left;
      if (take > 0n) used.set(`${e.meterId}/${e.direction}/${s.slotStartMs}`, (used.get(`${e.meterId}/${e.direction}/${s.slotStartMs}`) ?? 0n) + take);
      left -= take;
    }
  };
  for (const [account, e] of sellerEnergy) {
    if (e.availableWh !== undefined) consume(e, deliveries.filter((d) => byId.get(d.tradeId)!.trade.seller === account).reduce((a, d) => a + d.deliveredWh, 0n));
  }
  for (const [account, e] of buyerEnergy) {
    if (e.availableWh !== undefined) consume(e, deliveries.filter((d) => byId.get(d.tradeId)!.trade.buyer === account).reduce((a, d) => a + d.deliveredWh, 0n));
  }
  const usageRows = [...used].map(([k, wh]) => {
    const [meterId, direction, slot] = splitUsageKey(k);
    return { meter_id: meterId, direction, slot_start: BigInt(slot), used_wh: wh };
  });

  // The decision is the document and the energy it credits, in one short transaction; the
  // rows follow in chunks, each its own transaction, so a window of thousands of trades never
  // holds the embedded database's one connection for seconds (placements wait behind it).
  await db.transaction().execute(async (trx) => {
    await trx.insertInto("bridge_evidence")
      .values({ evidence_hash: hash, delivery_start: deliveryStart, delivery_end: deliveryEnd, evidence, created_at: nowMs })
      .execute();
    for (let i = 0; i < usageRows.length; i += INSERT_CHUNK) {
      await trx
        .insertInto("bridge_slot_usage")
        .values(usageRows.slice(i, i + INSERT_CHUNK))
        .onConflict((oc) => oc.columns(["meter_id", "direction", "slot_start"]).doUpdateSet((eb) => ({ used_wh: eb("bridge_slot_usage.used_wh", "+", eb.ref("excluded.used_wh")) })))
        .execute();
    }
  });
  const meters = new Map<string, string | null>();
  for (const e of [...sellerEnergy.values(), ...buyerEnergy.values()]) meters.set(`${e.direction}/${e.account}`, e.meterId ?? null);
  const result = await recordDecisions(deps, trades, {
    hash, allocation: deps.allocation, meters,
    outcomes: new Map(deliveries.map((d) => [d.tradeId, { deliveredWh: d.deliveredWh, basis: d.basis }])),
  }, nowMs);

  for (const t of trades) deps.decided.add(t.trade.tradeId);
  deps.tradesDue.forget(trades.map((t) => t.trade.tradeId));
  deps.metrics.intervalsClosed++;
  deps.metrics.tradesDecided += trades.length;
  deps.logger.info({
    msg: "delivery window closed", deliveryStart: Number(deliveryStart), deliveryEnd: Number(deliveryEnd), trades: trades.length,
    missing: result.filter((r) => r.basis !== "measured").length,
  });
  return { deliveryStart, deliveryEnd, trades: result };
}

/** What a decided trade's rows are made from: its window document. */
interface WindowDecision {
  hash: string;
  allocation: AllocationRule;
  /** `${direction}/${account}` → meter id (null: the account has none). */
  meters: Map<string, string | null>;
  outcomes: Map<bigint, { deliveredWh: bigint; basis: string }>;
}

/** Writes each trade's decision and outbox row, INSERT_CHUNK trades a transaction; rows already there stay. */
async function recordDecisions(deps: DecideDependencies, trades: readonly ProvenTrade[], decision: WindowDecision, nowMs: bigint): Promise<DecidedTrade[]> {
  const result: DecidedTrade[] = [];
  for (let i = 0; i < trades.length; i += INSERT_CHUNK) {
    const decisionRows: Insertable<BridgeDecisionsTable>[] = [];
    const outboxRows: Insertable<BridgeOutboxTable>[] = [];
    for (const { trade, proof } of trades.slice(i, i + INSERT_CHUNK)) {
      const { deliveredWh, basis } = decision.outcomes.get(trade.tradeId)!;
      decisionRows.push({
        trade_id: trade.tradeId, batch_id: trade.batchId, seller: trade.seller, buyer: trade.buyer,
        seller_meter: decision.meters.get(`export/${trade.seller}`) ?? null, buyer_meter: decision.meters.get(`import/${trade.buyer}`) ?? null,
        delivery_start: trade.deliveryStart, delivery_end: trade.deliveryEnd,
        contracted_wh: trade.energyWh, delivered_wh: deliveredWh, allocation: decision.allocation, basis,
        evidence: null, evidence_hash: decision.hash, decided_at: nowMs,
      });
      outboxRows.push({
        trade_id: trade.tradeId, trade: encodeTrade(trade), proof: JSON.stringify(proof), delivered_wh: deliveredWh,
        evidence_hash: decision.hash, state: "pending", attempts: 0, next_attempt_at: nowMs, created_at: nowMs, updated_at: nowMs,
      });
      result.push({ tradeId: trade.tradeId, deliveredWh, contractedWh: trade.energyWh, basis, evidenceHash: decision.hash });
    }
    await deps.db.transaction().execute(async (trx) => {
      await trx.insertInto("bridge_decisions").values(decisionRows).onConflict((oc) => oc.column("trade_id").doNothing()).execute();
      await trx.insertInto("bridge_outbox").values(outboxRows).onConflict((oc) => oc.column("trade_id").doNothing()).execute();
    });
  }
  return result;
}

/** The stored window documents (version 3) that decided any of `trades`, by trade id. */
async function storedDecisions(deps: DecideDependencies, trades: readonly ProvenTrade[]): Promise<Map<bigint, WindowDecision>> {
  const { deliveryStart, deliveryEnd } = trades[0]!.trade;
  const docs = await deps.db.selectFrom("bridge_evidence").select(["evidence_hash", "evidence"])
    .where("delivery_start", "=", deliveryStart).where("delivery_end", "=", deliveryEnd).execute();
  const wanted = new Set(trades.map((t) => t.trade.tradeId));
  const found = new Map<bigint, WindowDecision>();
  for (const doc of docs) {
    // Our own canonical JSON (bridge/evidence.ts), written in the decision's transaction.
    const e = JSON.parse(doc.evidence) as {
      allocation: AllocationRule;
      sellers: { account: string; meter: string | null }[];
      buyers: { account: string; meter: string | null }[];
      trades: { tradeId: string; deliveredWh: string; basis: string }[];
    };
    const decision: WindowDecision = {
      hash: doc.evidence_hash, allocation: e.allocation,
      meters: new Map([...e.sellers.map((p) => [`export/${p.account}`, p.meter] as const), ...e.buyers.map((p) => [`import/${p.account}`, p.meter] as const)]),
      outcomes: new Map(e.trades.map((t) => [BigInt(t.tradeId), { deliveredWh: BigInt(t.deliveredWh), basis: t.basis }])),
    };
    for (const id of decision.outcomes.keys()) if (wanted.has(id)) found.set(id, decision);
  }
  return found;
}

/** Writes the missing rows of trades a stored document decided, and marks them decided. */
async function finishStored(deps: DecideDependencies, trades: ProvenTrade[], stored: Map<bigint, WindowDecision>): Promise<DecidedWindow> {
  const nowMs = BigInt(deps.clock());
  const byDecision = new Map<WindowDecision, ProvenTrade[]>();
  for (const t of trades) {
    const d = stored.get(t.trade.tradeId)!;
    const group = byDecision.get(d);
    if (group) group.push(t);
    else byDecision.set(d, [t]);
  }
  const result: DecidedTrade[] = [];
  for (const [decision, group] of byDecision) result.push(...(await recordDecisions(deps, group, decision, nowMs)));
  for (const t of trades) deps.decided.add(t.trade.tradeId);
  deps.tradesDue.forget(trades.map((t) => t.trade.tradeId));
  deps.metrics.tradesDecided += trades.length;
  deps.logger.warn({ msg: "delivery window: rows of trades its stored evidence decided written after a restart", trades: trades.length });
  const { deliveryStart, deliveryEnd } = trades[0]!.trade;
  return { deliveryStart, deliveryEnd, trades: result };
}

function byAccount(a: PartyEnergy, b: PartyEnergy): number {
  return a.account < b.account ? -1 : a.account > b.account ? 1 : 0;
}

function partyEvidence(e: PartyEnergy): EvidenceParty {
  // Each signed reading once, even when it bounds two intervals.
  const readings = new Map<string, EvidenceReading>();
  for (const s of e.slots) for (const r of s.used) if (!readings.has(r.hash)) readings.set(r.hash, { metric: r.metric, payload: r.payload, sha256: r.hash });
  return {
    account: e.account,
    meter: e.meterId ?? null,
    direction: e.direction,
    availableWh: e.availableWh ?? null,
    slots: e.slots.map((s) => ({ start: s.slotStartMs, source: s.source, wh: s.wh ?? null, usedBeforeWh: s.usedBeforeWh, readings: s.readings })),
    readings: [...readings.values()],
  };
}

async function loadUsage(db: Kysely<BridgeDatabase>, meterIds: string[], slotStartsMs: number[]): Promise<Map<string, bigint>> {
  if (meterIds.length === 0) return new Map();
  const rows = await db
    .selectFrom("bridge_slot_usage")
    .selectAll()
    .where("meter_id", "in", meterIds)
    .where("slot_start", "in", slotStartsMs.map(BigInt))
    .execute();
  return new Map(rows.map((r) => [`${r.meter_id}/${r.direction}/${r.slot_start}`, r.used_wh]));
}

function splitUsageKey(k: string): [string, string, string] {
  // meter ids may contain '/': the last two parts are direction and slot.
  const parts = k.split("/");
  const slot = parts.pop()!;
  const direction = parts.pop()!;
  return [parts.join("/"), direction, slot];
}
