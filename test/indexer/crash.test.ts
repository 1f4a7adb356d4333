// Crash safety: `npm run indexer` (indexer/main.ts) in a child process, SIGKILLed mid-backfill
// and mid-realtime at seeded points, then restarted; in the end the database must equal a
// fresh index of the same chain: no event lost, none doubled, every derived row the same.
//
// Mid-backfill, a proxy between the child and the chain stops answering after a seeded number
// of log ranges, so the kill is certain to land before the backfill is done (and, after a
// seeded few milliseconds, often while the last range is being written). Mid-realtime, the
// kill follows a seeded number of block commits while new blocks keep arriving.
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import { writeDeployment } from "../../contracts/client/deploy.js";
import { openDatabase } from "../../lib/database.js";
import { getCheckpoint } from "../../indexer/store/checkpoints.js";
import type { IndexerDatabase } from "../../indexer/store/schema.js";
import {
  databaseTargets, dumpTables, indexOnce, mine, openTestDatabase, send, settleFills, startMarketChain,
  type MarketChain, type ProvenTrade, type TestDatabaseTarget,
} from "./fixtures.js";
import { runScenario } from "./scenario.js";
import { mulberry32 } from "../../lib/random.js";

const random = mulberry32;

/** Forwards JSON-RPC to the chain until told to hold: then it answers nothing more. */
async function startGate(upstream: string) {
  let rangesLeft = Infinity;
  let onHold: (() => void) | undefined;
  let holding = false;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      // A log-range request (not the realtime by-hash one) counts towards the hold.
      if (!holding && /"eth_getLogs"/.test(body) && /"fromBlock"/.test(body)) {
        if (rangesLeft <= 0) {
          holding = true;
          onHold?.();
        }
        rangesLeft--;
      }
      if (holding) return; // never answered: the child waits until it is killed
      void fetch(upstream, { method: "POST", headers: { "content-type": "application/json" }, body })
        .then(async (r) => response.writeHead(r.status, { "content-type": "application/json" }).end(await r.text()))
        .catch(() => response.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    /** Resolves when the child asks for range `ranges + 1`. */
    holdAfter(ranges: number): Promise<void> {
      rangesLeft = ranges;
      holding = false;
      return new Promise((resolve) => (onHold = resolve));
    },
    open() {
      rangesLeft = Infinity;
      holding = false;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Child {
  process: ChildProcess;
  /** Resolves with the exit code (null when killed). */
  exited: Promise<{ code: number | null; signal: string | null; stderr: string }>;
  onLog(listener: (line: { msg?: string }) => void): void;
}

function startIndexerProcess(env: Record<string, string>, args: string[]): Child {
  // node itself, not the tsx wrapper: SIGKILL must hit the process that holds the database.
  const child = spawn(process.execPath, ["--import", "tsx", "indexer/main.ts", ...args], {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const listeners: ((line: { msg?: string }) => void)[] = [];
  let buffered = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("utf8");
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const text = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      try {
        const line = JSON.parse(text) as { msg?: string };
        for (const l of listeners) l(line);
      } catch {
        // not a log line
      }
    }
  });
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  const exited = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, stderr })));
  return { process: child, exited, onLog: (l) => listeners.push(l) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("indexer: crash safety (SIGKILL at seeded points, then restart)", function () {
  let m: MarketChain;
  let deploymentsDir: string;
  let open: ProvenTrade[] = [];

  before(async () => {
    m = await startMarketChain();
    const s = await runScenario(m);
    open = [s.trades.listingOpen];
    for (let i = 0; i < 6; i++) {
      const { trades } = await settleFills(m, Array.from({ length: 4 }, (_, j) => ({ buyer: m.buyers[(i + j) % 5]!, seller: m.sellers[j % 5]!, energyWh: BigInt(100 * (i + 1) + j) })));
      open.push(...trades);
      await mine(m, 2);
    }
    deploymentsDir = await mkdtemp(path.join(tmpdir(), "indexer-crash-"));
    await writeDeployment(deploymentsDir, m.deployment);
  });
  after(async () => {
    await m?.close();
    if (deploymentsDir) await rm(deploymentsDir, { recursive: true, force: true });
  });

  /** One block of traffic: a trade released early, or a new one-trade batch. */
  async function traffic(rand: () => number): Promise<void> {
    const t = open.shift();
    if (t && rand() < 0.5) {
      await send(m, t.trade.buyer, m.market, energyMarketAbi, "releaseEarly", [t.trade, t.proof]);
    } else {
      const { trades } = await settleFills(m, [{ buyer: m.buyers[Math.floor(rand() * 5)]!, seller: m.sellers[Math.floor(rand() * 5)]!, energyWh: BigInt(1 + Math.floor(rand() * 999)) }]);
      open.push(...trades);
    }
  }

  const plan: { target: TestDatabaseTarget; seed: number }[] = [];
  for (const seed of [11, 12, 13]) plan.push({ target: databaseTargets[0]!, seed });
  if (databaseTargets[1]) for (const seed of [21, 22]) plan.push({ target: databaseTargets[1], seed });

  for (const { target, seed } of plan) {
    it(`${target.name}, seed ${seed}: equals a fresh index after kills mid-backfill and mid-realtime`, async () => {
      const rand = random(seed);
      const gate = await startGate(m.url);
      const dataDir = await mkdtemp(path.join(tmpdir(), "indexer-crash-db-"));
      const pg = target.url ? await openTestDatabase(target) : undefined;
      const env: Record<string, string> = {
        INDEXER_RPC_URL: gate.url,
        DEPLOYMENTS_DIR: deploymentsDir,
        INDEXER_API: "false",
        INDEXER_FINALITY_DEPTH: "12",
        INDEXER_BLOCK_RANGE: "3",
        INDEXER_MAX_BLOCK_RANGE: "3",
        INDEXER_POLL_INTERVAL_MS: "20",
        INDEXER_RPC_MAX_RETRIES: "3",
        ...(pg ? { DATABASE_URL: pg.url! } : { INDEXER_DATA_DIR: dataDir }),
      };
      const openDb = async () => {
        const opened = await openDatabase<IndexerDatabase>(pg ? { url: pg.url! } : { dataDir });
        return opened;
      };
      try {
        // 1. Mid-backfill: the gate holds after a seeded number of ranges; kill a few ms later.
        const ranges = 2 + Math.floor(rand() * 6);
        const held = gate.holdAfter(ranges);
        const first = startIndexerProcess(env, ["--once"]);
        await Promise.race([held, first.exited.then((e) => Promise.reject(new Error(`indexer exited before the gate held: ${e.code} ${e.stderr}`)))]);
        await sleep(Math.floor(rand() * 15));
        first.process.kill("SIGKILL");
        const firstExit = await first.exited;
        expect(firstExit.signal, firstExit.stderr).to.equal("SIGKILL");
        gate.open();
        {
          const db = await openDb();
          const cp = await getCheckpoint(db.db, m.chainId);
          const head = await m.client.getBlockNumber();
          expect(cp === undefined || cp.block_number < head, "the kill left the backfill unfinished").to.equal(true);
          await db.close();
        }

        // 2. Mid-realtime: follow the head while blocks arrive; kill after a seeded number of block commits.
        const commitsBeforeKill = 1 + Math.floor(rand() * 4);
        const second = startIndexerProcess(env, []);
        let blockCommits = 0;
        let killAt: Promise<void> | undefined;
        const delay = Math.floor(rand() * 20);
        second.onLog((line) => {
          if (line.msg === "indexed block" && ++blockCommits === commitsBeforeKill) {
            killAt = sleep(delay).then(() => void second.process.kill("SIGKILL"));
          }
        });
        let stopped = false;
        void second.exited.then(() => (stopped = true));
        const deadline = Date.now() + 60_000;
        while (!stopped && Date.now() < deadline) {
          // New blocks arrive once the child follows the head (its first block commits).
          if (blockCommits > 0) await traffic(rand);
          await sleep(15);
        }
        if (!stopped) second.process.kill("SIGKILL");
        await killAt;
        const secondExit = await second.exited;
        expect(blockCommits, secondExit.stderr).to.be.at.least(commitsBeforeKill);
        expect(secondExit.signal, secondExit.stderr).to.equal("SIGKILL");

        // 3. Restart to the head and compare with a fresh index of the same chain.
        await traffic(rand);
        const third = startIndexerProcess(env, ["--once"]);
        const thirdExit = await third.exited;
        expect(thirdExit.code, thirdExit.stderr).to.equal(0);
        const db = await openDb();
        const fresh = await openTestDatabase(target);
        try {
          await indexOnce(m, fresh.db);
          const restarted = await dumpTables(db.db);
          expect(restarted.indexer_events!.length).to.equal((await dumpTables(fresh.db)).indexer_events!.length);
          expect(restarted).to.deep.equal(await dumpTables(fresh.db));
        } finally {
          await fresh.close();
          await db.close();
        }
      } finally {
        await gate.close();
        await pg?.close();
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  }
});
