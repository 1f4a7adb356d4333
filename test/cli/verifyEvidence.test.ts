// A delivery report re-derived from its evidence, on a real node (embedded chain, bridge,
// indexer; its clock following the chain's so the test can move time): a trade between two
// test accounts, their meters' signed interval readings, the bridge's report on chain. Then
// GET /v1/trades/:tradeId/evidence/verify and `energy verify-evidence <tradeId>` (a child
// process that takes only the evidence bytes from the node and reads the rest from the chain)
// on the honest evidence, and on evidence tampered in the node's database: a changed reading,
// a changed allocation, and readings signed by a key the registry never held.
import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import type { Kysely } from "kysely";
import { keccak256, stringToBytes } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { createMeterKeyPair, signReading } from "../../bridge/readingSignature.js";
import { readStoredEvidence } from "../../bridge/storedEvidence.js";
import { createEnergyClient } from "../../sdk/createEnergyClient.js";
import { nextOpenInterval } from "../../sdk/markets.js";
import { startTestNode, waitFor, type TestNode } from "./helpers.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe("verify-evidence: the route and the CLI re-derive a delivery report from its evidence", function () {
  this.timeout(240_000);
  let t: TestNode;
  let tradeId: string;
  let honest: string;
  let db: Kysely<any>;
  const rpc = async (method: string, params: unknown[] = []) => {
    const res = await fetch(t.node.rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
    return ((await res.json()) as { result: any }).result;
  };
  const chainNow = async () => Number((await rpc("eth_getBlockByNumber", ["latest", false])).timestamp);
  /** Moves the chain's time (and with it the node's clock) to `target`, unix seconds. */
  const moveTimeTo = async (target: number) => {
    await rpc("evm_setNextBlockTimestamp", [Math.max(target, (await chainNow()) + 1)]);
    await rpc("evm_mine");
    await waitFor("the node's clock to follow the chain", async () => ((await (await fetch(`${t.node.url}/v1/trading/markets`)).json()) as { now: number }).now, (now) => now >= target, 10_000);
  };

  function energy(args: string[]): Promise<Run> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ENERGY_API_URL: t.node.url, ENERGY_PRIVATE_KEY: undefined })) if (v !== undefined) env[k] = v;
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "cli", "energy.ts"), ...args], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
  }
  const verifyRoute = async () => {
    const res = await fetch(`${t.node.url}/v1/trades/${tradeId}/evidence/verify`);
    expect(res.status, await res.clone().text()).to.equal(200);
    return (await res.json()) as { verified: boolean; deliveredWh: string | null; reported: { deliveredWh: string; evidenceHash: string } | null; problems: { code: string; path: string }[]; readings: { party: string; signer: string | null }[]; evidenceHash: string; evidence: string };
  };
  /** Replaces the stored evidence, as a bridge (or whoever holds its database) tampering with it would. */
  const storeEvidence = async (evidence: string) => {
    const { evidence_hash } = await db.selectFrom("bridge_decisions").select("evidence_hash").where("trade_id", "=", BigInt(tradeId)).executeTakeFirstOrThrow();
    await db.updateTable("bridge_evidence").set({ evidence }).where("evidence_hash", "=", evidence_hash).execute();
  };
  const edited = (edit: (e: any) => void) => {
    const e = JSON.parse(honest);
    edit(e);
    return JSON.stringify(e);
  };

  before(async function () {
    this.timeout(240_000);
    t = await startTestNode({ NODE_CLOCK: "chain" });
    db = t.node.services.indexer.db as unknown as Kysely<any>;
    const [sellerAccount, , buyerAccount] = t.node.testAccounts; // both in ZONE-A
    const seller = createEnergyClient({ apiUrl: t.node.url, privateKey: sellerAccount!.privateKey });
    const buyer = createEnergyClient({ apiUrl: t.node.url, privateKey: buyerAccount!.privateKey });
    const info = await seller.chainInfo();
    const zoneA = info.markets.find((m) => m.zone === "ZONE-A")!;
    const interval = nextOpenInterval(zoneA, info.intervalSeconds, await chainNow()) + info.intervalSeconds;

    await buyer.approve({ amount: "10" });
    await seller.placeOrder({ side: "sell", kWh: "1", pricePerKWh: "0.20", zone: "ZONE-A", interval });
    const buy = await buyer.placeOrder({ side: "buy", kWh: "1", pricePerKWh: "0.25", zone: "ZONE-A", interval });
    expect(buy.status).to.equal("filled");
    const orders = await waitFor("the fill to settle on-chain", () => buyer.listOrders(), (os) => os.find((o) => o.orderId === buy.orderId)?.fills[0]?.status === "executed");
    tradeId = orders.find((o) => o.orderId === buy.orderId)!.fills[0]!.tradeId!;

    // The interval passes; both meters send their signed interval reading (through the bridge's
    // own intake, as a REST reading would arrive).
    await moveTimeTo(interval + info.intervalSeconds + 1);
    const bridge = t.node.bridge;
    const reading = (exportKWh: number, importKWh: number) => ({
      interval_start: new Date(interval * 1000).toISOString(), interval_minutes: 15, export_kwh: exportKWh, import_kwh: importKWh,
    });
    for (const [account, payload] of [[sellerAccount!, reading(1, 0)], [buyerAccount!, reading(0, 1.2)]] as const) {
      const signed = signReading({ meterId: account.meterId, metric: "interval", payload, privateKey: account.meterKey });
      const verdict = await bridge.submitReading(`${bridge.topicRoot}/ZONE-A/smart-meter/${account.meterId}/interval`, Buffer.from(JSON.stringify(signed)));
      expect(verdict).to.deep.equal({ accepted: true, duplicate: false, evidence: true });
    }
    // Past the grace period: the bridge decides and reports.
    await moveTimeTo(interval + info.intervalSeconds + 301);
    await waitFor("the report on chain", async () => {
      const res = await fetch(`${t.node.url}/v1/trades/${tradeId}/evidence/verify`);
      return res.status === 200 ? ((await res.json()) as { reported: unknown }).reported : null;
    }, (reported) => reported !== null, 60_000);
    honest = (await readStoredEvidence(db, BigInt(tradeId)))!;
  });

  after(async function () {
    this.timeout(60_000);
    await t?.close();
  });

  it("GET /v1/trades/:tradeId/evidence answers the stored bytes, whose keccak256 is the report's evidence hash", async () => {
    const res = await fetch(`${t.node.url}/v1/trades/${tradeId}/evidence`);
    expect(res.status).to.equal(200);
    const body = await res.text();
    expect(body).to.equal(honest);
    expect(res.headers.get("x-evidence-hash")).to.equal(keccak256(stringToBytes(honest)));
    expect((await fetch(`${t.node.url}/v1/trades/999999/evidence`)).status).to.equal(404);
    expect((await fetch(`${t.node.url}/v1/trades/abc/evidence/verify`)).status).to.equal(400);
  });

  it("an honest delivery verifies through the route and the CLI", async () => {
    const r = await verifyRoute();
    expect(r.problems).to.deep.equal([]);
    expect(r).to.deep.include({ verified: true, deliveredWh: "1000" });
    expect(r.reported).to.include({ deliveredWh: "1000", evidenceHash: keccak256(stringToBytes(honest)) });
    const accounts = t.node.testAccounts;
    expect(r.readings.map((x) => [x.party, x.signer])).to.deep.equal([["sellers[0]", accounts[0]!.meterSigner], ["buyers[0]", accounts[2]!.meterSigner]]);
    expect(r.evidence).to.equal(honest);

    const text = await energy(["verify-evidence", tradeId]);
    expect(text.code, text.stderr).to.equal(0);
    expect(text.stdout).to.contain(`trade ${tradeId}: the evidence verifies against the chain`).and.contain("re-derived   1 kWh (measured) from the 2 of 2 readings whose signature verifies").and.contain("(matches the report)");
    const json = await energy(["verify-evidence", tradeId, "--json"]);
    expect(json.code, json.stderr).to.equal(0);
    expect(JSON.parse(json.stdout)).to.deep.include({ tradeId, verified: true, deliveredWh: "1000", basis: "measured", problems: [] });
  });

  it("a key rotated after the report still vouches for the readings it signed; the profile shows the new key", async () => {
    const operator = createEnergyClient({ apiUrl: t.node.url, privateKey: t.node.operatorKey! });
    await operator.login();
    const token = operator.context.state.session!.token;
    const seller = t.node.testAccounts[0]!;
    const put = (signer: string) => fetch(`${t.node.url}/v1/prosumers/${seller.address}/meter-signer`, {
      method: "PUT", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ signer }),
    });
    const replacement = createMeterKeyPair();
    const rotated = await put(replacement.signer);
    expect(rotated.status, await rotated.clone().text()).to.equal(200);
    expect(await rotated.json()).to.deep.include({ address: seller.address, meterId: seller.meterId, meterSigner: replacement.signer });
    expect(((await (await fetch(`${t.node.url}/v1/prosumers/${seller.address}`)).json()) as { meterSigner: string }).meterSigner).to.equal(replacement.signer);
    // The same key again is the contract's MeterSignerUnchanged; only an operator may rotate.
    expect((await put(replacement.signer)).status).to.equal(409);
    const unauthorised = await fetch(`${t.node.url}/v1/prosumers/${seller.address}/meter-signer`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ signer: replacement.signer }) });
    expect(unauthorised.status).to.equal(401);
    // The meter's own owner, signed in but no operator, may not swap its meter's key either.
    const owner = createEnergyClient({ apiUrl: t.node.url, privateKey: seller.privateKey });
    await owner.login();
    const byOwner = await fetch(`${t.node.url}/v1/prosumers/${seller.address}/meter-signer`, {
      method: "PUT", headers: { authorization: `Bearer ${owner.context.state.session!.token}`, "content-type": "application/json" }, body: JSON.stringify({ signer: createMeterKeyPair().signer }),
    });
    expect(byOwner.status).to.equal(403);

    // The report's readings were signed by the key in force during the window: still verified.
    const r = await verifyRoute();
    expect(r.problems).to.deep.equal([]);
    expect(r.readings[0]!.signer).to.equal(seller.meterSigner);
    // Back to the test account's own key, so the node's simulated meter signs for it again.
    expect((await put(seller.meterSigner)).status).to.equal(200);

    // An operator may register a prosumer with its meter's key in one request.
    const household = privateKeyToAccount(generatePrivateKey()).address;
    const meterKey = createMeterKeyPair();
    const registered = await fetch(`${t.node.url}/v1/prosumers`, {
      method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ address: household, meterId: "SM-KEYED-1", zone: "ZONE-A", meterSigner: meterKey.signer }),
    });
    expect(registered.status, await registered.clone().text()).to.equal(201);
    expect(await registered.json()).to.deep.include({ address: household, meterId: "SM-KEYED-1", meterSigner: meterKey.signer });
  });

  const tampered: { name: string; edit: (e: any) => void; codes: string[] }[] = [
    {
      name: "a tampered reading (the seller's export raised)",
      edit: (e) => {
        e.sellers[0].readings[0].payload = JSON.stringify({ ...JSON.parse(e.sellers[0].readings[0].payload), export_kwh: 5 });
      },
      codes: ["evidence_hash_mismatch", "reading_hash_mismatch", "signature_invalid"],
    },
    {
      name: "a tampered allocation (more delivered than the readings give)",
      edit: (e) => {
        e.trades[0].deliveredWh = "1200";
        e.trades[0].sellerAllocatedWh = "1200";
      },
      codes: ["evidence_hash_mismatch", "allocation_mismatch"],
    },
    {
      name: "readings signed by a key the registry never held (re-signed, hashes fixed up)",
      edit: (e) => {
        const stranger = createMeterKeyPair();
        for (const party of [e.sellers[0], e.buyers[0]]) {
          const r = party.readings[0];
          const { signature: _, ...payload } = JSON.parse(r.payload);
          r.payload = JSON.stringify(signReading({ meterId: party.meter, metric: r.metric, payload, privateKey: stranger.privateKey }));
          r.sha256 = createHash("sha256").update(r.payload).digest("hex");
          party.slots[0].readings = [r.sha256];
        }
      },
      codes: ["evidence_hash_mismatch", "signature_invalid"],
    },
  ];
  for (const c of tampered) {
    it(`${c.name} is refused by the route and the CLI`, async () => {
      await storeEvidence(edited(c.edit));
      try {
        const r = await verifyRoute();
        expect(r.verified).to.equal(false);
        expect(r.problems.map((p) => p.code)).to.include.members(c.codes);
        const text = await energy(["verify-evidence", tradeId]);
        expect(text.code, text.stderr).to.equal(1);
        expect(text.stdout).to.contain("the evidence does NOT verify");
        for (const code of c.codes) expect(text.stdout).to.contain(`[${code}]`);
        const json = await energy(["verify-evidence", tradeId, "--json"]);
        expect(json.code).to.equal(1);
        expect((JSON.parse(json.stdout) as { problems: { code: string }[] }).problems.map((p) => p.code)).to.include.members(c.codes);
      } finally {
        await storeEvidence(honest);
      }
    });
  }
});
