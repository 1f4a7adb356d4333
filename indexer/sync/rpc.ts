// A small JSON-RPC client over fetch, with the indexer's error rules in one place: transient
// failures (network, timeouts, 429/5xx, rate limits, a node that has not seen a block yet) are
// retried with exponential backoff; an eth_getLogs refused for its size becomes
// LogRangeTooLargeError so the caller can shrink the range; anything else stops the indexer
// with the provider's own words. Batched calls go out as one JSON-RPC batch request.
import type { Logger } from "../../lib/logger.js";
import { LogRangeTooLargeError, RpcError } from "../errors.js";
import { isRangeRefusalMessage, isRateLimitMessage, parseRangeHint } from "../sync-historical/logRange.js";

export interface RpcCall {
  method: string;
  params: readonly unknown[];
}

export interface ChainRpc {
  readonly url: string;
  request<T>(method: string, params: readonly unknown[]): Promise<T>;
  /** Several calls in one HTTP request, answers in call order. */
  requestBatch<T>(calls: readonly RpcCall[]): Promise<T[]>;
}

export interface CreateChainRpcParameters {
  url: string;
  /** Per HTTP request. */
  timeoutMs?: number;
  /** Retries of a transient failure before giving up with RpcError. */
  maxRetries?: number;
  /** First backoff; doubles per retry up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Calls per JSON-RPC batch; 1 sends every call on its own. */
  batchSize?: number;
  logger?: Logger;
  signal?: AbortSignal;
}

interface Failure {
  httpStatus?: number;
  code?: number;
  message: string;
  timeout?: boolean;
  network?: boolean;
}

type Classified = { kind: "transient" | "permanent" } | { kind: "range" };

const TRANSIENT_HTTP = new Set([408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524]);
const TRANSIENT_MESSAGE =
  /timeout|timed out|temporar|unavailable|try again|overloaded|busy|header not found|unknown block|not yet (?:synced|available)|still syncing|econnreset|econnrefused|socket hang up|fetch failed|internal error|bad gateway|gateway/i;

/** How the indexer treats a failed call: retry it, shrink the range, or stop. */
export function classifyRpcFailure(method: string, failure: Failure): Classified {
  if (method === "eth_getLogs" && (failure.timeout || failure.httpStatus === 413 || isRangeRefusalMessage(failure.message))) {
    return { kind: "range" };
  }
  if (failure.network || failure.timeout) return { kind: "transient" };
  if (failure.httpStatus !== undefined && TRANSIENT_HTTP.has(failure.httpStatus)) return { kind: "transient" };
  if (isRateLimitMessage(failure.message) || TRANSIENT_MESSAGE.test(failure.message)) return { kind: "transient" };
  return { kind: "permanent" };
}

