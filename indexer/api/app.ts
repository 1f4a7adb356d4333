// The standalone auditor API (`npm run indexer` serves it next to the sync loop). Tests build
// it and call app.inject(); the file that listens is indexer/main.ts.
import Fastify, { type FastifyInstance } from "fastify";
import type { Logger } from "../../lib/logger.js";
import type { IndexerApiOptions } from "./context.js";
import { indexerApi } from "./plugin.js";
import { problemOf, sendProblem } from "./problems.js";

export interface BuildIndexerAppOptions extends IndexerApiOptions {
  logger?: Logger;
  /** Runs when the app closes: release what the caller opened for it (database, chain client). */
  onClose?: () => Promise<void>;
}

export async function buildIndexerApp(options: BuildIndexerAppOptions): Promise<FastifyInstance> {
  const { logger, onClose, ...api } = options;
  const app = Fastify({ ...(logger ? { loggerInstance: logger } : { logger: false }), ajv: { customOptions: { coerceTypes: "array", useDefaults: true, removeAdditional: false } } }) as unknown as FastifyInstance;
  await app.register(indexerApi, api);
  // The host's concern, not the plugin's: a host mounting the plugin keeps its own 404.
  app.setNotFoundHandler((request, reply) => sendProblem(reply, problemOf("route_not_found", `no route ${request.method} ${request.url.split("?")[0]}`)));
  if (onClose) app.addHook("onClose", onClose);
  return app;
}
