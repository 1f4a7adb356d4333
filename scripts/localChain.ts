// The embedded chain: Hardhat 3's in-process EDR network, served as HTTP JSON-RPC on
// 127.0.0.1 so wallets and other processes can connect to it like any node. With a data
// directory it survives restarts: every state change is journaled, and start-up replays it.
import { mkdir, open, readFile, truncate, type FileHandle } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import path from "node:path";
import { network } from "hardhat";
import type { EIP1193Provider, Hex } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { BaseError } from "../lib/errors.js";
import { listenOnPort, PortInUseError } from "../lib/listenOnPort.js";
import { createLogger, type Logger } from "../lib/logger.js";

export interface LocalChain {
  /** In-process EIP-1193 provider; with a data directory, its state changes are journaled too. */
  provider: EIP1193Provider;
  url: string;
  /** The default port it wanted, when that was taken and it moved (see `portExplicit`). */
  movedFrom?: number;
  /** Journal entries replayed at start: 0 for a fresh chain, or when there is no data directory. */
  replayed: number;
  close(): Promise<void>;
}

export interface StartLocalChainParameters {
  host?: string;
  port?: number;
  /** The port was asked for (CHAIN_PORT): a taken one stops start-up instead of moving on. Default true. */
  portExplicit?: boolean;
  /** Where the chain journal lives; absent means the chain is lost when the process ends. */
  dataDir?: string;
  logger?: Logger;
}

export const CHAIN_JOURNAL_FILE = "chain-journal.ndjson";

interface JsonRpcRequest { jsonrpc?: string; id?: unknown; method?: unknown; params?: unknown }
interface RequestArguments { method: string; params?: unknown }
type RawProvider = { request(args: RequestArguments): Promise<unknown> };

export async function startLocalChain({ host = "127.0.0.1", port = 8545, portExplicit = true, dataDir, logger = createLogger("chain") }: StartLocalChainParameters = {}): Promise<LocalChain> {
  const file = dataDir === undefined ? undefined : path.join(dataDir, CHAIN_JOURNAL_FILE);
  const saved = file === undefined ? undefined : await readJournal(file, logger);
  // The genesis block's timestamp goes into its hash, and every later hash chains from it.
  // Blocks may share a second: automining one block per transaction otherwise pushes each block a
  // second past the last, and under a few transactions a second the chain's clock runs ahead of
  // real time (by ~1,000 s in a 10-minute soak), expiring orders the engine still holds open.
  const connection = await network.create({
    override: {
      allowBlocksWithSameTimestamp: true,
      ...(saved?.header ? { initialDate: new Date(saved.header.genesis.timestamp * 1000) } : {}),
    },
  });
  const raw = connection.provider as unknown as EIP1193Provider;
  let provider = raw;
  let journal: Journal | undefined;
  let replayed = 0;
  let server: Server | undefined;
  let movedFrom: number | undefined;
  try {
    if (file !== undefined && saved !== undefined) {
      const header = saved.header ?? (await describeGenesis(raw));
      if (saved.header) {
        const started = Date.now();
        await checkGenesis(raw, file, saved.header);
        await replayJournal(raw, file, saved.entries);
        await restoreClock(raw, saved.entries.at(-1)?.entry.offset ?? header.offset);
        replayed = saved.entries.length;
        logger.info({ msg: "chain journal replayed", journal: file, entries: replayed, block_number: saved.entries.at(-1)?.entry.block ?? 0, ms: Date.now() - started });
      }
      await mkdir(path.dirname(file), { recursive: true });
      journal = await openJournal(file, saved.validBytes, saved.header ? undefined : header);
      provider = journaledProvider(raw, journal);
    }
    server = serveJsonRpc(provider);
    const listening = server;
    const bound = await listenOnPort(
      { port, explicit: portExplicit },
      async (p) => {
        await listen(listening, host, p);
        return { listening, port: (listening.address() as { port: number }).port };
      },
      (cause) => new PortInUseError({ what: "chain", host, port, variable: "CHAIN_PORT", alternative: "set CHAIN_RPC_URL to use the chain that runs there", cause }),
    );
    movedFrom = bound.movedFrom;
  } catch (err) {
    await journal?.handle.close();
    await connection.close();
    throw err;
  }
  const address = server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  const listening = server;
  return {
    provider,
    url: `http://${host}:${actualPort}`,
    ...(movedFrom !== undefined ? { movedFrom } : {}),
    replayed,
    close: async () => {
      await new Promise<void>((resolve) => listening.close(() => resolve()));
      if (journal) {
        await journal.idle();
        await journal.handle.close();
      }
      await connection.close();
    },
  };
}

