// Route plugins beyond the core (trading, auth, chain, prosumers, auditor): each group in its
// own file, registered by the node in this order.
import type { FastifyPluginAsync } from "fastify";

export const nodePlugins: FastifyPluginAsync[] = [];
