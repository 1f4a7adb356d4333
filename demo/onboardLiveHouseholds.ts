// The live community's homes on a running node, the way an operator, a meter installer and a
// household would do it: the operator (the embedded chain's registrar, Hardhat account 0) signs
// in with SIWE, registers each home as a prosumer (POST /v1/prosumers: meter id, zone, limits,
// sources), puts its meter's public key in the registry (setMeterSigner, a registrar
// transaction: the API has no route for it) and issues the meter's MQTT credential
// (POST /v1/devices; a credential issued before is rotated, since its password is shown only
// once); each home signs in, asks the faucet for tEUR and gas (POST /v1/faucet) and approves the
// market's allowance from its own wallet over JSON-RPC. Idempotent: a home already registered
// (in the same zone with the same meter), keyed, funded or approved is left as it is.
//
// Registration, meter keys and the faucet all send from the node's one admin key, whose nonces
// the node does not manage across requests: those steps go one after another. Sign-ins, reads,
// credentials and approvals go side by side. A node without meter keys or device credentials
// (older) is met as it is: unsigned readings on an open broker.
import { encodeFunctionData, erc20Abi, maxUint256, type Hex, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { meterIdToBytes32 } from "../bridge/meterDirectory.js";
import { prosumerRegistryAbi, testEuroAbi } from "../contracts/client/abi.js";
import { BaseError } from "../lib/errors.js";
import { ApiRequestError, mapConcurrent, signIn, type ApiClient, type Session } from "./apiClient.js";
import type { DiscoveredNode } from "./discoverNode.js";
import type { LiveHome } from "./liveCommunity.js";
import type { MeterCredential } from "./connectLiveMeters.js";
import { createTransactionSender } from "./sendTransactions.js";

export interface OnboardLiveHouseholdsParameters {
  api: ApiClient;
  node: DiscoveredNode;
  /** JSON-RPC of the node's chain. */
  client: PublicClient;
  homes: readonly LiveHome[];
  /** A key holding REGISTRAR_ROLE (the embedded chain's Hardhat account 0). */
  operatorKey: Hex;
  /** The node's clock, unix ms (SIWE issuedAt, session expiry). */
  now: () => number;
  /** Whole tEUR asked from the faucet for a home holding less than `minBalanceTEur`. Default 1,000. */
  fundingTEur?: number;
  /** Default 100. */
  minBalanceTEur?: number;
  /** Requests in flight for what may run side by side. Default 8. */
  concurrency?: number;
}

export interface OnboardLiveHouseholdsReturnType {
  /** sessions[i] belongs to homes[i]. */
  sessions: Session[];
  registered: number;
  alreadyRegistered: number;
  funded: number;
  approved: number;
  /** The registry holds each meter's key: readings must be signed. False on a registry without meter keys. */
  signedReadings: boolean;
  keysSet: number;
  /** credentials[i] is homes[i]'s meter's MQTT login; all undefined on a node that issues none (an open broker). */
  credentials: (MeterCredential | undefined)[];
  /** The broker devices use, as the node's credential answer names it. */
  mqttUrl: string | undefined;
}

export class HomeRegisteredElsewhereError extends BaseError {
  override name = "HomeRegisteredElsewhereError";
  constructor(home: LiveHome, profile: { zone?: string | null; meterId?: string | null; status?: string }) {
    super(
      `${home.id}'s wallet ${home.wallet.address} is registered on this node as meter ${profile.meterId} in ${profile.zone} (${profile.status}), ` +
        `not meter ${home.meterId} in ${home.zone}: the node's markets changed since it was registered; run with another --seed`,
      { code: "home_registered_elsewhere" },
    );
  }
}

/** The topic level the simulated meters publish under (their credentials are bound to it). */
export const METER_REGION = "live";
const GAS_MINIMUM = 10n ** 16n;
/** An allowance above this is as good as unlimited (an approve of maxUint256 only ever shrinks by payments). */
const ALLOWANCE_ENOUGH = 1n << 200n;

export async function onboardLiveHouseholds(p: OnboardLiveHouseholdsParameters): Promise<OnboardLiveHouseholdsReturnType> {
  const { api, homes } = p;
  const concurrency = p.concurrency ?? 8;
  const decimals = 10n ** 6n;
  const funding = p.fundingTEur ?? 1_000;
  const minBalance = BigInt(p.minBalanceTEur ?? 100) * decimals;

  const sessions = await mapConcurrent(homes, concurrency, (h) => signIn(api, h.wallet.address, h.wallet.privateKey, p.now()));

  // ---- registry
  const profiles = await mapConcurrent(homes, concurrency, async (h) => {
    const res = await api.request("GET", `/v1/prosumers/${h.wallet.address}`);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new ApiRequestError(res.status, res.json, `GET /v1/prosumers/${h.wallet.address}`);
    return res.json as { zone: string | null; meterId: string | null; status: string };
  });
  homes.forEach((h, i) => {
    const profile = profiles[i];
    if (profile && (profile.zone !== h.zone || profile.meterId !== h.meterId || profile.status !== "active")) throw new HomeRegisteredElsewhereError(h, profile);
  });
  const unregistered = homes.filter((_, i) => profiles[i] === undefined);
  const operatorKey = Buffer.from(p.operatorKey.slice(2), "hex");
  const operator = await signIn(api, privateKeyToAccount(p.operatorKey).address, operatorKey, p.now());
  for (const h of unregistered) {
    const res = await api.request("POST", "/v1/prosumers", {
      token: operator.token,
      body: { address: h.wallet.address, meterId: h.meterId, zone: h.zone, ...h.registration },
    });
    if (res.status !== 201) throw new ApiRequestError(res.status, res.json, `POST /v1/prosumers for ${h.id}`);
  }

  // ---- meters: their keys in the registry, their MQTT logins
  const registry = p.node.contracts.ProsumerRegistry;
  const signers = await mapConcurrent(homes, concurrency, (h) =>
    p.client.readContract({ address: registry, abi: prosumerRegistryAbi, functionName: "meterSignerOf", args: [meterIdToBytes32(h.meterId)!] }).catch(() => undefined));
  const signedReadings = signers.every((s) => s !== undefined);
  const toKey = signedReadings ? homes.filter((h, i) => signers[i]!.toLowerCase() !== h.meterKey.signer.toLowerCase()) : [];
  if (toKey.length > 0) {
    const registrar = await createTransactionSender(p.client, p.operatorKey, p.node.chainId);
    await registrar.send(toKey.map((h) => ({
      to: registry, data: encodeFunctionData({ abi: prosumerRegistryAbi, functionName: "setMeterSigner", args: [h.wallet.address, h.meterKey.signer] }),
      gas: 200_000n, label: `setMeterSigner for ${h.id}`,
    })));
  }
  let mqttUrl: string | undefined;
  let issuing = true;
  const credentials = await mapConcurrent(homes, concurrency, async (h): Promise<MeterCredential | undefined> => {
    if (!issuing) return undefined;
    let res = await api.request("POST", "/v1/devices", { token: operator.token, body: { deviceId: h.meterId, deviceType: "smart-meter", region: METER_REGION } });
    // No such route: a node whose broker takes anyone.
    if (res.status === 404) {
      issuing = false;
      return undefined;
    }
    // Issued by an earlier run: its password was shown then only, so it gets a new one.
    if (res.status === 409) res = await api.request("POST", `/v1/devices/${encodeURIComponent(h.meterId)}/rotate`, { token: operator.token });
    if (res.status !== 201 && res.status !== 200) throw new ApiRequestError(res.status, res.json, `POST /v1/devices for ${h.meterId}`);
    mqttUrl ??= res.json.mqtt?.url as string | undefined;
    return { username: res.json.username as string, password: res.json.password as string };
  });
  await api.request("POST", "/v1/auth/logout", { token: operator.token });

  // ---- money: tEUR and gas from the faucet, then each wallet's own approve
  const token = p.node.contracts.PaymentToken;
  const market = p.node.contracts.EnergyMarket;
  const holdings = await mapConcurrent(homes, concurrency, async (h) => {
    const [tEur, gas, allowance] = await Promise.all([
      p.client.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [h.wallet.address] }),
      p.client.getBalance({ address: h.wallet.address }),
      p.client.readContract({ address: token, abi: erc20Abi, functionName: "allowance", args: [h.wallet.address, market] }),
    ]);
    return { tEur, gas, allowance };
  });
  let funded = 0;
  for (const [i, h] of homes.entries()) {
    const held = holdings[i]!;
    if (held.tEur >= minBalance && held.gas >= GAS_MINIMUM) continue;
    const res = await api.request("POST", "/v1/faucet", { token: sessions[i]!.token, body: { amount: funding } });
    if (res.status !== 200) throw new ApiRequestError(res.status, res.json, `POST /v1/faucet for ${h.id}`);
    funded++;
  }
  const toApprove = homes.filter((_, i) => holdings[i]!.allowance < ALLOWANCE_ENOUGH);
  await mapConcurrent(toApprove, concurrency, async (h) => {
    const sender = await createTransactionSender(p.client, h.wallet.privateKeyHex, p.node.chainId);
    await sender.send([{ to: token, data: encodeFunctionData({ abi: testEuroAbi, functionName: "approve", args: [market, maxUint256] }), gas: 100_000n, label: `approve for ${h.id}` }]);
  });

  return {
    sessions, registered: unregistered.length, alreadyRegistered: homes.length - unregistered.length, funded, approved: toApprove.length,
    signedReadings, keysSet: toKey.length, credentials: issuing ? credentials : homes.map(() => undefined), mqttUrl,
  };
}
