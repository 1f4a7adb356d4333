// Configuration: defaults, and a wrong value names the variable and its rule (never a secret).
import { expect } from "chai";
import { readBridgeConfig } from "../../bridge/config.js";
import { BridgeConfigError } from "../../bridge/errors.js";

const KEY = `0x${"ab".repeat(32)}`;

describe("bridge configuration", () => {
  it("has defaults for everything but the oracle key", () => {
    const c = readBridgeConfig({ METER_ORACLE_PRIVATE_KEY: KEY });
    expect(c).to.deep.include({
      mqttUrl: undefined, embeddedBroker: { host: "127.0.0.1", port: 1883, portExplicit: false }, mqttClientId: "meter-bridge", topicRoot: "energy-cloud",
      chainRpcUrl: "http://127.0.0.1:8545", deploymentsDir: "deployments", databaseUrl: undefined, dataDir: ".data/bridge",
      intervalSeconds: 900, graceSeconds: 300, maxClockSkewSeconds: 120, retentionSeconds: 48 * 3600, allocation: "fifo",
      plausibilityMarginPct: 10, maxPayloadBytes: 4096, reportBatchSize: 100,
    });
  });

  it("reads every variable", () => {
    const c = readBridgeConfig({
      METER_ORACLE_PRIVATE_KEY: KEY, MQTT_URL: "mqtt://broker:1883", BRIDGE_MQTT_PORT: "0", BRIDGE_ALLOCATION: "pro-rata",
      BRIDGE_INTERVAL_MINUTES: "5", BRIDGE_GRACE_SECONDS: "60", DATABASE_URL: "postgres://u:p@h/db", BRIDGE_START_BLOCK: "12",
      BRIDGE_MARKET_ADDRESS: "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0",
    });
    expect(c.mqttUrl).to.equal("mqtt://broker:1883");
    expect(c.embeddedBroker.port).to.equal(0);
    expect(c.allocation).to.equal("pro-rata");
    expect(c.intervalSeconds).to.equal(300);
    expect(c.graceSeconds).to.equal(60);
    expect(c.startBlock).to.equal(12n);
    expect(c.marketAddress).to.equal("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0");
  });

  it("reads the names npm start and the indexer use (MQTT_PORT, DATA_DIR, MARKET_ADDRESS, ...), the BRIDGE_ ones as aliases", () => {
    const canonical = readBridgeConfig({
      METER_ORACLE_PRIVATE_KEY: KEY, MQTT_HOST: "0.0.0.0", MQTT_PORT: "1884", DATA_DIR: "/var/lib/bridge", START_BLOCK: "7",
      MARKET_ADDRESS: "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0", REGISTRY_ADDRESS: "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512",
      // The canonical name wins over its alias.
      BRIDGE_MQTT_PORT: "1999",
    });
    expect(canonical.embeddedBroker).to.deep.equal({ host: "0.0.0.0", port: 1884, portExplicit: true });
    expect(canonical.dataDir).to.equal("/var/lib/bridge");
    expect(canonical.startBlock).to.equal(7n);
    expect(canonical.registryAddress).to.equal("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512");
    const alias = readBridgeConfig({ METER_ORACLE_PRIVATE_KEY: KEY, BRIDGE_MQTT_PORT: "1885", BRIDGE_DATA_DIR: "/tmp/b" });
    expect(alias.embeddedBroker).to.deep.equal({ host: "127.0.0.1", port: 1885, portExplicit: true });
    expect(alias.dataDir).to.equal("/tmp/b");
    expect(() => readBridgeConfig({ METER_ORACLE_PRIVATE_KEY: KEY, MQTT_PORT: "x" })).to.throw(BridgeConfigError, /^MQTT_PORT="x": must be an integer/);
  });

  it("reads FINALITY_DEPTH, the one name with the indexer and the node (BRIDGE_FINALITY_DEPTH as alias); unset, main.ts takes the chain's default", () => {
    expect(readBridgeConfig({ METER_ORACLE_PRIVATE_KEY: KEY }).finalityDepth).to.equal(undefined);
    expect(readBridgeConfig({ METER_ORACLE_PRIVATE_KEY: KEY, FINALITY_DEPTH: "0" }).finalityDepth).to.equal(0);
    expect(readBridgeConfig({ METER_ORACLE_PRIVATE_KEY: KEY, BRIDGE_FINALITY_DEPTH: "20", FINALITY_DEPTH: "5" }).finalityDepth).to.equal(5);
    expect(readBridgeConfig({ METER_ORACLE_PRIVATE_KEY: KEY, BRIDGE_FINALITY_DEPTH: "20" }).finalityDepth).to.equal(20);
    expect(() => readBridgeConfig({ METER_ORACLE_PRIVATE_KEY: KEY, FINALITY_DEPTH: "-1" })).to.throw(BridgeConfigError, /^FINALITY_DEPTH="-1": must be an integer from 0 to 10000$/);
  });

  const bad: [Record<string, string>, RegExp][] = [
    [{}, /^METER_ORACLE_PRIVATE_KEY: required/],
    [{ METER_ORACLE_PRIVATE_KEY: "0x1234" }, /^METER_ORACLE_PRIVATE_KEY: must be 0x followed by 64 hex digits$/],
    [{ MQTT_URL: "localhost:1883" }, /^MQTT_URL="localhost:1883": must use one of mqtt:\/\//],
    [{ MQTT_URL: "http://x" }, /^MQTT_URL="http:\/\/x": must use one of/],
    [{ BRIDGE_MQTT_PORT: "70000" }, /^BRIDGE_MQTT_PORT="70000": must be an integer from 0 to 65535$/],
    [{ BRIDGE_ALLOCATION: "lifo" }, /^BRIDGE_ALLOCATION="lifo": must be "fifo"/],
    [{ BRIDGE_INTERVAL_MINUTES: "7" }, /^BRIDGE_INTERVAL_MINUTES="7": must divide a day/],
    [{ BRIDGE_GRACE_SECONDS: "-1" }, /^BRIDGE_GRACE_SECONDS="-1": must be an integer/],
    [{ DATABASE_URL: "mysql://x" }, /^DATABASE_URL="mysql:\/\/x": must use one of postgres:/],
    [{ BRIDGE_MARKET_ADDRESS: "0x12" }, /^BRIDGE_MARKET_ADDRESS="0x12": must be a 0x-prefixed 20-byte address$/],
    [{ BRIDGE_TOPIC_ROOT: "a/b" }, /^BRIDGE_TOPIC_ROOT="a\/b": must be one topic level/],
    [{ BRIDGE_RETRY_MIN_MS: "5000", BRIDGE_RETRY_MAX_MS: "100" }, /^BRIDGE_RETRY_MAX_MS="100": must be >= BRIDGE_RETRY_MIN_MS/],
    [{ BRIDGE_START_BLOCK: "latest" }, /^BRIDGE_START_BLOCK="latest": must be a block number/],
  ];
  for (const [env, message] of bad) {
    it(`rejects ${JSON.stringify(env)}`, () => {
      const full = "METER_ORACLE_PRIVATE_KEY" in env || Object.keys(env).length === 0 ? env : { METER_ORACLE_PRIVATE_KEY: KEY, ...env };
      expect(() => readBridgeConfig(full)).to.throw(BridgeConfigError, message);
    });
  }

  it("never echoes the key or a URL's password", () => {
    try {
      readBridgeConfig({ METER_ORACLE_PRIVATE_KEY: `0x${"zz".repeat(32)}` });
      expect.fail("should throw");
    } catch (err) {
      expect((err as Error).message).not.to.contain("zz");
    }
    try {
      readBridgeConfig({ METER_ORACLE_PRIVATE_KEY: KEY, MQTT_URL: "http://user:secret@host" });
      expect.fail("should throw");
    } catch (err) {
      expect((err as Error).message).not.to.contain("secret");
    }
  });
});
