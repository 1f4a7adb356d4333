// What intake's limit checks read, kept in memory from the chain's events: each connection's
// power limits from the registry, and each buyer's balance and allowance to the market from the
// payment token (read once at first sight, then moved by Transfer and Approval events).
import { expect } from "chai";
import { createPublicClient, createWalletClient, http, maxUint256, parseEther, type Address, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { prosumerRegistryAbi, testEuroAbi } from "../../contracts/client/abi.js";
import { deployPlatform } from "../../contracts/client/deploy.js";
import { createFundsDirectory } from "../../engine/fundsDirectory.js";
import { createRegistryDirectory } from "../../engine/registryDirectory.js";
import { hardhatKey, startLocalChain, type LocalChain } from "../../scripts/localChain.js";
import { ZONE_HEX } from "./helpers.js";

describe("intake directories: connection limits and buyers' funds from chain events", function () {
  this.timeout(60_000);
  let chain: LocalChain;
  let client: PublicClient;
  let transport: ReturnType<typeof http>;
  let contracts: { registry: Address; market: Address; token: Address };
  let fromBlock: bigint;
  const admin = privateKeyToAccount(hardhatKey(0));
  const alice = privateKeyToAccount(hardhatKey(40));
  const bob = privateKeyToAccount(hardhatKey(41));
  // Stands in for the market as the spender: an account that can call transferFrom itself.
  const spender = privateKeyToAccount(hardhatKey(42));

  before(async () => {
    chain = await startLocalChain({ port: 0 });
    transport = http(chain.url);
    client = createPublicClient({ chain: hardhat, transport }) as PublicClient;
    const wallet = createWalletClient({ chain: hardhat, account: admin, transport });
    const a = admin.address;
    const d = await deployPlatform(wallet, client as never, { roles: { admin: a, registrar: a, pauser: a, matcher: a, meterOracle: a, arbiter: a }, maxNetworkFeePerKWh: 1_000_000n });
    contracts = { registry: d.contracts.ProsumerRegistry, market: d.contracts.EnergyMarket, token: d.contracts.PaymentToken };
    fromBlock = BigInt(d.blockNumber);
    for (const who of [alice, bob, spender]) {
      const hash = await wallet.sendTransaction({ to: who.address, value: parseEther("1") });
      await client.waitForTransactionReceipt({ hash });
    }
  });

  after(async () => {
    await chain?.close();
  });

  const send = async (account: typeof admin, address: Address, abi: readonly unknown[], functionName: string, args: unknown[]) => {
    const hash = await createWalletClient({ chain: hardhat, account, transport }).writeContract({ address, abi, functionName, args } as never);
    expect((await client.waitForTransactionReceipt({ hash })).status).to.equal("success");
  };

  it("the registry directory keeps each connection's limits: read at first sight, then from ProsumerUpdated", async () => {
    const directory = createRegistryDirectory({ client, contracts: { registry: contracts.registry, market: contracts.market }, fromBlock, minRefreshMs: 0 });
    await directory.refresh();
    await send(admin, contracts.registry, prosumerRegistryAbi, "registerProsumer", [alice.address, `0x${"0a".padStart(64, "0")}`, ZONE_HEX, 7_000n, 3_000n, 0x02]);
    // Registered after the last pull: read from the chain once, and kept.
    expect(await directory.connectionLimits!(alice.address)).to.deep.equal({ exportLimitW: 7_000n, importLimitW: 3_000n });
    expect(await directory.profile(alice.address)).to.deep.equal({ zone: ZONE_HEX, active: true, sources: 0x02 });
    expect(directory.size()).to.equal(1);
    await send(admin, contracts.registry, prosumerRegistryAbi, "updateProsumer", [alice.address, `0x${"0a".padStart(64, "0")}`, ZONE_HEX, 12_000n, 40_000n, 0x02]);
    await directory.refresh();
    expect(await directory.connectionLimits!(alice.address)).to.deep.equal({ exportLimitW: 12_000n, importLimitW: 40_000n });
    // A suspension read at first sight is kept through later updates.
    await send(admin, contracts.registry, prosumerRegistryAbi, "registerProsumer", [bob.address, `0x${"0b".padStart(64, "0")}`, ZONE_HEX, 1_000n, 1_000n, 0x02]);
    await send(admin, contracts.registry, prosumerRegistryAbi, "setStatus", [bob.address, 2]);
    const fresh = createRegistryDirectory({ client, contracts: { registry: contracts.registry, market: contracts.market }, fromBlock: await client.getBlockNumber() + 1n, minRefreshMs: 0 });
    await fresh.refresh();
    expect((await fresh.profile(bob.address)).active).to.equal(false);
    await send(admin, contracts.registry, prosumerRegistryAbi, "updateProsumer", [bob.address, `0x${"0b".padStart(64, "0")}`, ZONE_HEX, 2_000n, 2_000n, 0x02]);
    await fresh.refresh();
    expect(await fresh.profile(bob.address)).to.deep.equal({ zone: ZONE_HEX, active: false, sources: 0x02 });
    expect(await fresh.connectionLimits!(bob.address)).to.deep.equal({ exportLimitW: 2_000n, importLimitW: 2_000n });
  });

  it("the funds directory reads an account once, then follows Transfer and Approval; the spender's transferFrom spends a limited allowance only", async () => {
    const funds = createFundsDirectory({ client, contracts: { token: contracts.token, market: spender.address }, minRefreshMs: 60_000 });
    await send(admin, contracts.token, testEuroAbi, "faucet", [alice.address, 5_000_000n]);
    // Approved a block ago, never seen: the first read pulls to the head first.
    await send(alice, contracts.token, testEuroAbi, "approve", [spender.address, 3_000_000n]);
    expect(await funds.funds(alice.address)).to.deep.equal({ balance: 5_000_000n, allowance: 3_000_000n });
    expect(funds.size()).to.equal(1);

    await send(admin, contracts.token, testEuroAbi, "faucet", [alice.address, 1_000_000n]);
    await send(alice, contracts.token, testEuroAbi, "transfer", [bob.address, 500_000n]);
    // Memory, until a pull (no background pull within 60 s here) or a fresh read.
    expect(await funds.funds(alice.address)).to.deep.equal({ balance: 5_000_000n, allowance: 3_000_000n });
    expect(await funds.funds(alice.address, { fresh: true })).to.deep.equal({ balance: 5_500_000n, allowance: 3_000_000n });

    // transferFrom by the spender: no Approval event (OpenZeppelin v5), the allowance shrinks all the same.
    await send(spender, contracts.token, testEuroAbi, "transferFrom", [alice.address, spender.address, 1_200_000n]);
    await funds.refresh();
    expect(await funds.funds(alice.address)).to.deep.equal({ balance: 4_300_000n, allowance: 1_800_000n });
    // An unlimited allowance is never spent.
    await send(alice, contracts.token, testEuroAbi, "approve", [spender.address, maxUint256]);
    await send(spender, contracts.token, testEuroAbi, "transferFrom", [alice.address, spender.address, 300_000n]);
    await funds.refresh();
    expect(await funds.funds(alice.address)).to.deep.equal({ balance: 4_000_000n, allowance: maxUint256 });
    // Approvals to another spender do not count.
    await send(alice, contracts.token, testEuroAbi, "approve", [bob.address, 7n]);
    await funds.refresh();
    expect((await funds.funds(alice.address)).allowance).to.equal(maxUint256);
    // Memory agrees with the chain.
    const [balance, allowance] = await Promise.all([
      client.readContract({ address: contracts.token, abi: testEuroAbi, functionName: "balanceOf", args: [alice.address] }),
      client.readContract({ address: contracts.token, abi: testEuroAbi, functionName: "allowance", args: [alice.address, spender.address] }),
    ]);
    expect(await funds.funds(alice.address)).to.deep.equal({ balance, allowance });
    // Bob received 500,000 before his first sight: read, not counted twice.
    expect(await funds.funds(bob.address)).to.deep.equal({ balance: 500_000n, allowance: 0n });
    await send(alice, contracts.token, testEuroAbi, "transfer", [bob.address, 1n]);
    expect((await funds.funds(bob.address, { fresh: true })).balance).to.equal(500_001n);
  });
});
