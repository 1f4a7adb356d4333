// The bridge's own errors. Every one extends BaseError (lib/errors.ts); `retryable` says whether
// the same step can succeed later (a chain or broker that is down) or never will (bad input).
import { BaseError, ValidationError } from "../lib/errors.js";

/** A configuration variable breaks its rule; start-up stops with this message. */
export class BridgeConfigError extends BaseError {
  override name = "BridgeConfigError";
  constructor({ variable, value, rule }: { variable: string; value: string | undefined; rule: string }) {
    super(value === undefined ? `${variable}: ${rule}` : `${variable}=${JSON.stringify(value)}: ${rule}`, {
      code: "bridge_config_invalid",
      field: variable,
    });
  }
}

/**
 * Why a reading was dead-lettered. Stable codes: they appear in dead-letter payloads, in the
 * bridge_dead_letters table and in metrics.
 */
export const rejectReasons = [
  "payload_too_large",
  "malformed_json",
  "schema_invalid",
  "unknown_metric",
  "unknown_unit",
  "unknown_meter",
  "meter_mismatch",
  "timestamp_in_future",
  "timestamp_too_old",
  "interval_misaligned",
  "interval_length_mismatch",
  "counter_decreased",
  "implausible_value",
  "conflicting_duplicate",
  // Only the meter can prove a delivery: an energy reading must carry a valid signature by the
  // key the registry holds for the meter (see readingSignature.ts).
  "signature_missing",
  "signature_invalid",
  "meter_signer_unset",
] as const;
export type RejectReason = (typeof rejectReasons)[number];

/** A message the bridge will not use: it goes to the dead-letter topic with this reason. */
export class ReadingRejectedError extends ValidationError {
  override name = "ReadingRejectedError";
  readonly reason: RejectReason;
  constructor({ reason, field, rule }: { reason: RejectReason; field: string; rule: string }) {
    super(field, rule, { code: reason });
    this.reason = reason;
  }
}

/** The embedded broker's port is taken; the message names the ways out. */
export class BrokerPortInUseError extends BaseError {
  override name = "BrokerPortInUseError";
  constructor({ host, port, cause }: { host: string; port: number; cause?: unknown }) {
    super(
      `MQTT: cannot start the embedded broker, ${host}:${port} is already in use (is a Mosquitto running there?). ` +
        `Either set MQTT_URL=mqtt://${host}:${port} to use that broker, or set MQTT_PORT to another port ` +
        `(0 picks a free one) or unset it (a free port near 1883 is taken) for the embedded broker`,
      { code: "mqtt_port_in_use", field: "MQTT_PORT", cause },
    );
  }
}

/** A device command that breaks its rule (unknown action, non-positive energy, ...). */
export class DeviceCommandError extends ValidationError {
  override name = "DeviceCommandError";
}

/** The chain answered a delivery report with a revert the outbox cannot resolve by retrying. */
export class DeliveryReportRejectedError extends BaseError {
  override name = "DeliveryReportRejectedError";
  constructor({ tradeId, reason, cause }: { tradeId: bigint; reason: string; cause?: unknown }) {
    super(`delivery report for trade ${tradeId} rejected by the market: ${reason}`, {
      code: "delivery_report_rejected",
      cause,
    });
  }
}
