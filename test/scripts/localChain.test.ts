// The embedded chain's persistence: with a data directory, a restart replays the journal into
// a chain with the same blocks, hashes, balances, storage, timestamps and logs; a torn last
// line is dropped; requests a journal cannot express are refused; without one nothing changes.
import { expect } from "chai";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  createPublicClient, createWalletClient, custom, encodeFunctionData, getAddress, http, parseEther, toHex,
  type Address, type EIP1193Provider, type Hex, type PublicClient,
} from "viem";
import { hardhat } from "viem/chains";
import { testEuroAbi } from "../../contracts/client/abi.js";
import { deployPlatform } from "../../contracts/client/deploy.js";
import { CHAIN_JOURNAL_FILE, startLocalChain, type LocalChain } from "../../scripts/localChain.js";

const TEUR = 1_000_000n;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function request<T>(provider: EIP1193Provider, method: string, params: unknown[] = []): Promise<T> {
  return provider.request({ method, params } as never) as Promise<T>;
}

async function rpcOverHttp(url: string, method: string, params: unknown[] = []) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  return (await res.json()) as { result?: unknown; error?: { code: number; message: string } };
}

function publicClient(chain: LocalChain): PublicClient {
  return createPublicClient({ chain: hardhat, transport: custom(chain.provider) }) as PublicClient;
}

async function accountsOf(chain: LocalChain): Promise<Address[]> {
  return (await request<Address[]>(chain.provider, "eth_accounts")).map((a) => getAddress(a));
}

async function journalLines(dir: string): Promise<string[]> {
  return (await readFile(path.join(dir, CHAIN_JOURNAL_FILE), "utf8")).split("\n").filter((l) => l !== "");
}

/** Everything a restart must bring back: every block's hash and time, balances, token storage, all logs. */
async function observe(chain: LocalChain, accounts: Address[], token: Address) {
  const client = publicClient(chain);
  // Not client.getBlockNumber(): viem caches it for seconds.
  const head = BigInt(await request<Hex>(chain.provider, "eth_blockNumber"));
  const blocks: { number: bigint; hash: Hex; timestamp: bigint; transactions: unknown }[] = [];
  for (let n = 0n; n <= head; n++) {
    const b = await client.getBlock({ blockNumber: n });
    blocks.push({ number: b.number, hash: b.hash, timestamp: b.timestamp, transactions: b.transactions });
  }
  const balances = await Promise.all(accounts.map((address) => client.getBalance({ address })));
  const nonces = await Promise.all(accounts.map((address) => client.getTransactionCount({ address })));
  const tokenBalances = await Promise.all(
    accounts.map((account) => client.readContract({ address: token, abi: testEuroAbi, functionName: "balanceOf", args: [account] })),
  );
  const code = await client.getCode({ address: token });
  const logs = await request<unknown[]>(chain.provider, "eth_getLogs", [{ fromBlock: "0x0", toBlock: "latest" }]);
  return { head, blocks, balances, nonces, tokenBalances, code, logs };
}

