// What the node pushes on the WebSocket channels: the engine's book and trade changes on
// `trading.market.{zone}`, the bridge's committed readings on `consumption.real-time` and
// `generation.solar`. Returns a function that unhooks everything.
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

export function wireRealtime({ hub, engine }: WireRealtimeParameters): () => void {
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
  engine.events.on("book", onBook);
  engine.events.on("fill", onFill);
  engine.events.on("fillUpdate", onFillUpdate);
  return () => {
    engine.events.off("book", onBook);
    engine.events.off("fill", onFill);
    engine.events.off("fillUpdate", onFillUpdate);
  };
}
