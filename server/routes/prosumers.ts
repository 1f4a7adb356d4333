// Prosumers: an operator registers (verifies) a household on-chain; anyone reads a profile.
// The node's registrar key sends the transaction; the operator's session only authorises it.
import type { FastifyInstance } from "fastify";
import { BaseError as ViemBaseError, ContractFunctionRevertedError, getAddress, type Address, type Hex, type TransactionReceipt } from "viem";
import { energyMarketAbi, prosumerRegistryAbi, testEuroAbi } from "../../contracts/client/abi.js";
import { EnergySource, sourceMask, type EnergySourceName } from "../../contracts/client/order.js";
import { meterIdToBytes32 } from "../../bridge/meterDirectory.js";
import { isMeterSignerSet } from "../../bridge/readingSignature.js";
import { requireAccount, requireOperatorOnChain } from "../auth/authenticate.js";
import { safeZoneLabel, zoneFromJson } from "../orderJson.js";
import { keySender } from "../chain/keySender.js";
import { ApiError, problem } from "../problems.js";

const statuses = ["none", "active", "suspended"] as const;
const sourceNames = Object.keys(EnergySource).filter((s) => s !== "none") as EnergySourceName[];

const profileSchema = {
  type: "object",
  required: ["address", "registered", "status"],
  properties: {
    address: { type: "string" },
    registered: { type: "boolean" },
    status: { type: "string", enum: statuses },
    meterId: { type: ["string", "null"] },
    zone: { type: ["string", "null"] },
    exportLimitW: { type: "integer" },
    importLimitW: { type: "integer" },
    sources: { type: "array", items: { type: "string" } },
    reputationBps: { type: "integer" },
    meterSigner: { type: ["string", "null"], description: "the Ed25519 public key (bytes32) that signs the meter's readings; null: none, so no reading of it settles a trade" },
    txHash: { type: "string" },
  },
} as const;

const signerSchema = { type: "string", pattern: "^0x[0-9a-fA-F]{64}$", description: "an Ed25519 public key, the raw 32 bytes as hex (bytes32)" } as const;

function meterLabel(meterId: `0x${string}`): string | null {
  if (/^0x0{64}$/.test(meterId)) return null;
  return safeZoneLabel(meterId);
}

