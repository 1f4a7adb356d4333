// The node's configuration: defaults run everything embedded; each wrong setting is refused
// with an error naming the variable (or the config file's field) and its rule.
import { expect } from "chai";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { NodeConfigError, readConfigFile, readNodeConfig } from "../../server/config.js";

function refused(fn: () => unknown, setting: string, rule: RegExp) {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(NodeConfigError);
    expect((err as NodeConfigError).setting).to.equal(setting);
    expect((err as Error).message).to.match(rule);
    return;
  }
  expect.fail(`expected ${setting} to be refused`);
}

describe("node configuration", () => {
  it("defaults to the embedded parts on 127.0.0.1", () => {
    const c = readNodeConfig({}, {});
    expect(c.port).to.equal(8080);
    expect(c.chain.port).to.equal(8545);
    expect(c.mqtt.port).to.equal(1883);
    expect(c.chain.rpcUrl).to.equal(undefined);
    expect(c.databaseUrl).to.equal(undefined);
    expect(c.mqtt.url).to.equal(undefined);
    expect(c.markets.map((m) => m.zone)).to.deep.equal(["ZONE-A", "ZONE-B"]);
    expect(c.clock).to.equal("system");
  });

  it("takes the real parts from the environment", () => {
    const key = `0x${"11".repeat(32)}`;
    const c = readNodeConfig({ CHAIN_RPC_URL: "http://10.0.0.2:8545", MATCHER_PRIVATE_KEY: key, METER_ORACLE_PRIVATE_KEY: key, DATABASE_URL: "postgres://u@db/x", MQTT_URL: "mqtt://broker:1883", PORT: "9000" }, {});
    expect(c.chain.rpcUrl).to.equal("http://10.0.0.2:8545");
    expect(c.databaseUrl).to.equal("postgres://u@db/x");
    expect(c.mqtt.url).to.equal("mqtt://broker:1883");
    expect(c.port).to.equal(9000);
  });

  it("names the variable and the rule of a wrong setting", () => {
    refused(() => readNodeConfig({ PORT: "80000" }, {}), "PORT", /whole number from 0 to 65535/);
    refused(() => readNodeConfig({ DATABASE_URL: "mysql://x" }, {}), "DATABASE_URL", /postgres/);
    refused(() => readNodeConfig({ MQTT_URL: "not a url" }, {}), "MQTT_URL", /must be a URL/);
    refused(() => readNodeConfig({ CHAIN_RPC_URL: "http://127.0.0.1:8545" }, {}), "MATCHER_PRIVATE_KEY", /required with CHAIN_RPC_URL/);
    refused(() => readNodeConfig({ NODE_CLOCK: "moon" }, {}), "NODE_CLOCK", /system.*chain/);
    refused(() => readNodeConfig({ TIME_ZONE: "Mars/Olympus" }, {}), "TIME_ZONE", /IANA/);
  });

  it("never echoes a private key", () => {
    try {
      readNodeConfig({ CHAIN_RPC_URL: "http://127.0.0.1:8545", MATCHER_PRIVATE_KEY: "0xsecretsecret" }, {});
      expect.fail("accepted a malformed key");
    } catch (err) {
      expect((err as Error).message).to.not.include("secretsecret");
      expect((err as NodeConfigError).setting).to.equal("MATCHER_PRIVATE_KEY");
    }
  });

  it("reads markets and settings from a config file, refusing unknown or bad fields by name", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "node-config-"));
    const file = path.join(dir, "energy.config.json");
    writeFileSync(file, JSON.stringify({ markets: [{ zone: "HARBOUR", mode: "call", feedInTariff: 70_000, retailPrice: 300_000, basePrice: 180_000, gateClosureMinutes: 10 }], timeZone: "Europe/Vienna" }));
    const c = readNodeConfig({ CONFIG_FILE: file });
    expect(c.markets.map((m) => m.zone)).to.deep.equal(["HARBOUR"]);
    expect(c.timeZone).to.equal("Europe/Vienna");

    refused(() => readNodeConfig({}, { colour: "green" }), "config.colour", /is not a setting/);
    refused(() => readNodeConfig({}, { markets: [{ zone: "Z", mode: "call", feedInTariff: 5, retailPrice: 4, basePrice: 4, gateClosureMinutes: 5 }] }), "config.markets[0].feedInTariff", /must not exceed retailPrice/);
    writeFileSync(file, "{ not json");
    refused(() => readConfigFile({ CONFIG_FILE: file }), "CONFIG_FILE", /one JSON object/);
    refused(() => readConfigFile({ CONFIG_FILE: path.join(dir, "missing.json") }), "CONFIG_FILE", /cannot be read \(ENOENT\)/);
  });
});