// ---- the journal -------------------------------------------------------------------------
// One JSON line per state-changing request, in execution order, after a header line that
// names the genesis block. Replay reruns the requests against a fresh network created with
// the same genesis time, pinning each mined block's timestamp, which reproduces blocks,
// hashes, transaction hashes and logs exactly (EDR is deterministic given those inputs).

/** Requests whose effects must survive a restart. */
const JOURNALED_METHODS = new Set([
  "eth_sendTransaction", "eth_sendRawTransaction",
  "evm_mine", "hardhat_mine", "hardhat_intervalMine", "evm_increaseTime", "evm_setNextBlockTimestamp",
  "hardhat_setBalance", "hardhat_setCode", "hardhat_setStorageAt", "hardhat_setNonce",
  "evm_setAutomine", "evm_setIntervalMining", "evm_setBlockGasLimit",
  "hardhat_setCoinbase", "hardhat_setPrevRandao", "hardhat_setNextBlockBaseFeePerGas", "hardhat_setMinGasPrice",
  "hardhat_impersonateAccount", "hardhat_stopImpersonatingAccount", "hardhat_dropTransaction",
]);

/** Requests a journal cannot express: it only ever moves forward. */
const REFUSED_METHODS = new Set(["evm_snapshot", "evm_revert", "hardhat_reset"]);

/** Requests whose result (a transaction hash) callers may hold on to, so replay must reproduce it. */
const SEND_METHODS = new Set(["eth_sendTransaction", "eth_sendRawTransaction"]);

interface JournalHeader {
  journal: "p2p-energy-chain";
  version: 1;
  genesis: { timestamp: number; hash: Hex };
  /** The chain clock's offset from wall-clock time at genesis, in seconds. */
  offset: number;
}

interface JournalEntry {
  method: string;
  params?: unknown;
  /** Number and hash of the latest block after the request. */
  block: number;
  hash: Hex;
  /** Timestamp of the first block the request mined; absent when it mined none. */
  timestamp?: number;
  /** The chain clock's offset from wall-clock time after the request (evm_increaseTime's total). */
  offset: number;
  /** What a send returned: the transaction hash callers were given. */
  result?: unknown;
  /** The request threw but mined anyway (a reverted transaction); replay expects it to throw. */
  failed?: true;
}

interface SavedJournal {
  header?: JournalHeader;
  entries: { entry: JournalEntry; line: number }[];
  /** Bytes of complete, well-formed lines; anything after them is a torn write to cut off. */
  validBytes: number;
}

interface Journal {
  file: string;
  handle: FileHandle;
  /** Set when an append failed: the chain then holds a state the journal cannot reproduce. */
  broken?: unknown;
  /** Resolves once every state-changing request so far has been executed and journaled. */
  idle(): Promise<void>;
  /** Runs `task` after every earlier one: journal order is execution order. */
  serialize<T>(task: () => Promise<T>): Promise<T>;
}

export class ChainJournalError extends BaseError {
  override name = "ChainJournalError";
  constructor(file: string, problem: string, options: { code: string; cause?: unknown }) {
    super(`chain: the journal at ${file} ${problem}`, { field: "dataDir", ...options });
  }
}

function doesNotReplay(file: string, line: number, entry: JournalEntry, problem: string, cause?: unknown): ChainJournalError {
  return new ChainJournalError(file, `does not replay: line ${line} (${entry.method}) ${problem}; delete it to start a fresh chain`, {
    code: "chain_journal_does_not_replay", cause,
  });
}

