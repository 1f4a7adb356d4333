// Errors of device credentials. Each code is a problem code of the API (server/problems.ts maps
// it to its status); `field` names the input at fault.
import { BaseError } from "../../lib/errors.js";

export class DeviceNotFoundError extends BaseError {
  override name = "DeviceNotFoundError";
  constructor({ deviceId }: { deviceId: string }) {
    super(`no device credential for ${deviceId}`, { code: "device_not_found", field: "deviceId" });
  }
}

export class DeviceExistsError extends BaseError {
  override name = "DeviceExistsError";
  constructor({ deviceId }: { deviceId: string }) {
    super(`${deviceId} already has an active credential: rotate it (POST /v1/devices/${deviceId}/rotate) or revoke it first (DELETE /v1/devices/${deviceId})`, { code: "device_exists", field: "deviceId" });
  }
}

export class DeviceRevokedError extends BaseError {
  override name = "DeviceRevokedError";
  constructor({ deviceId }: { deviceId: string }) {
    super(`the credential of ${deviceId} is revoked: issue a new one with POST /v1/devices`, { code: "device_revoked", field: "deviceId" });
  }
}

export class DeviceIdReservedError extends BaseError {
  override name = "DeviceIdReservedError";
  constructor({ deviceId }: { deviceId: string }) {
    super(`${deviceId} is the broker username of the meter bridge and cannot be a device id`, { code: "device_id_reserved", field: "deviceId" });
  }
}

export class DeviceIdInvalidError extends BaseError {
  override name = "DeviceIdInvalidError";
  constructor({ deviceId, rule }: { deviceId: string; rule: string }) {
    super(`deviceId ${JSON.stringify(deviceId)} ${rule}`, { code: "invalid_request", field: "deviceId" });
  }
}

export type DeviceErrorType = DeviceNotFoundError | DeviceExistsError | DeviceRevokedError | DeviceIdReservedError | DeviceIdInvalidError;