export function createChainRpc({
  url,
  timeoutMs = 10_000,
  maxRetries = 8,
  backoffMs = 250,
  maxBackoffMs = 10_000,
  batchSize = 100,
  logger,
  signal,
}: CreateChainRpcParameters): ChainRpc {
  let nextId = 1;

  async function post(body: unknown): Promise<{ ok: true; json: unknown } | { ok: false; failure: Failure }> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: combined });
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      const timedOut = timeout.aborted;
      return { ok: false, failure: { message: timedOut ? `no answer within ${timeoutMs} ms` : describe(err), timeout: timedOut, network: !timedOut } };
    }
    let text: string;
    try {
      text = await response.text();
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      return { ok: false, failure: { message: describe(err), timeout: timeout.aborted, network: true } };
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { ok: false, failure: { httpStatus: response.status, message: `HTTP ${response.status}: ${text.slice(0, 300)}` } };
    }
    if (!response.ok) {
      // Some providers answer a refused call with HTTP 4xx and a JSON-RPC error body.
      const error = (json as { error?: { code?: number; message?: string } })?.error;
      return { ok: false, failure: { httpStatus: response.status, code: error?.code, message: error?.message ?? `HTTP ${response.status}: ${text.slice(0, 300)}` } };
    }
    return { ok: true, json };
  }

  async function withRetry<T>(method: string, attempt: () => Promise<{ value: T } | { failure: Failure }>): Promise<T> {
    for (let tries = 0; ; tries++) {
      const result = await attempt();
      if ("value" in result) return result.value;
      const { failure } = result;
      const kind = classifyRpcFailure(method, failure).kind;
      if (kind === "range") throw new LogRangeTooLargeError(failure.message, parseRangeHint(failure.message));
      if (kind === "permanent") {
        throw new RpcError(method, failure.message, { retryable: false, details: detailsOf(failure) });
      }
      if (tries >= maxRetries) {
        throw new RpcError(method, `${failure.message} (gave up after ${tries + 1} attempts)`, { retryable: true, details: detailsOf(failure) });
      }
      const wait = Math.min(backoffMs * 2 ** tries, maxBackoffMs);
      logger?.warn({ msg: "rpc call failed; retrying", method, attempt: tries + 1, wait_ms: wait, error: failure.message });
      await sleep(wait, signal);
    }
  }

  async function request<T>(method: string, params: readonly unknown[]): Promise<T> {
    return withRetry<T>(method, async () => {
      const id = nextId++;
      const answer = await post({ jsonrpc: "2.0", id, method, params });
      if (!answer.ok) return { failure: answer.failure };
      const json = answer.json as { result?: T; error?: { code?: number; message?: string } };
      if (json.error) return { failure: { code: json.error.code, message: json.error.message ?? JSON.stringify(json.error) } };
      return { value: json.result as T };
    });
  }

  async function requestChunk<T>(calls: readonly RpcCall[]): Promise<T[]> {
    const method = calls.length === 1 ? calls[0]!.method : `batch of ${calls.length} ${calls[0]!.method}`;
    return withRetry<T[]>(calls[0]!.method === "eth_getLogs" ? "eth_getLogs" : method, async () => {
      const first = nextId;
      nextId += calls.length;
      const answer = await post(calls.map((c, i) => ({ jsonrpc: "2.0", id: first + i, method: c.method, params: c.params })));
      if (!answer.ok) return { failure: answer.failure };
      if (!Array.isArray(answer.json)) {
        const error = (answer.json as { error?: { code?: number; message?: string } })?.error;
        return { failure: { code: error?.code, message: error?.message ?? "batch request answered with a non-array" } };
      }
      const byId = new Map<number, { result?: T; error?: { code?: number; message?: string } }>();
      for (const item of answer.json as { id: number; result?: T; error?: { code?: number; message?: string } }[]) byId.set(Number(item.id), item);
      const results: T[] = [];
      for (let i = 0; i < calls.length; i++) {
        const item = byId.get(first + i);
        if (!item) return { failure: { message: `batch answer is missing call ${i} (${calls[i]!.method})` } };
        if (item.error) return { failure: { code: item.error.code, message: item.error.message ?? JSON.stringify(item.error) } };
        results.push(item.result as T);
      }
      return { value: results };
    });
  }

  async function requestBatch<T>(calls: readonly RpcCall[]): Promise<T[]> {
    if (calls.length === 0) return [];
    if (batchSize <= 1) return Promise.all(calls.map((c) => request<T>(c.method, c.params)));
    const chunks: Promise<T[]>[] = [];
    for (let i = 0; i < calls.length; i += batchSize) chunks.push(requestChunk<T>(calls.slice(i, i + batchSize)));
    return (await Promise.all(chunks)).flat();
  }

  return { url, request, requestBatch };
}

function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${e.message ?? String(err)} (${cause})` : (e?.message ?? String(err));
}

function detailsOf(failure: Failure): string | undefined {
  const parts = [];
  if (failure.httpStatus !== undefined) parts.push(`HTTP ${failure.httpStatus}`);
  if (failure.code !== undefined) parts.push(`JSON-RPC code ${failure.code}`);
  return parts.length ? parts.join(", ") : undefined;
}

/** Waits `ms`, or less when `signal` aborts (then rejects with its reason). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
