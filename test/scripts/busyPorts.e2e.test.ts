// `npm start` on a busy machine: the default ports (API 8080, chain 8545, MQTT 1883) are taken,
// here by this test itself (and on CI's machines 1883 by a real Mosquitto). The node must come up
// on the next free ports and say so in its banner; a port the user set explicitly and that is
// taken must stop start-up with a message naming the variable.
import { expect } from "chai";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { spawnStart } from "./spawnStart.js";

/** Holds `port` on 127.0.0.1 when it is free; a port someone else holds is just as taken. */
async function occupy(port: number): Promise<net.Server | undefined> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(undefined));
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

describe("npm start on a machine whose default ports are taken", function () {
  this.timeout(240_000);
  const held: net.Server[] = [];
  let dataDir: string;

  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "busy-ports-"));
    for (const port of [8080, 8545, 1883]) {
      const server = await occupy(port);
      if (server) held.push(server);
    }
  });
  after(async () => {
    for (const s of held) await new Promise<void>((r) => s.close(() => r()));
    await rm(dataDir, { recursive: true, force: true });
  });

  it("comes up on the next free ports, names the ones it moved in the banner, and serves on them", async () => {
    const node = await spawnStart({ DATA_DIR: dataDir, DEPLOYMENTS_DIR: path.join(dataDir, "deployments"), TEST_ACCOUNTS: "1" });
    try {
      expect(node.started, node.output()).to.equal(true);
      const out = node.output();
      for (const [what, variable, port] of [["API", "PORT", 8080], ["chain", "CHAIN_PORT", 8545], ["MQTT", "MQTT_PORT", 1883]] as const) {
        expect(out, out).to.match(new RegExp(`note\\s+${what} port ${port} was in use, so ${what} took \\d+ \\(set ${variable} to choose one\\)`));
      }
      const api = /^\s+API\s+(http:\/\/\S+)\/v1\b/m.exec(out)![1]!;
      const rpc = /^\s+JSON-RPC\s+(http:\/\/\S+)/m.exec(out)![1]!;
      const mqttUrl = /^\s+MQTT\s+(mqtt:\/\/\S+)/m.exec(out)![1]!;
      expect(new URL(api).port).to.not.equal("8080");
      expect(new URL(rpc).port).to.not.equal("8545");
      expect(new URL(mqttUrl).port).to.not.equal("1883");
      // The banner's addresses are the real ones.
      expect((await fetch(`${api}/healthz`)).status).to.equal(200);
      const chainId = await (await fetch(rpc, { method: "POST", headers: { "content-type": "application/json" }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' })).json();
      expect(chainId).to.deep.include({ result: "0x7a69" });
      // The embedded chain's operator key is printed (Hardhat's account 0 is public).
      expect(out).to.match(/operator\s+0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 \(registrar\/admin\)\s+key 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80/);
    } finally {
      expect(await node.stop()).to.equal(0);
    }
  });

  for (const [variable, port, what] of [["PORT", 8080, "API"], ["CHAIN_PORT", 8545, "chain"], ["MQTT_PORT", 1883, "MQTT"]] as const) {
    it(`stops with a message naming ${variable} when ${variable}=${port} is set and taken`, async () => {
      const node = await spawnStart({ DATA_DIR: dataDir, DEPLOYMENTS_DIR: path.join(dataDir, "deployments"), TEST_ACCOUNTS: "1", [variable]: String(port) });
      const code = await node.exited;
      expect(node.started).to.equal(false);
      expect(code).to.equal(1);
      const out = node.output();
      expect(out).to.match(new RegExp(`${what}: cannot start|${what}: 127\\.0\\.0\\.1:${port} is already in use`));
      expect(out).to.contain(`127.0.0.1:${port} is already in use`);
      expect(out).to.contain(variable);
    });
  }
});
