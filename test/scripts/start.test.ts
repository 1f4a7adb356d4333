// The pieces behind `npm start`: configuration errors, the embedded chain's JSON-RPC server,
// and a full deployment through viem with roles and the deployment file.
import { expect } from "chai";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createPublicClient, createWalletClient, getAddress, http, type Address } from "viem";
import { hardhat } from "viem/chains";
import { energyMarketAbi, prosumerRegistryAbi, testEuroAbi } from "../../contracts/client/abi.js";
import { deployPlatform, readDeployment, roleIds, writeDeployment } from "../../contracts/client/deploy.js";
import { ConfigError, readStartConfig } from "../../scripts/startConfig.js";
import { startLocalChain, type LocalChain } from "../../scripts/localChain.js";

describe("start configuration", () => {
  it("defaults to the embedded chain on 127.0.0.1:8545", () => {
    const c = readStartConfig({});
    expect(c).to.deep.equal({ chainHost: "127.0.0.1", chainPort: 8545, deploymentsDir: "deployments" });
  });

  it("names the variable and the rule on a bad port", () => {
    expect(() => readStartConfig({ CHAIN_PORT: "80a" })).to.throw(ConfigError, 'CHAIN_PORT="80a": must be an integer port');
    expect(() => readStartConfig({ CHAIN_PORT: "70000" })).to.throw(ConfigError, "CHAIN_PORT");
  });

  it("requires a well-formed URL and a deployer key for a configured chain", () => {
    expect(() => readStartConfig({ CHAIN_RPC_URL: "localhost:8545" })).to.throw(ConfigError, "CHAIN_RPC_URL");
    expect(() => readStartConfig({ CHAIN_RPC_URL: "http://127.0.0.1:9999" })).to.throw(ConfigError, "DEPLOYER_PRIVATE_KEY");
    const key = `0x${"ab".repeat(32)}` as const;
    const c = readStartConfig({ CHAIN_RPC_URL: "http://127.0.0.1:9999", DEPLOYER_PRIVATE_KEY: key });
    expect(c.chainRpcUrl).to.equal("http://127.0.0.1:9999");
    expect(c.deployerPrivateKey).to.equal(key);
  });
});

describe("embedded chain and deployment", () => {
  let chain: LocalChain;
  before(async () => {
    chain = await startLocalChain({ port: 0 });
  });
  after(async () => {
    await chain.close();
  });

  async function rpc(body: string) {
    const res = await fetch(chain.url, { method: "POST", headers: { "content-type": "application/json" }, body });
    return res.json() as Promise<unknown>;
  }

  it("answers JSON-RPC over HTTP, single and batched, and reports parse errors", async () => {
    expect(await rpc('{"jsonrpc":"2.0","id":7,"method":"eth_chainId","params":[]}')).to.deep.equal({ jsonrpc: "2.0", id: 7, result: "0x7a69" });
    const batch = (await rpc('[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"no_such_method"}]')) as { id: number; error?: { code: number } }[];
    expect(batch.map((r) => r.id)).to.deep.equal([1, 2]);
    expect(batch[1]!.error?.code).to.be.a("number");
    expect(await rpc("{not json")).to.deep.include({ error: { code: -32700, message: "Parse error: body is not JSON" } });
  });

  it("refuses a port already in use with a message naming the ways out", async () => {
    const port = Number(new URL(chain.url).port);
    let error: unknown;
    try {
      await startLocalChain({ port });
    } catch (err) {
      error = err;
    }
    expect(String(error)).to.match(/already in use.*CHAIN_PORT.*CHAIN_RPC_URL/);
  });

  it("deploys token, registry and market with roles, and records the deployment", async () => {
    const transport = http(chain.url);
    const client = createPublicClient({ chain: hardhat, transport });
    const accounts = ((await client.request({ method: "eth_accounts" } as never)) as Address[]).map((a) => getAddress(a));
    const wallet = createWalletClient({ chain: hardhat, account: accounts[0]!, transport });
    const roles = { admin: accounts[5]!, registrar: accounts[6]!, pauser: accounts[7]!, matcher: accounts[1]!, meterOracle: accounts[2]!, arbiter: accounts[3]! };
    const d = await deployPlatform(wallet, client as never, { roles, maxNetworkFeePerKWh: 1_000_000n });

    const market = d.contracts.EnergyMarket;
    const registry = d.contracts.ProsumerRegistry;
    const has = (address: Address, abi: typeof energyMarketAbi | typeof prosumerRegistryAbi, role: `0x${string}`, who: Address) =>
      client.readContract({ address, abi, functionName: "hasRole", args: [role, who] } as never) as Promise<boolean>;
    expect(await has(market, energyMarketAbi, roleIds.MATCHER_ROLE, roles.matcher)).to.equal(true);
    expect(await has(market, energyMarketAbi, roleIds.METER_ORACLE_ROLE, roles.meterOracle)).to.equal(true);
    expect(await has(market, energyMarketAbi, roleIds.ARBITER_ROLE, roles.arbiter)).to.equal(true);
    expect(await has(market, energyMarketAbi, roleIds.PAUSER_ROLE, roles.pauser)).to.equal(true);
    expect(await has(market, energyMarketAbi, roleIds.DEFAULT_ADMIN_ROLE, roles.admin)).to.equal(true);
    expect(await has(registry, prosumerRegistryAbi, roleIds.REGISTRAR_ROLE, roles.registrar)).to.equal(true);
    // The deployer handed everything over and kept nothing.
    expect(await has(market, energyMarketAbi, roleIds.DEFAULT_ADMIN_ROLE, accounts[0]!)).to.equal(false);
    expect(await has(registry, prosumerRegistryAbi, roleIds.REGISTRAR_ROLE, accounts[0]!)).to.equal(false);
    expect(await client.readContract({ address: d.contracts.PaymentToken, abi: testEuroAbi, functionName: "decimals" })).to.equal(6);
    expect(await client.readContract({ address: market, abi: energyMarketAbi, functionName: "paymentToken" })).to.equal(d.contracts.PaymentToken);

    const dir = await mkdtemp(path.join(tmpdir(), "deployments-"));
    const file = await writeDeployment(dir, d);
    expect(path.basename(file)).to.equal("31337.json");
    const back = await readDeployment(dir, 31337);
    expect(back).to.deep.equal(JSON.parse(await readFile(file, "utf8")));
    expect(BigInt(back!.blockNumber)).to.be.greaterThan(0n);
    expect(await readDeployment(dir, 1)).to.equal(undefined);
  });
});
