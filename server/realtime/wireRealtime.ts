// What the node pushes on the WebSocket channels: the engine's book and trade changes on
// `trading.market.{zone}`, the bridge's committed readings on `consumption.real-time` and
// `generation.solar`. Returns a function that unhooks everything.
//
// Every meter's readings go to one channel, each message naming its meterId: the hub hands a
// reading only to subscribers whose grant admits that meter (realtime/channelAccess.ts: its
// registered owner, or an operator), so a publisher here never decides who may see what.
import type { CommittedReading } from "../../bridge/ingestReadings.js";
import type { Bridge } from "../../bridge/startBridge.js";
import type { Engine } from "../../engine/createEngine.js";
import type { FillRecord } from "../../engine/engineState.js";
import { safeZoneLabel } from "../orderJson.js";
import type { Hub } from "./hub.js";

export interface WireRealtimeParameters {
  hub: Hub;
  engine: Engine;
  bridge?: Bridge;
}

function zoneOfBook(book: string): string {
  return safeZoneLabel(book.split(":")[0] as `0x${string}`);
}

function tradeMessage(fill: FillRecord) {
  return {
    fillId: fill.fillId, intervalStart: Number(fill.book.split(":")[1]), buyer: fill.buyer, seller: fill.seller, energyWh: fill.energyWh,
    pricePerKWh: fill.price, amount: fill.amount.toString(), status: fill.status,
    ...(fill.tradeId !== undefined ? { tradeId: fill.tradeId.toString() } : {}), ...(fill.txHash ? { txHash: fill.txHash } : {}), ...(fill.reason ? { reason: fill.reason } : {}),
  };
}

/** Channels of the meters' readings: what they import is consumption, what they export generation. */
export const CONSUMPTION_CHANNEL = "consumption.real-time";
export const GENERATION_CHANNEL = "generation.solar";

/**
 * One committed reading as a channel message, seen from one direction: a register in kWh, a
 * power in kW, or an interval's energy in kWh (timestamp = the interval's start).
 */
export function readingMessage(r: CommittedReading, direction: "import" | "export") {
  const base = { meterId: r.meterId, timestamp: new Date(r.atMs).toISOString() };
  if (r.kind === "interval") return { ...base, kind: "interval", value: ((direction === "import" ? r.importWh : r.exportWh) ?? 0) / 1000, unit: "kWh" };
  if (r.kind === "power") return { ...base, kind: "power", value: (r.value ?? 0) / 1000, unit: "kW" };
  return { ...base, kind: "register", value: (r.value ?? 0) / 1000, unit: "kWh" };
}

export function wireRealtime({ hub, engine, bridge }: WireRealtimeParameters): () => void {
  const onBook = (b: { zone: string; intervalStart: number; bid: number | null; ask: number | null; lastPrice: number | null; status: string }) => {
    const channel = `trading.market.${b.zone}`;
    if (!hub.hasSubscribers(channel)) return;
    const rec = engine.state.books.get(`${engine.state.marketList().find((m) => m.zone === b.zone)?.zoneHex.toLowerCase()}:${b.intervalStart}`);
    const depth = rec ? rec.book.depth(10) : { bids: [], asks: [] };
    hub.publish(channel, "book", { zone: b.zone, intervalStart: b.intervalStart, status: b.status, bestBid: b.bid, bestAsk: b.ask, lastPrice: b.lastPrice, bids: depth.bids, asks: depth.asks });
  };
  const onFill = (fill: FillRecord) => {
    const channel = `trading.market.${zoneOfBook(fill.book)}`;
    if (hub.hasSubscribers(channel)) hub.publish(channel, "trade", tradeMessage(fill));
  };
  const onFillUpdate = (fill: FillRecord) => {
    const channel = `trading.market.${zoneOfBook(fill.book)}`;
    if (hub.hasSubscribers(channel)) hub.publish(channel, "tradeUpdate", tradeMessage(fill));
  };
  // Published after the bridge's commit, for MQTT and REST readings alike.
  const onReadings = (readings: CommittedReading[]) => {
    const consumption = hub.hasSubscribers(CONSUMPTION_CHANNEL);
    const generation = hub.hasSubscribers(GENERATION_CHANNEL);
    if (!consumption && !generation) return;
    for (const r of readings) {
      if (consumption && (r.metric === "import" || r.metric === "interval")) hub.publish(CONSUMPTION_CHANNEL, "reading", readingMessage(r, "import"));
      if (generation && (r.metric === "export" || r.metric === "interval")) hub.publish(GENERATION_CHANNEL, "reading", readingMessage(r, "export"));
    }
  };
  engine.events.on("book", onBook);
  engine.events.on("fill", onFill);
  engine.events.on("fillUpdate", onFillUpdate);
  bridge?.events.on("readings", onReadings);
  return () => {
    engine.events.off("book", onBook);
    engine.events.off("fill", onFill);
    engine.events.off("fillUpdate", onFillUpdate);
    bridge?.events.off("readings", onReadings);
  };
}
