// The bridge process killed (SIGKILL) with its outbox half sent, then started again: every due
// trade ends confirmed exactly once. Phase 1 decides the window in-process while broadcasts are
// refused, leaving a signed-but-never-broadcast transaction; then `tsx bridge/main.ts` runs as a
// real child process: it re-broadcasts that one, sends the next, and is killed the moment the
// chain has mined that next one, before it can record it; a second process finishes.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { expect } from "chai";
import { openBridgeDatabase } from "../../bridge/database.js";
import { startRpcProxy, type RpcProxy } from "./faultInjection.js";
import {
  addProsumer, connectDevice, createSchema, deliveryEvents, intervalReading, ORACLE_KEY, pastWindow, readingTopic, restartableAedes,
  settleTrades, startTestBridge, startTestChain, testSettings, urlWithSchema, waitForMetrics, type Prosumer, type TestChain,
} from "./harness.js";

interface ChildBridge {
  proc: ChildProcess;
  /** Resolves when the process logs a line matching `predicate`. */
  waitForLog(predicate: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
  output: string[];
}

function spawnBridge(env: Record<string, string>): ChildBridge {
  // Node itself with tsx as a loader, so the pid is the bridge's (the tsx CLI would fork a grandchild).
  const proc = spawn(process.execPath, ["--import", "tsx", "bridge/main.ts"], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const waiters: { predicate: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  const onLine = (line: string) => {
    output.push(line);
    if (process.env.BRIDGE_TEST_DEBUG) console.log(`[child ${proc.pid}] ${line}`);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    for (const w of [...waiters]) {
      if (w.predicate(parsed)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(parsed);
      }
    }
  };
  createInterface({ input: proc.stdout! }).on("line", onLine);
  createInterface({ input: proc.stderr! }).on("line", onLine);
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  return {
    proc, output, exited,
    waitForLog: (predicate) =>
      Promise.race([
        new Promise<Record<string, unknown>>((resolve) => waiters.push({ predicate, resolve })),
        exited.then((code) => Promise.reject(new Error(`bridge process exited (${code}) first:\n${output.slice(-30).join("\n")}`))),
      ]),
  };
}

const targets: { name: string; available: boolean }[] = [
  { name: "PGlite in a data folder", available: true },
  { name: "PostgreSQL (DATABASE_URL)", available: Boolean(process.env.DATABASE_URL) },
];

for (const target of targets) {
  describe(`bridge killed with the outbox half sent (${target.name})`, function () {
    if (!target.available) return;
    let chain: TestChain;
    let aedes: Awaited<ReturnType<typeof restartableAedes>>;
    let proxy: RpcProxy;
    const children: ChildBridge[] = [];
    let dropSchema: (() => Promise<void>) | undefined;
    let dataDir: string | undefined;

    before(async () => {
      [chain, aedes] = await Promise.all([startTestChain(), restartableAedes()]);
      proxy = await startRpcProxy(chain.url);
    });
    after(async () => {
      for (const c of children) if (c.proc.exitCode === null) c.proc.kill("SIGKILL");
      await proxy?.close();
      await Promise.all([chain?.close(), aedes?.close()]);
      await dropSchema?.();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    it("re-broadcasts or recognises what was sent and confirms every trade exactly once", async () => {
      const settings = testSettings({ reportBatchSize: 2 });
      const w = pastWindow(2);
      const suffix = settings.topicRoot.slice(-4);
      const people = (await Promise.all(["S1", "B1", "S2", "B2", "S3", "B3"].map((id) => addProsumer(chain, `${id}-${suffix}`)))) as Prosumer[];
      const [s1, b1, s2, b2, s3, b3] = people;
      // Six trades, three batches of two reports.
      const trades = await settleTrades(chain, [
        { seller: s1!, buyer: b1!, energyWh: 500n }, { seller: s1!, buyer: b2!, energyWh: 500n },
        { seller: s2!, buyer: b1!, energyWh: 400n }, { seller: s2!, buyer: b3!, energyWh: 400n },
        { seller: s3!, buyer: b2!, energyWh: 300n }, { seller: s3!, buyer: b3!, energyWh: 300n },
      ], w.start, w.end);

      let databaseUrl: string | undefined;
      if (process.env.DATABASE_URL && target.name.startsWith("PostgreSQL")) {
        const s = await createSchema(process.env.DATABASE_URL);
        dropSchema = s.drop;
        databaseUrl = urlWithSchema(process.env.DATABASE_URL, s.schema);
      } else {
        dataDir = await mkdtemp(path.join(tmpdir(), "bridge-crash-"));
      }

      // Phase 1, in-process: readings in, window decided, broadcasts refused.
      const opened = await openBridgeDatabase({ url: databaseUrl, dataDir });
      let nowMs = w.endMs + 1_000;
      const bridge = await startTestBridge({ chain, mqttUrl: aedes.url, db: opened.db, settings, clock: () => nowMs, rpcUrl: proxy.url });
      const device = await connectDevice(aedes.url);
      const t = (m: Prosumer, metric: string) => readingTopic(settings.topicRoot, m.meterId, metric);
      for (const s of [s1, s2, s3]) await device.publish(t(s!, "interval"), intervalReading(w.startMs, 1_000, 0));
      for (const b of [b1, b2, b3]) await device.publish(t(b!, "interval"), intervalReading(w.startMs, 0, 1_000));
      await waitForMetrics(bridge, (m) => m.accepted === 6, "all readings");
      await device.close();
      proxy.mode = "failSend";
      nowMs = w.endMs + 301_000;
      await bridge.tick();
      expect(bridge.metrics().tradesDecided).to.equal(6);
      await bridge.close();
      const states = await opened.db.selectFrom("bridge_outbox").select(["state", "tx_hash"]).execute();
      expect(states.filter((s) => s.state === "in_flight")).to.have.length(2);
      expect(states.filter((s) => s.state === "pending")).to.have.length(4);
      await opened.close();

      // Phase 2: a real process; killed right after the chain mined its second broadcast.
      const env = {
        METER_ORACLE_PRIVATE_KEY: ORACLE_KEY, CHAIN_RPC_URL: proxy.url, MQTT_URL: aedes.url,
        BRIDGE_MARKET_ADDRESS: chain.market, BRIDGE_REGISTRY_ADDRESS: chain.registry, BRIDGE_START_BLOCK: String(chain.startBlock),
        BRIDGE_TOPIC_ROOT: settings.topicRoot, BRIDGE_MQTT_CLIENT_ID: settings.mqttClientId, BRIDGE_REPORT_BATCH_SIZE: "2",
        BRIDGE_TICK_MS: "100", BRIDGE_RETRY_MIN_MS: "100", BRIDGE_RETRY_MAX_MS: "400",
        ...(databaseUrl ? { DATABASE_URL: databaseUrl } : { BRIDGE_DATA_DIR: dataDir! }),
      };
      proxy.mode = "up";
      const sendsBefore = proxy.sends;
      const first = spawnBridge(env);
      children.push(first);
      const killed = new Promise<void>((resolve) => {
        proxy.onSend = (n) => (n === sendsBefore + 2 ? "forward-then-cut" : "forward");
        proxy.onForwarded = (n) => {
          if (n === sendsBefore + 2) {
            first.proc.kill("SIGKILL");
            resolve();
          }
        };
      });
      await Promise.race([killed, first.exited.then((code) => Promise.reject(new Error(`bridge process exited (${code}) before the kill:\n${first.output.slice(-30).join("\n")}`)))]);
      await first.exited;
      proxy.onSend = undefined;
      proxy.onForwarded = undefined;
      const midway = await deliveryEvents(chain);
      expect(midway.confirmed, "two batches on-chain when the process died").to.have.length(4);

      // Phase 3: started again, it finds the mined batch by its hash and sends the last one.
      const second = spawnBridge(env);
      children.push(second);
      await second.waitForLog((l) => l.msg === "delivery reports on-chain" && l.pending === 0);
      second.proc.kill("SIGTERM");
      expect(await second.exited).to.equal(0);

      const { confirmed } = await deliveryEvents(chain);
      for (const tr of trades) {
        const mine = confirmed.filter((c) => c.tradeId === tr.tradeId);
        expect(mine, `trade ${tr.tradeId}`).to.have.length(1);
        expect(mine[0]!.deliveredWh).to.equal(tr.energyWh);
      }
      expect(confirmed).to.have.length(6);
      const reopened = await openBridgeDatabase({ url: databaseUrl, dataDir });
      const rows = await reopened.db.selectFrom("bridge_outbox").select(["state", "outcome"]).execute();
      await reopened.close();
      expect(rows.map((r) => `${r.state}/${r.outcome}`)).to.deep.equal(Array(6).fill("done/confirmed"));
    });
  });
}
