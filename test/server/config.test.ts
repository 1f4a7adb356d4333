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
    const c = readNodeConfig({
      CHAIN_RPC_URL: "http://10.0.0.2:8545", MATCHER_PRIVATE_KEY: key, METER_ORACLE_PRIVATE_KEY: key, DATABASE_URL: "postgres://u@db/x", MQTT_URL: "mqtt://broker:1883", PORT: "9000",
      SIWE_DOMAINS: "energy.example.org",
    }, {});
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

  it("orchestrator: the aggregator key and zone, defaulting to no key and the first market's zone", () => {
    expect(readNodeConfig({}, {}).orchestrator).to.deep.equal({ aggregatorZone: "ZONE-A", autoRun: false });
    const key = `0x${"22".repeat(32)}`;
    expect(readNodeConfig({ AGGREGATOR_KEY: key, AGGREGATOR_ZONE: "ZONE-B" }, {}).orchestrator).to.deep.equal({ aggregatorKey: key, aggregatorZone: "ZONE-B", autoRun: false });
    expect(readNodeConfig({ ORCHESTRATOR_AUTO_RUN: "1" }, {}).orchestrator.autoRun).to.equal(true);
    refused(() => readNodeConfig({ ORCHESTRATOR_AUTO_RUN: "yes" }, {}), "ORCHESTRATOR_AUTO_RUN", /1 \(on\) or 0/);
    refused(() => readNodeConfig({ AGGREGATOR_ZONE: "ZONE-Q" }, {}), "AGGREGATOR_ZONE", /ZONE-A, ZONE-B/);
    refused(() => readNodeConfig({ AGGREGATOR_KEY: "0x1234" }, {}), "AGGREGATOR_KEY", /64 hex digits/);
  });

  it("SIWE domains come from configuration only: required with CHAIN_RPC_URL, host[:port] entries", () => {
    const key = `0x${"11".repeat(32)}`;
    const real = { CHAIN_RPC_URL: "http://10.0.0.2:8545", MATCHER_PRIVATE_KEY: key, METER_ORACLE_PRIVATE_KEY: key };
    // Embedded chain: empty, meaning the node's own listening address (startNode binds it after listen).
    expect(readNodeConfig({}, {}).api.siweDomains).to.deep.equal([]);
    refused(() => readNodeConfig(real, {}), "SIWE_DOMAINS", /required with CHAIN_RPC_URL.*never taken from requests/);
    expect(readNodeConfig({ ...real, SIWE_DOMAINS: "energy.example.org, energy.example.org:8443" }, {}).api.siweDomains).to.deep.equal(["energy.example.org", "energy.example.org:8443"]);
    expect(readNodeConfig(real, { siweDomains: ["[::1]:8080"] }).api.siweDomains).to.deep.equal(["[::1]:8080"]);
    refused(() => readNodeConfig({ SIWE_DOMAINS: "https://energy.example.org" }, {}), "SIWE_DOMAINS", /host\[:port\].*no scheme/);
    refused(() => readNodeConfig({ SIWE_DOMAINS: "*" }, {}), "SIWE_DOMAINS", /wildcard/);
    refused(() => readNodeConfig({}, { siweDomains: ["energy.example.org/login"] }), "config.siweDomains", /host\[:port\]/);
  });

  it("sessions and the community wallet's limits: defaults, environment, file, and bad values refused by name", () => {
    const d = readNodeConfig({}, {});
    expect(d.api).to.include({ tokenTtlSeconds: 900, sessionMaxSeconds: 43_200 });
    expect(d.aggregatorLimits).to.deep.equal({ maxSpendPerDay: 50, evPlanMaxOpenPerOwner: 5, evPlanMaxKwhPerOwnerPerDay: 150 });
    const c = readNodeConfig({ SESSION_MAX_SECONDS: "3600", AGGREGATOR_MAX_SPEND_PER_DAY: "12.5" }, { evPlanMaxOpenPerOwner: 2, evPlanMaxKwhPerDay: 40 });
    expect(c.api.sessionMaxSeconds).to.equal(3600);
    expect(c.aggregatorLimits).to.deep.equal({ maxSpendPerDay: 12.5, evPlanMaxOpenPerOwner: 2, evPlanMaxKwhPerOwnerPerDay: 40 });
    refused(() => readNodeConfig({ SESSION_MAX_SECONDS: "10" }, {}), "SESSION_MAX_SECONDS", /whole number from 60/);
    refused(() => readNodeConfig({ AGGREGATOR_MAX_SPEND_PER_DAY: "-1" }, {}), "AGGREGATOR_MAX_SPEND_PER_DAY", /amount of tEUR/);
    refused(() => readNodeConfig({ AGGREGATOR_MAX_SPEND_PER_DAY: "0.1234567" }, {}), "AGGREGATOR_MAX_SPEND_PER_DAY", /at most 6 decimals/);
    refused(() => readNodeConfig({ EV_PLAN_MAX_KWH_PER_DAY: "lots" }, {}), "EV_PLAN_MAX_KWH_PER_DAY", /whole number/);
    refused(() => readNodeConfig({}, { aggregatorMaxSpendPerDay: "50 EUR" }), "config.aggregatorMaxSpendPerDay", /amount of tEUR/);
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

  it("compliance: defaults, environment over file, regions from the file, bad values refused by name", () => {
    const d = readNodeConfig({}, {}).compliance;
    expect([d.largeTradeKwh, d.marketRatePerKwh, d.maxDeliveryHours, d.emissionFactorKgPerKwh, d.minMeteredSharePct]).to.deep.equal([1_000, null, 24, 0.385, 95]);
    expect(Object.keys(d.regions)).to.deep.equal(["EU-DE"]);
    expect(d.regions["EU-DE"]).to.include({ energySharingDirective: true, meteringCompliant: true, consumerProtection: true, gridCode: true });
    const region = { energySharingDirective: true, meteringCompliant: false, consumerProtection: true, gridCode: true };
    const c = readNodeConfig(
      { COMPLIANCE_LARGE_TRADE_KWH: "500", COMPLIANCE_EMISSION_FACTOR_KG_PER_KWH: "0.4" },
      { compliance: { largeTradeKwh: 700, marketRatePerKwh: 0.3, maxDeliveryHours: 12, regions: { "EU-NL": region } } },
    ).compliance;
    expect([c.largeTradeKwh, c.marketRatePerKwh, c.maxDeliveryHours, c.emissionFactorKgPerKwh]).to.deep.equal([500, 0.3, 12, 0.4]);
    expect(c.regions).to.deep.equal({ "EU-NL": region });
    refused(() => readNodeConfig({ COMPLIANCE_MAX_DELIVERY_HOURS: "-1" }, {}), "COMPLIANCE_MAX_DELIVERY_HOURS", /number from 0 to 8760/);
    refused(() => readNodeConfig({ COMPLIANCE_EMISSION_FACTOR_KG_PER_KWH: "0.1234567" }, {}), "COMPLIANCE_EMISSION_FACTOR_KG_PER_KWH", /at most 6 decimal places/);
    refused(() => readNodeConfig({}, { compliance: { largeTradeKwh: "lots" } }), "config.compliance.largeTradeKwh", /must be a number/);
    refused(() => readNodeConfig({}, { compliance: { colour: 1 } }), "config.compliance.colour", /not a compliance setting/);
    refused(() => readNodeConfig({}, { compliance: { regions: { "EU-DE": { ...region, gridCode: "yes" } } } }), "config.compliance.regions.EU-DE.gridCode", /true or false/);
    refused(() => readNodeConfig({}, { compliance: { regions: { germany: region } } }), "config.compliance.regions.germany", /region code/);
  });
});
