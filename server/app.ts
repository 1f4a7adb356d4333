// The node's HTTP and WebSocket API as an app factory: tests call buildApp(...).inject(), the
// node (server/startNode.ts) listens. Every route declares request and response schemas; errors
// are problem+json with stable codes; the OpenAPI document is served at /docs.
import cors from "@fastify/cors";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import websocket from "@fastify/websocket";
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync } from "fastify";
import { indexerApi } from "../indexer/api/plugin.js";
import { readAccount } from "./auth/authenticate.js";
import { createOperatorRoles } from "./auth/operatorRoles.js";
import type { SiweDomainSource } from "./auth/siweDomains.js";
import type { NodeServices } from "./context.js";
import { defaultHttpTimeouts, type HttpTimeouts } from "./config.js";
import { answerClientError, handleApiError, handleFrameworkError, problemOf, problemSchema, sendProblem } from "./problems.js";
import { createRateLimits } from "./rateLimit.js";
import type { Hub } from "./realtime/hub.js";
import { authRoutes } from "./routes/auth.js";
import { chainRoutes } from "./routes/chain.js";
import { communitySettings } from "./routes/complianceShared.js";
import { healthRoutes, type HealthOptions } from "./routes/health.js";
import { prosumerRoutes } from "./routes/prosumers.js";
import { realtimeRoutes } from "./routes/realtime.js";
import { tradingRoutes } from "./routes/trading.js";
import { installInputLimits } from "./validation/inputLimits.js";

export interface ApiSettings {
  /** Origins allowed by CORS; ["*"] allows any; [] sends no CORS headers. */
  corsOrigins: string[];
  /** Largest request body, bytes. */
  bodyLimit: number;
  rateLimit: { perIpPerMinute: number; perAddressPerMinute: number };
  /**
   * Domains a SIWE message may name: configured (SIWE_DOMAINS), or a list read at each login (the
   * node's listening address, known after listen). Never the request's Host; empty accepts none.
   */
  siweDomains: SiweDomainSource;
  /** The HTTP server's timeouts (HTTP_*_TIMEOUT_MS); absent = defaultHttpTimeouts. */
  timeouts?: HttpTimeouts;
}

export interface BuildAppOptions {
  services: NodeServices;
  settings: ApiSettings;
  hub: Hub;
  health?: HealthOptions;
  /** More route plugins (VPP, forecasts, readings...), each given the app's services. */
  plugins?: FastifyPluginAsync[];
  /** Log every request (the node does; tests do not). */
  logRequests?: boolean;
  /**
   * A number that changes whenever the node's indexer commits. Routes that read the indexer's
   * tables cache their answers until it changes; without it they query every time.
   */
  indexerVersion?: () => number;
}

export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const { services, settings } = options;
  const timeouts = settings.timeouts ?? defaultHttpTimeouts;
  const app = Fastify({
    loggerInstance: services.logger,
    logController: new LogController({ disableRequestLogging: !options.logRequests }),
    bodyLimit: settings.bodyLimit,
    trustProxy: false,
    // A request must arrive whole (headers and body) within requestMs, or it is answered 408 and
    // its socket closed: a slow body cannot hold a socket. Node checks the timers every
    // connectionsCheckingInterval, so that is a fraction of the shortest one.
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    http: { headersTimeout: timeouts.headersMs, requestTimeout: timeouts.requestMs, connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(timeouts.headersMs / 4))) },
    // Refusals of the router and of Node's HTTP parser are problems too (server/problems.ts).
    frameworkErrors: handleFrameworkError,
    clientErrorHandler: answerClientError,
    // allowUnionTypes: `type: ["integer", "null"]` is plain JSON Schema; strict mode would warn on every start.
    ajv: { customOptions: { coerceTypes: "array", useDefaults: true, removeAdditional: false, allErrors: false, allowUnionTypes: true } },
  }) as unknown as FastifyInstance;

  // Before any route: every route's schemas get their bounds and every request its checks.
  installInputLimits(app);
  app.decorate("node", services);
  app.decorate("operatorRoles", createOperatorRoles(services.chain));
  app.decorateRequest("account", null);
  app.addSchema(problemSchema);
  app.setErrorHandler(handleApiError);
  app.setNotFoundHandler((request, reply) => sendProblem(reply, problemOf("route_not_found", `no route ${request.method} ${request.url.split("?")[0]}`)));

  const limits = createRateLimits({ ...settings.rateLimit, clock: services.clock });
  // A limit that is off adds no hook: every request pays for every hook there is.
  if (limits.ip) app.addHook("onRequest", limits.ip);
  app.addHook("onRequest", readAccount);
  if (limits.address) app.addHook("preHandler", limits.address);

  if (settings.corsOrigins.length > 0) {
    await app.register(cors, { origin: settings.corsOrigins.includes("*") ? true : settings.corsOrigins, methods: ["GET", "POST", "PUT", "DELETE"] });
  }
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "P2P energy market node", version: "1.0.0", description: "Signed orders, markets, readings, VPP and the auditor API of a community energy market." },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer", description: "token from POST /v1/auth/login (Sign-In With Ethereum)" },
          device: { type: "http", scheme: "basic", description: "a device's username and password from POST /v1/devices (the same credential it logs in to MQTT with)" },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  await app.register(websocket, { options: { maxPayload: 65_536 } });

  await app.register(healthRoutes, options.health ?? { probes: {}, gauges: () => ({}) });
  await app.register(chainRoutes);
  await app.register(authRoutes, { siweDomains: settings.siweDomains });
  await app.register(tradingRoutes, options.indexerVersion ? { indexerVersion: options.indexerVersion } : {});
  await app.register(prosumerRoutes);
  await app.register(realtimeRoutes, { hub: options.hub });
  // The auditor API counts periods on the community's calendar and the node's clock, as the
  // compliance, carbon and savings routes do.
  await app.register(indexerApi, { ...services.indexer, timeZone: services.indexer.timeZone ?? communitySettings(app).timeZone, clock: services.indexer.clock ?? services.clock });
  for (const plugin of options.plugins ?? []) await app.register(plugin);
  return app;
}
