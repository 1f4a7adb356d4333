// `npm run mqtt:mosquitto-config -- --out <dir> [--listen [host:]port] [--run-as user]`: writes a
// Mosquitto configuration (mosquitto.conf, passwd, acl) from the node's device credentials, for
// a node whose broker is a Mosquitto (MQTT_URL). Reads the node's settings from the environment
// as `npm start` does: the database (DATABASE_URL, or the node's PGlite folder in DATA_DIR, which
// only one process can open: stop the node first or use PostgreSQL), MQTT_URL (its userinfo is
// the bridge's login: its hash goes into passwd) and BRIDGE_TOPIC_ROOT. Run it again after any
// issue, rotation or revocation, then `kill -HUP <mosquitto pid>`.
import { existsSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { mqttUrlCredential } from "../bridge/brokerAccess.js";
import { openDatabase } from "../lib/database.js";
import { readNodeConfig } from "../server/config.js";
import { createDeviceCredentials } from "../server/devices/deviceCredentials.js";
import { migrateDeviceStore, type DevicesDatabase } from "../server/devices/deviceStore.js";
import { writeMosquittoConfig } from "../server/devices/writeMosquittoConfig.js";

const usage = `usage: npm run mqtt:mosquitto-config -- --out <dir> [--listen [host:]port] [--run-as <user>]

  --out DIR        where mosquitto.conf, passwd and acl are written (created if missing)
  --listen ADDR    the listener: a port (all interfaces) or host:port (default 1883)
  --run-as USER    Mosquitto's \`user\` setting (started as root it drops to this user; default its own, mosquitto)

Reads DATABASE_URL (or the node's PGlite in DATA_DIR, node stopped), MQTT_URL (with the bridge's
username and password: mqtt://bridge:<secret>@host:1883) and BRIDGE_TOPIC_ROOT.`;

class UsageError extends Error {}

function parseListener(raw: string): { port: number; host?: string } {
  const m = /^(?:(.+):)?(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65_535) throw new UsageError(`--listen ${JSON.stringify(raw)}: must be a port or host:port`);
  return { port, ...(m[1] ? { host: m[1] } : {}) };
}

async function main() {
  const { values } = parseArgs({
    options: { out: { type: "string" }, listen: { type: "string", default: "1883" }, "run-as": { type: "string" }, help: { type: "boolean" } },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  if (!values.out) throw new UsageError("--out <dir> is required");
  const listener = parseListener(values.listen!);
  const config = readNodeConfig(process.env);
  const bridge = config.mqtt.url ? mqttUrlCredential(config.mqtt.url) : undefined;
  if (!bridge || !bridge.password) {
    throw new UsageError("MQTT_URL must name the node's Mosquitto with the bridge's login, e.g. MQTT_URL=mqtt://bridge:<secret>@127.0.0.1:1883 " +
      "(make a secret with `node -e \"console.log(require('crypto').randomBytes(24).toString('base64url'))\"`); the node logs in with it and passwd gets its hash");
  }
  const pgliteDir = path.join(config.dataDir, "pglite");
  if (!config.databaseUrl && !existsSync(pgliteDir)) {
    throw new UsageError(`no node database in ${pgliteDir}: set DATABASE_URL, or DATA_DIR to the node's data folder`);
  }
  // PGlite has no server: a second process opening the folder of a running node could corrupt it.
  if (!config.databaseUrl && existsSync(path.join(pgliteDir, "postmaster.pid"))) {
    throw new UsageError(`the node's PGlite database in ${pgliteDir} is open (postmaster.pid): stop the node first, or run the node on PostgreSQL (DATABASE_URL). ` +
      "A postmaster.pid left by a crash goes away when the node starts and stops once.");
  }
  const database = config.databaseUrl
    ? await openDatabase<DevicesDatabase>({ url: config.databaseUrl })
    : await openDatabase<DevicesDatabase>({ dataDir: pgliteDir });
  try {
    await migrateDeviceStore(database.db);
    const devices = createDeviceCredentials({ db: database.db, clock: Date.now, reservedUsernames: [bridge.username] });
    const written = await writeMosquittoConfig({
      devices, bridge, topicRoot: config.bridge.topicRoot, outDir: values.out, listener, ...(values["run-as"] ? { runAs: values["run-as"] } : {}),
    });
    console.log([
      `wrote ${written.configPath}, ${written.passwordFilePath} and ${written.aclFilePath} (${written.credentials} credentials, the bridge's included)`,
      `start:  mosquitto -c ${written.configPath}`,
      "reload: kill -HUP <mosquitto pid>   (after issuing, rotating or revoking a credential and running this again)",
    ].join("\n"));
  } finally {
    await database.close();
  }
}

main().catch((err: unknown) => {
  if (err instanceof UsageError || (err as { code?: string })?.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    console.error(`mqtt:mosquitto-config: ${(err as Error).message}\n\n${usage}`);
  } else {
    console.error(`mqtt:mosquitto-config: ${(err as Error)?.message ?? err}`);
  }
  process.exit(1);
});
