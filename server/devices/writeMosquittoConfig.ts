// Writes a Mosquitto configuration from the node's device credentials: `passwd` (the stored
// hashes as they are), `acl` (each credential's rights) and `mosquitto.conf` pointing at both.
// Each file is written to a temporary name and renamed into place, so a Mosquitto reloading on
// SIGHUP meanwhile reads the old file or the new one, never half of one.
import { chmod, mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import type { BrokerCredential } from "../../bridge/brokerAccess.js";
import { renderMosquittoConfig } from "../../bridge/mosquittoConfig.js";
import { hashMosquittoPassword } from "../../bridge/mosquittoPassword.js";
import type { DeviceCredentials } from "./deviceCredentials.js";

export interface WriteMosquittoConfigParameters {
  devices: Pick<DeviceCredentials, "mosquittoCredentials">;
  /** The bridge's login, as in the node's MQTT_URL. */
  bridge: BrokerCredential;
  topicRoot: string;
  outDir: string;
  listener: { port: number; host?: string };
  /** Mosquitto's `user` (started as root, it drops to this user, which must be able to read the files). */
  runAs?: string;
  clock?: () => number;
}

export interface WriteMosquittoConfigReturnType {
  configPath: string;
  passwordFilePath: string;
  aclFilePath: string;
  /** Credentials written, the bridge's included. */
  credentials: number;
}

export async function writeMosquittoConfig(p: WriteMosquittoConfigParameters): Promise<WriteMosquittoConfigReturnType> {
  const outDir = path.resolve(p.outDir);
  await mkdir(outDir, { recursive: true });
  const passwordFilePath = path.join(outDir, "passwd");
  const aclFilePath = path.join(outDir, "acl");
  const configPath = path.join(outDir, "mosquitto.conf");
  const credentials = [
    { identity: { role: "bridge" as const, username: p.bridge.username }, passwordHash: hashMosquittoPassword(p.bridge.password) },
    ...(await p.devices.mosquittoCredentials()),
  ];
  const files = renderMosquittoConfig({
    topicRoot: p.topicRoot, credentials, passwordFilePath, aclFilePath, listener: p.listener, ...(p.runAs ? { runAs: p.runAs } : {}),
    generatedAt: new Date((p.clock ?? Date.now)()),
  });
  // Hashes of random tokens are no secret worth a dictionary, but there is no reason to show
  // them to every local user either: owner read/write, group (mosquitto's) read.
  await replaceFile(passwordFilePath, files.passwordFile, 0o640);
  await replaceFile(aclFilePath, files.aclFile, 0o640);
  await replaceFile(configPath, files.config, 0o644);
  return { configPath, passwordFilePath, aclFilePath, credentials: credentials.length };
}

async function replaceFile(file: string, text: string, mode: number): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, text, { mode });
  await chmod(temporary, mode);
  await rename(temporary, file);
}
