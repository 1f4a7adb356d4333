// The engine's prosumer directory from the registry's events: an account registered a block ago
// is answered (from the chain, once), later answers come from memory, and updates and
// suspensions arrive with the next pull of events.
import { expect } from "chai";
import { createPublicClient, createWalletClient, http, type Address, type Hex, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { prosumerRegistryAbi } from "../../contracts/client/abi.js";
import { deployPlatform } from "../../contracts/client/deploy.js";
import { createRegistryDirectory } from "../../engine/registryDirectory.js";
import { hardhatKey, startLocalChain, type LocalChain } from "../../scripts/localChain.js";
import { ZONE_HEX } from "./helpers.js";

describe("engine: prosumer directory from registry events", function () {
  this.timeout(60_000);
  let chain: LocalChain;
  let client: PublicClient;
  let admin: ReturnType<typeof createWalletClient<ReturnType<typeof http>, typeof hardhat, ReturnType<typeof privateKeyToAccount>>>;
  let contracts: { registry: Address; market: Address };
  let fromBlock: bigint;
  const alice = privateKeyToAccount(hardhatKey(30)).address;
  const bob = privateKeyToAccount(hardhatKey(31)).address;
  const OTHER_ZONE = `0x${"ab".repeat(32)}` as Hex;

  before(async () => {
    chain = await startLocalChain({ port: 0 });
    const transport = http(chain.url);
    client = createPublicClient({ chain: hardhat, transport }) as PublicClient;
    admin = createWalletClient({ chain: hardhat, account: privateKeyToAccount(hardhatKey(0)), transport });
    const a = admin.account.address;
    const d = await deployPlatform(admin, client as never, { roles: { admin: a, registrar: a, pauser: a, matcher: a, meterOracle: a, arbiter: a }, maxNetworkFeePerKWh: 1_000_000n });
    contracts = { registry: d.contracts.ProsumerRegistry, market: d.contracts.EnergyMarket };
    fromBlock = BigInt(d.blockNumber);
  });

  after(async () => {
    await chain?.close();
  });

  const write = async (functionName: string, args: unknown[]) => {
    const hash = await admin.writeContract({ address: contracts.registry, abi: prosumerRegistryAbi, functionName, args } as never);
    expect((await client.waitForTransactionReceipt({ hash })).status).to.equal("success");
  };

  it("answers a fresh registration, then from memory; updates and suspensions arrive with the next pull", async () => {
    await write("registerProsumer", [alice, `0x${"01".padStart(64, "0")}`, ZONE_HEX, 10_000n, 10_000n, 0x02]);
    const directory = createRegistryDirectory({ client, contracts, fromBlock, minRefreshMs: 0 });
    await directory.refresh();
    expect(directory.size()).to.equal(1);
    expect(await directory.profile(alice)).to.deep.equal({ zone: ZONE_HEX, active: true, sources: 0x02 });

    // Registered after the last pull: read from the chain, not refused.
    await write("registerProsumer", [bob, `0x${"02".padStart(64, "0")}`, ZONE_HEX, 10_000n, 10_000n, 0x06]);
    expect(await directory.profile(bob)).to.deep.equal({ zone: ZONE_HEX, active: true, sources: 0x06 });
    // Never registered: inactive, zone zero.
    const stranger = privateKeyToAccount(hardhatKey(32)).address;
    expect((await directory.profile(stranger)).active).to.equal(false);

    await write("updateProsumer", [alice, `0x${"01".padStart(64, "0")}`, OTHER_ZONE, 10_000n, 10_000n, 0x0a]);
    await write("setStatus", [bob, 2]);
    await directory.refresh();
    expect(directory.size()).to.equal(2);
    expect(await directory.profile(alice)).to.deep.equal({ zone: OTHER_ZONE, active: true, sources: 0x0a });
    expect((await directory.profile(bob)).active).to.equal(false);
    // The answers agree with the chain's own view.
    for (const who of [alice, bob]) {
      const [zone, active, sources] = await client.readContract({ address: contracts.registry, abi: prosumerRegistryAbi, functionName: "tradingProfile", args: [who] });
      expect(await directory.profile(who)).to.deep.equal({ zone, active, sources });
    }
    await write("setStatus", [bob, 1]);
    await directory.refresh();
    expect((await directory.profile(bob)).active).to.equal(true);
  });
});
