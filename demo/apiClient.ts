// The households' side of the node's HTTP API: JSON requests over kept-alive connections with a
// bounded number in flight (the agent queues the rest), and Sign-In With Ethereum per wallet.
// SIWE messages are signed with the native secp256k1 signer (EIP-191 personal_sign), the same
// bytes viem's signMessage would give.
import { keccak_256 } from "@noble/hashes/sha3.js";
import { Agent, request as httpRequest } from "node:http";
import type { Address, Hex } from "viem";
import { createSiweMessage } from "viem/siwe";
import { signDigest } from "../engine/intake/orderSignature.js";
import { BaseError } from "../lib/errors.js";

export interface ApiResponse {
  status: number;
  json: any;
}

export interface ApiClient {
  /** Host header value: what a SIWE message's domain must name. */
  host: string;
  request(method: "GET" | "POST" | "DELETE", path: string, options?: { body?: unknown; token?: string }): Promise<ApiResponse>;
  close(): void;
}

export class ApiRequestError extends BaseError {
  override name = "ApiRequestError";
  constructor(readonly status: number, readonly problem: { code?: string; detail?: string; title?: string } | undefined, what: string) {
    super(`${what}: HTTP ${status} ${problem?.code ?? ""} ${problem?.detail ?? problem?.title ?? ""}`.trim(), { code: problem?.code ?? "api_error" });
  }
}

export function createApiClient(baseUrl: string, { maxSockets = 64 }: { maxSockets?: number } = {}): ApiClient {
  const url = new URL(baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  return {
    host: url.host,
    request(method, path, options = {}) {
      const body = options.body === undefined ? undefined : JSON.stringify(options.body);
      const headers: Record<string, string> = {};
      if (body !== undefined) {
        headers["content-type"] = "application/json";
        headers["content-length"] = String(Buffer.byteLength(body));
      }
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      return new Promise<ApiResponse>((resolve, reject) => {
        const req = httpRequest({ agent, host: url.hostname, port: url.port, method, path, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            try {
              resolve({ status: res.statusCode ?? 0, json: text.length > 0 && /json/.test(res.headers["content-type"] ?? "") ? JSON.parse(text) : undefined });
            } catch (err) {
              reject(err);
            }
          });
          res.on("error", reject);
        });
        req.on("error", reject);
        req.end(body);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

/** EIP-191 digest of a text message (what personal_sign signs). */
export function personalMessageDigest(message: string): Uint8Array {
  const bytes = new TextEncoder().encode(message);
  const prefix = new TextEncoder().encode(`\x19Ethereum Signed Message:\n${bytes.length}`);
  const all = new Uint8Array(prefix.length + bytes.length);
  all.set(prefix, 0);
  all.set(bytes, prefix.length);
  return keccak_256(all);
}

export interface Session {
  token: string;
  /** Unix milliseconds (node clock) after which the token no longer works. */
  expiresAtMs: number;
}

/** Signs in `address` (whose key is `privateKey`): nonce from the node, EIP-4361 message, token. */
export async function signIn(api: ApiClient, address: Address, privateKey: Uint8Array, nowMs: number): Promise<Session> {
  const nonceRes = await api.request("GET", "/v1/auth/nonce");
  if (nonceRes.status !== 200) throw new ApiRequestError(nonceRes.status, nonceRes.json, "GET /v1/auth/nonce");
  const { nonce, domain, uri, chainId } = nonceRes.json as { nonce: string; domain: string; uri: string; chainId: number };
  const message = createSiweMessage({ address, chainId, domain, nonce, uri, version: "1", issuedAt: new Date(nowMs), statement: "Trade energy in the community market." });
  const signature: Hex = signDigest(privateKey, personalMessageDigest(message));
  const res = await api.request("POST", "/v1/auth/login", { body: { message, signature } });
  if (res.status !== 200) throw new ApiRequestError(res.status, res.json, `POST /v1/auth/login for ${address}`);
  return { token: res.json.token as string, expiresAtMs: nowMs + (res.json.expiresIn as number) * 1000 };
}

/** Runs `task` over `items` with at most `limit` at once; results in item order. */
export async function mapConcurrent<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await task(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
