// Shared by the node's API tests: a node started in-process on free ports and temp folders,
// one HTTP client shape over both app.inject() and a real socket, and a wallet that is only
// viem (SIWE login, EIP-712 orders signed from what GET /v1/chain says).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import mqtt, { type MqttClient } from "mqtt";
import { createPublicClient, createWalletClient, erc20Abi, http as viemHttp, maxUint256, type Address, type Hex, type TypedDataDomain } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { createSiweMessage } from "viem/siwe";
import WebSocket from "ws";
import { createLogger } from "../../lib/logger.js";
import { readNodeConfig } from "../../server/config.js";
import { testAccountDevicePassword } from "../../server/devices/deviceCredentials.js";
import { nodePlugins } from "../../server/plugins.js";
import { startNode, type RunningNode } from "../../server/startNode.js";

export interface TestNode {
  node: RunningNode;
  close(): Promise<void>;
}

/** A node on ports 0 in fresh temp folders, 4 test accounts; `env` overrides settings. */
export async function startTestNode(env: Record<string, string> = {}, options: { clock?: () => number } = {}): Promise<TestNode> {
  const dir = await mkdtemp(path.join(tmpdir(), "node-test-"));
  const config = readNodeConfig({
    PORT: "0", CHAIN_PORT: "0", MQTT_PORT: "0", DATA_DIR: path.join(dir, "data"), DEPLOYMENTS_DIR: path.join(dir, "deployments"), TEST_ACCOUNTS: "4",
    ...env,
  }, {});
  let node: RunningNode;
  try {
    node = await startNode({ config, plugins: nodePlugins, logger: createLogger("node-test"), ...(options.clock ? { clock: options.clock } : {}) });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    node,
    async close() {
      await node.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface HttpRequest {
  method?: "GET" | "POST" | "PUT" | "DELETE" | "OPTIONS";
  url: string;
  token?: string;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string as it is (set content-type yourself). */
  body?: unknown;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  /** Parsed JSON (problem+json included); undefined for other bodies. */
  json: any;
}

/** `host` is the Host header this client sends: what a SIWE message's domain must name. */
export type Http = ((req: HttpRequest) => Promise<HttpResponse>) & { transport: "inject" | "http"; host: string };

function requestHeaders(req: HttpRequest): Record<string, string> {
  const headers: Record<string, string> = { ...req.headers };
  if (req.token) headers.authorization = `Bearer ${req.token}`;
  if (req.body !== undefined && typeof req.body !== "string") headers["content-type"] ??= "application/json";
  return headers;
}

function parse(status: number, headers: Record<string, string>, text: string): HttpResponse {
  const type = headers["content-type"] ?? "";
  return { status, headers, text, json: /json/.test(type) && text.length > 0 ? JSON.parse(text) : undefined };
}

/** Requests through fastify's inject (no socket; Host is "localhost:80"). */
export function injectClient(app: FastifyInstance): Http {
  const http = async (req: HttpRequest) => {
    const res = await app.inject({
      method: req.method ?? "GET", url: req.url, headers: requestHeaders(req),
      ...(req.body !== undefined ? { payload: typeof req.body === "string" ? req.body : JSON.stringify(req.body) } : {}),
    });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : String(v);
    return parse(res.statusCode, headers, res.body);
  };
  return Object.assign(http, { transport: "inject" as const, host: "localhost:80" });
}

/** Requests over a real TCP connection to a listening server. */
export function fetchClient(baseUrl: string): Http {
  const http = async (req: HttpRequest) => {
    const res = await fetch(new URL(req.url, baseUrl), {
      method: req.method ?? "GET", headers: requestHeaders(req),
      ...(req.body !== undefined ? { body: typeof req.body === "string" ? req.body : JSON.stringify(req.body) } : {}),
    });
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => (headers[k] = v));
    return parse(res.status, headers, await res.text());
  };
  return Object.assign(http, { transport: "http" as const, host: new URL(baseUrl).host });
}

export interface SiweOptions {
  domain?: string;
  chainId?: number;
  nonce?: string;
  expirationTime?: Date;
  notBefore?: Date;
  /** Sign with this key instead of the message's address's key. */
  signWith?: Hex;
}

/**
 * A SIWE message for `key`'s address with a fresh nonce from the node, and its signature. The
 * domain is the one GET /v1/auth/nonce suggests (the node's configured name), as a wallet on the
 * node's own site would sign; `options.domain` signs for another (a phishing site's).
 */
export async function siweLogin(http: Http, node: RunningNode, key: Hex, options: SiweOptions = {}): Promise<{ message: string; signature: Hex }> {
  const account = privateKeyToAccount(key);
  let nonce = options.nonce;
  let domain = options.domain;
  if (nonce === undefined || domain === undefined) {
    const res = await http({ url: "/v1/auth/nonce" });
    if (res.status !== 200) throw new Error(`GET /v1/auth/nonce: ${res.status} ${res.text}`);
    nonce ??= res.json.nonce as string;
    domain ??= res.json.domain as string;
  }
  const message = createSiweMessage({
    address: account.address, chainId: options.chainId ?? node.chainId, domain, nonce, uri: `http://${domain}`, version: "1",
    statement: "Sign in to the community energy market.",
    ...(options.expirationTime ? { expirationTime: options.expirationTime } : {}),
    ...(options.notBefore ? { notBefore: options.notBefore } : {}),
  });
  const signature = await privateKeyToAccount(options.signWith ?? key).signMessage({ message });
  return { message, signature };
}

/** Signs in with `key` and returns the token (throws on anything but 200). */
export async function signIn(http: Http, node: RunningNode, key: Hex): Promise<string> {
  const res = await http({ method: "POST", url: "/v1/auth/login", body: await siweLogin(http, node, key) });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${res.text}`);
  return res.json.token as string;
}

/** What GET /v1/chain says a wallet needs to sign orders. */
export interface ChainDescription {
  chainId: number;
  contracts: { EnergyMarket: Address; ProsumerRegistry: Address; PaymentToken: Address };
  eip712: { domain: TypedDataDomain; primaryType: "Order"; types: Record<string, { name: string; type: string }[]> };
  markets: { zone: string; zoneId: Hex; gateClosureMinutes: number; feedInTariff: number; retailPrice: number }[];
}

export interface OrderFields {
  side: 0 | 1;
  zone?: string;
  intervalStart: number;
  energyWh: number;
  price: number;
  source?: number;
  nonce?: bigint;
  expiry?: number;
}

/** The signed-order body of POST /v1/trading/orders, signed by viem from /v1/chain alone. */
export async function signedOrder(chain: ChainDescription, key: Hex, f: OrderFields): Promise<{ order: Record<string, unknown>; signature: Hex }> {
  const account = privateKeyToAccount(key);
  const market = chain.markets.find((m) => m.zone === (f.zone ?? "ZONE-A"));
  if (!market) throw new Error(`no market ${f.zone}`);
  const nonce = f.nonce ?? BigInt(`0x${randomBytes(16).toString("hex")}`);
  const message = {
    maker: account.address, side: f.side, zone: market.zoneId, deliveryStart: BigInt(f.intervalStart), deliveryEnd: BigInt(f.intervalStart + 900),
    energyWh: BigInt(f.energyWh), limitPricePerKWh: BigInt(f.price), source: f.source ?? (f.side === 1 ? 1 : 0), acceptedSources: 0,
    minSellerReputationBps: 0, nonce, expiry: BigInt(f.expiry ?? f.intervalStart),
  };
  const signature = await account.signTypedData({ domain: chain.eip712.domain, types: chain.eip712.types, primaryType: "Order", message } as never);
  return {
    order: {
      maker: account.address, side: f.side, zone: market.zone, deliveryStart: f.intervalStart, deliveryEnd: f.intervalStart + 900, energyWh: f.energyWh,
      limitPricePerKWh: f.price, source: message.source, acceptedSources: 0, minSellerReputationBps: 0, nonce: nonce.toString(), expiry: Number(message.expiry),
    },
    signature,
  };
}

/** An interval start at least `minAheadSeconds` after `nowSeconds` (past any gate closure). */
export function intervalAhead(nowSeconds: number, minAheadSeconds = 600): number {
  return (Math.floor((nowSeconds + minAheadSeconds) / 900) + 1) * 900;
}

export function randomKey(): Hex {
  return `0x${randomBytes(32).toString("hex")}`;
}

/** Polls `probe` until it returns something other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A viem wallet on the node's JSON-RPC (not this project's SDK). */
export function walletOf(rpcUrl: string, key: Hex) {
  return createWalletClient({ chain: { ...hardhat, rpcUrls: { default: { http: [rpcUrl] } } }, account: privateKeyToAccount(key), transport: viemHttp(rpcUrl) });
}

export function publicClientOf(rpcUrl: string) {
  return createPublicClient({ chain: { ...hardhat, rpcUrls: { default: { http: [rpcUrl] } } }, transport: viemHttp(rpcUrl), pollingInterval: 50 });
}

/** Lets the market pull `key`'s tEUR for its trades (a buyer must, before a fill settles). */
export async function approveMarket(rpcUrl: string, chain: ChainDescription, key: Hex): Promise<void> {
  const wallet = walletOf(rpcUrl, key);
  const hash = await wallet.writeContract({ address: chain.contracts.PaymentToken, abi: erc20Abi, functionName: "approve", args: [chain.contracts.EnergyMarket, maxUint256] });
  const receipt = await publicClientOf(rpcUrl).waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`approve reverted in ${hash}`);
}

/** A WebSocket client of /v1/energy/real-time that keeps every message it gets; `token` opens the channels that need one. */
export async function openSocket(baseUrl: string, channels: string[], options: { token?: string } = {}) {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/v1/energy/real-time`);
  const messages: { channel?: string; type: string; data?: any; channels?: string[] }[] = [];
  ws.on("message", (raw) => messages.push(JSON.parse(raw.toString())));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  ws.send(JSON.stringify({ action: "subscribe", channels, ...(options.token ? { token: options.token } : {}) }));
  const answer = await waitFor("subscribed", async () => messages.find((m) => m.type === "subscribed" || m.type === "error"), 5_000, 10);
  if (answer.type === "error") throw new Error(`subscribe refused: ${JSON.stringify(answer)}`);
  return {
    messages,
    next: (type: string, from = 0) => waitFor(`a "${type}" message`, async () => messages.slice(from).find((m) => m.type === type), 10_000, 10),
    close: () => ws.close(),
  };
}

/**
 * A login for `deviceId` on the node's broker, which takes no anonymous client: its credential
 * issued as POST /v1/devices would (an existing one rotated: a new password).
 */
export async function deviceLogin(node: RunningNode, deviceId: string, deviceType: string): Promise<{ username: string; password: string }> {
  const devices = node.services.devices!;
  try {
    const issued = await devices.issue({ deviceId, deviceType, issuedBy: "test" });
    return { username: issued.username, password: issued.password };
  } catch (err) {
    if ((err as { code?: string }).code !== "device_exists") throw err;
    const rotated = await devices.rotate(deviceId);
    return { username: rotated.username, password: rotated.password };
  }
}

/** The login of a test account's meter (issued by the node at start, as GET /v1/chain/test-accounts shows). */
export function meterLogin(account: { meterId: string; privateKey: Hex }): { username: string; password: string } {
  return { username: account.meterId, password: testAccountDevicePassword(account.privateKey) };
}

/** A device on the node's broker, logged in as itself and subscribed to its command topic `{root}/{region}/{type}/{id}/command`. */
export async function connectDevice(node: RunningNode, commandTopic: string) {
  const [, , deviceType, deviceId] = commandTopic.split("/");
  const login = await deviceLogin(node, deviceId!, deviceType!);
  const client: MqttClient = await mqtt.connectAsync(node.mqttUrl, { clean: true, reconnectPeriod: 0, ...login });
  const commands: Record<string, any>[] = [];
  client.on("message", (topic, payload) => {
    if (topic === commandTopic) commands.push(JSON.parse(payload.toString()));
  });
  await client.subscribeAsync(commandTopic, { qos: 1 });
  return { client, commands };
}
