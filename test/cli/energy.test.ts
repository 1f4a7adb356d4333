// The `energy` CLI as a child process against a real node: exit codes (0 done, 1 refused by a
// rule, the node or the chain, 2 usage), --json output, messages naming the option and the
// rule, key files (plain and encrypted keystore v3), and that the wallet key never appears in
// anything the CLI prints.
import { expect } from "chai";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { encryptKeystoreJsonSync } from "ethers";
import { redactKey } from "../../cli/runCli.js";
import { nextOpenInterval } from "../../sdk/markets.js";
import { startTestNode, type TestNode } from "./helpers.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe("cli: energy", function () {
  let t: TestNode;
  let keyDir: string;
  const outputs: Run[] = [];

  /** Runs `energy ...args` as a child process with the given environment additions. */
  function energy(args: string[], env: Record<string, string | undefined> = {}, entry: "energy.ts" | "bin.mjs" = "energy.ts"): Promise<Run> {
    const file = path.join(root, "cli", entry);
    const argv = entry === "bin.mjs" ? [file, ...args] : ["--import", "tsx", file, ...args];
    const childEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ENERGY_API_URL: t.node.url, ENERGY_PRIVATE_KEY: undefined, ENERGY_KEYSTORE_PASSWORD: undefined, ...env })) {
      if (v !== undefined) childEnv[k] = v;
    }
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, argv, { cwd: root, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("error", reject);
      child.on("close", (code) => {
        const run = { code, stdout, stderr };
        outputs.push(run);
        resolve(run);
      });
    });
  }

  const key = (i: number) => t.node.testAccounts[i]!.privateKey;
  const address = (i: number) => t.node.testAccounts[i]!.address;

  before(async function () {
    this.timeout(180_000);
    t = await startTestNode();
    keyDir = await mkdtemp(path.join(tmpdir(), "energy-cli-keys-"));
  });

  after(async function () {
    this.timeout(60_000);
    await t?.close();
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });

  it("--help lists the commands and exits 0 (through the npm bin launcher)", async () => {
    const run = await energy(["--help"], {}, "bin.mjs");
    expect(run.code, run.stderr).to.equal(0);
    for (const command of ["login", "balance", "faucet", "approve", "buy", "sell", "orders", "cancel", "listings", "take", "trades", "dispute", "release", "chain"]) {
      expect(run.stdout).to.match(new RegExp(`^  ${command} `, "m"));
    }
  });

  it("balance --json prints the wallet's balances in base units", async () => {
    const run = await energy(["balance", "--json"], { ENERGY_PRIVATE_KEY: key(0) });
    expect(run.code, run.stderr).to.equal(0);
    const json = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(json).to.include({ address: address(0), tokenBalance: "1000000000", allowance: "0" });
    expect(json.token).to.include({ symbol: "tEUR", decimals: 6 });
    expect(BigInt(json.eth as string) > 0n).to.equal(true);
  });

  it("prints balances and the chain for people, with units", async () => {
    const balance = await energy(["balance"], { ENERGY_PRIVATE_KEY: key(0) });
    expect(balance.code, balance.stderr).to.equal(0);
    expect(balance.stdout).to.contain("1000.00 tEUR").and.contain("ETH");
    const chain = await energy(["chain"]); // no wallet needed
    expect(chain.code, chain.stderr).to.equal(0);
    expect(chain.stdout).to.match(/ZONE-A\s+continuous\s+corridor 0\.08 tEUR\/kWh to 0\.35 tEUR\/kWh/);
  });

  it("exits 2 with the usage on command lines it cannot run", async () => {
    const noPrice = await energy(["buy", "--kwh", "1"], { ENERGY_PRIVATE_KEY: key(2) });
    expect(noPrice.code).to.equal(2);
    expect(noPrice.stderr).to.contain("--price").and.contain("usage: energy buy");
    const unknown = await energy(["frobnicate"]);
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.contain('unknown command "frobnicate"');
    const badOption = await energy(["sell", "--kwh", "1", "--price", "0.2", "--colour", "green"], { ENERGY_PRIVATE_KEY: key(0) });
    expect(badOption.code).to.equal(2);
    expect(badOption.stderr).to.contain("--colour");
    const noWallet = await energy(["balance"]);
    expect(noWallet.code).to.equal(2);
    expect(noWallet.stderr).to.contain("ENERGY_PRIVATE_KEY");
    const missingArg = await energy(["cancel"], { ENERGY_PRIVATE_KEY: key(0) });
    expect(missingArg.code).to.equal(2);
    expect(missingArg.stderr).to.contain("missing <orderId>");
  });

  it("exits 1 on a bad price, naming the option and the rule", async () => {
    const outside = await energy(["sell", "--kwh", "1", "--price", "0.50", "--zone", "ZONE-A"], { ENERGY_PRIVATE_KEY: key(0) });
    expect(outside.code).to.equal(1);
    expect(outside.stderr).to.contain("--price").and.contain("corridor").and.contain("[price_outside_corridor]");
    const malformed = await energy(["sell", "--kwh", "1", "--price", "0.2.5"], { ENERGY_PRIVATE_KEY: key(0) });
    expect(malformed.code).to.equal(1);
    expect(malformed.stderr).to.contain("--price").and.contain("[invalid_argument]");
    const json = await energy(["sell", "--kwh", "1", "--price", "0.50", "--zone", "ZONE-A", "--json"], { ENERGY_PRIVATE_KEY: key(0) });
    expect(json.code).to.equal(1);
    const { error } = JSON.parse(json.stderr) as { error: Record<string, unknown> };
    expect(error).to.include({ code: "price_outside_corridor", field: "pricePerKWh", source: "client" });
    expect(error.detail).to.contain("0.50 tEUR/kWh");
  });

  it("places, lists and cancels an order; an API refusal exits 1 with its code", async () => {
    const info = (await (await fetch(`${t.node.url}/v1/chain`)).json()) as { intervalSeconds: number; markets: { zone: string; gateClosureMinutes: number }[] };
    const zoneA = info.markets.find((m) => m.zone === "ZONE-A")!;
    const interval = nextOpenInterval(zoneA as never, info.intervalSeconds, Math.floor(Date.now() / 1000)) + info.intervalSeconds;
    const env = { ENERGY_PRIVATE_KEY: key(0) };
    const placed = await energy(["sell", "--kwh", "1.25", "--price", "0.21", "--interval", new Date(interval * 1000).toISOString(), "--json"], env);
    expect(placed.code, placed.stderr).to.equal(0);
    const order = JSON.parse(placed.stdout) as { orderId: string; sizeWh: number; limitPricePerKWh: number; status: string };
    expect(order).to.include({ sizeWh: 1250, limitPricePerKWh: 210_000, status: "open" });

    const listed = await energy(["orders", "--status", "open"], env);
    expect(listed.code, listed.stderr).to.equal(0);
    expect(listed.stdout).to.contain(order.orderId).and.contain("sell 1.25 kWh at least 0.21 tEUR/kWh in ZONE-A");

    const cancelled = await energy(["cancel", order.orderId], env);
    expect(cancelled.code, cancelled.stderr).to.equal(0);
    expect(cancelled.stdout).to.contain("cancelled");
    const again = await energy(["cancel", order.orderId], env);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.contain("[order_not_open]").and.contain("the node said 409");
  });

  it("reads the key from a key file or an encrypted keystore v3", async () => {
    const plain = path.join(keyDir, "plain.json");
    await writeFile(plain, JSON.stringify({ privateKey: key(1) }));
    const fromFile = await energy(["balance", "--json", "--keystore", plain]);
    expect(fromFile.code, fromFile.stderr).to.equal(0);
    expect((JSON.parse(fromFile.stdout) as { address: string }).address).to.equal(address(1));

    const encrypted = path.join(keyDir, "v3.json");
    await writeFile(encrypted, encryptKeystoreJsonSync({ address: address(3), privateKey: key(3) }, "correct horse", { scrypt: { N: 1 << 10 } }));
    const decrypted = await energy(["balance", "--json", "--keystore", encrypted], { ENERGY_KEYSTORE_PASSWORD: "correct horse" });
    expect(decrypted.code, decrypted.stderr).to.equal(0);
    expect((JSON.parse(decrypted.stdout) as { address: string }).address).to.equal(address(3));
    const wrong = await energy(["balance", "--keystore", encrypted], { ENERGY_KEYSTORE_PASSWORD: "battery staple" });
    expect(wrong.code).to.equal(2);
    expect(wrong.stderr).to.contain("wrong password");
    const noPassword = await energy(["balance", "--keystore", encrypted]);
    expect(noPassword.code).to.equal(2);
    expect(noPassword.stderr).to.contain("ENERGY_KEYSTORE_PASSWORD");
  });

  it("refuses a malformed key without echoing it", async () => {
    const almost = key(0).slice(0, -1); // 63 hex digits
    const run = await energy(["balance"], { ENERGY_PRIVATE_KEY: almost });
    expect(run.code).to.equal(2);
    expect(run.stderr).to.contain("ENERGY_PRIVATE_KEY").and.contain("not shown");
    expect(run.stdout + run.stderr).to.not.contain(almost.slice(2));
  });

  it("never prints a wallet key, in any run of this file", () => {
    expect(outputs.length).to.be.greaterThan(15);
    const secrets = t.node.testAccounts.map((a) => a.privateKey.slice(2).toLowerCase());
    for (const run of outputs) {
      const text = (run.stdout + run.stderr).toLowerCase();
      for (const secret of secrets) {
        expect(text).to.not.contain(secret);
        expect(text).to.not.contain(secret.slice(0, 32)); // nor half of one
      }
    }
    // The filter every line passes through, should something echo the key anyway.
    expect(redactKey(`oops ${key(0)} and ${key(0).slice(2).toUpperCase()}`, [key(0)])).to.equal("oops [redacted key] and [redacted key]");
  });
});
