// Raw JSON-RPC logs into typed events. A log the ABI does not know (a later contract version,
// a malformed payload) is kept as `unknown:<topic0>` with its topics and data, so that nothing
// the contracts emitted is dropped on the way to the database.
import { decodeEventLog, getAddress, type AbiEvent, type Address, type Hex } from "viem";
import type { ContractName, EventLookup } from "../contracts.js";

/** A log as eth_getLogs returns it (hex quantities). */
export interface RawLog {
  address: Hex;
  topics: Hex[];
  data: Hex;
  blockNumber: Hex;
  blockHash: Hex;
  blockTimestamp?: Hex;
  transactionHash: Hex;
  transactionIndex: Hex;
  logIndex: Hex;
  removed?: boolean;
}

export type EventKey = `${ContractName}:${string}`;

export interface DecodedEvent {
  key: EventKey;
  contract: ContractName;
  event: string;
  args: Record<string, unknown>;
  address: Address;
  blockNumber: bigint;
  blockHash: Hex;
  blockTimestamp: bigint;
  txHash: Hex;
  txIndex: number;
  logIndex: number;
  /** Total order of events on a chain: block number << 24 | log index. */
  seq: bigint;
  /** For a TradeExecuted emitted by `executeTrade(listingId, …)`: that listing (read from the transaction). */
  listingId?: bigint;
}

const LOG_INDEX_BITS = 24n;

export function eventSeq(blockNumber: bigint, logIndex: number): bigint {
  return (blockNumber << LOG_INDEX_BITS) | BigInt(logIndex);
}

/**
 * Decodes `logs` of the indexed contracts. `timestampOf` supplies block timestamps for
 * providers whose logs lack `blockTimestamp`.
 */
export function decodeLogs(lookup: EventLookup, logs: readonly RawLog[], timestampOf?: (blockNumber: bigint) => bigint): DecodedEvent[] {
  const events: DecodedEvent[] = [];
  for (const log of logs) {
    if (log.removed) continue;
    const known = lookup.get(log.address.toLowerCase());
    if (!known) continue;
    const { contract, byTopic } = known;
    const blockNumber = BigInt(log.blockNumber);
    const logIndex = Number(log.logIndex);
    const blockTimestamp = log.blockTimestamp !== undefined ? BigInt(log.blockTimestamp) : timestampOf?.(blockNumber);
    if (blockTimestamp === undefined) throw new Error(`decodeLogs: no timestamp for block ${blockNumber}`);
    const base = {
      address: getAddress(log.address),
      blockNumber,
      blockHash: log.blockHash,
      blockTimestamp,
      txHash: log.transactionHash,
      txIndex: Number(log.transactionIndex),
      logIndex,
      seq: eventSeq(blockNumber, logIndex),
    };
    const topic0 = log.topics[0];
    const definition = topic0 ? byTopic.get(topic0) : undefined;
    let decoded: { eventName: string; args: Record<string, unknown> } | undefined;
    if (definition) {
      try {
        decoded = decodeStatic(definition.item, log) ?? (decodeEventLog({ abi: [definition.item], data: log.data, topics: log.topics as [Hex, ...Hex[]], strict: true }) as never);
      } catch {
        decoded = undefined;
      }
    }
    if (definition && decoded) {
      events.push({ ...base, key: `${definition.contract}:${definition.name}`, contract: definition.contract, event: definition.name, args: decoded.args });
    } else {
      const name = `unknown:${topic0 ?? "anonymous"}`;
      events.push({ ...base, key: `${contract}:${name}`, contract, event: name, args: { topics: log.topics, data: log.data } });
    }
  }
  return events;
}

/** Decoded args as JSON: bigints become decimal strings. */
export function argsToJson(args: Record<string, unknown>): string {
  return JSON.stringify(args, (_key, value) => (typeof value === "bigint" ? value.toString() : value));
}

// Every event of these contracts has only static parameters (uints, addresses, bytes32, bools),
// each one 32-byte word in the topics or the data. Reading the words directly is about ten
// times faster than the general decoder, which re-derives the event's selector on every call;
// the results are the same values in the same types as viem's (uints up to 48 bits as numbers,
// larger as bigints, checksummed addresses). Any other shape falls back to viem.
interface StaticPlan {
  name: string;
  fields: { name: string; indexed: boolean; kind: "uint-number" | "uint-bigint" | "address" | "bytes32" | "bool" }[];
  topics: number;
  words: number;
}

const plans = new WeakMap<AbiEvent, StaticPlan | null>();

// A market has few participants and each appears in many logs: checksum each address once.
const checksums = new Map<string, Address>();
function checksummed(hex40: string): Address {
  const lower = hex40.toLowerCase();
  let address = checksums.get(lower);
  if (!address) {
    address = getAddress(`0x${lower}`);
    if (checksums.size > 100_000) checksums.clear();
    checksums.set(lower, address);
  }
  return address;
}

function planOf(item: AbiEvent): StaticPlan | null {
  let plan = plans.get(item);
  if (plan !== undefined) return plan;
  plan = { name: item.name, fields: [], topics: 1, words: 0 };
  for (const input of item.inputs) {
    const m = /^uint(\d*)$/.exec(input.type);
    const kind = m ? (Number(m[1] || 256) <= 48 ? "uint-number" : "uint-bigint") : input.type === "address" ? "address" : input.type === "bytes32" ? "bytes32" : input.type === "bool" ? "bool" : null;
    if (!kind || !input.name) {
      plan = null;
      break;
    }
    plan.fields.push({ name: input.name, indexed: !!input.indexed, kind });
    if (input.indexed) plan.topics++;
    else plan.words++;
  }
  plans.set(item, plan);
  return plan;
}

function decodeStatic(item: AbiEvent, log: RawLog): { eventName: string; args: Record<string, unknown> } | undefined {
  const plan = planOf(item);
  if (!plan || log.topics.length !== plan.topics || log.data.length !== 2 + 64 * plan.words) return undefined;
  const args: Record<string, unknown> = {};
  let topic = 1;
  let word = 0;
  for (const f of plan.fields) {
    const hexWord = f.indexed ? log.topics[topic++]!.slice(2) : log.data.slice(2 + 64 * word, 2 + 64 * ++word);
    switch (f.kind) {
      case "uint-number":
        if (!/^0{52}/.test(hexWord)) return undefined;
        args[f.name] = Number.parseInt(hexWord, 16);
        break;
      case "uint-bigint":
        args[f.name] = BigInt(`0x${hexWord}`);
        break;
      case "address":
        if (!/^0{24}/.test(hexWord)) return undefined;
        args[f.name] = checksummed(hexWord.slice(24));
        break;
      case "bytes32":
        args[f.name] = `0x${hexWord.toLowerCase()}`;
        break;
      case "bool":
        if (!/^0{63}[01]$/.test(hexWord)) return undefined;
        args[f.name] = hexWord.endsWith("1");
        break;
    }
  }
  return { eventName: plan.name, args };
}
