// `npm start`: the whole platform on this machine. Embedded chain, database and MQTT broker
// unless CHAIN_RPC_URL, DATABASE_URL, MQTT_URL say otherwise (see server/config.ts). Prints
// what runs where; Ctrl-C shuts everything down without losing an acknowledged order.
import { formatUnits } from "viem";
import { BaseError } from "../lib/errors.js";
import { createLogger } from "../lib/logger.js";
import { readNodeConfig } from "../server/config.js";
import { startNode } from "../server/startNode.js";
import { nodePlugins } from "../server/plugins.js";

const logger = createLogger("node");

async function main() {
  const config = readNodeConfig(process.env);
  const node = await startNode({ config, logger, plugins: nodePlugins });
  const d = node.deployment;
  const lines = [
    "",
    "P2P energy market — node running",
    `  dashboard       ${node.url}/  (market, deliveries, grid, community, my wallet)`,
    `  API             ${node.url}/v1  (OpenAPI: ${node.url}/docs, health: ${node.url}/healthz, metrics: ${node.url}/metrics)`,
    `  WebSocket       ${node.url.replace(/^http/, "ws")}/v1/energy/real-time`,
    `  JSON-RPC        ${node.rpcUrl}${node.services.chain.local ? `  (embedded chain; ${node.chainReplayed > 0 ? `restored ${node.chainReplayed} journalled requests` : "fresh"})` : ""}`,
    `  chain id        ${node.chainId}`,
    `  contracts       ${node.freshDeployment ? "deployed now" : "reused"} (block ${d.blockNumber})`,
    `    tEUR token    ${d.contracts.PaymentToken}`,
    `    registry      ${d.contracts.ProsumerRegistry}`,
    `    market        ${d.contracts.EnergyMarket}`,
    `  MQTT            ${node.mqttUrl}${node.broker ? "  (embedded Aedes broker)" : ""}`,
    `  database        ${node.database}`,
    `  markets         ${config.markets.map((m) => `${m.zone} (${m.mode})`).join(", ")}; time zone ${config.timeZone}`,
  ];
  if (node.testAccounts.length > 0) {
    lines.push(`  test accounts   (Hardhat's well-known keys; ${formatUnits(1_000_000_000n, 6)} tEUR each on a fresh chain; registered prosumers)`);
    for (const a of node.testAccounts) lines.push(`    ${a.address}  ${a.zone}  meter ${a.meterId}  key ${a.privateKey}`);
    // Hardhat's account 0 is public knowledge: printing its key gives away nothing on a local
    // chain, and the operator routes (README: "Who may call what") need a wallet holding it.
    lines.push(`  operator        ${d.roles.admin} (registrar/admin)${node.operatorKey ? `  key ${node.operatorKey}` : ""}`);
  }
  const aggregator = node.services.aggregator;
  if (aggregator) lines.push(`  aggregator      ${aggregator.address} (the community's wallet for the orchestrator's orders, ${aggregator.zone})`);
  for (const m of node.movedPorts) {
    lines.push(`  note            ${m.what} port ${m.from} was in use, so ${m.what} took ${m.to} (set ${m.variable} to choose one)`);
  }
  // The CLI and the simulation look for the node at 127.0.0.1:8080 unless told otherwise.
  if (node.movedPorts.some((m) => m.what === "API")) lines.push(`  for the CLI     export ENERGY_API_URL=${node.url}`);
  lines.push("", "Try: npm run simulate    (20 simulated households trading against this node; Ctrl-C stops them)", "     npm run cli -- --help     Ctrl-C stops everything.", "");
  console.log(lines.join("\n"));

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ msg: "stopping", signal });
    setTimeout(() => {
      logger.error({ msg: "graceful stop took longer than 30 s; exiting" });
      process.exit(1);
    }, 30_000).unref();
    await node.close();
    logger.info({ msg: "stopped" });
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

main().catch((err: unknown) => {
  const message = err instanceof BaseError ? err.shortMessage : err instanceof Error ? err.message : String(err);
  process.stderr.write(`start: ${message}\n`);
  if (!(err instanceof BaseError)) logger.error({ msg: "start failed", err });
  process.exit(err instanceof BaseError && err.code === "config_invalid" ? 2 : 1);
});
