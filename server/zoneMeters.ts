// The meter ids registered in a grid zone, from the indexer's copy of the prosumer registry:
// what zone forecasts and the orchestrator's measured balance sum over.
import { sql, type Kysely } from "kysely";
import type { Hex } from "viem";
import { bytes32ToMeterId } from "../bridge/meterDirectory.js";

export interface ZoneMetersDatabase {
  indexer_prosumers: { chain_id: number; meter_id: string; zone: string };
}

export async function zoneMeterIds(db: Kysely<ZoneMetersDatabase>, chainId: number, zoneHex: Hex): Promise<string[]> {
  const rows = await db.selectFrom("indexer_prosumers").select("meter_id").where("chain_id", "=", chainId).where(sql<string>`lower(zone)`, "=", zoneHex.toLowerCase()).execute();
  return rows.map((r) => bytes32ToMeterId(r.meter_id as Hex)).filter((m) => m.length > 0);
}
