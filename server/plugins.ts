// Route plugins beyond the core (trading, auth, chain, prosumers, auditor): each group in its
// own file, registered by the node in this order.
import type { FastifyPluginAsync } from "fastify";
import { forecastRoutes } from "./routes/forecast.js";
import { readingRoutes } from "./routes/readings.js";
import { vppRoutes } from "./routes/vpp.js";

export const nodePlugins: FastifyPluginAsync[] = [vppRoutes, forecastRoutes, readingRoutes];
