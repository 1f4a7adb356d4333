// Lets the embedded chain start at a simulated instant instead of wall-clock time. The chain's
// contracts compare block.timestamp with delivery windows and expiries, so a simulated day must
// happen in chain time too, and block time only moves forward: a day in the past (or the day
// before a date in the future) needs a chain whose genesis lies before it.
//
// The node has no setting for that. It does restore an embedded chain from the journal in its
// data folder (scripts/localChain.ts), and a journal's header names the genesis timestamp the
// chain is re-created with. So a journal holding only a header, for a genesis at `unixSeconds`,
// makes startNode begin a fresh chain at that instant. The header must carry the genesis hash
// the node will check, which depends only on the network config and the timestamp: it is read
// from a throwaway network created the same way.
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { network } from "hardhat";
import { ValidationError } from "../lib/errors.js";

/** scripts/localChain.ts CHAIN_JOURNAL_FILE, under startNode's `${dataDir}/chain`. */
const JOURNAL = path.join("chain", "chain-journal.ndjson");

interface RawProvider {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

/**
 * Prepares `dataDir` (startNode's DATA_DIR, which must not hold a chain yet) so the embedded
 * chain's genesis block is at `unixSeconds`.
 */
export async function prepareChainGenesis(dataDir: string, unixSeconds: number): Promise<void> {
  const file = path.join(dataDir, JOURNAL);
  if (existsSync(file)) throw new ValidationError("dataDir", `already holds a chain (${file}); the demo needs a fresh data folder`, { code: "data_dir_not_fresh" });
  const connection = await network.create({ override: { initialDate: new Date(unixSeconds * 1000) } });
  let header: object;
  try {
    const provider = connection.provider as unknown as RawProvider;
    const genesis = (await provider.request({ method: "eth_getBlockByNumber", params: ["0x0", false] })) as { hash: string; timestamp: string };
    if (Number(genesis.timestamp) !== unixSeconds) throw new Error(`the chain's genesis came out at ${Number(genesis.timestamp)}, not ${unixSeconds}`);
    // The chain clock's offset from wall time; the node compares it on start and only ever
    // moves the clock forward by the difference (the seconds between here and there).
    const offset = Number(await provider.request({ method: "evm_increaseTime", params: [0] }));
    header = { journal: "p2p-energy-chain", version: 1, genesis: { timestamp: unixSeconds, hash: genesis.hash }, offset };
  } finally {
    await connection.close();
  }
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(header)}\n`);
}
