import { expect } from "chai";
import type { Signer } from "ethers";
import { ethers, networkHelpers } from "./fixtures.js";

const MAX_FAUCET = 10_000n * 1_000_000n;

const permitTypes = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

async function deployToken() {
  const signers: Signer[] = await ethers.getSigners();
  const [deployer, alice, bob, carol] = signers.slice(0, 4) as [Signer, Signer, Signer, Signer];
  const token = await ethers.deployContract("TestEuro");
  const { chainId } = await ethers.provider.getNetwork();
  const domain = {
    name: "Test Euro",
    version: "1",
    chainId,
    verifyingContract: await token.getAddress(),
  };
  return {
    token,
    deployer,
    alice,
    bob,
    carol,
    aliceAddr: await alice.getAddress(),
    bobAddr: await bob.getAddress(),
    carolAddr: await carol.getAddress(),
    domain,
  };
}

type TokenFixture = Awaited<ReturnType<typeof deployToken>>;

async function signPermit(
  f: TokenFixture,
  signer: Signer,
  message: { owner: string; spender: string; value: bigint; nonce: bigint; deadline: bigint },
) {
  return ethers.Signature.from(await signer.signTypedData(f.domain, permitTypes, message));
}

describe("TestEuro", () => {
  describe("metadata", () => {
    it("has 6 decimals, name Test Euro, symbol tEUR and a 10,000 tEUR faucet cap", async () => {
      const f = await networkHelpers.loadFixture(deployToken);
      expect(await f.token.decimals()).to.equal(6n);
      expect(await f.token.name()).to.equal("Test Euro");
      expect(await f.token.symbol()).to.equal("tEUR");
      expect(await f.token.MAX_FAUCET_AMOUNT()).to.equal(MAX_FAUCET);
      expect(await f.token.totalSupply()).to.equal(0n);
    });

    it("exposes the EIP-712 domain that permits are signed under", async () => {
      const f = await networkHelpers.loadFixture(deployToken);
      expect(await f.token.DOMAIN_SEPARATOR()).to.equal(ethers.TypedDataEncoder.hashDomain(f.domain));
      const d = await f.token.eip712Domain();
      expect(d.name).to.equal("Test Euro");
      expect(d.version).to.equal("1");
      expect(d.chainId).to.equal(f.domain.chainId);
      expect(d.verifyingContract).to.equal(f.domain.verifyingContract);
    });
  });

  describe("faucet", () => {
    it("mints the requested amount to the recipient and emits FaucetDripped", async () => {
      const f = await networkHelpers.loadFixture(deployToken);
      const amount = 1_234_567n;
      // Anyone may call it, for anyone.
      const tx = f.token.connect(f.bob).faucet(f.aliceAddr, amount);
      await expect(tx).to.emit(f.token, "FaucetDripped").withArgs(f.aliceAddr, amount);
      await expect(tx).to.emit(f.token, "Transfer").withArgs(ethers.ZeroAddress, f.aliceAddr, amount);
      expect(await f.token.balanceOf(f.aliceAddr)).to.equal(amount);
      expect(await f.token.balanceOf(f.bobAddr)).to.equal(0n);
      expect(await f.token.totalSupply()).to.equal(amount);
    });

    it("allows exactly MAX_FAUCET_AMOUNT and repeated drips add up", async () => {
      const f = await networkHelpers.loadFixture(deployToken);
      await expect(f.token.faucet(f.aliceAddr, MAX_FAUCET))
        .to.emit(f.token, "FaucetDripped")
        .withArgs(f.aliceAddr, MAX_FAUCET);
      await expect(f.token.faucet(f.aliceAddr, 1n)).to.emit(f.token, "FaucetDripped").withArgs(f.aliceAddr, 1n);
      expect(await f.token.balanceOf(f.aliceAddr)).to.equal(MAX_FAUCET + 1n);
    });

    it("reverts with FaucetAmountTooLarge(requested, max) above the cap", async () => {
      const f = await networkHelpers.loadFixture(deployToken);
      await expect(f.token.faucet(f.aliceAddr, MAX_FAUCET + 1n))
        .to.be.revertedWithCustomError(f.token, "FaucetAmountTooLarge")
        .withArgs(MAX_FAUCET + 1n, MAX_FAUCET);
      await expect(f.token.faucet(f.aliceAddr, ethers.MaxUint256))
        .to.be.revertedWithCustomError(f.token, "FaucetAmountTooLarge")
        .withArgs(ethers.MaxUint256, MAX_FAUCET);
      expect(await f.token.balanceOf(f.aliceAddr)).to.equal(0n);
    });
  });

  describe("permit (ERC-2612)", () => {
    it("sets the allowance from an owner's signature submitted by anyone, and the spender can pull", async () => {
      const f = await networkHelpers.loadFixture(deployToken);
      await f.token.faucet(f.aliceAddr, 500n);
      const value = 300n;
      const deadline = BigInt(await networkHelpers.time.latest()) + 3600n;
      const nonce = await f.token.nonces(f.aliceAddr);
      expect(nonce).to.equal(0n);
      const sig = await signPermit(f, f.alice, { owner: f.aliceAddr, spender: f.bobAddr, value, nonce, deadline });

      await expect(f.token.connect(f.carol).permit(f.aliceAddr, f.bobAddr, value, deadline, sig.v, sig.r, sig.s))
        .to.emit(f.token, "Approval")
        .withArgs(f.aliceAddr, f.bobAddr, value);
      expect(await f.token.allowance(f.aliceAddr, f.bobAddr)).to.equal(value);
      expect(await f.token.nonces(f.aliceAddr)).to.equal(1n);

      await expect(f.token.connect(f.bob).transferFrom(f.aliceAddr, f.carolAddr, value)).to.changeTokenBalances(
        ethers,
        f.token,
        [f.aliceAddr, f.carolAddr],
        [-value, value],
      );
      expect(await f.token.allowance(f.aliceAddr, f.bobAddr)).to.equal(0n);
    });

    it("accepts a permit in the block of its deadline", async () => {
      const f = await networkHelpers.loadFixture(deployToken);
      const deadline = BigInt(await networkHelpers.time.latest()) + 100n;
      const sig = await signPermit(f, f.alice, {
        owner: f.aliceAddr, spender: f.bobAddr, value: 7n, nonce: 0n, deadline,
      });
      await networkHelpers.time.setNextBlockTimestamp(deadline);
      await f.token.permit(f.aliceAddr, f.bobAddr, 7n, deadline, sig.v, sig.r, sig.s);
      expect(await f.token.allowance(f.aliceAddr, f.bobAddr)).to.equal(7n);
    });

    it("reverts an expired permit with ERC2612ExpiredSignature(deadline)", async () => {
      const f = await networkHelpers.loadFixture(deployToken);
      const deadline = BigInt(await networkHelpers.time.latest()) + 100n;
      const sig = await signPermit(f, f.alice, {
        owner: f.aliceAddr, spender: f.bobAddr, value: 300n, nonce: 0n, deadline,
      });
      await networkHelpers.time.increaseTo(deadline + 1n);
      await expect(f.token.permit(f.aliceAddr, f.bobAddr, 300n, deadline, sig.v, sig.r, sig.s))
        .to.be.revertedWithCustomError(f.token, "ERC2612ExpiredSignature")
        .withArgs(deadline);
      expect(await f.token.allowance(f.aliceAddr, f.bobAddr)).to.equal(0n);
      expect(await f.token.nonces(f.aliceAddr)).to.equal(0n);
    });

    it("reverts a permit signed by someone other than the owner with ERC2612InvalidSigner(signer, owner)", async () => {
      const f = await networkHelpers.loadFixture(deployToken);
      const deadline = BigInt(await networkHelpers.time.latest()) + 3600n;
      // Carol signs a permit that claims to be Alice's.
      const sig = await signPermit(f, f.carol, {
        owner: f.aliceAddr, spender: f.bobAddr, value: 300n, nonce: 0n, deadline,
      });
      await expect(f.token.permit(f.aliceAddr, f.bobAddr, 300n, deadline, sig.v, sig.r, sig.s))
        .to.be.revertedWithCustomError(f.token, "ERC2612InvalidSigner")
        .withArgs(f.carolAddr, f.aliceAddr);
      expect(await f.token.allowance(f.aliceAddr, f.bobAddr)).to.equal(0n);
    });

    it("reverts a permit whose submitted value differs from the signed one", async () => {
      const f = await networkHelpers.loadFixture(deployToken);
      const deadline = BigInt(await networkHelpers.time.latest()) + 3600n;
      const sig = await signPermit(f, f.alice, {
        owner: f.aliceAddr, spender: f.bobAddr, value: 300n, nonce: 0n, deadline,
      });
      // The contract recovers some other address from the altered digest.
      const recovered = ethers.verifyTypedData(
        f.domain, permitTypes, { owner: f.aliceAddr, spender: f.bobAddr, value: 301n, nonce: 0n, deadline }, sig,
      );
      expect(recovered).to.not.equal(f.aliceAddr);
      await expect(f.token.permit(f.aliceAddr, f.bobAddr, 301n, deadline, sig.v, sig.r, sig.s))
        .to.be.revertedWithCustomError(f.token, "ERC2612InvalidSigner")
        .withArgs(recovered, f.aliceAddr);
    });

    it("cannot replay a used permit (the nonce moved on)", async () => {
      const f = await networkHelpers.loadFixture(deployToken);
      const deadline = BigInt(await networkHelpers.time.latest()) + 3600n;
      const message = { owner: f.aliceAddr, spender: f.bobAddr, value: 300n, nonce: 0n, deadline };
      const sig = await signPermit(f, f.alice, message);
      await f.token.permit(f.aliceAddr, f.bobAddr, 300n, deadline, sig.v, sig.r, sig.s);
      const recovered = ethers.verifyTypedData(f.domain, permitTypes, { ...message, nonce: 1n }, sig);
      await expect(f.token.permit(f.aliceAddr, f.bobAddr, 300n, deadline, sig.v, sig.r, sig.s))
        .to.be.revertedWithCustomError(f.token, "ERC2612InvalidSigner")
        .withArgs(recovered, f.aliceAddr);
      expect(await f.token.nonces(f.aliceAddr)).to.equal(1n);
    });

    it("rejects a permit signed for another token's domain", async () => {
      const f = await networkHelpers.loadFixture(deployToken);
      const deadline = BigInt(await networkHelpers.time.latest()) + 3600n;
      const message = { owner: f.aliceAddr, spender: f.bobAddr, value: 300n, nonce: 0n, deadline };
      const otherDomain = { ...f.domain, verifyingContract: f.carolAddr };
      const sig = ethers.Signature.from(await f.alice.signTypedData(otherDomain, permitTypes, message));
      const recovered = ethers.verifyTypedData(f.domain, permitTypes, message, sig);
      await expect(f.token.permit(f.aliceAddr, f.bobAddr, 300n, deadline, sig.v, sig.r, sig.s))
        .to.be.revertedWithCustomError(f.token, "ERC2612InvalidSigner")
        .withArgs(recovered, f.aliceAddr);
    });
  });
});
