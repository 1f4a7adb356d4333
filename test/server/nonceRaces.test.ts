// Transactions the node sends from one key share one nonce queue (server/chain/keySender.ts):
// parallel faucet calls and registrations (the embedded chain's faucet and registrar are both
// Hardhat account 0) all succeed, and a transaction that reverts does not stop the ones after it.
import { expect } from "chai";
import { erc20Abi, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { prosumerRegistryAbi } from "../../contracts/client/abi.js";
import { keySender } from "../../server/chain/keySender.js";
import { fetchClient, randomKey, signIn, startTestNode, type Http, type TestNode } from "./helpers.js";

describe("one nonce queue per operator key", function () {
  this.timeout(180_000);
  let t: TestNode;
  let http: Http;
  let operatorToken: string;

  before(async () => {
    t = await startTestNode();
    http = fetchClient(t.node.url);
    operatorToken = await signIn(http, t.node, t.node.operatorKey!);
  });
  after(async () => {
    await t?.close();
  });

  const chain = () => t.node.services.chain;
  const tokenBalance = (address: Address) => chain().publicClient.readContract({ address: chain().contracts.PaymentToken, abi: erc20Abi, functionName: "balanceOf", args: [address] });
  const registered = async (address: Address) => (await chain().publicClient.readContract({ address: chain().contracts.ProsumerRegistry, abi: prosumerRegistryAbi, functionName: "getProsumer", args: [address] })).status !== 0;

  async function wallets(n: number): Promise<{ key: Hex; address: Address; token: string }[]> {
    return Promise.all(Array.from({ length: n }, async () => {
      const key = randomKey();
      return { key, address: privateKeyToAccount(key).address, token: await signIn(http, t.node, key) };
    }));
  }
  const faucet = (token: string) => http({ method: "POST", url: "/v1/faucet", token, body: { amount: 7 } });
  const register = (address: Address, i: number) => http({
    method: "POST", url: "/v1/prosumers", token: operatorToken,
    body: { address, meterId: `race-${address.slice(2, 10)}-${i}`, zone: t.node.testAccounts[0]!.zone, sources: ["solar"] },
  });

  it("5 parallel faucet calls: all 200, every wallet funded with tEUR and gas", async () => {
    const ws = await wallets(5);
    const answers = await Promise.all(ws.map((w) => faucet(w.token)));
    expect(answers.map((a) => a.status), JSON.stringify(answers.map((a) => a.json))).to.deep.equal([200, 200, 200, 200, 200]);
    for (const w of ws) {
      expect(await tokenBalance(w.address)).to.equal(7_000_000n);
      expect(await chain().publicClient.getBalance({ address: w.address })).to.equal(10n ** 18n);
    }
    expect(new Set(answers.map((a) => a.json.txHash)).size).to.equal(5);
  });

  it("5 parallel registrations: all 201 and all registered on chain", async () => {
    const addresses = Array.from({ length: 5 }, () => privateKeyToAccount(randomKey()).address);
    const answers = await Promise.all(addresses.map((a, i) => register(a, i)));
    expect(answers.map((a) => a.status), JSON.stringify(answers.map((a) => a.json))).to.deep.equal([201, 201, 201, 201, 201]);
    for (const a of addresses) expect(await registered(a)).to.equal(true);
  });

  it("faucet calls and registrations mixed, in parallel, from the one admin key", async () => {
    const ws = await wallets(4);
    const addresses = Array.from({ length: 4 }, () => privateKeyToAccount(randomKey()).address);
    const answers = await Promise.all([...ws.map((w) => faucet(w.token)), ...addresses.map((a, i) => register(a, i))]);
    expect(answers.map((a) => a.status), JSON.stringify(answers.map((a) => a.json))).to.deep.equal([200, 200, 200, 200, 201, 201, 201, 201]);
    for (const w of ws) expect(await tokenBalance(w.address)).to.equal(7_000_000n);
    for (const a of addresses) expect(await registered(a)).to.equal(true);
  });

  it("a transaction that reverts, found in estimation or mined, does not poison the ones queued after it", async () => {
    const sender = keySender(chain().publicClient, chain().registrar!.account);
    const taken = t.node.testAccounts[0]!;
    const again = { address: chain().contracts.ProsumerRegistry, abi: prosumerRegistryAbi, functionName: "registerProsumer", args: [taken.address, `0x${"11".repeat(32)}`, `0x${"22".repeat(32)}`, 1n, 1n, 1n] } as const;
    const ws = await wallets(2);
    const fresh = privateKeyToAccount(randomKey()).address;
    // Queued together: a revert caught by gas estimation (no nonce used), one sent with its gas
    // given so it is mined as reverted (a nonce used), and HTTP calls behind and between them.
    const estimated = sender.send(again).then(() => "sent", (err: Error) => err.name);
    const firstFaucet = faucet(ws[0]!.token);
    const mined = sender.sendAndWait({ ...again, gas: 200_000n });
    const answers = await Promise.all([firstFaucet, register(fresh, 0), faucet(ws[1]!.token)]);
    expect(await estimated).to.not.equal("sent");
    expect((await mined).status).to.equal("reverted");
    expect(answers.map((a) => a.status), JSON.stringify(answers.map((a) => a.json))).to.deep.equal([200, 201, 200]);
    expect(await registered(fresh)).to.equal(true);
    // The node's count and the chain's agree: nothing is stuck behind a gap.
    const pending = await chain().publicClient.getTransactionCount({ address: sender.address, blockTag: "pending" });
    const latest = await chain().publicClient.getTransactionCount({ address: sender.address, blockTag: "latest" });
    expect(pending).to.equal(latest);
    expect(sender.queued).to.equal(0);
  });

  it("a transaction sent from the key behind the queue's back costs a re-read of the nonce, not a failure", async () => {
    // As the keeper does when it falls back to the registrar's key on a configured chain.
    const admin = chain().registrar!;
    const outside = await admin.sendTransaction({ to: privateKeyToAccount(randomKey()).address, value: 1n } as never);
    await chain().publicClient.waitForTransactionReceipt({ hash: outside });
    const [w] = await wallets(1);
    expect((await faucet(w!.token)).status).to.equal(200);
  });
});