export async function prosumerRoutes(app: FastifyInstance): Promise<void> {
  const { chain } = app.node;

  async function profile(address: Address) {
    const [p, reputationBps] = await Promise.all([
      chain.publicClient.readContract({ address: chain.contracts.ProsumerRegistry, abi: prosumerRegistryAbi, functionName: "getProsumer", args: [address] }),
      chain.publicClient.readContract({ address: chain.contracts.EnergyMarket, abi: energyMarketAbi, functionName: "sellerReputationBps", args: [address] }),
    ]);
    const registered = p.status !== 0;
    const signer = registered
      ? await chain.publicClient.readContract({ address: chain.contracts.ProsumerRegistry, abi: prosumerRegistryAbi, functionName: "meterSignerOf", args: [p.meterId] })
      : undefined;
    return {
      address, registered, status: statuses[p.status] ?? "none",
      meterId: registered ? meterLabel(p.meterId) : null, zone: registered ? safeZoneLabel(p.zone) : null,
      exportLimitW: Number(p.exportLimitW), importLimitW: Number(p.importLimitW),
      sources: sourceNames.filter((s) => (p.sources & (1 << EnergySource[s])) !== 0), reputationBps: Number(reputationBps),
      meterSigner: isMeterSignerSet(signer) ? signer : null,
    };
  }

  /** Sends one registry call with the node's registrar key; a revert is the contract's custom error. */
  async function sendRegistryCall(functionName: "registerProsumer" | "setMeterSigner", args: readonly unknown[]) {
    if (!chain.registrar) throw new ApiError("unavailable", "this node has no registrar key (REGISTRAR_PRIVATE_KEY) to register prosumers with");
    let hash;
    try {
      await chain.publicClient.simulateContract({ account: chain.registrar.account, address: chain.contracts.ProsumerRegistry, abi: prosumerRegistryAbi, functionName, args } as never);
      // Through the registrar's one nonce queue: concurrent registrations wait their turn.
      hash = await keySender(chain.publicClient, chain.registrar.account).send({ address: chain.contracts.ProsumerRegistry, abi: prosumerRegistryAbi, functionName, args });
    } catch (err) {
      throw chainRejection(err);
    }
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new ApiError("chain_rejected", `${functionName} reverted in ${hash}`);
    return hash;
  }

  app.post<{ Body: { address: string; meterId: string; zone: string; exportLimitW: number; importLimitW: number; sources: EnergySourceName[]; meterSigner?: string } }>("/v1/prosumers", {
    // The transaction is the node's registrar key's: the caller's role is checked on chain now,
    // not as it was when the session began.
    preHandler: requireOperatorOnChain,
    schema: {
      tags: ["prosumers"],
      summary: "Register a verified prosumer on-chain (operator only)",
      security: [{ bearer: [] }],
      body: {
        type: "object",
        additionalProperties: false,
        required: ["address", "meterId", "zone"],
        properties: {
          address: { type: "string", pattern: "^0x[0-9a-fA-F]{40}$" },
          meterId: { type: "string", minLength: 1, maxLength: 31, description: "the smart meter's id as it publishes on MQTT" },
          zone: { type: "string", minLength: 1, maxLength: 66 },
          exportLimitW: { type: "integer", minimum: 0, maximum: 1_000_000_000, default: 10000, description: "W, at most 1 GW" },
          importLimitW: { type: "integer", minimum: 0, maximum: 1_000_000_000, default: 20000, description: "W, at most 1 GW" },
          sources: { type: "array", uniqueItems: true, maxItems: sourceNames.length, items: { type: "string", enum: sourceNames }, default: [] },
          meterSigner: { ...signerSchema, description: `${signerSchema.description}: the meter's signing key, set in a second transaction; without it no reading of the meter settles a trade until one is set` },
        },
      },
      response: { 201: profileSchema, 400: problem, 401: problem, 403: problem, 409: problem, 422: problem, 503: problem },
    },
  }, async (request, reply) => {
    if (!chain.registrar) throw new ApiError("unavailable", "this node has no registrar key (REGISTRAR_PRIVATE_KEY) to register prosumers with");
    const b = request.body;
    if (b.meterSigner !== undefined && !isMeterSignerSet(b.meterSigner as Hex)) throw new ApiError("invalid_request", "must not be zero: leave it out to register the meter without a key", { field: "meterSigner" });
    const account = getAddress(b.address);
    const zone = zoneFromJson(b.zone, "zone");
    if (!app.node.engine.state.market(zone)) throw new ApiError("validation_failed", `no market for zone ${b.zone}; known: ${app.node.engine.markets.map((m) => m.zone).join(", ")}`, { field: "zone" });
    const meterId = meterIdToBytes32(b.meterId);
    if (!meterId) throw new ApiError("invalid_request", "must be at most 31 bytes", { field: "meterId" });
    const hash = await sendRegistryCall("registerProsumer", [account, meterId, zone, BigInt(b.exportLimitW), BigInt(b.importLimitW), sourceMask(b.sources)]);
    if (b.meterSigner !== undefined) await sendRegistryCall("setMeterSigner", [account, b.meterSigner]);
    return reply.code(201).send({ ...(await profile(account)), txHash: hash });
  });

  app.put<{ Params: { address: string }; Body: { signer: string } }>("/v1/prosumers/:address/meter-signer", {
    preHandler: requireOperatorOnChain,
    schema: {
      tags: ["prosumers"],
      summary: "Set, rotate or revoke the key that signs a prosumer's meter readings (operator only)",
      description: "A new key replaces the old one at once: the meter bridge checks every reading against the key in force when it takes the reading in, " +
        "so a reading signed with the old key and arriving later is dead-lettered (signature_invalid). The zero key revokes it (meter_signer_unset).",
      security: [{ bearer: [] }],
      params: { type: "object", required: ["address"], properties: { address: { type: "string", pattern: "^0x[0-9a-fA-F]{40}$" } } },
      body: { type: "object", additionalProperties: false, required: ["signer"], properties: { signer: signerSchema } },
      response: { 200: profileSchema, 400: problem, 401: problem, 403: problem, 409: problem, 422: problem, 503: problem },
    },
  }, async (request) => {
    const account = getAddress(request.params.address);
    const hash = await sendRegistryCall("setMeterSigner", [account, request.body.signer]);
    return { ...(await profile(account)), txHash: hash };
  });

  app.get<{ Params: { address: string } }>("/v1/prosumers/:address", {
    schema: {
      tags: ["prosumers"],
      summary: "A prosumer's registry entry and seller reputation, read from the chain",
      params: { type: "object", required: ["address"], properties: { address: { type: "string", pattern: "^0x[0-9a-fA-F]{40}$" } } },
      response: { 200: profileSchema, 400: problem, 404: problem },
    },
  }, async (request) => {
    const p = await profile(getAddress(request.params.address));
    if (!p.registered) throw new ApiError("not_found", `${p.address} is not a registered prosumer`, { field: "address" });
    return p;
  });

  app.post<{ Body: { amount: number } }>("/v1/faucet", {
    // The body is optional (`POST /v1/faucet` alone asks for the default amount); the schema's
    // defaults fill an empty object, while an absent body would fail "body must be object".
    preValidation: async (request) => {
      request.body ??= {} as { amount: number };
    },
    preHandler: requireAccount,
    schema: {
      tags: ["prosumers"],
      summary: "Local chain only: tEUR (and gas money) for the signed-in wallet",
      security: [{ bearer: [] }],
      body: { type: "object", additionalProperties: false, properties: { amount: { type: "integer", minimum: 1, maximum: 10000, default: 1000, description: "whole tEUR" } } },
      response: { 200: { type: "object", properties: { address: { type: "string" }, amount: { type: "string" }, txHash: { type: "string" } } }, 401: problem, 403: problem, 503: problem },
    },
  }, async (request) => {
    if (!chain.local || !chain.faucet) throw new ApiError("forbidden", "the faucet exists on the embedded local chain only");
    const to = request.account!.address;
    const amount = BigInt(request.body.amount) * 10n ** BigInt(chain.token.decimals);
    const balance = await chain.publicClient.getBalance({ address: to });
    // The faucet key is the embedded admin's: one nonce queue with registrations and set-up.
    const sender = keySender(chain.publicClient, chain.faucet.account);
    let hash: Hex;
    try {
      if (balance < 10n ** 17n) mustSucceed(await sender.sendAndWait({ to, value: 10n ** 18n }));
      hash = await sender.send({ address: chain.contracts.PaymentToken, abi: testEuroAbi, functionName: "faucet", args: [to, amount] });
    } catch (err) {
      throw err instanceof ApiError ? err : chainRejection(err);
    }
    mustSucceed(await chain.publicClient.waitForTransactionReceipt({ hash }));
    return { address: to, amount: amount.toString(), txHash: hash };
  });
}

function mustSucceed(receipt: TransactionReceipt): void {
  if (receipt.status !== "success") throw new ApiError("chain_rejected", `the faucet's transaction ${receipt.transactionHash} reverted`);
}

/** A revert with its custom error's name and values, as a 409/422 problem. */
export function chainRejection(err: unknown): ApiError {
  if (err instanceof ViemBaseError) {
    const revert = err.walk((e) => e instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null;
    const name = revert?.data?.errorName;
    if (name) {
      const detail = `the contract refused: ${name}(${(revert.data?.args ?? []).map(String).join(", ")})`;
      // The state already is what was asked (registered, or that key): a conflict, not a bad request.
      return new ApiError(name.includes("Already") || name.includes("Unchanged") ? "conflict" : "chain_rejected", detail, { cause: err });
    }
    return new ApiError("unavailable", `the chain did not take the transaction: ${err.shortMessage}`, { cause: err, retryable: true });
  }
  return new ApiError("internal_error", "sending the transaction failed", { cause: err });
}

