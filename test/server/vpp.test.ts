// The VPP routes against one whole node: CRUD and resources with their error paths, the spec's
// optimisation example and infeasible answers through the route, apply sending battery and EV
// commands through the node's embedded broker to subscribed devices, acknowledgements back on
// the WebSocket channel `vpp.{id}.status`, and the VPPs still there after a restart.
import { expect } from "chai";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { planDeviceCommands } from "../../server/vpp/planDeviceCommands.js";
import { connectDevice, injectClient, openSocket, signIn, startTestNode, waitFor, type Http, type TestNode } from "./helpers.js";

const specResources = [
  { id: "SOLAR-001", type: "solar", capacityKw: 1000, costPerKWh: 0.05 },
  { id: "WIND-001", type: "wind", capacityKw: 1500, costPerKWh: 0.06 },
  { id: "GRID-001", type: "grid", capacityKw: 5000, costPerKWh: 0.12 },
];


describe("VPP routes", function () {
  this.timeout(180_000);
  let dir: string;
  let env: Record<string, string>;
  let t: TestNode;
  let http: Http;
  let operator: string;
  let prosumer: string;

  const signInAll = async () => {
    http = injectClient(t.node.app);
    operator = await signIn(http, t.node, t.node.operatorKey!);
    prosumer = await signIn(http, t.node, t.node.testAccounts[0]!.privateKey);
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "vpp-test-"));
    // Our own folders, so a second node can start on the same data.
    env = { DATA_DIR: path.join(dir, "data"), DEPLOYMENTS_DIR: path.join(dir, "deployments") };
    t = await startTestNode(env);
    await signInAll();
  });

  after(async () => {
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  describe("create, read, update, delete", () => {
    it("refuses without a token (401) and a prosumer's mutation (403)", async () => {
      expect((await http({ url: "/v1/vpp" })).json).to.include({ status: 401, code: "unauthorized", field: "authorization" });
      const res = await http({ method: "POST", url: "/v1/vpp", token: prosumer, body: { name: "mine", zone: "ZONE-A" } });
      expect(res.status).to.equal(403);
      expect(res.json.code).to.equal("operator_only");
      expect((await http({ url: "/v1/vpp" })).status).to.equal(401);
    });

    it("POST /v1/vpp creates a VPP with its resources (201); the id is taken once", async () => {
      const res = await http({ method: "POST", url: "/v1/vpp", token: operator, body: { id: "VPP-001", name: "Spec VPP", zone: "ZONE-A", resources: specResources } });
      expect(res.status).to.equal(201);
      expect(res.json).to.deep.include({ id: "VPP-001", name: "Spec VPP", zone: "ZONE-A", status: "idle", resourceCount: 3, capacityKw: 2500 });
      expect(res.json.resources).to.deep.equal(specResources);
      const again = await http({ method: "POST", url: "/v1/vpp", token: operator, body: { id: "VPP-001", name: "again", zone: "ZONE-A" } });
      expect(again.status).to.equal(409);
      expect(again.json).to.include({ code: "vpp_exists", field: "id" });
      const generated = await http({ method: "POST", url: "/v1/vpp", token: operator, body: { name: "no id", zone: "ZONE-B" } });
      expect(generated.status).to.equal(201);
      expect(generated.json.id).to.match(/^vpp-[0-9a-f]{12}$/);
      expect(generated.json.resources).to.deep.equal([]);
    });

    it("bad input is a 400 naming the field; an unknown zone a 422", async () => {
      const post = (body: unknown) => http({ method: "POST", url: "/v1/vpp", token: operator, body });
      const cases: [unknown, string][] = [
        [{ zone: "ZONE-A" }, "name"],
        [{ name: "x", zone: "ZONE-A", colour: "red" }, "colour"],
        [{ name: "x", zone: "ZONE-A", id: "has space" }, "id"],
        [{ name: "x", zone: "ZONE-A", resources: [{ type: "nuclear", capacityKw: 1 }] }, "resources.0.type"],
        [{ name: "x", zone: "ZONE-A", resources: [{ type: "solar", capacityKw: -1 }] }, "resources.0.capacityKw"],
        [{ name: "x", zone: "ZONE-A", resources: [{ type: "solar", capacityKw: 5, availability: [0.5, 1.5] }] }, "resources[0].availability[1]"],
        [{ name: "x", zone: "ZONE-A", resources: [{ type: "storage", capacityKw: 5, energyCapacityKwh: 10 }] }, "resources[0].soc"],
        [{ name: "x", zone: "ZONE-A", resources: [{ type: "solar", capacityKw: 5, energyCapacityKwh: 10 }] }, "resources[0].energyCapacityKwh"],
        [{ name: "x", zone: "ZONE-A", resources: [{ type: "grid", capacityKw: 5, costPerKWh: 0.1, exportPricePerKWh: 0.2 }] }, "resources[0].exportPricePerKWh"],
        [{ name: "x", zone: "ZONE-A", resources: [{ type: "flexibleLoad", capacityKw: 5, energyKwh: 1, arrival: 4, departure: 2 }] }, "resources[0].departure"],
        [{ name: "x", zone: "ZONE-A", resources: [{ id: "a", type: "solar", capacityKw: 1 }, { id: "a", type: "wind", capacityKw: 1 }] }, "resources[1].id"],
      ];
      for (const [body, field] of cases) {
        const res = await post(body);
        expect(res.status, `${JSON.stringify(body)} → ${res.text}`).to.equal(400);
        expect(res.json.field, JSON.stringify(body)).to.equal(field);
        expect(res.json.detail, JSON.stringify(body)).to.include(field.replace(/^resources\.0\./, ""));
      }
      const zone = await post({ name: "x", zone: "ZONE-Q" });
      expect(zone.status).to.equal(422);
      expect(zone.json).to.include({ field: "zone" });
      expect(zone.json.detail).to.include("ZONE-A, ZONE-B");
      // Nothing of the refused requests was stored.
      const list = await http({ url: "/v1/vpp", token: prosumer });
      expect(list.json.vpps.map((v: { name: string }) => v.name).sort()).to.deep.equal(["Spec VPP", "no id"]);
    });

    it("GET /v1/vpp lists, GET /v1/vpp/:id reads (any token); unknown ids are 404", async () => {
      const list = await http({ url: "/v1/vpp", token: prosumer });
      expect(list.status).to.equal(200);
      expect(list.json.vpps.find((v: { id: string }) => v.id === "VPP-001")).to.deep.include({ name: "Spec VPP", zone: "ZONE-A", resourceCount: 3, capacityKw: 2500 });
      const one = await http({ url: "/v1/vpp/VPP-001", token: prosumer });
      expect(one.status).to.equal(200);
      expect(one.json.resources.map((r: { id: string }) => r.id)).to.deep.equal(["SOLAR-001", "WIND-001", "GRID-001"]);
      const unknown = await http({ url: "/v1/vpp/VPP-404", token: prosumer });
      expect(unknown.status).to.equal(404);
      expect(unknown.json).to.include({ code: "vpp_not_found", field: "id" });
      expect((await http({ url: "/v1/vpp/VPP-404/resources", token: prosumer })).status).to.equal(404);
      expect((await http({ url: "/v1/vpp/bad%20id", token: prosumer })).json).to.include({ status: 400, field: "id" });
    });

    it("resources: POST adds one (201), GET lists them in order, a taken id is 409, a bad one 400, DELETE removes it", async () => {
      const battery = { id: "BAT-1", type: "storage", capacityKw: 50, energyCapacityKwh: 100, soc: 0.5, device: { region: "wbg", deviceType: "battery", deviceId: "BAT-1" } };
      const added = await http({ method: "POST", url: "/v1/vpp/VPP-001/resources", token: operator, body: battery });
      expect(added.status).to.equal(201);
      expect(added.json).to.deep.equal(battery);
      const list = await http({ url: "/v1/vpp/VPP-001/resources", token: prosumer });
      expect(list.json.resources.map((r: { id: string }) => r.id)).to.deep.equal(["SOLAR-001", "WIND-001", "GRID-001", "BAT-1"]);
      const taken = await http({ method: "POST", url: "/v1/vpp/VPP-001/resources", token: operator, body: battery });
      expect(taken.status).to.equal(409);
      expect(taken.json).to.include({ code: "vpp_resource_exists", field: "id" });
      const missing = await http({ method: "POST", url: "/v1/vpp/VPP-001/resources", token: operator, body: { type: "storage", capacityKw: 5, soc: 0.5 } });
      expect(missing.json).to.include({ status: 400, field: "energyCapacityKwh" });
      const badDevice = await http({ method: "POST", url: "/v1/vpp/VPP-001/resources", token: operator, body: { ...battery, id: "BAT-2", device: { region: "wbg", deviceType: "battery", deviceId: "a/b" } } });
      expect(badDevice.json).to.include({ status: 400, field: "device.deviceId" });
      expect((await http({ method: "POST", url: "/v1/vpp/VPP-404/resources", token: operator, body: battery })).status).to.equal(404);
      expect((await http({ method: "POST", url: "/v1/vpp/VPP-001/resources", token: prosumer, body: { ...battery, id: "BAT-3" } })).status).to.equal(403);
      const removed = await http({ method: "DELETE", url: "/v1/vpp/VPP-001/resources/BAT-1", token: operator });
      expect(removed.status).to.equal(204);
      expect((await http({ method: "DELETE", url: "/v1/vpp/VPP-001/resources/BAT-1", token: operator })).json).to.include({ status: 404, code: "vpp_resource_not_found" });
      expect((await http({ url: "/v1/vpp/VPP-001", token: prosumer })).json.resourceCount).to.equal(3);
    });

    it("PUT replaces name and zone, and the resources when given; DELETE removes the VPP", async () => {
      const created = await http({ method: "POST", url: "/v1/vpp", token: operator, body: { id: "VPP-TMP", name: "tmp", zone: "ZONE-A", resources: specResources } });
      expect(created.status).to.equal(201);
      const renamed = await http({ method: "PUT", url: "/v1/vpp/VPP-TMP", token: operator, body: { name: "renamed", zone: "ZONE-B", description: "moved" } });
      expect(renamed.status).to.equal(200);
      expect(renamed.json).to.deep.include({ name: "renamed", zone: "ZONE-B", description: "moved", resourceCount: 3 });
      const replaced = await http({ method: "PUT", url: "/v1/vpp/VPP-TMP", token: operator, body: { name: "renamed", zone: "ZONE-B", resources: [specResources[0]] } });
      expect(replaced.json.resources).to.deep.equal([specResources[0]]);
      expect(replaced.json.description).to.equal(null);
      expect((await http({ method: "PUT", url: "/v1/vpp/VPP-404", token: operator, body: { name: "x", zone: "ZONE-A" } })).json).to.include({ status: 404, code: "vpp_not_found" });
      expect((await http({ method: "PUT", url: "/v1/vpp/VPP-TMP", token: operator, body: { zone: "ZONE-A" } })).json).to.include({ status: 400, field: "name" });
      expect((await http({ method: "PUT", url: "/v1/vpp/VPP-TMP", token: prosumer, body: { name: "x", zone: "ZONE-A" } })).status).to.equal(403);
      expect((await http({ method: "DELETE", url: "/v1/vpp/VPP-TMP", token: prosumer })).status).to.equal(403);
      expect((await http({ method: "DELETE", url: "/v1/vpp/VPP-TMP", token: operator })).status).to.equal(204);
      expect((await http({ url: "/v1/vpp/VPP-TMP", token: operator })).status).to.equal(404);
      expect((await http({ method: "DELETE", url: "/v1/vpp/VPP-TMP", token: operator })).status).to.equal(404);
    });
  });

  describe("optimise", () => {
    const optimize = (body: unknown, token = operator, id = "VPP-001") => http({ method: "POST", url: `/v1/vpp/${id}/optimize`, token, body });

    it("the spec's example: solar 1,000 + wind 1,000 meet 2,000 kW for 110, all renewable, marginal price 0.06", async () => {
      const res = await optimize({ demand: 2000, constraints: { minRenewable: 0.7 } });
      expect(res.status).to.equal(200);
      expect(res.json).to.deep.include({ vppId: "VPP-001", status: "completed", horizon: 1, intervalMinutes: 60, totalCost: 110, averageCost: 0.055, loadKwh: 2000, renewableShare: 1, marginalPrice: [0.06] });
      expect(res.json.allocation).to.deep.equal([
        { resourceId: "SOLAR-001", type: "solar", output: 1000, outputs: [1000] },
        { resourceId: "WIND-001", type: "wind", output: 1000, outputs: [1000] },
        { resourceId: "GRID-001", type: "grid", output: 0, outputs: [0] },
      ]);
      expect(res.json.reason).to.equal(undefined);
      // The spec's client check: outputs sum to the demand, renewables at least 70 % of it.
      const total = res.json.allocation.reduce((s: number, a: { output: number }) => s + a.output, 0);
      const renewable = res.json.allocation.filter((a: { type: string }) => a.type !== "grid").reduce((s: number, a: { output: number }) => s + a.output, 0);
      expect(total).to.be.at.least(2000);
      expect(renewable / total).to.be.at.least(0.7);
      const status = await http({ url: "/v1/vpp/VPP-001/status", token: prosumer });
      expect(status.json).to.deep.include({ vppId: "VPP-001", status: "optimized", lastApply: null });
      expect(status.json.lastOptimization).to.deep.equal(res.json);
    });

    it("a horizon of demands: one output per interval, the first one as `output`", async () => {
      const res = await optimize({ demand: [500, 2000, 3000], intervalMinutes: 15 });
      expect(res.json).to.deep.include({ status: "completed", horizon: 3, intervalMinutes: 15, marginalPrice: [0.05, 0.06, 0.12] });
      expect(res.json.allocation.map((a: { output: number; outputs: number[] }) => [a.output, a.outputs])).to.deep.equal([[500, [500, 1000, 1000]], [0, [0, 1000, 1500]], [0, [0, 0, 500]]]);
      // (500 x 0.05 + 1000 x 0.05 + 1000 x 0.06 + 1000 x 0.05 + 1500 x 0.06 + 500 x 0.12) / 4
      expect(res.json.totalCost).to.equal(83.75);
    });

    it("infeasible requests answer 200 with the constraint and the amounts", async () => {
      const demand = await optimize({ demand: 9000 });
      expect(demand.status).to.equal(200);
      expect(demand.json).to.deep.include({ status: "infeasible", constraint: "demand", allocation: [], totalCost: null, renewableShare: null, marginalPrice: [], shortfall: 1500, unit: "kW" });
      expect(demand.json.reason).to.equal("demand cannot be met: it needs 9,000 kW; at most 7,500 kW can be supplied (shortfall 1,500 kW)");
      const renewable = await optimize({ demand: 4000, constraints: { minRenewable: 0.7 } });
      expect(renewable.json).to.deep.include({ status: "infeasible", constraint: "minRenewable" });
      expect(renewable.json.reason).to.equal("minRenewable 0.7 needs 2,800 kW of renewables; 2,500 kW available");
      const cost = await optimize({ demand: 2000, constraints: { maxCost: 0.05 } });
      expect(cost.json).to.deep.include({ status: "infeasible", constraint: "maxCost" });
      expect(cost.json.reason).to.equal("maxCost 0.05 per kWh cannot be met: the cheapest dispatch meeting the other constraints costs 0.055 per kWh (110 for 2,000 kWh)");
      expect((await http({ url: "/v1/vpp/VPP-001", token: prosumer })).json.status).to.equal("infeasible");
    });

    it("bad input: 400 naming the field; 404 unknown VPP; 403 prosumer; 422 a VPP without resources", async () => {
      const cases: [unknown, string][] = [
        [{}, "demand"],
        [{ demand: -1 }, "demand"],
        [{ demand: [1, -2] }, "demand[1]"],
        [{ demand: [] }, "demand"],
        [{ demand: "lots" }, "demand"],
        [{ demand: [1, 2, 3], horizon: 2 }, "demand"],
        [{ demand: 10, constraints: { minRenewable: 1.5 } }, "constraints.minRenewable"],
        [{ demand: 10, constraints: { maxCost: -1 } }, "constraints.maxCost"],
        [{ demand: 10, horizon: 97 }, "horizon"],
        [{ demand: 10, speed: "fast" }, "speed"],
      ];
      for (const [body, field] of cases) {
        const res = await optimize(body);
        expect(res.status, `${JSON.stringify(body)} → ${res.text}`).to.equal(400);
        expect(res.json.field, JSON.stringify(body)).to.equal(field);
      }
      expect((await optimize({ demand: 10 }, operator, "VPP-404")).json).to.include({ status: 404, code: "vpp_not_found" });
      expect((await optimize({ demand: 10 }, prosumer)).status).to.equal(403);
      expect((await http({ method: "POST", url: "/v1/vpp/VPP-001/optimize", body: { demand: 10 } })).status).to.equal(401);
      await http({ method: "POST", url: "/v1/vpp", token: operator, body: { id: "VPP-EMPTY", name: "empty", zone: "ZONE-A" } });
      const empty = await optimize({ demand: 10 }, operator, "VPP-EMPTY");
      expect(empty.json).to.include({ status: 422, field: "resources" });
    });

    it("a stored per-interval array that does not fit the horizon is a 422 naming the resource", async () => {
      await http({ method: "POST", url: "/v1/vpp", token: operator, body: { id: "VPP-SUN", name: "sun", zone: "ZONE-A", resources: [{ id: "PV", type: "solar", capacityKw: 10, availability: [0.2, 0.8] }, { id: "G", type: "grid", capacityKw: 10, costPerKWh: 0.3 }] } });
      const ok = await optimize({ demand: [5, 5] }, operator, "VPP-SUN");
      expect(ok.json.allocation[0].outputs).to.deep.equal([2, 5]);
      const res = await optimize({ demand: 5, horizon: 3 }, operator, "VPP-SUN");
      expect(res.status).to.equal(422);
      expect(res.json.field).to.equal("resources[0].availability");
      expect(res.json.detail).to.include("resource PV");
    });
  });

  describe("apply", () => {
    it("turns the first interval into device commands (units, skips, rounding)", () => {
      const plan = planDeviceCommands({
        intervalHours: 0.25, startMs: Date.parse("2026-03-01T10:00:00Z"),
        dispatch: [
          { resourceId: "B", type: "storage", outputKw: -8.0004, device: { region: "r", deviceType: "battery", deviceId: "B" } },
          { resourceId: "B0", type: "storage", outputKw: 1e-9, device: { region: "r", deviceType: "battery", deviceId: "B0" } },
          { resourceId: "BX", type: "storage", outputKw: 3, device: null },
          { resourceId: "EV", type: "flexibleLoad", outputKw: -11, device: { region: "r", deviceType: "ev-charger", deviceId: "EV" } },
          { resourceId: "S", type: "solar", outputKw: 4, device: null },
          { resourceId: "G", type: "grid", outputKw: -2, device: null },
        ],
      });
      expect(plan[0]).to.deep.equal({ resourceId: "B", type: "storage", device: { region: "r", deviceType: "battery", deviceId: "B" }, command: { type: "battery", action: "charge", energyWh: 2000n, maxPowerW: 8000n } });
      expect(plan[1]).to.have.property("skipped").that.includes("idle");
      expect(plan[2]).to.have.property("skipped").that.includes("no device address");
      expect(plan[3]).to.deep.include({ command: { type: "ev_charge_schedule", slots: [{ startMs: Date.parse("2026-03-01T10:00:00Z"), endMs: Date.parse("2026-03-01T10:15:00Z"), powerW: 11_000n }], targetEnergyWh: 2750n } });
      expect(plan[4]).to.have.property("skipped").that.includes("solar");
      expect(plan[5]).to.have.property("skipped").that.includes("export 2 kW");
    });

    it("sends the battery and EV commands through the broker, skips the rest, and follows the acknowledgements on vpp.{id}.status", async () => {
      const root = t.node.bridge.topicRoot;
      const batteryTopic = `${root}/wbg/battery/BAT-7/command`;
      const evTopic = `${root}/wbg/ev-charger/EV-1/command`;
      const [battery, ev] = await Promise.all([connectDevice(t.node, batteryTopic), connectDevice(t.node, evTopic)]);
      const socket = await openSocket(t.node.url, ["vpp.VPP-CMD.status"], { token: operator });
      try {
        const created = await http({
          method: "POST", url: "/v1/vpp", token: operator,
          body: {
            id: "VPP-CMD", name: "commands", zone: "ZONE-A",
            resources: [
              { id: "PV", type: "solar", capacityKw: 20 },
              { id: "BAT-7", type: "storage", capacityKw: 50, energyCapacityKwh: 100, soc: 1, device: { region: "wbg", deviceType: "battery", deviceId: "BAT-7" } },
              { id: "EV-1", type: "flexibleLoad", capacityKw: 11, energyKwh: 11, device: { region: "wbg", deviceType: "ev-charger", deviceId: "EV-1" } },
              { id: "GRID", type: "grid", capacityKw: 200, costPerKWh: 0.3 },
            ],
          },
        });
        expect(created.status).to.equal(201);
        const early = await http({ method: "POST", url: "/v1/vpp/VPP-CMD/apply", token: operator });
        expect(early.status).to.equal(409);
        expect(early.json).to.include({ code: "nothing_to_apply" });

        // Demand 100 kW plus the EV's 11: solar 20 (free), the full battery 50 (wear 0.001), grid the other 41.
        const optimized = await http({ method: "POST", url: "/v1/vpp/VPP-CMD/optimize", token: operator, body: { demand: 100 } });
        expect(optimized.json.allocation.map((a: { resourceId: string; output: number }) => [a.resourceId, a.output])).to.deep.equal([["PV", 20], ["BAT-7", 50], ["EV-1", -11], ["GRID", 41]]);
        expect((await socket.next("optimized")).data).to.deep.include({ vppId: "VPP-CMD", status: "optimized", runId: optimized.json.runId });
        expect((await http({ method: "POST", url: "/v1/vpp/VPP-CMD/apply", token: prosumer })).status).to.equal(403);

        const applied = await http({ method: "POST", url: "/v1/vpp/VPP-CMD/apply", token: operator });
        expect(applied.status).to.equal(200);
        expect(applied.json).to.deep.include({ vppId: "VPP-CMD", runId: optimized.json.runId, success: true, sent: 2, skipped: 2, failed: 0 });
        const byId = Object.fromEntries(applied.json.commands.map((c: { resourceId: string }) => [c.resourceId, c]));
        expect(byId["PV"]).to.deep.include({ outcome: "skipped" });
        expect(byId["GRID"]).to.deep.include({ outcome: "skipped" });
        expect(byId["BAT-7"]).to.deep.include({ outcome: "sent", topic: batteryTopic, state: "sent" });
        expect(byId["EV-1"]).to.deep.include({ outcome: "sent", topic: evTopic, state: "sent" });

        // What the devices received: the planned energy in kWh, with the command ids the API named.
        await waitFor("both commands delivered", async () => (battery.commands.length > 0 && ev.commands.length > 0 ? true : undefined), 10_000, 10);
        expect(battery.commands[0]).to.deep.include({ command_id: byId["BAT-7"].commandId, type: "battery", action: "discharge", energy_kwh: 50, max_power_kw: 50 });
        expect(ev.commands[0]).to.deep.include({ command_id: byId["EV-1"].commandId, type: "ev_charge_schedule", target_kwh: 11 });
        expect(ev.commands[0]!.schedule[0].power_kw).to.equal(11);
        const appliedMessage = await socket.next("applied");
        expect(appliedMessage.channel).to.equal("vpp.VPP-CMD.status");
        expect(appliedMessage.data).to.deep.include({ vppId: "VPP-CMD", status: "applied", applyId: applied.json.applyId, sent: 2, skipped: 2 });

        // The battery answers; the answer is on the channel and in the status.
        const before = socket.messages.length;
        await battery.client.publishAsync(`${root}/wbg/battery/BAT-7/status`, JSON.stringify({ command_id: byId["BAT-7"].commandId, status: "completed" }), { qos: 1 });
        const ack = await socket.next("commandAck", before);
        expect(ack.data).to.deep.equal({ vppId: "VPP-CMD", applyId: applied.json.applyId, resourceId: "BAT-7", commandId: byId["BAT-7"].commandId, state: "completed" });
        const status = await http({ url: "/v1/vpp/VPP-CMD/status", token: prosumer });
        expect(status.json.status).to.equal("applied");
        expect(status.json.lastOptimization.runId).to.equal(optimized.json.runId);
        const states = Object.fromEntries(status.json.lastApply.commands.map((c: { resourceId: string; outcome: string; state?: string }) => [c.resourceId, c.state ?? c.outcome]));
        expect(states).to.deep.equal({ "PV": "skipped", "BAT-7": "completed", "EV-1": "sent", "GRID": "skipped" });
        expect(status.json.lastApply.commands.find((c: { resourceId: string }) => c.resourceId === "BAT-7").ackedAt).to.be.a("string");

        // Only the last completed run is ever sent.
        const stale = await http({ method: "POST", url: "/v1/vpp/VPP-CMD/apply", token: operator, body: { runId: optimized.json.runId + 1000 } });
        expect(stale.json).to.include({ status: 409, field: "runId" });
      } finally {
        socket.close();
        await Promise.all([battery.client.endAsync(), ev.client.endAsync()]);
      }
    });
  });

  describe("after a restart on the same data", () => {
    it("the VPPs, their resources, last optimisation and apply are still there", async () => {
      const before = (await http({ url: "/v1/vpp/VPP-001/status", token: prosumer })).json;
      const cmdBefore = (await http({ url: "/v1/vpp/VPP-CMD/status", token: prosumer })).json;
      await t.close();
      t = await startTestNode(env);
      expect(t.node.freshDeployment).to.equal(false);
      await signInAll();
      const vpp = await http({ url: "/v1/vpp/VPP-001", token: prosumer });
      expect(vpp.status).to.equal(200);
      expect(vpp.json.resources).to.deep.equal(specResources);
      expect((await http({ url: "/v1/vpp/VPP-001/status", token: prosumer })).json).to.deep.equal(before);
      // The EV never answered: by now its command may have passed its deadline (unacknowledged).
      const cmdAfter = (await http({ url: "/v1/vpp/VPP-CMD/status", token: prosumer })).json;
      const withoutEvState = (s: any) => ({ ...s, lastApply: { ...s.lastApply, commands: s.lastApply.commands.map((c: { resourceId: string }) => (c.resourceId === "EV-1" ? { ...c, state: undefined } : c)) } });
      expect(withoutEvState(cmdAfter)).to.deep.equal(withoutEvState(cmdBefore));
      expect(cmdAfter.lastApply.commands.find((c: { resourceId: string }) => c.resourceId === "EV-1").state).to.be.oneOf(["sent", "unacknowledged"]);
      const ids = (await http({ url: "/v1/vpp", token: prosumer })).json.vpps.map((v: { id: string }) => v.id);
      expect(ids).to.include.members(["VPP-001", "VPP-CMD", "VPP-SUN", "VPP-EMPTY"]);
      // And it still optimises.
      const again = await http({ method: "POST", url: "/v1/vpp/VPP-001/optimize", token: operator, body: { demand: 2000 } });
      expect(again.json).to.deep.include({ status: "completed", totalCost: 110 });
      expect(again.json.runId).to.be.greaterThan(before.lastOptimization.runId);
    });
  });
});
