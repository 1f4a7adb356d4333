// Device credentials over the API, operators only: issue one (the password is in that answer
// and nowhere else), list them without secrets, rotate one, revoke one (its MQTT sessions on
// the embedded broker end at once; for Mosquitto, generate the files again and SIGHUP it). The
// credential logs a device in to MQTT (username = device id) and lets a meter send its own
// readings over REST (HTTP Basic). The service is app.node.devices, built by the node before
// its broker starts (server/startNode.ts).
import type { FastifyInstance } from "fastify";
import { brokerRights, MONITOR } from "../../bridge/brokerAccess.js";
import { requireOperator } from "../auth/authenticate.js";
import type { DeviceCredentials, DeviceIdentity, DeviceRecord, IssuedDeviceCredential } from "../devices/deviceCredentials.js";
import { ApiError, bearer, problem } from "../problems.js";

const topicLevel = { type: "string", minLength: 1, maxLength: 64, pattern: "^[A-Za-z0-9._-]+$" } as const;

const deviceSchema = {
  type: "object",
  required: ["deviceId", "deviceType", "region", "issuedAt", "issuedBy", "passwordSetAt", "revokedAt"],
  properties: {
    deviceId: { type: "string", description: "also its MQTT username" },
    deviceType: { type: "string" },
    region: { type: ["string", "null"], description: "the one region its topics may name; null: any" },
    issuedAt: { type: "string", format: "date-time" },
    issuedBy: { type: "string", description: "the operator's address, or \"node\" for an embedded-chain test account" },
    passwordSetAt: { type: "string", format: "date-time", description: "when the current password was issued (rotation)" },
    revokedAt: { type: ["string", "null"], format: "date-time" },
    revokedBy: { type: ["string", "null"] },
  },
} as const;

const issuedSchema = {
  type: "object",
  required: ["username", "password", "device", "mqtt"],
  properties: {
    username: { type: "string" },
    password: { type: "string", description: "shown only in this answer: the node keeps its hash alone" },
    device: deviceSchema,
    mqtt: {
      type: "object",
      required: ["publish", "subscribe"],
      properties: {
        url: { type: "string", description: "the broker devices connect to (no credentials in it); absent when the node does not know it" },
        publish: { type: "array", items: { type: "string" }, description: "topics it may publish to (+ is any one level)" },
        subscribe: { type: "array", items: { type: "string" }, description: "topic filters it may subscribe to" },
      },
    },
  },
} as const;

const deviceIdParams = { type: "object", required: ["deviceId"], properties: { deviceId: topicLevel } } as const;

function toJson(d: DeviceRecord) {
  return {
    deviceId: d.deviceId, deviceType: d.deviceType, region: d.region, issuedAt: new Date(d.issuedAtMs).toISOString(), issuedBy: d.issuedBy,
    passwordSetAt: new Date(d.passwordSetAtMs).toISOString(), revokedAt: d.revokedAtMs === null ? null : new Date(d.revokedAtMs).toISOString(), revokedBy: d.revokedBy,
  };
}

