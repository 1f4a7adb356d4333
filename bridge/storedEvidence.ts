// Where a decided trade's evidence is kept: its window's document (bridge_evidence, version 3),
// or, for decisions from before it, the trade's own version-2 document in bridge_decisions.
import type { Kysely } from "kysely";
import type { BridgeDatabase } from "./database.js";

/** The exact bytes whose keccak256 the trade's report carries; undefined while it is undecided. */
export async function readStoredEvidence(db: Kysely<BridgeDatabase>, tradeId: bigint): Promise<string | undefined> {
  const row = await db
    .selectFrom("bridge_decisions as d")
    .leftJoin("bridge_evidence as e", "e.evidence_hash", "d.evidence_hash")
    .select(["d.evidence as own", "e.evidence as window"])
    .where("d.trade_id", "=", tradeId)
    .executeTakeFirst();
  return row?.own ?? row?.window ?? undefined;
}
