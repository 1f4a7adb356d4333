// The indexer's configuration: defaults, and errors that name the variable and the rule.
import { expect } from "chai";
import { defaultFinalityDepth, readIndexerConfig } from "../../indexer/config.js";
import { IndexerConfigError } from "../../indexer/errors.js";

describe("indexer configuration", () => {
  it("defaults to the embedded chain, PGlite in .data/indexer and the API on 127.0.0.1:4100", () => {
    expect(readIndexerConfig({})).to.deep.equal({
      rpcUrl: "http://127.0.0.1:8545",
      dataDir: ".data/indexer",
      deploymentsDir: "deployments",
      pollIntervalMs: 250,
      logRange: { initial: 1_000, max: 10_000 },
      rpc: { timeoutMs: 10_000, maxRetries: 8, batchSize: 100 },
      api: { enabled: true, host: "127.0.0.1", port: 4100 },
      co2MicroKgPerKWh: 385_000n,
      timeZone: "Europe/Berlin",
    });
    expect([defaultFinalityDepth(31337), defaultFinalityDepth(1)]).to.deep.equal([12, 64]);
  });

  it("reads every variable", () => {
    const c = readIndexerConfig({
      INDEXER_RPC_URL: "https://rpc.example/v1",
      DATABASE_URL: "postgres://u:p@db:5432/x",
      INDEXER_DATA_DIR: "/var/lib/indexer",
      DEPLOYMENTS_DIR: "/etc/deployments",
      INDEXER_MARKET_ADDRESS: "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0",
      INDEXER_REGISTRY_ADDRESS: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
      INDEXER_START_BLOCK: "123",
      INDEXER_FINALITY_DEPTH: "5",
      INDEXER_POLL_INTERVAL_MS: "1000",
      INDEXER_BLOCK_RANGE: "500",
      INDEXER_MAX_BLOCK_RANGE: "2000",
      INDEXER_RPC_TIMEOUT_MS: "3000",
      INDEXER_RPC_MAX_RETRIES: "0",
      INDEXER_RPC_BATCH_SIZE: "1",
      INDEXER_API: "false",
      INDEXER_HOST: "0.0.0.0",
      INDEXER_PORT: "0",
      INDEXER_CO2_KG_PER_KWH: "0.2",
    });
    expect(c).to.deep.include({
      rpcUrl: "https://rpc.example/v1",
      databaseUrl: "postgres://u:p@db:5432/x",
      startBlock: 123n,
      finalityDepth: 5,
      logRange: { initial: 500, max: 2_000 },
      rpc: { timeoutMs: 3_000, maxRetries: 0, batchSize: 1 },
      api: { enabled: false, host: "0.0.0.0", port: 0 },
      co2MicroKgPerKWh: 200_000n,
    });
    expect(c.contracts).to.deep.equal({ EnergyMarket: "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0", ProsumerRegistry: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512" });
    expect(readIndexerConfig({ CHAIN_RPC_URL: "http://node:8545" }).rpcUrl).to.equal("http://node:8545");
  });

  it("reads the names npm start and the bridge use; the INDEXER_ ones are aliases and the shared name wins", () => {
    const c = readIndexerConfig({
      CHAIN_RPC_URL: "http://node:8545", INDEXER_RPC_URL: "http://older:1", DATA_DIR: "/srv/idx", START_BLOCK: "9", TIME_ZONE: "Europe/Lisbon",
      MARKET_ADDRESS: "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0", REGISTRY_ADDRESS: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
      COMPLIANCE_EMISSION_FACTOR_KG_PER_KWH: "0.3",
    });
    expect(c).to.deep.include({ rpcUrl: "http://node:8545", dataDir: "/srv/idx", startBlock: 9n, timeZone: "Europe/Lisbon", co2MicroKgPerKWh: 300_000n });
    expect(c.contracts?.EnergyMarket).to.equal("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0");
    expect(() => readIndexerConfig({ TIME_ZONE: "Mars/Olympus" })).to.throw(IndexerConfigError, /TIME_ZONE/);
  });

  const bad: [Record<string, string>, string, RegExp][] = [
    [{ INDEXER_RPC_URL: "localhost:8545" }, "INDEXER_RPC_URL", /http:\/\/ or https:\/\//],
    [{ CHAIN_RPC_URL: "ws://x" }, "CHAIN_RPC_URL", /JSON-RPC URL/],
    [{ DATABASE_URL: "mysql://x" }, "DATABASE_URL", /postgres:\/\//],
    [{ INDEXER_MARKET_ADDRESS: "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0" }, "REGISTRY_ADDRESS", /must be set/],
    [{ INDEXER_MARKET_ADDRESS: "0x12", INDEXER_REGISTRY_ADDRESS: "0x12" }, "INDEXER_MARKET_ADDRESS", /20-byte address/],
    [{ INDEXER_START_BLOCK: "-1" }, "INDEXER_START_BLOCK", /block number/],
    [{ INDEXER_FINALITY_DEPTH: "0" }, "INDEXER_FINALITY_DEPTH", /from 1 to 10000/],
    [{ INDEXER_POLL_INTERVAL_MS: "fast" }, "INDEXER_POLL_INTERVAL_MS", /integer/],
    [{ INDEXER_BLOCK_RANGE: "5000", INDEXER_MAX_BLOCK_RANGE: "100" }, "INDEXER_MAX_BLOCK_RANGE", /at least INDEXER_BLOCK_RANGE/],
    [{ INDEXER_API: "maybe" }, "INDEXER_API", /true or false/],
    [{ INDEXER_PORT: "70000" }, "INDEXER_PORT", /from 0 to 65535/],
    [{ INDEXER_CO2_KG_PER_KWH: "0.1234567" }, "INDEXER_CO2_KG_PER_KWH", /6 decimal places/],
  ];
  for (const [env, variable, rule] of bad) {
    it(`names ${variable} when ${JSON.stringify(env)}`, () => {
      let error: unknown;
      try {
        readIndexerConfig(env);
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(IndexerConfigError);
      expect((error as IndexerConfigError).variable).to.equal(variable);
      expect((error as Error).message).to.match(new RegExp(`^${variable}=`)).and.match(rule);
    });
  }

  it("reads FINALITY_DEPTH, the one name with the bridge and the node; INDEXER_FINALITY_DEPTH stays as alias", () => {
    expect(readIndexerConfig({ FINALITY_DEPTH: "7" }).finalityDepth).to.equal(7);
    expect(readIndexerConfig({ FINALITY_DEPTH: "7", INDEXER_FINALITY_DEPTH: "9" }).finalityDepth).to.equal(7);
    expect(() => readIndexerConfig({ FINALITY_DEPTH: "0" })).to.throw(IndexerConfigError, /^FINALITY_DEPTH="0": must be an integer from 1 to 10000/);
  });

  it("never prints a database password", () => {
    expect(() => readIndexerConfig({ DATABASE_URL: "mysql://u:secret@x" })).to.throw(IndexerConfigError).with.property("message").that.does.not.contain("secret");
  });
});
