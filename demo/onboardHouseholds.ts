// Brings the community on-chain before the day starts: the operator sets the market's fees (the
// community's share and the grid operator's network fee, taken from what sellers are paid) and
// (REGISTRAR_ROLE) registers
// every home as a prosumer with its meter, zone, connection limits and owned sources; the test
// token's open faucet gives each home its tEUR; each home signs an ERC-2612 permit for the
// market, which the operator relays (so homes need no gas money to set up).
//
// Everything goes through Multicall3 in batches: one transaction per home would be thousands of
// blocks for the node's indexer and bridge to walk. Faucet drips and permits are anyone's to
// send. The registry has no batch call, so the operator lends Multicall3 its REGISTRAR_ROLE for
// the registrations and takes it back in the same burst of transactions (while it holds the
// role anyone could register through it: acceptable on the demo's private chain during setup,
// not a pattern for a shared chain).
import { encodeFunctionData, getContractAddress, hashTypedData, maxUint256, type Address, type Hex, type PublicClient } from "viem";
import { energyMarketAbi, prosumerRegistryAbi, testEuroAbi } from "../contracts/client/abi.js";
import { roleIds } from "../contracts/client/deploy.js";
import { sourceMask, type EnergySourceName } from "../contracts/client/order.js";
import { meterIdToBytes32 } from "../bridge/meterDirectory.js";
import { deriveMeterKeyPair, type MeterKeyPair } from "../bridge/readingSignature.js";
import { hexToBytes, signDigest } from "../engine/intake/orderSignature.js";
import { zoneToHex } from "../engine/markets.js";
import type { Household } from "./community.js";
import type { HouseholdWallet } from "./householdWallets.js";
import { multicall3Abi, multicall3Bytecode } from "./multicall3Contract.js";
import type { ContractCall, TransactionSender } from "./sendTransactions.js";

/**
 * Calls per Multicall3 transaction and the gas each may take: a transaction may use at most 2^24
 * gas (EIP-7825, the embedded chain's hardfork).
 */
const BATCHES = { register: { calls: 60, gas: 210_000n }, faucet: { calls: 150, gas: 70_000n }, permit: { calls: 150, gas: 100_000n } } as const;

export interface OnboardHouseholdsParameters {
  client: PublicClient;
  /** The operator's sender (holds REGISTRAR_ROLE on the registry). */
  operator: TransactionSender;
  chainId: number;
  contracts: { PaymentToken: Address; ProsumerRegistry: Address; EnergyMarket: Address };
  households: readonly Household[];
  wallets: readonly HouseholdWallet[];
  /** tEUR base units each home gets from the faucet. */
  fundingPerHousehold: bigint;
  /** Fees trades carry from now on (the operator is the market's admin); none when absent. */
  fees?: { communityFeeBps: number; communityFeeRecipient: Address; networkFeePerKWh: bigint; networkFeeRecipient: Address };
}

export interface OnboardHouseholdsReturnType {
  multicall: Address;
  /** Each home's meter key by meter id: the meter signs its readings with it (the registry holds its public key). */
  meterKeys: Map<string, MeterKeyPair>;
  transactions: number;
}

/**
 * A simulated home's meter key, derived from its wallet's key: the same community always has the
 * same meter keys. A real meter makes its key inside itself and never shows it.
 */
export function householdMeterKey(wallet: HouseholdWallet): MeterKeyPair {
  return deriveMeterKeyPair(`demo-meter:${wallet.privateKeyHex.toLowerCase()}`);
}

/** What a home may sell: its PV, and what its battery stores. */
export function registeredSources(h: Household): number {
  const sources: EnergySourceName[] = [];
  if (h.pv) sources.push("solar");
  if (h.battery) sources.push("storage");
  return sourceMask(sources);
}

