// The auditor API as a fastify plugin the node can mount: `app.register(indexerApi, options)`.
// It is encapsulated on purpose: its problem+json error handler, schemas and decoration apply
// to its own routes only. Routes live under /v1 whatever prefix the host adds.
import type { FastifyInstance } from "fastify";
import type { IndexerApiContext, IndexerApiOptions } from "./context.js";
import { checkTimeZone } from "./params.js";
import { handleApiError, problemSchema } from "./problems.js";
import { statsRoutes } from "./routes/stats.js";
import { statusRoutes } from "./routes/status.js";
import { tradeRoutes } from "./routes/trades.js";

export async function indexerApi(app: FastifyInstance, options: IndexerApiOptions): Promise<void> {
  // A time zone the calendar cannot use fails here, at start-up, not on the first report.
  const context: IndexerApiContext = { ...options, timeZone: checkTimeZone(options.timeZone ?? "Europe/Berlin"), clock: options.clock ?? Date.now };
  app.decorate("indexer", context);
  app.addSchema(problemSchema);
  app.setErrorHandler(handleApiError);
  tradeRoutes(app);
  statsRoutes(app);
  statusRoutes(app);
}

export type { IndexerApiOptions };
