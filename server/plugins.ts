// Route plugins beyond the core (trading, auth, chain, prosumers, auditor): each group in its
// own file, registered by the node in this order.
import type { FastifyPluginAsync } from "fastify";
import { complianceRoutes } from "./routes/compliance.js";
import { coordinationRoutes } from "./routes/coordination.js";
import { deviceRoutes } from "./routes/devices.js";
import { evidenceRoutes } from "./routes/evidence.js";
import { forecastRoutes } from "./routes/forecast.js";
import { keeperRoutes } from "./routes/keeper.js";
import { orchestratorRoutes } from "./routes/orchestrator.js";
import { readingRoutes } from "./routes/readings.js";
import { vppRoutes } from "./routes/vpp.js";
import { webRoutes } from "./routes/web.js";

export const nodePlugins: FastifyPluginAsync[] = [vppRoutes, coordinationRoutes, forecastRoutes, readingRoutes, deviceRoutes, evidenceRoutes, keeperRoutes, orchestratorRoutes, complianceRoutes, webRoutes];
