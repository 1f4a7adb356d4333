// The dashboard (web/, built by Vite into web/dist) served at `/`, and the one thing it needs
// that no other route gives: the embedded chain's test accounts, so a prosumer on a local node
// can pick one instead of installing a wallet. Static files are served from the files present
// at start-up (no wildcard route), so nothing here can answer for /v1, /docs, /healthz or
// /metrics: those routes are exact and registered elsewhere, and unknown paths keep the API's
// problem+json 404.
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";
import { testAccountDevicePassword } from "../devices/deviceCredentials.js";
import { testAccountMeterKey } from "../../bridge/readingSignature.js";
import { ApiError, problem } from "../problems.js";

/** Where `npm run build:web` writes the dashboard. */
export const WEB_DIST_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "web", "dist");

export interface WebRouteOptions {
  /** The built dashboard; default web/dist. */
  distDir?: string;
}

const testAccountSchema = {
  type: "object",
  required: ["address", "privateKey", "meterId", "zone"],
  properties: {
    address: { type: "string" }, privateKey: { type: "string" }, meterId: { type: "string" }, zone: { type: "string" },
    meterKey: { type: "string", description: "the meter's Ed25519 signing key (32-byte seed, hex): its energy readings must carry `signature` by it (bridge/readingSignature.ts)" },
    meterSigner: { type: "string", description: "the public key (bytes32) the registry holds for the meter" },
    mqtt: {
      type: "object",
      required: ["username", "password"],
      description: "the meter's device credential (MQTT login, HTTP Basic for its REST readings); absent once an operator rotated or revoked it",
      properties: { url: { type: "string" }, username: { type: "string" }, password: { type: "string" } },
    },
  },
} as const;

export async function webRoutes(app: FastifyInstance, options: WebRouteOptions = {}): Promise<void> {
  const { chain } = app.node;

  app.get("/v1/chain/test-accounts", {
    schema: {
      tags: ["chain"],
      summary: "The embedded chain's funded, registered test accounts with their keys (local chain only; 404 on any other chain)",
      response: { 200: { type: "object", required: ["accounts"], properties: { accounts: { type: "array", items: testAccountSchema } } }, 404: problem },
    },
  }, async () => {
    // Hardhat's well-known keys: public knowledge, worthless anywhere but the embedded chain.
    if (!chain.local) throw new ApiError("not_found", "test accounts exist only on the embedded (local) chain");
    // The meters' device credentials too, derived from the same public keys (deviceCredentials.ts),
    // as long as the stored credential is still that one.
    const devices = app.node.devices;
    const mqttUrl = app.node.mqtt?.url;
    return {
      accounts: await Promise.all((app.node.testAccounts ?? []).map(async (a) => {
        const password = testAccountDevicePassword(a.privateKey);
        const valid = devices ? (await devices.check(a.meterId, password)) !== undefined : false;
        return {
          address: a.address, privateKey: a.privateKey, meterId: a.meterId, zone: a.zone,
          // Derived from the same public key, so simulations and the dashboard can sign as the meter.
          meterKey: testAccountMeterKey(a.privateKey).privateKey, meterSigner: testAccountMeterKey(a.privateKey).signer,
          ...(valid ? { mqtt: { ...(mqttUrl ? { url: mqttUrl } : {}), username: a.meterId, password } } : {}),
        };
      })),
    };
  });

  const root = options.distDir ?? WEB_DIST_DIR;
  if (!existsSync(path.join(root, "index.html"))) {
    // A node started from a fresh checkout without the build keeps running: the API works, the
    // page says how to get the dashboard.
    app.log.warn({ msg: "dashboard not built: / answers 503", distDir: root });
    app.get("/", { schema: { hide: true } }, async (_request, reply) =>
      reply.code(503).type("text/plain; charset=utf-8").send(`The dashboard is not built. Run \`npm run build:web\` (it writes ${root}), then restart the node.\n`),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: "/",
    // Only the files that exist now get routes: no catch-all GET /* in front of the API's 404s.
    wildcard: false,
    decorateReply: false,
    index: ["index.html"],
    // Hashed asset names never change content; index.html must be re-read to see a new build.
    setHeaders(res, filePath) {
      res.header("cache-control", filePath.endsWith("index.html") ? "no-cache" : "public, max-age=31536000, immutable");
    },
  });
}
