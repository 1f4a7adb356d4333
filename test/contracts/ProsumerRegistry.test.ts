import { expect } from "chai";
import type { Signer } from "ethers";
import { ethers, networkHelpers, meterId, ZONE_A, ZONE_B, sourceMask } from "./fixtures.js";

const Status = { None: 0, Active: 1, Suspended: 2 } as const;
const SOLAR_WIND = sourceMask(["solar", "wind"]); // 0x06
const ALL = sourceMask(["solar", "wind", "storage", "mixed"]); // 0x1e
const ZONE_C = ethers.encodeBytes32String("ZONE-C");

async function deployRegistry() {
  const signers: Signer[] = await ethers.getSigners();
  const [admin, registrar, alice, bob, carol, outsider] = signers.slice(0, 6) as [
    Signer, Signer, Signer, Signer, Signer, Signer,
  ];
  const registry = await ethers.deployContract("ProsumerRegistry", [await admin.getAddress()]);
  return {
    registry,
    admin,
    registrar,
    alice,
    bob,
    carol,
    outsider,
    adminAddr: await admin.getAddress(),
    registrarAddr: await registrar.getAddress(),
    aliceAddr: await alice.getAddress(),
    bobAddr: await bob.getAddress(),
    carolAddr: await carol.getAddress(),
    outsiderAddr: await outsider.getAddress(),
    REGISTRAR_ROLE: await registry.REGISTRAR_ROLE(),
  };
}

type RegistryFixture = Awaited<ReturnType<typeof deployRegistry>>;

/** Registers Alice with meter SM-001 in zone A, solar+wind, 4 kW export, 8 kW import. */
async function withAlice() {
  const f = await deployRegistry();
  await f.registry.registerProsumer(f.aliceAddr, meterId(1), ZONE_A, 4_000n, 8_000n, SOLAR_WIND);
  return f;
}

async function expectProsumer(
  f: RegistryFixture,
  account: string,
  expected: [string, string, bigint, bigint, number, number],
) {
  const p = await f.registry.getProsumer(account);
  expect([p.meterId, p.zone, p.exportLimitW, p.importLimitW, p.sources, p.status]).to.deep.equal(
    expected.map((v, i) => (i >= 4 ? BigInt(v) : v)),
  );
}

