// One queue per sending address: every transaction the node signs with an operator key (the
// registrar's registrations and meter keys, the faucet, the embedded admin's set-up and gas
// top-ups) takes its nonce here, so concurrent requests queue instead of racing for one nonce.
// The settler, the bridge's outbox and the keeper keep their own crash-safe senders (their own keys).
//
// The rules it relies on:
//   - one sender per (chain client, address) in the process: keySender() hands out the same one,
//     so the embedded chain's admin, registrar and faucet (all Hardhat account 0) share a queue;
//   - the nonce is read from the chain (`pending`) once, then counted locally; it moves on only
//     when the node took the transaction. A revert found while estimating gas uses no nonce;
//     a transaction mined as reverted used one, as any mined one does: neither blocks the next;
//   - a nonce error (someone else sent from the key: another process, the keeper on its fallback
//     key) or an unclear broadcast failure re-reads the nonce from the chain;
//   - only nonce assignment, signing and the broadcast are serialised: the receipt is awaited
//     outside the queue, so a slow block does not hold up the next sender.
import {
  BaseError as ViemBaseError, encodeFunctionData, keccak256,
  type Abi, type Account, type Address, type Hex, type PublicClient, type TransactionReceipt,
} from "viem";

/** A plain transfer or call: `data` already encoded. */
export interface RawKeyTransaction {
  to: Address;
  data?: Hex;
  value?: bigint;
  /** Skips estimation (a test sending a known revert to the chain). */
  gas?: bigint;
}

/** A contract call: estimated with its ABI, so a revert names the contract's custom error. */
export interface ContractKeyTransaction {
  address: Address;
  abi: Abi | readonly unknown[];
  functionName: string;
  args?: readonly unknown[];
  value?: bigint;
  gas?: bigint;
}

export type KeyTransaction = RawKeyTransaction | ContractKeyTransaction;

export interface KeySender {
  readonly address: Address;
  /** Signs and broadcasts in nonce order; resolves with the hash once the node took it. */
  send(tx: KeyTransaction): Promise<Hex>;
  /** send, then its receipt (a mined revert is a receipt with status "reverted", not an error). */
  sendAndWait(tx: KeyTransaction): Promise<TransactionReceipt>;
  /** Transactions waiting for their turn, or being signed and broadcast. */
  readonly queued: number;
}

/** How often a nonce error is answered by re-reading the nonce before the send gives up. */
const NONCE_RETRIES = 3;

const senders = new WeakMap<PublicClient, Map<Address, KeySender>>();

/** The process's sender for `account` on the chain `client` talks to. */
export function keySender(client: PublicClient, account: Account): KeySender {
  let byAddress = senders.get(client);
  if (!byAddress) senders.set(client, (byAddress = new Map()));
  let sender = byAddress.get(account.address);
  if (!sender) byAddress.set(account.address, (sender = createKeySender(client, account)));
  return sender;
}

function createKeySender(client: PublicClient, account: Account): KeySender {
  if (account.type !== "local" || !account.signTransaction) throw new Error(`keySender: ${account.address} is not a local account: the node signs its own transactions`);
  const sign = account.signTransaction.bind(account);
  let nonce: number | undefined;
  let chainId: number | undefined;
  let tail: Promise<unknown> = Promise.resolve();
  let queued = 0;

  async function gasOf(tx: KeyTransaction, data: Hex | undefined, to: Address): Promise<bigint> {
    if (tx.gas !== undefined) return tx.gas;
    const estimate = "abi" in tx
      ? await client.estimateContractGas({ account, address: tx.address, abi: tx.abi as Abi, functionName: tx.functionName, args: tx.args ?? [], ...(tx.value !== undefined ? { value: tx.value } : {}) } as never)
      : await client.estimateGas({ account, to, ...(data ? { data } : {}), ...(tx.value !== undefined ? { value: tx.value } : {}) });
    return (estimate * 12n) / 10n;
  }

  async function sendNow(tx: KeyTransaction): Promise<Hex> {
    const to = "abi" in tx ? tx.address : tx.to;
    const data = "abi" in tx ? encodeFunctionData({ abi: tx.abi as Abi, functionName: tx.functionName, args: tx.args ?? [] } as never) : tx.data;
    // A revert throws here, before a nonce is taken.
    const gas = await gasOf(tx, data, to);
    chainId ??= client.chain?.id ?? (await client.getChainId());
    const fees = await client.estimateFeesPerGas();
    for (let attempt = 0; ; attempt++) {
      nonce ??= await client.getTransactionCount({ address: account.address, blockTag: "pending" });
      const raw = await sign({ type: "eip1559", chainId, to, nonce, gas, maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas, ...(data ? { data } : {}), ...(tx.value !== undefined ? { value: tx.value } : {}) });
      try {
        const hash = await client.sendRawTransaction({ serializedTransaction: raw });
        nonce++;
        return hash;
      } catch (err) {
        // These very bytes are in the node's pool already: taken. Hardhat's automining node
        // mines a reverting transaction and then answers the broadcast with its revert: taken
        // too, and its receipt says "reverted" as a real chain's would.
        if (/already known|VM Exception while processing transaction/i.test(messageOf(err))) {
          nonce++;
          return keccak256(raw);
        }
        // Whatever happened, the chain knows the next nonce better than this count now.
        nonce = undefined;
        if (isNonceError(err) && attempt < NONCE_RETRIES) continue;
        throw err;
      }
    }
  }

  function send(tx: KeyTransaction): Promise<Hex> {
    queued++;
    const run = tail.then(() => sendNow(tx));
    // One failed send must not stop the queue: the next waits for this one to settle, either way.
    tail = run.then(settled, settled);
    return run;
  }
  function settled() {
    queued--;
  }

  return {
    address: account.address,
    send,
    async sendAndWait(tx) {
      const hash = await send(tx);
      return client.waitForTransactionReceipt({ hash });
    },
    get queued() {
      return queued;
    },
  };
}

function messageOf(err: unknown): string {
  if (err instanceof ViemBaseError) return `${err.shortMessage} ${err.details ?? ""} ${err.message}`;
  return String((err as Error)?.message ?? err);
}

/** The node refused the nonce: used already, or out of order after someone else sent from the key. */
function isNonceError(err: unknown): boolean {
  if (err instanceof ViemBaseError && err.walk((e) => ["NonceTooLowError", "NonceTooHighError", "NonceMaxValueError"].includes((e as Error).name))) return true;
  return /nonce|replacement transaction underpriced|transaction underpriced/i.test(messageOf(err));
}