/** A JSON-RPC error for requests refused while the chain is persisted. */
export class ChainRequestRefusedError extends Error {
  override name = "ChainRequestRefusedError";
  /** EIP-1474 "method not supported". */
  readonly code = -32004;
}

async function readJournal(file: string, logger: Logger): Promise<SavedJournal> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { entries: [], validBytes: 0 };
    throw err;
  }
  // A crash mid-append leaves a last line without its newline, or one that does not parse.
  let validBytes = bytes.lastIndexOf(0x0a) + 1;
  const lines = bytes.subarray(0, validBytes).toString("utf8").split("\n").slice(0, -1);
  const parsed: unknown[] = [];
  for (let i = 0; i < lines.length; i++) {
    try {
      parsed.push(JSON.parse(lines[i]!));
    } catch (err) {
      if (i < lines.length - 1) {
        throw new ChainJournalError(file, `is corrupt at line ${i + 1} (not JSON); delete it to start a fresh chain`, { code: "chain_journal_corrupt", cause: err });
      }
      validBytes -= Buffer.byteLength(lines[i]!) + 1;
      lines.pop();
    }
  }
  if (validBytes < bytes.length) {
    logger.warn({ msg: "chain journal ends in a torn write; ignoring it", journal: file, line: lines.length + 1, bytes: bytes.length - validBytes });
  }
  if (parsed.length === 0) return { entries: [], validBytes: 0 };
  const header = parsed[0] as JournalHeader;
  if (header?.journal !== "p2p-energy-chain" || header.version !== 1) {
    throw new ChainJournalError(file, "does not start with a version 1 chain journal header; delete it to start a fresh chain", { code: "chain_journal_corrupt" });
  }
  const entries = parsed.slice(1).map((entry, i) => {
    const e = entry as JournalEntry;
    if (typeof e?.method !== "string" || typeof e.block !== "number" || typeof e.offset !== "number") {
      throw new ChainJournalError(file, `is corrupt at line ${i + 2} (needs method, block and offset); delete it to start a fresh chain`, { code: "chain_journal_corrupt" });
    }
    return { entry: e, line: i + 2 };
  });
  return { header, entries, validBytes };
}

async function openJournal(file: string, validBytes: number, header: JournalHeader | undefined): Promise<Journal> {
  // Cut a torn last line off, or the next append would glue onto it.
  await truncate(file, validBytes).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
  const handle = await open(file, "a");
  if (header) {
    await handle.appendFile(`${JSON.stringify(header)}\n`);
    await handle.datasync();
  }
  let tail: Promise<unknown> = Promise.resolve();
  return {
    file,
    handle,
    idle: () => tail.then(() => undefined, () => undefined),
    serialize<T>(task: () => Promise<T>) {
      const run = tail.then(task, task);
      tail = run.catch(() => undefined);
      return run;
    },
  };
}

async function appendEntry(journal: Journal, entry: JournalEntry): Promise<void> {
  if (journal.broken !== undefined) throw journalBroken(journal);
  try {
    await journal.handle.appendFile(`${JSON.stringify(entry)}\n`);
    // Durable before the caller sees the answer: a transaction hash it got must survive a crash.
    await journal.handle.datasync();
  } catch (err) {
    journal.broken = err;
    throw journalBroken(journal);
  }
}

function journalBroken(journal: Journal): ChainJournalError {
  return new ChainJournalError(journal.file, "could not be written, so later state changes are refused (the chain would not replay); restart the chain", {
    code: "chain_journal_write_failed", cause: journal.broken,
  });
}