export async function deviceRoutes(app: FastifyInstance): Promise<void> {
  function devices(): DeviceCredentials {
    const d = app.node.devices;
    if (!d) throw new ApiError("unavailable", "this node keeps no device credentials");
    return d;
  }

  /** The answer that carries a password: the only place it ever appears. */
  function issuedJson(issued: IssuedDeviceCredential) {
    const { device } = issued;
    const identity: DeviceIdentity = device.deviceType === MONITOR
      ? { role: "monitor", username: issued.username }
      : { role: "device", username: issued.username, deviceType: device.deviceType, deviceId: device.deviceId, region: device.region };
    const mqtt = app.node.mqtt;
    const rights = brokerRights(identity, mqtt?.topicRoot ?? app.node.bridge?.topicRoot ?? "energy-cloud");
    return {
      username: issued.username, password: issued.password, device: toJson(device),
      mqtt: { ...(mqtt ? { url: mqtt.url } : {}), publish: rights.publish, subscribe: rights.subscribe },
    };
  }

  // Who: operators. A new credential for a device, or a revoked one issued again.
  app.post<{ Body: { deviceId: string; deviceType: string; region?: string } }>("/v1/devices", {
    preHandler: requireOperator,
    schema: {
      tags: ["devices"],
      summary: "Issue a device's MQTT (and REST readings) credential; the password is shown only in this answer (operator only)",
      description: "The username is the device id. A device publishes only `{root}/{region}/{deviceType}/{deviceId}/{export|import|interval|status}` " +
        "and subscribes only to `{root}/+/{deviceType}/{deviceId}/command`; deviceType `monitor` is an operator's read-only tool " +
        "(dead letters and the bridge's metrics). A smart meter's id is its registry meter id.",
      security: bearer,
      body: {
        type: "object",
        additionalProperties: false,
        required: ["deviceId", "deviceType"],
        properties: {
          deviceId: { ...topicLevel, description: "its MQTT username and topic level; a smart meter's registry meter id (at most 31 bytes)" },
          deviceType: { type: "string", minLength: 1, maxLength: 32, pattern: "^[a-z0-9][a-z0-9-]*$", description: "smart-meter, battery, ev-charger, heat-pump, ... or monitor" },
          region: { ...topicLevel, description: "the one region its topics may name (default: any)" },
        },
      },
      response: { 201: issuedSchema, 400: problem, 401: problem, 403: problem, 409: problem, 503: problem },
    },
  }, async (request, reply) => {
    const b = request.body;
    const issued = await devices().issue({ deviceId: b.deviceId, deviceType: b.deviceType, region: b.region ?? null, issuedBy: request.account!.address });
    request.log.info({ msg: "device credential issued", device_id: b.deviceId, device_type: b.deviceType, by: request.account!.address });
    return reply.code(201).send(issuedJson(issued));
  });

  // Who: operators. Never shows a password or its hash.
  app.get<{ Querystring: { includeRevoked: boolean } }>("/v1/devices", {
    preHandler: requireOperator,
    schema: {
      tags: ["devices"],
      summary: "Device credentials, without secrets (operator only)",
      security: bearer,
      querystring: { type: "object", additionalProperties: false, properties: { includeRevoked: { type: "boolean", default: false } } },
      response: {
        200: { type: "object", required: ["devices"], properties: { devices: { type: "array", items: deviceSchema } } },
        400: problem, 401: problem, 403: problem, 503: problem,
      },
    },
  }, async (request) => ({ devices: (await devices().list({ includeRevoked: request.query.includeRevoked })).map(toJson) }));

  // Who: operators. The old password stops working at once; sessions logged in with it end.
  app.post<{ Params: { deviceId: string } }>("/v1/devices/:deviceId/rotate", {
    preHandler: requireOperator,
    schema: {
      tags: ["devices"],
      summary: "A new password for a device; the old one stops working and its MQTT sessions end (operator only)",
      security: bearer,
      params: deviceIdParams,
      response: { 200: issuedSchema, 400: problem, 401: problem, 403: problem, 404: problem, 409: problem, 503: problem },
    },
  }, async (request) => {
    const issued = await devices().rotate(request.params.deviceId);
    request.log.info({ msg: "device credential rotated", device_id: request.params.deviceId, by: request.account!.address });
    return issuedJson(issued);
  });

  // Who: operators. Idempotent: revoking a revoked credential answers its record again.
  app.delete<{ Params: { deviceId: string } }>("/v1/devices/:deviceId", {
    preHandler: requireOperator,
    schema: {
      tags: ["devices"],
      summary: "Revoke a device's credential: its MQTT sessions on the embedded broker end and it cannot log in again (operator only)",
      description: "With Mosquitto (MQTT_URL), generate the password and ACL files again (npm run mqtt:mosquitto-config) and send Mosquitto SIGHUP.",
      security: bearer,
      params: deviceIdParams,
      response: { 200: deviceSchema, 400: problem, 401: problem, 403: problem, 404: problem, 503: problem },
    },
  }, async (request) => {
    const device = await devices().revoke(request.params.deviceId, request.account!.address);
    request.log.info({ msg: "device credential revoked", device_id: request.params.deviceId, by: request.account!.address });
    return toJson(device);
  });
}