describe("ProsumerRegistry", () => {
  describe("deployment", () => {
    it("gives the admin DEFAULT_ADMIN_ROLE and REGISTRAR_ROLE", async () => {
      const f = await networkHelpers.loadFixture(deployRegistry);
      expect(f.REGISTRAR_ROLE).to.equal(ethers.id("REGISTRAR_ROLE"));
      expect(await f.registry.hasRole(ethers.ZeroHash, f.adminAddr)).to.equal(true);
      expect(await f.registry.hasRole(f.REGISTRAR_ROLE, f.adminAddr)).to.equal(true);
      expect(await f.registry.hasRole(f.REGISTRAR_ROLE, f.registrarAddr)).to.equal(false);
    });
  });

  describe("registerProsumer", () => {
    it("registers an active prosumer, emits ProsumerRegistered and fills every view", async () => {
      const f = await networkHelpers.loadFixture(deployRegistry);
      await expect(f.registry.registerProsumer(f.aliceAddr, meterId(1), ZONE_A, 4_000n, 8_000n, SOLAR_WIND))
        .to.emit(f.registry, "ProsumerRegistered")
        .withArgs(f.aliceAddr, meterId(1), ZONE_A, 4_000n, 8_000n, SOLAR_WIND);
      await expectProsumer(f, f.aliceAddr, [meterId(1), ZONE_A, 4_000n, 8_000n, SOLAR_WIND, Status.Active]);
      expect(await f.registry.accountOfMeter(meterId(1))).to.equal(f.aliceAddr);
      expect(await f.registry.isActiveIn(f.aliceAddr, ZONE_A)).to.equal(true);
      expect(await f.registry.isActiveIn(f.aliceAddr, ZONE_B)).to.equal(false);
      const [zone, active, sources] = await f.registry.tradingProfile(f.aliceAddr);
      expect([zone, active, sources]).to.deep.equal([ZONE_A, true, BigInt(SOLAR_WIND)]);
    });

    it("accepts every valid source (0x1e) and no source at all (a pure consumer)", async () => {
      const f = await networkHelpers.loadFixture(deployRegistry);
      await expect(f.registry.registerProsumer(f.aliceAddr, meterId(1), ZONE_A, 0n, 0n, ALL))
        .to.emit(f.registry, "ProsumerRegistered")
        .withArgs(f.aliceAddr, meterId(1), ZONE_A, 0n, 0n, 0x1e);
      await expect(f.registry.registerProsumer(f.bobAddr, meterId(2), ZONE_B, 0n, 5_000n, 0))
        .to.emit(f.registry, "ProsumerRegistered")
        .withArgs(f.bobAddr, meterId(2), ZONE_B, 0n, 5_000n, 0);
      expect((await f.registry.tradingProfile(f.aliceAddr))[2]).to.equal(0x1en);
      expect((await f.registry.tradingProfile(f.bobAddr))[2]).to.equal(0n);
    });

    it("lets an account granted REGISTRAR_ROLE register", async () => {
      const f = await networkHelpers.loadFixture(deployRegistry);
      await f.registry.grantRole(f.REGISTRAR_ROLE, f.registrarAddr);
      await expect(
        f.registry.connect(f.registrar).registerProsumer(f.aliceAddr, meterId(1), ZONE_A, 1n, 2n, SOLAR_WIND),
      )
        .to.emit(f.registry, "ProsumerRegistered")
        .withArgs(f.aliceAddr, meterId(1), ZONE_A, 1n, 2n, SOLAR_WIND);
    });

    it("reverts ProsumerAlreadyRegistered for a registered account, active or suspended", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.registerProsumer(f.aliceAddr, meterId(9), ZONE_B, 1n, 1n, 0))
        .to.be.revertedWithCustomError(f.registry, "ProsumerAlreadyRegistered")
        .withArgs(f.aliceAddr);
      await f.registry.setStatus(f.aliceAddr, Status.Suspended);
      await expect(f.registry.registerProsumer(f.aliceAddr, meterId(9), ZONE_B, 1n, 1n, 0))
        .to.be.revertedWithCustomError(f.registry, "ProsumerAlreadyRegistered")
        .withArgs(f.aliceAddr);
    });

    it("reverts InvalidProsumer for a zero account, zero meter or zero zone", async () => {
      const f = await networkHelpers.loadFixture(deployRegistry);
      const Z = ethers.ZeroHash;
      await expect(f.registry.registerProsumer(ethers.ZeroAddress, meterId(1), ZONE_A, 1n, 1n, 0))
        .to.be.revertedWithCustomError(f.registry, "InvalidProsumer")
        .withArgs(ethers.ZeroAddress, meterId(1), ZONE_A);
      await expect(f.registry.registerProsumer(f.aliceAddr, Z, ZONE_A, 1n, 1n, 0))
        .to.be.revertedWithCustomError(f.registry, "InvalidProsumer")
        .withArgs(f.aliceAddr, Z, ZONE_A);
      await expect(f.registry.registerProsumer(f.aliceAddr, meterId(1), Z, 1n, 1n, 0))
        .to.be.revertedWithCustomError(f.registry, "InvalidProsumer")
        .withArgs(f.aliceAddr, meterId(1), Z);
      expect((await f.registry.getProsumer(f.aliceAddr)).status).to.equal(BigInt(Status.None));
    });

    for (const bad of [0x01, 0x20, 0x40, 0x80, 0x1f, 0xff]) {
      it(`reverts InvalidSources for bits outside 0x1e (0x${bad.toString(16)})`, async () => {
        const f = await networkHelpers.loadFixture(deployRegistry);
        await expect(f.registry.registerProsumer(f.aliceAddr, meterId(1), ZONE_A, 1n, 1n, bad))
          .to.be.revertedWithCustomError(f.registry, "InvalidSources")
          .withArgs(bad);
      });
    }

    it("reverts MeterAlreadyRegistered(meter, owner) when another account owns the meter", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.registerProsumer(f.bobAddr, meterId(1), ZONE_A, 1n, 1n, 0))
        .to.be.revertedWithCustomError(f.registry, "MeterAlreadyRegistered")
        .withArgs(meterId(1), f.aliceAddr);
      expect((await f.registry.getProsumer(f.bobAddr)).status).to.equal(BigInt(Status.None));
    });

    it("reverts AccessControlUnauthorizedAccount for a non-registrar", async () => {
      const f = await networkHelpers.loadFixture(deployRegistry);
      await expect(
        f.registry.connect(f.outsider).registerProsumer(f.outsiderAddr, meterId(1), ZONE_A, 1n, 1n, 0),
      )
        .to.be.revertedWithCustomError(f.registry, "AccessControlUnauthorizedAccount")
        .withArgs(f.outsiderAddr, f.REGISTRAR_ROLE);
    });
  });

  describe("updateProsumer", () => {
    it("changes meter, zone, limits and sources, frees the old meter and keeps the status", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.updateProsumer(f.aliceAddr, meterId(2), ZONE_B, 6_000n, 9_000n, ALL))
        .to.emit(f.registry, "ProsumerUpdated")
        .withArgs(f.aliceAddr, meterId(2), ZONE_B, 6_000n, 9_000n, ALL);
      await expectProsumer(f, f.aliceAddr, [meterId(2), ZONE_B, 6_000n, 9_000n, ALL, Status.Active]);
      expect(await f.registry.accountOfMeter(meterId(1))).to.equal(ethers.ZeroAddress);
      expect(await f.registry.accountOfMeter(meterId(2))).to.equal(f.aliceAddr);
      expect(await f.registry.isActiveIn(f.aliceAddr, ZONE_A)).to.equal(false);
      expect(await f.registry.isActiveIn(f.aliceAddr, ZONE_B)).to.equal(true);

      // The freed meter can be registered by someone else.
      await expect(f.registry.registerProsumer(f.bobAddr, meterId(1), ZONE_A, 1n, 1n, 0))
        .to.emit(f.registry, "ProsumerRegistered")
        .withArgs(f.bobAddr, meterId(1), ZONE_A, 1n, 1n, 0);
      expect(await f.registry.accountOfMeter(meterId(1))).to.equal(f.bobAddr);
    });

    it("keeps the meter when the meter id is unchanged", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.updateProsumer(f.aliceAddr, meterId(1), ZONE_A, 1n, 2n, 0))
        .to.emit(f.registry, "ProsumerUpdated")
        .withArgs(f.aliceAddr, meterId(1), ZONE_A, 1n, 2n, 0);
      expect(await f.registry.accountOfMeter(meterId(1))).to.equal(f.aliceAddr);
      await expectProsumer(f, f.aliceAddr, [meterId(1), ZONE_A, 1n, 2n, 0, Status.Active]);
    });

    it("leaves a suspended prosumer suspended", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await f.registry.setStatus(f.aliceAddr, Status.Suspended);
      await f.registry.updateProsumer(f.aliceAddr, meterId(1), ZONE_B, 1n, 2n, ALL);
      expect((await f.registry.getProsumer(f.aliceAddr)).status).to.equal(BigInt(Status.Suspended));
      expect(await f.registry.isActiveIn(f.aliceAddr, ZONE_B)).to.equal(false);
    });

    it("reverts ProsumerNotRegistered for an unknown account", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.updateProsumer(f.bobAddr, meterId(5), ZONE_A, 1n, 1n, 0))
        .to.be.revertedWithCustomError(f.registry, "ProsumerNotRegistered")
        .withArgs(f.bobAddr);
      await expect(f.registry.updateProsumer(ethers.ZeroAddress, meterId(5), ZONE_A, 1n, 1n, 0))
        .to.be.revertedWithCustomError(f.registry, "ProsumerNotRegistered")
        .withArgs(ethers.ZeroAddress);
    });

    it("reverts MeterAlreadyRegistered when moving to another account's meter, leaving both meters as they were", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await f.registry.registerProsumer(f.bobAddr, meterId(2), ZONE_A, 1n, 1n, 0);
      await expect(f.registry.updateProsumer(f.aliceAddr, meterId(2), ZONE_A, 1n, 1n, 0))
        .to.be.revertedWithCustomError(f.registry, "MeterAlreadyRegistered")
        .withArgs(meterId(2), f.bobAddr);
      expect(await f.registry.accountOfMeter(meterId(1))).to.equal(f.aliceAddr);
      expect(await f.registry.accountOfMeter(meterId(2))).to.equal(f.bobAddr);
    });

    it("validates like registration: InvalidProsumer and InvalidSources", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.updateProsumer(f.aliceAddr, ethers.ZeroHash, ZONE_A, 1n, 1n, 0))
        .to.be.revertedWithCustomError(f.registry, "InvalidProsumer")
        .withArgs(f.aliceAddr, ethers.ZeroHash, ZONE_A);
      await expect(f.registry.updateProsumer(f.aliceAddr, meterId(1), ethers.ZeroHash, 1n, 1n, 0))
        .to.be.revertedWithCustomError(f.registry, "InvalidProsumer")
        .withArgs(f.aliceAddr, meterId(1), ethers.ZeroHash);
      await expect(f.registry.updateProsumer(f.aliceAddr, meterId(1), ZONE_A, 1n, 1n, 0x21))
        .to.be.revertedWithCustomError(f.registry, "InvalidSources")
        .withArgs(0x21);
    });

    it("reverts AccessControlUnauthorizedAccount for a non-registrar", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.connect(f.alice).updateProsumer(f.aliceAddr, meterId(1), ZONE_A, 1n, 1n, ALL))
        .to.be.revertedWithCustomError(f.registry, "AccessControlUnauthorizedAccount")
        .withArgs(f.aliceAddr, f.REGISTRAR_ROLE);
    });
  });

  describe("setStatus", () => {
    it("suspends and reactivates, emitting ProsumerStatusChanged", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.setStatus(f.aliceAddr, Status.Suspended))
        .to.emit(f.registry, "ProsumerStatusChanged")
        .withArgs(f.aliceAddr, Status.Suspended);
      expect((await f.registry.getProsumer(f.aliceAddr)).status).to.equal(BigInt(Status.Suspended));
      expect(await f.registry.isActiveIn(f.aliceAddr, ZONE_A)).to.equal(false);
      let [zone, active, sources] = await f.registry.tradingProfile(f.aliceAddr);
      expect([zone, active, sources]).to.deep.equal([ZONE_A, false, BigInt(SOLAR_WIND)]);
      // The meter stays claimed while suspended.
      expect(await f.registry.accountOfMeter(meterId(1))).to.equal(f.aliceAddr);

      await expect(f.registry.setStatus(f.aliceAddr, Status.Active))
        .to.emit(f.registry, "ProsumerStatusChanged")
        .withArgs(f.aliceAddr, Status.Active);
      expect(await f.registry.isActiveIn(f.aliceAddr, ZONE_A)).to.equal(true);
      [zone, active, sources] = await f.registry.tradingProfile(f.aliceAddr);
      expect([zone, active, sources]).to.deep.equal([ZONE_A, true, BigInt(SOLAR_WIND)]);
    });

    it("reverts InvalidStatus for None", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.setStatus(f.aliceAddr, Status.None))
        .to.be.revertedWithCustomError(f.registry, "InvalidStatus")
        .withArgs(Status.None);
      expect((await f.registry.getProsumer(f.aliceAddr)).status).to.equal(BigInt(Status.Active));
    });

    it("rejects a status outside the enum", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.setStatus(f.aliceAddr, 3)).to.be.revertedWithoutReason(ethers);
    });

    it("reverts ProsumerNotRegistered for an unknown account", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.setStatus(f.bobAddr, Status.Suspended))
        .to.be.revertedWithCustomError(f.registry, "ProsumerNotRegistered")
        .withArgs(f.bobAddr);
      // Checked before the status itself.
      await expect(f.registry.setStatus(f.bobAddr, Status.None))
        .to.be.revertedWithCustomError(f.registry, "ProsumerNotRegistered")
        .withArgs(f.bobAddr);
    });

    it("reverts AccessControlUnauthorizedAccount for a non-registrar", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.connect(f.outsider).setStatus(f.aliceAddr, Status.Suspended))
        .to.be.revertedWithCustomError(f.registry, "AccessControlUnauthorizedAccount")
        .withArgs(f.outsiderAddr, f.REGISTRAR_ROLE);
    });
  });

  describe("setMeterSigner", () => {
    // Ed25519 public keys are 32 opaque bytes to the contract.
    const KEY_1 = ethers.id("meter key 1");
    const KEY_2 = ethers.id("meter key 2");

    it("sets the key of the account's meter, emits MeterSignerSet and answers meterSignerOf", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      expect(await f.registry.meterSignerOf(meterId(1))).to.equal(ethers.ZeroHash);
      await expect(f.registry.setMeterSigner(f.aliceAddr, KEY_1))
        .to.emit(f.registry, "MeterSignerSet")
        .withArgs(f.aliceAddr, meterId(1), KEY_1);
      expect(await f.registry.meterSignerOf(meterId(1))).to.equal(KEY_1);
      // The rest of the entry is untouched.
      await expectProsumer(f, f.aliceAddr, [meterId(1), ZONE_A, 4_000n, 8_000n, SOLAR_WIND, Status.Active]);
    });

    it("rotates: a new key replaces the old one", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await f.registry.setMeterSigner(f.aliceAddr, KEY_1);
      await expect(f.registry.setMeterSigner(f.aliceAddr, KEY_2))
        .to.emit(f.registry, "MeterSignerSet")
        .withArgs(f.aliceAddr, meterId(1), KEY_2);
      expect(await f.registry.meterSignerOf(meterId(1))).to.equal(KEY_2);
    });

    it("zero revokes the key; setting the key the meter already has is refused with MeterSignerUnchanged", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.setMeterSigner(f.aliceAddr, ethers.ZeroHash))
        .to.be.revertedWithCustomError(f.registry, "MeterSignerUnchanged")
        .withArgs(f.aliceAddr, meterId(1), ethers.ZeroHash);
      await f.registry.setMeterSigner(f.aliceAddr, KEY_1);
      await expect(f.registry.setMeterSigner(f.aliceAddr, KEY_1))
        .to.be.revertedWithCustomError(f.registry, "MeterSignerUnchanged")
        .withArgs(f.aliceAddr, meterId(1), KEY_1);
      await expect(f.registry.setMeterSigner(f.aliceAddr, ethers.ZeroHash))
        .to.emit(f.registry, "MeterSignerSet")
        .withArgs(f.aliceAddr, meterId(1), ethers.ZeroHash);
      expect(await f.registry.meterSignerOf(meterId(1))).to.equal(ethers.ZeroHash);
    });

    it("works for a suspended prosumer (a key can be revoked while suspended)", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await f.registry.setStatus(f.aliceAddr, Status.Suspended);
      await expect(f.registry.setMeterSigner(f.aliceAddr, KEY_1))
        .to.emit(f.registry, "MeterSignerSet")
        .withArgs(f.aliceAddr, meterId(1), KEY_1);
    });

    it("reverts ProsumerNotRegistered for an unregistered account", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.setMeterSigner(f.bobAddr, KEY_1))
        .to.be.revertedWithCustomError(f.registry, "ProsumerNotRegistered")
        .withArgs(f.bobAddr);
      await expect(f.registry.setMeterSigner(ethers.ZeroAddress, KEY_1))
        .to.be.revertedWithCustomError(f.registry, "ProsumerNotRegistered")
        .withArgs(ethers.ZeroAddress);
    });

    it("reverts AccessControlUnauthorizedAccount for a non-registrar, even the meter's owner", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.connect(f.alice).setMeterSigner(f.aliceAddr, KEY_1))
        .to.be.revertedWithCustomError(f.registry, "AccessControlUnauthorizedAccount")
        .withArgs(f.aliceAddr, f.REGISTRAR_ROLE);
      await expect(f.registry.connect(f.outsider).setMeterSigner(f.aliceAddr, KEY_1))
        .to.be.revertedWithCustomError(f.registry, "AccessControlUnauthorizedAccount")
        .withArgs(f.outsiderAddr, f.REGISTRAR_ROLE);
      expect(await f.registry.meterSignerOf(meterId(1))).to.equal(ethers.ZeroHash);
    });

    it("lets an account granted REGISTRAR_ROLE set it", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await f.registry.grantRole(f.REGISTRAR_ROLE, f.registrarAddr);
      await expect(f.registry.connect(f.registrar).setMeterSigner(f.aliceAddr, KEY_1))
        .to.emit(f.registry, "MeterSignerSet")
        .withArgs(f.aliceAddr, meterId(1), KEY_1);
    });

    it("clears the old meter's key when the prosumer moves to another meter, before ProsumerUpdated", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await f.registry.setMeterSigner(f.aliceAddr, KEY_1);
      const tx = f.registry.updateProsumer(f.aliceAddr, meterId(2), ZONE_A, 4_000n, 8_000n, SOLAR_WIND);
      await expect(tx).to.emit(f.registry, "MeterSignerSet").withArgs(f.aliceAddr, meterId(1), ethers.ZeroHash);
      await expect(tx).to.emit(f.registry, "ProsumerUpdated").withArgs(f.aliceAddr, meterId(2), ZONE_A, 4_000n, 8_000n, SOLAR_WIND);
      const receipt = await (await tx).wait();
      const names = receipt!.logs.map((l) => f.registry.interface.parseLog(l)?.name);
      expect(names).to.deep.equal(["MeterSignerSet", "ProsumerUpdated"]);
      expect(await f.registry.meterSignerOf(meterId(1))).to.equal(ethers.ZeroHash);
      expect(await f.registry.meterSignerOf(meterId(2))).to.equal(ethers.ZeroHash);
      // Whoever registers the freed meter next does not inherit the old device's key.
      await f.registry.registerProsumer(f.bobAddr, meterId(1), ZONE_A, 1n, 1n, 0);
      expect(await f.registry.meterSignerOf(meterId(1))).to.equal(ethers.ZeroHash);
    });

    it("keeps the key when an update leaves the meter as it is, and emits nothing for it", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await f.registry.setMeterSigner(f.aliceAddr, KEY_1);
      await expect(f.registry.updateProsumer(f.aliceAddr, meterId(1), ZONE_B, 1n, 2n, 0)).not.to.emit(f.registry, "MeterSignerSet");
      expect(await f.registry.meterSignerOf(meterId(1))).to.equal(KEY_1);
    });

    it("moving a meter without a key emits no MeterSignerSet", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expect(f.registry.updateProsumer(f.aliceAddr, meterId(2), ZONE_A, 1n, 2n, 0)).not.to.emit(f.registry, "MeterSignerSet");
    });
  });

  describe("views", () => {
    it("return zeros for an unknown account or meter", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await expectProsumer(f, f.bobAddr, [ethers.ZeroHash, ethers.ZeroHash, 0n, 0n, 0, Status.None]);
      expect(await f.registry.accountOfMeter(meterId(77))).to.equal(ethers.ZeroAddress);
      expect(await f.registry.isActiveIn(f.bobAddr, ZONE_A)).to.equal(false);
      expect(await f.registry.isActiveIn(f.bobAddr, ethers.ZeroHash)).to.equal(false);
      const [zone, active, sources] = await f.registry.tradingProfile(f.bobAddr);
      expect([zone, active, sources]).to.deep.equal([ethers.ZeroHash, false, 0n]);
    });

    it("keep several prosumers apart", async () => {
      const f = await networkHelpers.loadFixture(withAlice);
      await f.registry.registerProsumer(f.bobAddr, meterId(2), ZONE_B, 2n, 3n, ALL);
      await f.registry.registerProsumer(f.carolAddr, meterId(3), ZONE_C, 4n, 5n, 0);
      await f.registry.setStatus(f.carolAddr, Status.Suspended);
      expect(await f.registry.accountOfMeter(meterId(1))).to.equal(f.aliceAddr);
      expect(await f.registry.accountOfMeter(meterId(2))).to.equal(f.bobAddr);
      expect(await f.registry.accountOfMeter(meterId(3))).to.equal(f.carolAddr);
      expect(await f.registry.isActiveIn(f.aliceAddr, ZONE_A)).to.equal(true);
      expect(await f.registry.isActiveIn(f.bobAddr, ZONE_B)).to.equal(true);
      expect(await f.registry.isActiveIn(f.bobAddr, ZONE_A)).to.equal(false);
      expect(await f.registry.isActiveIn(f.carolAddr, ZONE_C)).to.equal(false);
      await expectProsumer(f, f.aliceAddr, [meterId(1), ZONE_A, 4_000n, 8_000n, SOLAR_WIND, Status.Active]);
      await expectProsumer(f, f.bobAddr, [meterId(2), ZONE_B, 2n, 3n, ALL, Status.Active]);
      await expectProsumer(f, f.carolAddr, [meterId(3), ZONE_C, 4n, 5n, 0, Status.Suspended]);
    });
  });
});