/** Wraps the network's provider so that state changes are serialized and journaled, and requests a journal cannot express are refused. */
function journaledProvider(raw: EIP1193Provider, journal: Journal): EIP1193Provider {
  const rawRequest = raw as unknown as RawProvider;
  const request = async ({ method, params }: RequestArguments) => {
    if (REFUSED_METHODS.has(method) || (method === "evm_setIntervalMining" && startsIntervalMining(params))) {
      throw new ChainRequestRefusedError(
        `${method} is refused: the chain is persisted to ${journal.file}, which can only move forward` +
          (method === "evm_setIntervalMining" ? " and records no blocks mined by a timer" : "") +
          "; start the chain without a data directory to use it",
      );
    }
    if (!JOURNALED_METHODS.has(method)) {
      // Nobody reads state that a crash could still take back.
      await journal.idle();
      return rawRequest.request({ method, params });
    }
    return journal.serialize(() => executeJournaled(rawRequest, journal, { method, params }));
  };
  return {
    request: request as EIP1193Provider["request"],
    on: raw.on.bind(raw),
    removeListener: raw.removeListener.bind(raw),
  };
}

function startsIntervalMining(params: unknown): boolean {
  const interval = Array.isArray(params) ? params[0] : undefined;
  return !(interval === 0 || interval === "0x0" || interval === "0");
}

async function executeJournaled(raw: RawProvider, journal: Journal, { method, params }: RequestArguments): Promise<unknown> {
  if (journal.broken !== undefined) throw journalBroken(journal);
  const before = Number(await raw.request({ method: "eth_blockNumber" }));
  let result: unknown;
  let failure: { error: unknown } | undefined;
  try {
    result = await raw.request({ method, params });
  } catch (error) {
    failure = { error };
  }
  const latest = await getBlock(raw, "latest");
  const mined = latest.number > before;
  // A refused request changed nothing; a reverted transaction still mined a block.
  if (failure && !mined) throw failure.error;
  const first = latest.number > before + 1 ? await getBlock(raw, before + 1) : latest;
  await appendEntry(journal, {
    method,
    ...(params === undefined ? {} : { params }),
    block: latest.number,
    hash: latest.hash,
    ...(mined ? { timestamp: first.timestamp } : {}),
    offset: await clockOffset(raw),
    ...(SEND_METHODS.has(method) && !failure ? { result } : {}),
    ...(failure ? { failed: true as const } : {}),
  });
  if (failure) throw failure.error;
  return result;
}

async function replayJournal(raw: EIP1193Provider, file: string, entries: SavedJournal["entries"]): Promise<void> {
  const provider = raw as unknown as RawProvider;
  for (const { entry, line } of entries) {
    if (entry.timestamp !== undefined) {
      await provider.request({ method: "evm_setNextBlockTimestamp", params: [entry.timestamp] });
    }
    let result: unknown;
    try {
      result = await provider.request({ method: entry.method, params: entry.params });
    } catch (err) {
      if (!entry.failed) throw doesNotReplay(file, line, entry, `failed: ${(err as Error).message}`, err);
    }
    if (entry.result !== undefined && result !== entry.result) {
      throw doesNotReplay(file, line, entry, `returned ${String(result)}, the journal recorded ${String(entry.result)}`);
    }
    const latest = await getBlock(provider, "latest");
    if (latest.number !== entry.block) {
      throw doesNotReplay(file, line, entry, `left the chain at block ${latest.number}, the journal recorded block ${entry.block}`);
    }
    if (latest.hash !== entry.hash) {
      throw doesNotReplay(file, line, entry, `made block ${latest.number} with hash ${latest.hash}, the journal recorded ${entry.hash}`);
    }
  }
}

async function describeGenesis(raw: EIP1193Provider): Promise<JournalHeader> {
  const provider = raw as unknown as RawProvider;
  const genesis = await getBlock(provider, 0);
  return { journal: "p2p-energy-chain", version: 1, genesis: { timestamp: genesis.timestamp, hash: genesis.hash }, offset: await clockOffset(provider) };
}

async function checkGenesis(raw: EIP1193Provider, file: string, header: JournalHeader): Promise<void> {
  const genesis = await getBlock(raw as unknown as RawProvider, 0);
  if (genesis.hash !== header.genesis.hash) {
    throw new ChainJournalError(
      file,
      `does not replay: it starts from genesis block ${header.genesis.hash}, this network's is ${genesis.hash} (its Hardhat network config changed); delete it to start a fresh chain`,
      { code: "chain_journal_does_not_replay" },
    );
  }
}