export async function onboardHouseholds(p: OnboardHouseholdsParameters): Promise<OnboardHouseholdsReturnType> {
  const { operator, contracts } = p;
  // Multicall3 first: its address follows from the operator's nonce.
  const nonce = await p.client.getTransactionCount({ address: operator.address, blockTag: "pending" });
  const multicall = getContractAddress({ from: operator.address, nonce: BigInt(nonce) });
  await operator.send([{ to: undefined, data: multicall3Bytecode, gas: 3_000_000n, label: "deploy Multicall3" }]);

  // Each home is registered with its meter, then its meter's signing key: only readings signed
  // by that key can prove a delivery.
  const meterKeys = new Map<string, MeterKeyPair>();
  const registrations = p.households.flatMap((h, i) => {
    const key = householdMeterKey(p.wallets[i]!);
    meterKeys.set(h.meterId, key);
    return [
      {
        target: contracts.ProsumerRegistry, allowFailure: false,
        callData: encodeFunctionData({
          abi: prosumerRegistryAbi, functionName: "registerProsumer",
          args: [p.wallets[i]!.address, meterIdToBytes32(h.meterId)!, zoneToHex(h.zone), BigInt(h.exportLimitW), BigInt(h.importLimitW), registeredSources(h)],
        }),
      },
      {
        target: contracts.ProsumerRegistry, allowFailure: false,
        callData: encodeFunctionData({ abi: prosumerRegistryAbi, functionName: "setMeterSigner", args: [p.wallets[i]!.address, key.signer] }),
      },
    ];
  });

  const drips = p.wallets.map((w) => ({
    target: contracts.PaymentToken, allowFailure: false,
    callData: encodeFunctionData({ abi: testEuroAbi, functionName: "faucet", args: [w.address, p.fundingPerHousehold] }),
  }));

  // Each home's own signature: the market may spend its tEUR (what it pays into escrow).
  const domain = { name: "Test Euro", version: "1", chainId: p.chainId, verifyingContract: contracts.PaymentToken } as const;
  const deadline = (1n << 63n) - 1n;
  const permits = p.wallets.map((w) => {
    const digest = hashTypedData({
      domain, primaryType: "Permit",
      types: { Permit: [{ name: "owner", type: "address" }, { name: "spender", type: "address" }, { name: "value", type: "uint256" }, { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" }] },
      message: { owner: w.address, spender: contracts.EnergyMarket, value: maxUint256, nonce: 0n, deadline },
    });
    const sig = hexToBytes(signDigest(w.privateKey, hexToBytes(digest, 32)), 65);
    const r = `0x${Buffer.from(sig.subarray(0, 32)).toString("hex")}` as Hex;
    const s = `0x${Buffer.from(sig.subarray(32, 64)).toString("hex")}` as Hex;
    return {
      target: contracts.PaymentToken, allowFailure: false,
      callData: encodeFunctionData({ abi: testEuroAbi, functionName: "permit", args: [w.address, contracts.EnergyMarket, maxUint256, deadline, sig[64]!, r, s] }),
    };
  });

  const role = (functionName: "grantRole" | "revokeRole"): ContractCall => ({
    to: contracts.ProsumerRegistry, data: encodeFunctionData({ abi: prosumerRegistryAbi, functionName, args: [roleIds.REGISTRAR_ROLE, multicall] }),
    gas: 200_000n, label: `${functionName}(REGISTRAR_ROLE, Multicall3)`,
  });
  const batched = (kind: keyof typeof BATCHES, calls: { target: Address; allowFailure: boolean; callData: Hex }[]): ContractCall[] => {
    const out: ContractCall[] = [];
    for (let i = 0; i < calls.length; i += BATCHES[kind].calls) {
      const chunk = calls.slice(i, i + BATCHES[kind].calls);
      out.push({
        to: multicall,
        data: encodeFunctionData({ abi: multicall3Abi, functionName: "aggregate3", args: [chunk] }),
        gas: 100_000n + BATCHES[kind].gas * BigInt(chunk.length),
        label: `Multicall3 ${kind} ${i}-${i + chunk.length - 1}`,
      });
    }
    return out;
  };
  const fees: ContractCall[] = p.fees
    ? [{
        to: contracts.EnergyMarket,
        data: encodeFunctionData({
          abi: energyMarketAbi, functionName: "setFees",
          args: [p.fees.communityFeeBps, p.fees.communityFeeRecipient, p.fees.networkFeePerKWh, p.fees.networkFeeRecipient],
        }),
        gas: 200_000n, label: "setFees",
      }]
    : [];
  const all = [...fees, role("grantRole"), ...batched("register", registrations), role("revokeRole"), ...batched("faucet", drips), ...batched("permit", permits)];
  await operator.send(all);
  return { multicall, meterKeys, transactions: all.length + 1 };
}
