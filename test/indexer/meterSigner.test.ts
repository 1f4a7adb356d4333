// ProsumerRegistry:MeterSignerSet in the index: the key that signs a prosumer's meter readings
// lands on indexer_prosumers.meter_signer, follows a rotation, and is cleared by a revocation and
// by a move to another meter (the contract clears the old meter's key first); indexing the same
// blocks again changes nothing.
import { expect } from "chai";
import { getAddress, keccak256, stringToHex } from "viem";
import { prosumerRegistryAbi } from "../../contracts/client/abi.js";
import { databaseTargets, dumpTables, indexOnce, meterId, openTestDatabase, send, startMarketChain, ZONE_A, type MarketChain } from "./fixtures.js";

const KEY_1 = keccak256(stringToHex("meter key 1"));
const KEY_2 = keccak256(stringToHex("meter key 2"));
const ZERO = `0x${"0".repeat(64)}` as const;

for (const target of databaseTargets) {
  describe(`indexer: meter signers on ${target.name}`, function () {
    let m: MarketChain;
    before(async () => {
      m = await startMarketChain();
    });
    after(async () => m?.close());

    it("stores each prosumer's meter key from MeterSignerSet: set, rotated, revoked, cleared by a meter change", async () => {
      const [rotated, revoked, moved, never] = m.sellers as [string, string, string, string];
      const setSigner = (account: string, signer: string) => send(m, m.admin, m.registry, prosumerRegistryAbi, "setMeterSigner", [account, signer]);
      await setSigner(rotated, KEY_1);
      await setSigner(rotated, KEY_2);
      await setSigner(revoked, KEY_1);
      await setSigner(revoked, ZERO);
      const movedKey = keccak256(stringToHex("moved meter key"));
      await setSigner(moved, movedKey);

      const { db, close } = await openTestDatabase(target);
      try {
        await indexOnce(m, db);
        const row = (account: string) => db.selectFrom("indexer_prosumers").selectAll().where("account", "=", getAddress(account)).executeTakeFirstOrThrow();
        expect((await row(rotated)).meter_signer).to.equal(KEY_2);
        expect((await row(revoked)).meter_signer).to.equal(null);
        expect((await row(moved)).meter_signer).to.equal(movedKey);
        expect((await row(never)).meter_signer).to.equal(null);
        const setEvents = await db.selectFrom("indexer_events").select(["event", "args"]).where("event", "=", "MeterSignerSet").execute();
        expect(setEvents).to.have.length(5);

        // A new meter starts without a key: the old one's is cleared on chain and in the index.
        const receipt = await send(m, m.admin, m.registry, prosumerRegistryAbi, "updateProsumer", [moved, meterId(99), ZONE_A, 10_000n, 10_000n, 0]);
        await indexOnce(m, db);
        const after = await row(moved);
        expect(after).to.include({ meter_id: meterId(99), meter_signer: null, updated_block: receipt.blockNumber });
        expect(await m.client.readContract({ address: m.registry, abi: prosumerRegistryAbi, functionName: "meterSignerOf", args: [meterId(3)] })).to.equal(ZERO);

        // The same key again on the new meter is indexed, and a second pass over every block changes nothing.
        await setSigner(moved, movedKey);
        await indexOnce(m, db);
        expect((await row(moved)).meter_signer).to.equal(movedKey);
        const before = await dumpTables(db);
        const fresh = await openTestDatabase(target);
        try {
          await indexOnce(m, fresh.db);
          expect(await dumpTables(fresh.db)).to.deep.equal(before);
        } finally {
          await fresh.close();
        }
      } finally {
        await close();
      }
    });
  });
}