/**
 * Replay pins every block's timestamp, and each pinned block resets EDR's clock offset, which
 * would leave the chain's clock behind by the downtime. Setting the recorded offset back makes
 * chain time run on from wall-clock time as before. evm_increaseTime only moves forward, so a
 * chain whose last blocks ran ahead of its clock may stay up to that far ahead.
 */
async function restoreClock(raw: EIP1193Provider, recordedOffset: number): Promise<void> {
  const provider = raw as unknown as RawProvider;
  const behind = recordedOffset - (await clockOffset(provider));
  if (behind > 0) await provider.request({ method: "evm_increaseTime", params: [behind] });
}

/** Seconds the chain's clock runs ahead of wall-clock time; evm_increaseTime returns the running total. */
async function clockOffset(provider: RawProvider): Promise<number> {
  return Number(await provider.request({ method: "evm_increaseTime", params: [0] }));
}

async function getBlock(provider: RawProvider, block: number | "latest"): Promise<{ number: number; hash: Hex; timestamp: number }> {
  const tag = block === "latest" ? block : `0x${block.toString(16)}`;
  const b = (await provider.request({ method: "eth_getBlockByNumber", params: [tag, false] })) as { number: Hex; hash: Hex; timestamp: Hex };
  return { number: Number(b.number), hash: b.hash, timestamp: Number(b.timestamp) };
}

// ---- the HTTP server ---------------------------------------------------------------------

// Any origin may call it, as Hardhat's own node allows: the dashboard's test accounts send their
// transactions (an allowance) from the page. It is a development chain on 127.0.0.1 whose keys
// are public anyway.
const CORS_HEADERS = { "access-control-allow-origin": "*", "access-control-allow-methods": "POST, OPTIONS", "access-control-allow-headers": "content-type" };

function serveJsonRpc(provider: EIP1193Provider): Server {
  return createServer((req, res) => {
    if (req.method === "OPTIONS") {
      res.writeHead(204, { ...CORS_HEADERS, "access-control-max-age": "600" }).end();
      return;
    }
    if (req.method !== "POST") {
      res.writeHead(405, { "content-type": "application/json" }).end('{"error":"POST JSON-RPC requests only"}');
      return;
    }
    readBody(req)
      .then(async (body) => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          return { jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error: body is not JSON" } };
        }
        return Array.isArray(parsed)
          ? Promise.all(parsed.map((r: JsonRpcRequest) => answer(provider, r)))
          : answer(provider, parsed as JsonRpcRequest);
      })
      .then((payload) => res.writeHead(200, { ...CORS_HEADERS, "content-type": "application/json" }).end(JSON.stringify(payload)))
      .catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
}

async function answer(provider: EIP1193Provider, request: JsonRpcRequest) {
  const id = request?.id ?? null;
  if (typeof request?.method !== "string") {
    return { jsonrpc: "2.0", id, error: { code: -32600, message: "Invalid request: method must be a string" } };
  }
  try {
    const result = await provider.request({ method: request.method, params: request.params } as never);
    return { jsonrpc: "2.0", id, result };
  } catch (err) {
    const e = err as { code?: unknown; message?: string; data?: unknown };
    // Platform errors carry string codes; JSON-RPC wants a number.
    const code = typeof e.code === "number" ? e.code : -32603;
    return { jsonrpc: "2.0", id, error: { code, message: e.message ?? String(err), data: e.data } };
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/** Hardhat's well-known development mnemonic: the accounts the embedded chain funds. */
const HARDHAT_MNEMONIC = "test test test test test test test test test test test junk";

/** The private key of the embedded chain's account `index` (0 deploys, 1 matches, 2 reports meters, 3 arbitrates). */
export function hardhatKey(index: number): Hex {
  const key = mnemonicToAccount(HARDHAT_MNEMONIC, { addressIndex: index }).getHdKey().privateKey!;
  return `0x${Buffer.from(key).toString("hex")}` as Hex;
}