describe("embedded chain persistence (dataDir)", () => {
  const dirs: string[] = [];
  const chains: LocalChain[] = [];

  async function freshDir(): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), "chain-journal-"));
    dirs.push(dir);
    return dir;
  }
  async function start(dataDir?: string): Promise<LocalChain> {
    const chain = await startLocalChain({ port: 0, dataDir });
    chains.push(chain);
    return chain;
  }
  async function stop(chain: LocalChain): Promise<void> {
    chains.splice(chains.indexOf(chain), 1);
    await chain.close();
  }

  afterEach(async () => {
    for (const chain of chains.splice(0)) await chain.close();
  });
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("comes back after a restart with the same blocks, balances, storage, timestamps and logs", async () => {
    const dir = await freshDir();
    const first = await start(dir);
    expect(first.replayed).to.equal(0);
    const accounts = await accountsOf(first);
    const [a0, a1, a2, a3, a4, a5, a6, a7, a8] = accounts as [Address, Address, Address, Address, Address, Address, Address, Address, Address];

    // Deployment through the in-process provider, a faucet over HTTP: both paths must be journaled.
    const client = publicClient(first);
    const wallet = createWalletClient({ chain: hardhat, account: a0, transport: custom(first.provider) });
    const roles = { admin: a0, registrar: a0, pauser: a0, matcher: a1, meterOracle: a2, arbiter: a3 };
    const deployment = await deployPlatform(wallet, client, { roles, maxNetworkFeePerKWh: 1_000_000n });
    const token = deployment.contracts.TestEuro!;
    // Wall-clock time between blocks, which a replay running at full speed would not have:
    // only pinned timestamps bring these blocks back with their hashes.
    await sleep(2_000);
    const httpWallet = createWalletClient({ chain: hardhat, account: a0, transport: http(first.url) });
    const faucetHash = await httpWallet.writeContract({ address: token, abi: testEuroAbi, functionName: "faucet", args: [a5, 250n * TEUR] });

    // Concurrent sends from one account: nonces follow execution order, so replay only
    // reproduces these blocks if the journal kept that order.
    const values = [1n, 2n, 3n, 4n, 5n, 6n].map((n) => parseEther(String(n)));
    const sends = values.map((value, i) =>
      i % 2 === 0
        ? request<Hex>(first.provider, "eth_sendTransaction", [{ from: a4, to: a6, value: toHex(value) }])
        : rpcOverHttp(first.url, "eth_sendTransaction", [{ from: a4, to: a6, value: toHex(value) }]).then((r) => r.result as Hex),
    );
    const sendHashes = await Promise.all(sends);

    await request(first.provider, "hardhat_setBalance", [a7, toHex(parseEther("12345"))]);
    await request(first.provider, "hardhat_mine", ["0x3", "0x3c"]);
    // A transaction that reverts still mines a block: it must be journaled too.
    const revertingTransfer = encodeFunctionData({ abi: testEuroAbi, functionName: "transfer", args: [a5, 1n] });
    const headBeforeRevert = BigInt(await request<Hex>(first.provider, "eth_blockNumber"));
    let reverted = false;
    try {
      await request(first.provider, "eth_sendTransaction", [{ from: a8, to: token, data: revertingTransfer, gas: "0x30000" }]);
    } catch {
      reverted = true;
    }
    expect(reverted).to.equal(true);
    expect(BigInt(await request<Hex>(first.provider, "eth_blockNumber"))).to.equal(headBeforeRevert + 1n);
    await request(first.provider, "evm_increaseTime", [3_600]);
    await request(first.provider, "evm_mine");
    const offset = Number(await request(first.provider, "evm_increaseTime", [0]));

    const before = await observe(first, accounts, token);
    expect(before.tokenBalances[5]).to.equal(250n * TEUR);
    expect(before.logs).to.have.length.greaterThan(5);
    await stop(first);

    // Long enough that a chain whose clock stood still while it was down would show it.
    await sleep(2_500);
    const second = await start(dir);
    expect(second.replayed).to.equal((await journalLines(dir)).length - 1);
    expect(second.replayed).to.be.greaterThan(20);
    const after = await observe(second, accounts, token);
    expect(after).to.deep.equal(before);
    const again = publicClient(second);
    expect((await again.getTransactionReceipt({ hash: faucetHash })).status).to.equal("success");
    for (const hash of sendHashes) expect((await again.getTransactionReceipt({ hash })).status).to.equal("success");

    // The restored chain goes on where it stopped, with its clock running on from wall-clock time.
    const lastTimestamp = before.blocks.at(-1)!.timestamp;
    const wallClock = BigInt(Math.floor(Date.now() / 1000));
    await request(second.provider, "evm_mine");
    const next = await again.getBlock({ blockTag: "latest" });
    expect(next.number).to.equal(before.head + 1n);
    expect(next.timestamp > lastTimestamp).to.equal(true);
    expect(next.timestamp >= wallClock + BigInt(offset)).to.equal(true);
  });

  it("drops a torn last journal line, and appends cleanly after it", async () => {
    const dir = await freshDir();
    const first = await start(dir);
    await request(first.provider, "evm_mine");
    await request(first.provider, "evm_mine");
    const kept = await request<{ hash: Hex }>(first.provider, "eth_getBlockByNumber", ["0x1", false]);
    await stop(first);

    // A crash in the middle of appending the second entry.
    const file = path.join(dir, CHAIN_JOURNAL_FILE);
    const text = await readFile(file, "utf8");
    await writeFile(file, text.slice(0, text.length - 20));

    const second = await start(dir);
    expect(second.replayed).to.equal(1);
    expect(await request<Hex>(second.provider, "eth_blockNumber")).to.equal("0x1");
    expect((await request<{ hash: Hex }>(second.provider, "eth_getBlockByNumber", ["0x1", false])).hash).to.equal(kept.hash);
    await request(second.provider, "evm_mine");
    await stop(second);

    const lines = await journalLines(dir);
    expect(lines).to.have.length(3);
    for (const line of lines) expect(() => JSON.parse(line)).not.to.throw();
    const third = await start(dir);
    expect(third.replayed).to.equal(2);
    expect(await request<Hex>(third.provider, "eth_blockNumber")).to.equal("0x2");
  });

  it("refuses to start from a journal that does not replay, naming the file and the way out", async () => {
    const dir = await freshDir();
    const first = await start(dir);
    await request(first.provider, "evm_mine");
    await stop(first);
    const file = path.join(dir, CHAIN_JOURNAL_FILE);
    const [header, entry] = await journalLines(dir);
    await writeFile(file, `${header}\n${JSON.stringify({ ...JSON.parse(entry!), block: 7 })}\n`);

    let error: unknown;
    try {
      await start(dir);
    } catch (err) {
      error = err;
    }
    expect(String(error)).to.contain(`the journal at ${file} does not replay: line 2 (evm_mine)`);
    expect(String(error)).to.contain("recorded block 7");
    expect(String(error)).to.contain("delete it to start a fresh chain");
  });

  it("refuses evm_snapshot, evm_revert and interval mining while persisted, in process and over HTTP", async () => {
    const dir = await freshDir();
    const chain = await start(dir);
    const over = await rpcOverHttp(chain.url, "evm_snapshot");
    expect(over.error?.code).to.equal(-32004);
    expect(over.error?.message).to.match(/evm_snapshot is refused: the chain is persisted to .*chain-journal\.ndjson/);
    let inProcess: unknown;
    try {
      await request(chain.provider, "evm_revert", ["0x1"]);
    } catch (err) {
      inProcess = err;
    }
    expect(inProcess).to.include({ code: -32004 });
    expect((await rpcOverHttp(chain.url, "evm_setIntervalMining", [1_000])).error?.code).to.equal(-32004);
    // Nothing refused reached the journal: only the header is there.
    expect(await journalLines(dir)).to.have.length(1);
  });

  it("without a data directory journals nothing and still allows snapshots", async () => {
    const chain = await start();
    expect(chain.replayed).to.equal(0);
    const snapshot = await request<Hex>(chain.provider, "evm_snapshot");
    await request(chain.provider, "evm_mine");
    expect(await request<Hex>(chain.provider, "eth_blockNumber")).to.equal("0x1");
    expect(await request<boolean>(chain.provider, "evm_revert", [snapshot])).to.equal(true);
    expect(await request<Hex>(chain.provider, "eth_blockNumber")).to.equal("0x0");
  });
});
