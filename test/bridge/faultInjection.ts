// Tools for the fault tests: a JSON-RPC proxy in front of the chain that can refuse
// connections, fail transaction broadcasts, or forward a broadcast and then cut the answer
// (the transaction is mined, the sender never hears of it); and a Mosquitto process of our own
// that can be stopped and started again with its persistence file.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../../lib/listenOnPort.js";

export { freePort };

export type ProxyMode = "up" | "refuse" | "failSend" | "dropAfterSend";

export interface RpcProxy {
  url: string;
  mode: ProxyMode;
  /** Broadcasts seen (eth_sendRawTransaction), forwarded or not. */
  sends: number;
  /** Called on each broadcast before it is forwarded; return "forward-then-cut" or "cut" to interfere. */
  onSend?: (n: number) => "forward" | "forward-then-cut" | "cut";
  /** Called after the chain answered a forwarded broadcast, before the answer goes back. */
  onForwarded?: (n: number) => void;
  close(): Promise<void>;
}

export async function startRpcProxy(target: string): Promise<RpcProxy> {
  const sockets = new Set<net.Socket>();
  const proxy: RpcProxy = { url: "", mode: "up", sends: 0, close: async () => {} };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        if (proxy.mode === "refuse") {
          req.socket.destroy();
          return;
        }
        const body = Buffer.concat(chunks).toString("utf8");
        const parsed = JSON.parse(body) as { method: string } | { method: string }[];
        const methods = (Array.isArray(parsed) ? parsed : [parsed]).map((r) => r.method);
        const sending = methods.includes("eth_sendRawTransaction");
        let action: "forward" | "forward-then-cut" | "cut" = "forward";
        if (sending) {
          proxy.sends++;
          action = proxy.onSend?.(proxy.sends) ?? (proxy.mode === "failSend" ? "cut" : proxy.mode === "dropAfterSend" ? "forward-then-cut" : "forward");
        }
        if (action === "cut") {
          res.writeHead(503, { "content-type": "text/plain" }).end("proxy: broadcast refused");
          return;
        }
        const answer = await fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body });
        const text = await answer.text();
        if (sending) proxy.onForwarded?.(proxy.sends);
        if (action === "forward-then-cut") {
          req.socket.destroy();
          return;
        }
        res.writeHead(answer.status, { "content-type": "application/json" }).end(text);
      })().catch(() => req.socket.destroy());
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  proxy.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  proxy.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return proxy;
}

export function mosquittoAvailable(): boolean {
  return existsSync("/usr/sbin/mosquitto") || existsSync("/usr/bin/mosquitto") || existsSync("/usr/local/sbin/mosquitto");
}

function mosquittoBinary(): string {
  return ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"].find((p) => existsSync(p)) ?? "mosquitto";
}

export interface OwnMosquitto {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A Mosquitto on a free port with persistence in a temp folder (saved when it stops). */
export async function startOwnMosquitto(): Promise<OwnMosquitto> {
  const dir = await mkdtemp(path.join(tmpdir(), "bridge-mosquitto-"));
  const conf = path.join(dir, "mosquitto.conf");
  let port = 0;
  const configure = async () => {
    port = await freePort();
    await writeFile(conf, [
      `listener ${port} 127.0.0.1`, "allow_anonymous true", "persistence true", `persistence_location ${dir}/`,
      // Run as whoever started us (root in CI), so it can write the persistence folder.
      ...(process.getuid?.() === 0 ? ["user root"] : []),
      "max_queued_messages 100000", "",
    ].join("\n"));
  };
  let proc: ChildProcess | undefined;
  const start = async () => {
    proc = spawn(mosquittoBinary(), ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
    await new Promise<void>((resolve, reject) => {
      let log = "";
      const onData = (d: Buffer) => {
        log += d.toString();
        // Mosquitto says it is serving once its listener is open.
        if (/mosquitto version [\d.]+ running/.test(log)) resolve();
      };
      proc!.stdout!.on("data", onData);
      proc!.stderr!.on("data", onData);
      proc!.once("exit", (code) => reject(new Error(`mosquitto exited (${code}): ${log}`)));
    });
  };
  const stop = async () => {
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise<void>((r) => proc!.once("exit", () => r()));
    proc.kill("SIGTERM");
    await exited;
  };
  // The free port is only free when asked: another process may take it before Mosquitto binds.
  // The first start picks again then; a restart keeps its port (the clients reconnect to it).
  for (let attempt = 1; ; attempt++) {
    await configure();
    try {
      await start();
      break;
    } catch (err) {
      if (attempt >= 5 || !/address already in use|Error: Address/i.test((err as Error).message)) throw err;
    }
  }
  return {
    url: `mqtt://127.0.0.1:${port}`, start, stop,
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
