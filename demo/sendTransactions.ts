// Many transactions from one local key, fast: each is serialised by viem, its hash signed by
// libsecp256k1 (viem's JS signer manages a few hundred a second) and broadcast in nonce order
// without waiting for the one before to be mined; receipts are read once at the end. The
// embedded chain mines one block per transaction as it arrives.
import secp256k1 from "secp256k1";
import { keccak256, serializeTransaction, type Address, type Hex, type PublicClient, type TransactionReceipt } from "viem";
import { addressOfKey, hexToBytes } from "../engine/intake/orderSignature.js";
import { BaseError } from "../lib/errors.js";

export interface ContractCall {
  /** Absent: a contract creation with `data` as its init code. */
  to: Address | undefined;
  data: Hex;
  /** Gas limit; generous is fine (only gas used is paid). */
  gas: bigint;
  /** What the call is, for errors. */
  label: string;
}

export interface TransactionSender {
  address: Address;
  /** Sends `calls` in order and resolves with their receipts once all are mined; throws if any reverted. */
  send(calls: readonly ContractCall[]): Promise<TransactionReceipt[]>;
}

export class TransactionRevertedError extends BaseError {
  override name = "TransactionRevertedError";
  constructor(label: string, hash: Hex) {
    super(`${label} reverted (transaction ${hash})`, { code: "transaction_reverted" });
  }
}

export async function createTransactionSender(client: PublicClient, privateKey: Hex, chainId: number): Promise<TransactionSender> {
  const key = hexToBytes(privateKey, 32);
  const address = addressOfKey(key);
  let nonce = await client.getTransactionCount({ address, blockTag: "pending" });
  return {
    address,
    async send(calls) {
      if (calls.length === 0) return [];
      const block = await client.getBlock({ blockTag: "latest" });
      // Room for the base fee to double several times while a burst is mined.
      const maxFeePerGas = (block.baseFeePerGas ?? 1_000_000_000n) * 8n + 1_000_000_000n;
      const raws = calls.map((call) => {
        const tx = { type: "eip1559", chainId, nonce: nonce++, ...(call.to ? { to: call.to } : {}), data: call.data, gas: call.gas, maxFeePerGas, maxPriorityFeePerGas: 1_000_000n } as const;
        const { signature, recid } = secp256k1.ecdsaSign(hexToBytes(keccak256(serializeTransaction(tx)), 32), key);
        return serializeTransaction(tx, { r: bytesHex(signature.subarray(0, 32)), s: bytesHex(signature.subarray(32, 64)), yParity: recid });
      });
      const hashes: Hex[] = [];
      for (const raw of raws) hashes.push(await client.sendRawTransaction({ serializedTransaction: raw }));
      const receipts = await Promise.all(hashes.map((hash) => client.waitForTransactionReceipt({ hash, pollingInterval: 50 })));
      receipts.forEach((r, i) => {
        if (r.status !== "success") throw new TransactionRevertedError(calls[i]!.label, r.transactionHash);
      });
      return receipts;
    },
  };
}

function bytesHex(bytes: Uint8Array): Hex {
  return `0x${Buffer.from(bytes).toString("hex")}`;
}
