// Device credentials: the operator issues one per device (its device id is its username), the
// password is a random 192-bit token shown once and stored only as Mosquitto's `$7$` hash
// (bridge/mosquittoPassword.ts says why that hash suffices for random tokens). The same check
// serves the embedded broker's logins, the generated Mosquitto password file and REST readings
// sent with the meter's credential (HTTP Basic). Revoking or rotating a credential ends its
// sessions on the embedded broker through `onCredentialWithdrawn`.
import { createHash, randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import type { Hex } from "viem";
import { MONITOR, type BrokerIdentity } from "../../bridge/brokerAccess.js";
import { hashMosquittoPassword, verifyMosquittoPassword } from "../../bridge/mosquittoPassword.js";
import type { MosquittoCredential } from "../../bridge/mosquittoConfig.js";
import { SMART_METER } from "../../bridge/topics.js";
import {
  findDeviceCredential, insertDeviceCredential, listDeviceCredentials, revokeDeviceCredential, setDevicePassword,
  type DeviceCredentialRow, type DevicesDatabase,
} from "./deviceStore.js";
import { DeviceExistsError, DeviceIdInvalidError, DeviceIdReservedError, DeviceNotFoundError, DeviceRevokedError } from "./errors.js";

/** A device's credential without its secret. */
export interface DeviceRecord {
  deviceId: string;
  deviceType: string;
  region: string | null;
  issuedAtMs: number;
  issuedBy: string;
  passwordSetAtMs: number;
  revokedAtMs: number | null;
  revokedBy: string | null;
}

export interface IssuedDeviceCredential {
  device: DeviceRecord;
  username: string;
  /** Shown once: only its hash is stored. */
  password: string;
}

/** What a logged-in device or monitor is, for the broker and for REST. */
export type DeviceIdentity = Exclude<BrokerIdentity, { role: "bridge" }>;

export interface IssueDeviceParameters {
  deviceId: string;
  deviceType: string;
  region?: string | null;
  /** The operator's address, or "node". */
  issuedBy: string;
  /** Test accounts only: a password derived from their public key (testAccountDevicePassword). */
  password?: string;
  /** Also when the id has a revoked credential (default true); false leaves any existing row alone. */
  reissueRevoked?: boolean;
}

export interface DeviceCredentials {
  /** A new credential, or a revoked one issued again; DeviceExistsError while one is active. */
  issue(p: IssueDeviceParameters): Promise<IssuedDeviceCredential>;
  /** A new password for an active credential; the old one stops working and its sessions end. */
  rotate(deviceId: string): Promise<IssuedDeviceCredential>;
  /** Revokes a credential and ends its sessions; revoking it again changes nothing. */
  revoke(deviceId: string, revokedBy: string): Promise<DeviceRecord>;
  list(options?: { includeRevoked?: boolean }): Promise<DeviceRecord[]>;
  /** The identity behind an active credential, undefined for a wrong or revoked one. */
  check(username: string, password: string): Promise<DeviceIdentity | undefined>;
  /** Every active credential with its stored hash: the Mosquitto password and ACL files. */
  mosquittoCredentials(): Promise<MosquittoCredential[]>;
}

export interface CreateDeviceCredentialsParameters {
  db: Kysely<DevicesDatabase>;
  /** Unix milliseconds. */
  clock: () => number;
  /** Usernames no device may have: the bridge's. */
  reservedUsernames: string[];
  /** A credential was revoked or rotated: end its sessions on the embedded broker. */
  onCredentialWithdrawn?: (username: string) => void;
}

/** Bytes of a generated password: 192 bits, 32 base64url characters (no ':' to trip Basic auth or a URL). */
const PASSWORD_BYTES = 24;
/** The registry holds a meter id as bytes32: 31 bytes and a terminator. */
const METER_ID_MAX_BYTES = 31;

export function createDeviceCredentials(p: CreateDeviceCredentialsParameters): DeviceCredentials {
  const { db, clock } = p;
  const reserved = new Set(p.reservedUsernames);

  async function issue(i: IssueDeviceParameters): Promise<IssuedDeviceCredential> {
    if (reserved.has(i.deviceId)) throw new DeviceIdReservedError({ deviceId: i.deviceId });
    if (i.deviceType === SMART_METER && Buffer.byteLength(i.deviceId, "utf8") > METER_ID_MAX_BYTES) {
      throw new DeviceIdInvalidError({ deviceId: i.deviceId, rule: `is longer than a registry meter id (${METER_ID_MAX_BYTES} bytes)` });
    }
    const password = i.password ?? newPassword();
    const outcome = await insertDeviceCredential(db, {
      device_id: i.deviceId, device_type: i.deviceType, region: i.region ?? null, password_hash: hashMosquittoPassword(password), issued_by: i.issuedBy,
    }, clock(), { reissueRevoked: i.reissueRevoked ?? true });
    if (outcome === "exists") throw new DeviceExistsError({ deviceId: i.deviceId });
    return { device: await record(i.deviceId), username: i.deviceId, password };
  }

  async function record(deviceId: string): Promise<DeviceRecord> {
    const row = await findDeviceCredential(db, deviceId);
    if (!row) throw new DeviceNotFoundError({ deviceId });
    return toRecord(row);
  }

  return {
    issue,
    async rotate(deviceId) {
      const password = newPassword();
      if (!(await setDevicePassword(db, deviceId, hashMosquittoPassword(password), clock()))) {
        const row = await findDeviceCredential(db, deviceId);
        throw row ? new DeviceRevokedError({ deviceId }) : new DeviceNotFoundError({ deviceId });
      }
      p.onCredentialWithdrawn?.(deviceId);
      return { device: await record(deviceId), username: deviceId, password };
    },
    async revoke(deviceId, revokedBy) {
      const row = await revokeDeviceCredential(db, deviceId, revokedBy, clock());
      if (!row) throw new DeviceNotFoundError({ deviceId });
      p.onCredentialWithdrawn?.(deviceId);
      return toRecord(row);
    },
    async list(options = {}) {
      return (await listDeviceCredentials(db, { includeRevoked: options.includeRevoked ?? false })).map(toRecord);
    },
    async check(username: string, password: string) {
      if (reserved.has(username)) return undefined;
      const row = await findDeviceCredential(db, username);
      if (!row || row.revoked_at !== null || !verifyMosquittoPassword(password, row.password_hash)) return undefined;
      return identityOf(row);
    },
    async mosquittoCredentials() {
      return (await listDeviceCredentials(db, { includeRevoked: false })).map((row) => ({ identity: identityOf(row), passwordHash: row.password_hash }));
    },
  };
}

function newPassword(): string {
  return randomBytes(PASSWORD_BYTES).toString("base64url");
}

function identityOf(row: DeviceCredentialRow): DeviceIdentity {
  if (row.device_type === MONITOR) return { role: "monitor", username: row.device_id };
  return { role: "device", username: row.device_id, deviceType: row.device_type, deviceId: row.device_id, region: row.region };
}

function toRecord(row: DeviceCredentialRow): DeviceRecord {
  return {
    deviceId: row.device_id, deviceType: row.device_type, region: row.region, issuedAtMs: Number(row.issued_at), issuedBy: row.issued_by,
    passwordSetAtMs: Number(row.password_set_at), revokedAtMs: row.revoked_at === null ? null : Number(row.revoked_at), revokedBy: row.revoked_by,
  };
}

/**
 * The MQTT password of an embedded-chain test account's meter, derived from its private key:
 * Hardhat's well-known keys are public, so this is as public as they are and worthless
 * anywhere but the embedded chain. Derived rather than stored, so the node can show it again
 * after a restart while storing only its hash.
 */
export function testAccountDevicePassword(privateKey: Hex): string {
  return createHash("sha256").update("p2p-energy/test-account-mqtt-password/v1\u0000").update(privateKey.toLowerCase()).digest().subarray(0, PASSWORD_BYTES).toString("base64url");
}

/**
 * Gives each test account's meter its credential, once: a meter that has a row (even a revoked
 * one, or one an operator rotated) is left alone, so the node never undoes an operator's act.
 */
export async function issueTestAccountCredentials(devices: DeviceCredentials, accounts: readonly { meterId: string; privateKey: Hex }[]): Promise<void> {
  for (const a of accounts) {
    try {
      await devices.issue({ deviceId: a.meterId, deviceType: SMART_METER, region: null, issuedBy: "node", password: testAccountDevicePassword(a.privateKey), reissueRevoked: false });
    } catch (err) {
      if (!(err instanceof DeviceExistsError)) throw err;
    }
  }
}
