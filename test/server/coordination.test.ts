// The coordination API against whole nodes: resources (register, update, conflicts, who sees
// what), reports feeding the resources' lastReport, the rules an event must keep, who may see
// and answer an event, poll hints inside the jitter bounds of seeds/002, and one event end to
// end on a node whose clock we move: baseline days submitted while the clock stood on them, the
// event pushed over WebSocket and MQTT, answered, measured, and the performance checked against
// numbers computed here from the readings sent.
import { expect } from "chai";
import type { Kysely } from "kysely";
import mqtt from "mqtt";
import { signReading } from "../../bridge/readingSignature.js";
import { formatIsoDuration, parseIsoDuration } from "../../server/coordination/parseIsoDuration.js";
import { createCoordination } from "../../server/coordination/createCoordination.js";
import { jitterBoundMs, pollHint } from "../../server/coordination/pollHint.js";
import { connectDevice, injectClient, meterLogin, openSocket, signIn, startTestNode, waitFor, type Http, type TestNode } from "./helpers.js";

const HOUR = 3_600_000;

function level(startMs: number, minutes: number, payload: number) {
  return { signal_name: "SIMPLE", signal_type: "level", intervals: [{ dtstart: new Date(startMs).toISOString(), duration: `PT${minutes}M`, signal_payload: payload }] };
}

describe("coordination: pure parts", () => {
  it("parses ISO 8601 day/time durations and refuses months, years and junk", () => {
    expect(parseIsoDuration("PT30M")).to.equal(30 * 60_000);
    expect(parseIsoDuration("PT1H15M")).to.equal(75 * 60_000);
    expect(parseIsoDuration("P1DT2H")).to.equal(26 * HOUR);
    expect(parseIsoDuration("PT0.5S")).to.equal(500);
    for (const bad of ["P1M", "P1Y", "PT", "P", "30M", "PT-5M", "pt30m", "P1W"]) expect(parseIsoDuration(bad), bad).to.equal(undefined);
    expect(formatIsoDuration(90 * 60_000)).to.equal("PT1H30M");
    expect(formatIsoDuration(26 * HOUR)).to.equal("P1DT2H");
  });

  it("jitters the poll hint by at most ±10% or ±5 minutes, whichever is smaller, reaching both ends", () => {
    const now = Date.UTC(2026, 10, 22, 12);
    // 300 s: 10% is 30 s; 3600 s: 10% would be 6 min, so 5 min; 60 s: 6 s.
    for (const [seconds, bound] of [[300, 30_000], [3600, 300_000], [60, 6_000], [7200, 300_000]] as const) {
      expect(jitterBoundMs(seconds)).to.equal(bound);
      const at = (r: number) => Date.parse(pollHint(now, seconds, () => r).nextPollAt) - now - seconds * 1000;
      expect(at(0)).to.equal(-bound);
      expect(at(0.5)).to.equal(0);
      expect(at(1 - Number.EPSILON)).to.equal(bound);
      for (let i = 0; i < 200; i++) expect(Math.abs(at(Math.random()))).to.be.at.most(bound);
      expect(pollHint(now, seconds, Math.random).intervalSeconds).to.equal(seconds);
    }
  });
});

describe("coordination: resources, reports, events and who sees them", function () {
  this.timeout(180_000);
  let t: TestNode;
  let http: Http;
  let tokens: { a: string; b: string; c: string; operator: string };
  let accounts: { address: string; meterId: string; zone: string }[];
  /** An hour boundary two hours ahead: events there are "far". */
  let futureMs: number;

  before(async () => {
    t = await startTestNode();
    http = injectClient(t.node.app);
    accounts = t.node.testAccounts;
    tokens = {
      a: await signIn(http, t.node, t.node.testAccounts[0]!.privateKey),
      b: await signIn(http, t.node, t.node.testAccounts[1]!.privateKey),
      c: await signIn(http, t.node, t.node.testAccounts[2]!.privateKey),
      operator: await signIn(http, t.node, t.node.operatorKey!),
    };
    futureMs = Math.ceil(Date.now() / HOUR) * HOUR + 2 * HOUR;
  });

  after(async () => {
    await t?.close();
  });

  const register = (body: Record<string, unknown>, token: string) => http({ method: "POST", url: "/v1/resources", token, body });
  const postEvent = (body: Record<string, unknown>, token = tokens.operator) => http({ method: "POST", url: "/v1/events", token, body });
  const respond = (eventId: string, resourceId: string, response: string, token: string) =>
    http({ method: "POST", url: `/v1/events/${eventId}/responses`, token, body: { resourceId, response } });

  describe("resources", () => {
    it("registers under the client's id (201), updates for the same owner (200), refuses another owner (409)", async () => {
      const body = {
        resourceId: "BAT-A1", type: "battery", meterId: accounts[0]!.meterId, zone: "ZONE-A", device: { region: "ZONE-A", deviceType: "battery", deviceId: "BAT-A1" },
        capabilities: { capacityKwh: 10, maxChargeKw: 5, maxDischargeKw: 5, reservePct: 20 },
      };
      const created = await register(body, tokens.a);
      expect(created.status, created.text).to.equal(201);
      expect(created.json).to.deep.include({ resourceId: "BAT-A1", type: "battery", owner: accounts[0]!.address, meterId: "meter-4", zone: "ZONE-A", capabilities: body.capabilities });
      expect(created.json.registeredAt).to.equal(created.json.updatedAt);

      const updated = await register({ ...body, capabilities: { ...body.capabilities, capacityKwh: 13.5 } }, tokens.a);
      expect(updated.status).to.equal(200);
      expect(updated.json.capabilities.capacityKwh).to.equal(13.5);
      expect(updated.json.registeredAt).to.equal(created.json.registeredAt);

      const taken = await register({ resourceId: "BAT-A1", type: "ev" }, tokens.b);
      expect(taken.status).to.equal(409);
      expect(taken.json).to.include({ code: "resource_taken", field: "resourceId" });
      // Unchanged by the refused attempt.
      expect((await http({ url: "/v1/resources/BAT-A1", token: tokens.a })).json.type).to.equal("battery");
    });

    it("owner must be the caller unless an operator registers; the meter must be the owner's; zones must exist", async () => {
      const forB = { resourceId: "EV-B1", type: "ev", owner: accounts[1]!.address, zone: "ZONE-B", capabilities: { capacityKwh: 60, maxChargeKw: 11 } };
      const refused = await register(forB, tokens.a);
      expect(refused.status).to.equal(403);
      expect(refused.json).to.include({ code: "forbidden", field: "owner" });
      const byOperator = await register({ ...forB, meterId: accounts[1]!.meterId }, tokens.operator);
      expect(byOperator.status, byOperator.text).to.equal(201);
      expect(byOperator.json.owner).to.equal(accounts[1]!.address);

      const notMine = await register({ resourceId: "LOAD-X", type: "flexible_load", meterId: accounts[1]!.meterId }, tokens.a);
      expect(notMine.status).to.equal(403);
      expect(notMine.json).to.include({ code: "not_meter_owner", field: "meterId" });
      const unknownMeter = await register({ resourceId: "LOAD-X", type: "flexible_load", meterId: "meter-99" }, tokens.a);
      expect(unknownMeter.json).to.include({ status: 422, field: "meterId" });
      const zone = await register({ resourceId: "LOAD-X", type: "flexible_load", zone: "ZONE-Q" }, tokens.a);
      expect(zone.json).to.include({ status: 422, code: "validation_failed", field: "zone" });
    });

    it("bad bodies are 400s naming the field", async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ type: "battery" }, "resourceId"],
        [{ resourceId: "has space", type: "battery" }, "resourceId"],
        [{ resourceId: "x".repeat(65), type: "battery" }, "resourceId"],
        [{ resourceId: "R1", type: "nuclear" }, "type"],
        [{ resourceId: "R1", type: "battery", capabilities: { capacityKwh: -1 } }, "capabilities.capacityKwh"],
        [{ resourceId: "R1", type: "battery", capabilities: { colour: "red" } }, "capabilities.colour"],
        [{ resourceId: "R1", type: "battery", owner: "0x123" }, "owner"],
        [{ resourceId: "R1", type: "battery", device: { region: "a/b", deviceType: "battery", deviceId: "R1" } }, "device.region"],
        [{ resourceId: "R1", type: "battery", device: { region: "a" } }, "device.deviceType"],
      ];
      for (const [body, field] of cases) {
        const res = await register(body, tokens.a);
        expect(res.status, `${JSON.stringify(body)} → ${res.text}`).to.equal(400);
        expect(res.json.field, JSON.stringify(body)).to.equal(field);
      }
      expect((await http({ method: "POST", url: "/v1/resources", body: { resourceId: "R1", type: "battery" } })).status).to.equal(401);
    });

    it("a resource is seen by its owner and operators; anyone else gets 404, as for an id that does not exist", async () => {
      await register({ resourceId: "LOAD-A2", type: "flexible_load", zone: "ZONE-A", capabilities: { flexibleKw: 2 }, device: { region: "ZONE-A", deviceType: "hvac", deviceId: "LOAD-A2" } }, tokens.a);
      expect((await http({ url: "/v1/resources/BAT-A1", token: tokens.a })).status).to.equal(200);
      expect((await http({ url: "/v1/resources/BAT-A1", token: tokens.operator })).status).to.equal(200);
      const other = await http({ url: "/v1/resources/BAT-A1", token: tokens.b });
      const missing = await http({ url: "/v1/resources/NOPE", token: tokens.b });
      expect(other.status).to.equal(404);
      expect(missing.status).to.equal(404);
      expect(other.json.code).to.equal(missing.json.code);

      const mine = await http({ url: "/v1/resources", token: tokens.a });
      expect(mine.json.resources.map((r: { resourceId: string }) => r.resourceId)).to.deep.equal(["BAT-A1", "LOAD-A2"]);
      expect((await http({ url: "/v1/resources", token: tokens.c })).json.resources).to.deep.equal([]);
      const all = await http({ url: "/v1/resources", token: tokens.operator });
      expect(all.json.resources.map((r: { resourceId: string }) => r.resourceId)).to.deep.equal(["BAT-A1", "EV-B1", "LOAD-A2"]);
      const batteries = await http({ url: "/v1/resources?type=battery", token: tokens.operator });
      expect(batteries.json.resources.map((r: { resourceId: string }) => r.resourceId)).to.deep.equal(["BAT-A1"]);
      const zoneB = await http({ url: "/v1/resources?zone=ZONE-B", token: tokens.operator });
      expect(zoneB.json.resources.map((r: { resourceId: string }) => r.resourceId)).to.deep.equal(["EV-B1"]);
      expect((await http({ url: `/v1/resources?owner=${accounts[1]!.address}`, token: tokens.a })).status).to.equal(403);
    });
  });

  describe("reports", () => {
    it("the owner's latest report is the resource's lastReport, for the API and for app.node.coordination", async () => {
      const older = new Date(Date.now() - 10 * 60_000).toISOString();
      const newer = new Date(Date.now() - 60_000).toISOString();
      const first = await http({ method: "POST", url: "/v1/reports", token: tokens.b, body: { resourceId: "EV-B1", at: newer, state: { socPct: 40, pluggedIn: true, energyNeededKwh: 24, departure: new Date(Date.now() + 8 * HOUR).toISOString(), powerKw: 7.2 } } });
      expect(first.status, first.text).to.equal(201);
      expect(first.json).to.deep.include({ resourceId: "EV-B1", at: newer });
      // Arrives later but describes an earlier moment: not the last report.
      const late = await http({ method: "POST", url: "/v1/reports", token: tokens.b, body: { resourceId: "EV-B1", at: older, state: { socPct: 35 }, events: [{ eventId: "evt-1", reductionKw: 1.5, note: "paused" }] } });
      expect(late.status).to.equal(201);

      const resource = await http({ url: "/v1/resources/EV-B1", token: tokens.b });
      expect(resource.json.lastReport).to.deep.include({ at: newer, state: first.json.state });
      const service = t.node.services.coordination!;
      const [ev] = await service.listResources({ type: "ev" });
      expect(ev!.lastReport).to.deep.include({ resourceId: "EV-B1", atMs: Date.parse(newer) });
      expect(ev!.lastReport!.state).to.deep.equal({ socPct: 40, pluggedIn: true, energyNeededKwh: 24, departure: first.json.state.departure, powerKw: 7.2 });
      expect((await service.getResource("EV-B1"))!.owner).to.equal(accounts[1]!.address);

      const list = await http({ url: "/v1/reports?resourceId=EV-B1", token: tokens.operator });
      expect(list.json.reports.map((r: { at: string }) => r.at)).to.deep.equal([newer, older]);
      expect(list.json.reports[1].events).to.deep.equal([{ eventId: "evt-1", reductionKw: 1.5, note: "paused" }]);
    });

    it("only the owner reports (others 404, operators 403); reports from the future and bad states are refused", async () => {
      const body = { resourceId: "EV-B1", state: { socPct: 50 } };
      expect((await http({ method: "POST", url: "/v1/reports", token: tokens.a, body })).json).to.include({ status: 404, code: "resource_not_found" });
      expect((await http({ method: "POST", url: "/v1/reports", token: tokens.operator, body })).json).to.include({ status: 403, code: "not_resource_owner" });
      expect((await http({ url: "/v1/reports?resourceId=EV-B1", token: tokens.a })).status).to.equal(404);
      const future = await http({ method: "POST", url: "/v1/reports", token: tokens.b, body: { ...body, at: new Date(Date.now() + HOUR).toISOString() } });
      expect(future.json).to.include({ status: 422, field: "at" });
      const soc = await http({ method: "POST", url: "/v1/reports", token: tokens.b, body: { resourceId: "EV-B1", state: { socPct: 120 } } });
      expect(soc.json).to.include({ status: 400, field: "state.socPct" });
    });
  });

  describe("events", () => {
    const valid = () => ({
      active_period: { dtstart: new Date(futureMs).toISOString(), duration: "PT1H" },
      event_signals: [{
        signal_name: "LOAD_DISPATCH", signal_type: "delta",
        intervals: [
          { dtstart: new Date(futureMs).toISOString(), duration: "PT30M", signal_payload: 1.5 },
          { dtstart: new Date(futureMs + 30 * 60_000).toISOString(), duration: "PT30M", signal_payload: 1 },
        ],
      }],
      targets: [{ resource_id: "BAT-A1" }],
    });

    it("refuses events that break a rule, naming the field (400 for shapes, 422 for rules)", async () => {
      const at = (ms: number) => new Date(ms).toISOString();
      const cases: [(e: any) => void, number, string][] = [
        [(e) => delete e.active_period, 400, "active_period"],
        [(e) => (e.active_period.dtstart = "tomorrow"), 400, "active_period.dtstart"],
        [(e) => (e.active_period.duration = "60 minutes"), 400, "active_period.duration"],
        [(e) => (e.active_period.duration = "P1M"), 400, "active_period.duration"],
        [(e) => (e.active_period.duration = "PT0M"), 422, "active_period.duration"],
        [(e) => (e.active_period.duration = "P8D"), 422, "active_period.duration"],
        [(e) => (e.event_signals[0].intervals[0].duration = "half an hour"), 400, "event_signals[0].intervals[0].duration"],
        [(e) => (e.event_signals[0].intervals[0].dtstart = at(futureMs - 60_000)), 422, "event_signals[0].intervals[0].dtstart"],
        [(e) => (e.event_signals[0].intervals[1].duration = "PT31M"), 422, "event_signals[0].intervals[1].duration"],
        [(e) => (e.event_signals[0].intervals[1].dtstart = at(futureMs + 20 * 60_000)), 422, "event_signals[0].intervals[1].dtstart"],
        [(e) => e.event_signals.push(level(futureMs, 60, 4)), 422, "event_signals[1].intervals[0].signal_payload"],
        [(e) => e.event_signals.push(level(futureMs, 60, 1.5)), 422, "event_signals[1].intervals[0].signal_payload"],
        [(e) => (e.event_signals = []), 400, "event_signals"],
        [(e) => (e.event_signals[0].intervals = []), 400, "event_signals.0.intervals"],
        [(e) => (e.targets = []), 400, "targets"],
        [(e) => (e.targets = [{ resource_id: "BAT-A1", zone: "ZONE-A" }]), 400, "targets.0"],
        [(e) => (e.targets = [{ resource_id: "NOPE" }]), 422, "targets[0].resource_id"],
        [(e) => (e.targets = [{ zone: "ZONE-Q" }, { group_id: "g1" }]), 422, "targets"],
        [(e) => (e.event_id = "bad id"), 400, "event_id"],
        [(e) => (e.colour = "red"), 400, "colour"],
        [(e) => {
          const past = futureMs - 5 * HOUR;
          e.active_period.dtstart = at(past);
          e.event_signals = [level(past, 60, 1)];
        }, 422, "active_period"],
      ];
      for (const [change, status, field] of cases) {
        const body = valid();
        change(body);
        const res = await postEvent(body);
        expect(res.status, `${field}: ${res.text}`).to.equal(status);
        expect(res.json.field, res.text).to.equal(field);
        expect(res.json.detail, res.text).to.be.a("string").and.not.equal("");
      }
      const byOwner = await postEvent(valid(), tokens.a);
      expect(byOwner.json).to.include({ status: 403, code: "operator_only" });
      // Nothing was stored by any of them.
      expect((await http({ url: "/v1/events?includeEnded=true", token: tokens.operator })).json.events).to.deep.equal([]);
    });

    it("resolves zone targets to that zone's resources, keeps other target kinds, and refuses a taken event_id", async () => {
      const body = { ...valid(), event_id: "evt-zone", targets: [{ zone: "ZONE-A" }, { group_id: "north" }], reason: "operator test" };
      body.event_signals = [level(futureMs, 60, 1)];
      const res = await postEvent(body);
      expect(res.status, res.text).to.equal(201);
      expect(res.json).to.deep.include({ event_id: "evt-zone", status: "far", reason: "operator test", targets_by_type: { zone: ["ZONE-A"], group_id: ["north"] } });
      expect(res.json.created_by).to.equal(`operator:${t.node.services.chain.registrar!.account.address}`);
      // Both ZONE-A resources; a level-1 signal asks for half their shiftable power: BAT-A1 5 kW → 2.5, LOAD-A2 2 kW → 1.
      const deliveries = Object.fromEntries(res.json.deliveries.map((d: { resourceId: string }) => [d.resourceId, d]));
      expect(Object.keys(deliveries)).to.deep.equal(["BAT-A1", "LOAD-A2"]);
      expect(deliveries["BAT-A1"].command).to.equal("sent");
      expect(deliveries["LOAD-A2"].command).to.equal("sent");
      const db = t.node.services.indexer.db as unknown as Kysely<any>;
      const sent = await db.selectFrom("bridge_commands").select(["topic", "command"]).where("command_id", "in", [deliveries["BAT-A1"].commandId, deliveries["LOAD-A2"].commandId]).execute();
      const byTopic = Object.fromEntries(sent.map((s) => [s.topic, JSON.parse(s.command)]));
      expect(byTopic[`${t.node.bridge.topicRoot}/ZONE-A/battery/BAT-A1/command`]).to.include({ type: "demand_response", event_id: "evt-zone", target_reduction_kw: 2.5, signal_level: "moderate" });
      expect(byTopic[`${t.node.bridge.topicRoot}/ZONE-A/hvac/LOAD-A2/command`]).to.include({ target_reduction_kw: 1 });

      const again = await postEvent(body);
      expect(again.json).to.include({ status: 409, code: "event_exists", field: "event_id" });
      // EV-B1 (ZONE-B) is not targeted: B does not see the event.
      expect((await http({ url: "/v1/events", token: tokens.b })).json.events).to.deep.equal([]);
      expect((await http({ url: "/v1/events/evt-zone", token: tokens.b })).json).to.include({ status: 404, code: "event_not_found" });
    });

    it("an owner sees the events of their resources, but not other owners' resource ids; others get 404", async () => {
      const res = await postEvent({ ...valid(), event_id: "evt-two", targets: [{ resource_id: "BAT-A1" }, { resource_id: "EV-B1" }] });
      expect(res.status, res.text).to.equal(201);
      expect(res.json.targets_by_type).to.deep.equal({ resource_id: ["BAT-A1", "EV-B1"] });
      const asA = await http({ url: "/v1/events/evt-two", token: tokens.a });
      expect(asA.status).to.equal(200);
      expect(asA.json.targets).to.deep.equal([{ resource_id: "BAT-A1" }]);
      expect(asA.json.deliveries.map((d: { resourceId: string }) => d.resourceId)).to.deep.equal(["BAT-A1"]);
      const asB = await http({ url: "/v1/events/evt-two", token: tokens.b });
      expect(asB.json.targets_by_type).to.deep.equal({ resource_id: ["EV-B1"] });
      // EV-B1 has no device: the event reaches it over WebSocket only, and says why.
      expect(asB.json.deliveries).to.deep.equal([{ resourceId: "EV-B1", command: "skipped", reason: "the resource has no device address to command" }]);
      const asC = await http({ url: "/v1/events/evt-two", token: tokens.c });
      const unknown = await http({ url: "/v1/events/evt-none", token: tokens.c });
      expect(asC.status).to.equal(404);
      expect(asC.json.code).to.equal(unknown.json.code);

      const listA = await http({ url: "/v1/events", token: tokens.a });
      expect(listA.json.events.map((e: { event_id: string }) => e.event_id).sort()).to.deep.equal(["evt-two", "evt-zone"]);
      const listB = await http({ url: "/v1/events", token: tokens.b });
      expect(listB.json.events.map((e: { event_id: string }) => e.event_id)).to.deep.equal(["evt-two"]);
      expect((await http({ url: "/v1/events", token: tokens.operator })).json.events).to.have.length(2);
    });

    it("answers: the owner only, for a targeted resource, changeable until the start; 404 for those who cannot see the event", async () => {
      const optIn = await respond("evt-two", "BAT-A1", "optIn", tokens.a);
      expect(optIn.status, optIn.text).to.equal(200);
      expect(optIn.json.responses).to.have.length(1);
      expect(optIn.json.responses[0]).to.include({ resourceId: "BAT-A1", response: "optIn" });
      const changed = await respond("evt-two", "BAT-A1", "optOut", tokens.a);
      expect(changed.json.responses.map((r: { response: string }) => r.response)).to.deep.equal(["optOut"]);
      expect((await respond("evt-two", "EV-B1", "optIn", tokens.b)).status).to.equal(200);
      // A sees only A's answer; the operator both.
      expect((await http({ url: "/v1/events/evt-two", token: tokens.a })).json.responses.map((r: { resourceId: string }) => r.resourceId)).to.deep.equal(["BAT-A1"]);
      expect((await http({ url: "/v1/events/evt-two", token: tokens.operator })).json.responses.map((r: { resourceId: string }) => r.resourceId)).to.deep.equal(["BAT-A1", "EV-B1"]);

      const cases: [string, string, string, number, string][] = [
        ["evt-two", "EV-B1", tokens.a, 403, "not_resource_owner"], // A sees the event; EV-B1 is B's
        ["evt-two", "LOAD-A2", tokens.a, 422, "resource_not_targeted"], // A's, but not in this event
        ["evt-two", "BAT-A1", tokens.operator, 403, "not_resource_owner"], // operators do not answer for owners
        ["evt-two", "BAT-A1", tokens.c, 404, "event_not_found"], // C cannot see the event at all
        ["evt-zone", "EV-B1", tokens.b, 404, "event_not_found"],
        ["evt-none", "BAT-A1", tokens.a, 404, "event_not_found"],
      ];
      for (const [eventId, resourceId, token, status, code] of cases) {
        const res = await respond(eventId, resourceId, "optIn", token);
        expect(res.json, `${eventId} ${resourceId}`).to.include({ status, code });
      }
      expect((await respond("evt-two", "BAT-A1", "maybe", tokens.a)).json).to.include({ status: 400, field: "response" });
    });

    it("GET /v1/events carries a poll hint inside the jitter bounds", async () => {
      for (let i = 0; i < 5; i++) {
        const before = Date.now();
        const res = await http({ url: "/v1/events", token: tokens.a });
        const after = Date.now();
        const { intervalSeconds, nextPollAt } = res.json.poll;
        expect(intervalSeconds).to.equal(300);
        const bound = Math.min(intervalSeconds * 100, 300_000);
        const next = Date.parse(nextPollAt);
        expect(next).to.be.at.least(before + intervalSeconds * 1000 - bound);
        expect(next).to.be.at.most(after + intervalSeconds * 1000 + bound);
      }
      // The service with its jitter source pinned reaches exactly the ends of the bound.
      const fixedNow = Date.now();
      const viewer = { address: accounts[0]!.address as `0x${string}`, operator: false };
      for (const [r, jitter] of [[0, -30_000], [0.5, 0], [0.9999999, 30_000]] as const) {
        const service = createCoordination({ db: t.node.services.indexer.db as never, clock: () => fixedNow, logger: t.node.services.logger, random: () => r });
        const { poll, events } = await service.eventsFor(viewer, { includeEnded: false, limit: 10 });
        expect(Date.parse(poll.nextPollAt) - fixedNow - 300_000, String(r)).to.equal(jitter);
        expect(events.map((e) => e.event_id).sort()).to.deep.equal(["evt-two", "evt-zone"]);
      }
    });

    it("an operator cancels (pushed again on the resource's channel); cancelled events take no answers and cannot be cancelled twice", async () => {
      // B owns EV-B1: its events reach B's token (and operators'), no one else's.
      const socket = await openSocket(t.node.url, ["events.EV-B1"], { token: tokens.b });
      const device = await connectDevice(t.node, `${t.node.bridge.topicRoot}/ZONE-A/battery/BAT-A1/command`);
      try {
        expect((await http({ method: "DELETE", url: "/v1/events/evt-two", token: tokens.a })).json).to.include({ status: 403, code: "operator_only" });
        const cancelled = await http({ method: "DELETE", url: "/v1/events/evt-two", token: tokens.operator });
        expect(cancelled.status, cancelled.text).to.equal(200);
        expect(cancelled.json.status).to.equal("cancelled");
        const pushed = await waitFor("the cancellation on events.EV-B1", async () => socket.messages.find((m) => m.channel === "events.EV-B1" && m.type === "event"), 10_000, 10);
        expect(pushed.data).to.deep.include({ event_id: "evt-two", status: "cancelled" });
        expect(pushed.data.targets).to.deep.equal([{ resource_id: "EV-B1" }]);
        // BAT-A1's device was told to shed load for this event: it hears the cancellation too.
        const sent = cancelled.json.deliveries.find((d: { resourceId: string }) => d.resourceId === "BAT-A1");
        const cancel = await waitFor("the cancellation on BAT-A1's command topic", async () => device.commands.find((c) => c.type === "demand_response_cancel"), 10_000, 10);
        expect(cancel).to.include({ event_id: "evt-two", cancels: sent.commandId });
        expect((await http({ method: "DELETE", url: "/v1/events/evt-two", token: tokens.operator })).json).to.include({ status: 409, code: "event_closed" });
        expect((await respond("evt-two", "BAT-A1", "optIn", tokens.a)).json).to.include({ status: 409, code: "event_closed" });
        expect((await http({ method: "DELETE", url: "/v1/events/evt-none", token: tokens.operator })).status).to.equal(404);
        // Still listed (not ended yet), as cancelled.
        const listed = (await http({ url: "/v1/events", token: tokens.b })).json.events.find((e: { event_id: string }) => e.event_id === "evt-two");
        expect(listed.status).to.equal("cancelled");
      } finally {
        socket.close();
        await device.client.endAsync();
      }
    });
  });
});

describe("coordination: a demand-response event end to end on a moving clock", function () {
  this.timeout(240_000);
  let t: TestNode;
  let http: Http;
  let db: Kysely<any>;
  let root: string;
  let tokens: { a: string; b: string; c: string; operator: string };
  /** The node's clock runs with real time from wherever we last put it. */
  let offsetMs = 0;
  const nodeNow = () => Date.now() + offsetMs;

  const signInAll = async () => {
    tokens = {
      a: await signIn(http, t.node, t.node.testAccounts[0]!.privateKey),
      b: await signIn(http, t.node, t.node.testAccounts[1]!.privateKey),
      c: await signIn(http, t.node, t.node.testAccounts[2]!.privateKey),
      operator: await signIn(http, t.node, t.node.operatorKey!),
    };
  };
  /** Moves the node's clock forward to `iso` (tokens live 15 minutes of it: sign in again). */
  const jumpTo = async (iso: string) => {
    const target = Date.parse(iso);
    if (target < nodeNow()) throw new Error(`the clock only moves forward: ${iso} is behind ${new Date(nodeNow()).toISOString()}`);
    offsetMs = target - Date.now();
    await signInAll();
  };

  // Wednesday 2026-11-18, 17:00-18:00 UTC: the event. meter-4's import per 15 minutes (Wh) on
  // the days before, sent while the clock stood on each day (the bridge takes 48 h at most).
  const SLOTS = ["17:00", "17:15", "17:30", "17:45"];
  const history: { day: string; wh: (number | undefined)[] }[] = [
    { day: "2026-11-12", wh: [200, 200, undefined, undefined] }, // Thursday, half reported: no baseline day
    { day: "2026-11-15", wh: [300, 310, 320, 330] }, // Sunday: a weekend day, not like a Wednesday
    { day: "2026-11-16", wh: [1500, 1600, 1400, 1500] }, // Monday
    { day: "2026-11-17", wh: [1701, 1500, 1600, 1301] }, // Tuesday
  ];
  const eventDay = { day: "2026-11-18", wh: [900, 1000, 1100, 1000] };
  const DISPATCH_KW = 2;

  before(async () => {
    offsetMs = Date.parse("2026-11-12T18:01:00Z") - Date.now();
    t = await startTestNode({}, { clock: nodeNow });
    http = injectClient(t.node.app);
    db = t.node.services.indexer.db as unknown as Kysely<any>;
    root = t.node.bridge.topicRoot;
    await signInAll();
  });

  after(async () => {
    await t?.close();
  });

  /** Publishes meter-4's interval readings of `day` over MQTT, as the meter would, and waits until the bridge stored them. */
  async function sendDay(day: string, wh: (number | undefined)[], meter = "meter-4", region = "ZONE-A") {
    // The meter logs in as itself (the broker takes no anonymous client) and signs its readings.
    const account = t.node.testAccounts.find((a) => a.meterId === meter)!;
    const client = await mqtt.connectAsync(t.node.mqttUrl, { clean: true, reconnectPeriod: 0, ...meterLogin(account) });
    try {
      const starts: number[] = [];
      for (const [i, value] of wh.entries()) {
        if (value === undefined) continue;
        const start = Date.parse(`${day}T${SLOTS[i]}:00Z`);
        starts.push(start);
        await client.publishAsync(`${root}/${region}/smart-meter/${meter}/interval`,
          JSON.stringify(signReading({
            meterId: meter, metric: "interval", privateKey: account.meterKey,
            payload: { interval_start: new Date(start).toISOString(), interval_minutes: 15, import_kwh: value / 1000, export_kwh: 0 },
          })), { qos: 1 });
      }
      await waitFor(`${meter}'s readings of ${day}`, async () => {
        const rows = await db.selectFrom("bridge_readings").select("reading_at").where("meter_id", "=", meter).where("metric", "=", "interval")
          .where("reading_at", "in", starts.map((s) => BigInt(s))).execute();
        return rows.length === starts.length ? true : undefined;
      }, 20_000, 50);
    } finally {
      await client.endAsync();
    }
  }

  it("registers two owners' resources and submits the baseline days while the clock stands on them", async () => {
    const hvac = await http({
      method: "POST", url: "/v1/resources", token: tokens.a,
      body: { resourceId: "HVAC-1", type: "flexible_load", meterId: "meter-4", zone: "ZONE-A", capabilities: { flexibleKw: 3 }, device: { region: "ZONE-A", deviceType: "hvac", deviceId: "HVAC-1" } },
    });
    expect(hvac.status, hvac.text).to.equal(201);
    const ev = await http({
      method: "POST", url: "/v1/resources", token: tokens.b,
      body: { resourceId: "EV-9", type: "ev", meterId: "meter-5", zone: "ZONE-B", capabilities: { capacityKwh: 60, maxChargeKw: 7.4 }, device: { region: "ZONE-B", deviceType: "ev-charger", deviceId: "EV-9" } },
    });
    expect(ev.status, ev.text).to.equal(201);
    for (const { day, wh } of history) {
      await jumpTo(`${day}T18:05:00Z`);
      await sendDay(day, wh);
    }
    // The bridge really does refuse readings older than 48 h: history cannot be sent later.
    const late = await t.node.bridge.submitReading(`${root}/ZONE-A/smart-meter/meter-4/interval`,
      Buffer.from(JSON.stringify({ interval_start: "2026-11-15T16:00:00Z", interval_minutes: 15, import_kwh: 1, export_kwh: 0 })));
    expect(late).to.include({ accepted: false });
  });

  let command: Record<string, any>;
  let pushed: { channel?: string; type: string; data?: any };

  it("the operator's event reaches the owner over GET /v1/events, WebSocket events.HVAC-1 and MQTT on the device's command topic", async () => {
    await jumpTo("2026-11-18T16:30:00Z");
    const topic = `${root}/ZONE-A/hvac/HVAC-1/command`;
    const device = await connectDevice(t.node, topic);
    const socket = await openSocket(t.node.url, ["events.HVAC-1"], { token: tokens.a });
    try {
      const start = Date.parse("2026-11-18T17:00:00Z");
      const created = await http({
        method: "POST", url: "/v1/events", token: tokens.operator,
        body: {
          event_id: "dr-wed", reason: "evening peak",
          active_period: { dtstart: "2026-11-18T17:00:00Z", duration: "PT1H" },
          event_signals: [
            { signal_name: "LOAD_DISPATCH", signal_type: "delta", intervals: [
              { dtstart: "2026-11-18T17:00:00Z", duration: "PT30M", signal_payload: DISPATCH_KW },
              { dtstart: "2026-11-18T17:30:00Z", duration: "PT30M", signal_payload: DISPATCH_KW },
            ] },
            level(start, 60, 2),
          ],
          targets: [{ resource_id: "HVAC-1" }, { resource_id: "EV-9" }],
        },
      });
      expect(created.status, created.text).to.equal(201);
      expect(created.json).to.deep.include({ event_id: "dr-wed", status: "near", reason: "evening peak" });
      expect(created.json.created_at.slice(0, 16)).to.equal("2026-11-18T16:30");
      expect(created.json.deliveries.map((d: { resourceId: string; command: string }) => [d.resourceId, d.command])).to.deep.equal([["EV-9", "sent"], ["HVAC-1", "sent"]]);

      command = await waitFor("the demand_response command", async () => device.commands[0], 10_000, 10);
      expect(command).to.deep.include({
        type: "demand_response", event_id: "dr-wed", start: "2026-11-18T17:00:00.000Z", end: "2026-11-18T18:00:00.000Z", target_reduction_kw: DISPATCH_KW, signal_level: "high",
      });
      expect(command.command_id).to.equal(created.json.deliveries.find((d: { resourceId: string }) => d.resourceId === "HVAC-1").commandId);
      pushed = await waitFor("the event on events.HVAC-1", async () => socket.messages.find((m) => m.channel === "events.HVAC-1" && m.type === "event"), 10_000, 10);
      expect(pushed.data).to.deep.include({ event_id: "dr-wed", status: "near", active_period: { dtstart: "2026-11-18T17:00:00Z", duration: "PT1H" } });
      expect(pushed.data.targets).to.deep.equal([{ resource_id: "HVAC-1" }]);
      expect(pushed.data.event_signals).to.deep.equal(created.json.event_signals);

      const polled = await http({ url: "/v1/events", token: tokens.a });
      expect(polled.json.events.map((e: { event_id: string }) => e.event_id)).to.deep.equal(["dr-wed"]);
      expect(polled.json.events[0].targets_by_type).to.deep.equal({ resource_id: ["HVAC-1"] });
      const next = Date.parse(polled.json.poll.nextPollAt) - nodeNow();
      expect(next).to.be.within(300_000 - 30_000 - 5_000, 300_000 + 30_000);
    } finally {
      socket.close();
      await device.client.endAsync();
    }
  });

  it("owners opt in and out before the start; a stranger can neither see nor answer", async () => {
    expect((await http({ method: "POST", url: "/v1/events/dr-wed/responses", token: tokens.a, body: { resourceId: "HVAC-1", response: "optIn" } })).status).to.equal(200);
    expect((await http({ method: "POST", url: "/v1/events/dr-wed/responses", token: tokens.b, body: { resourceId: "EV-9", response: "optOut" } })).status).to.equal(200);
    expect((await http({ url: "/v1/events/dr-wed", token: tokens.c })).json).to.include({ status: 404, code: "event_not_found" });
    expect((await http({ method: "POST", url: "/v1/events/dr-wed/responses", token: tokens.c, body: { resourceId: "HVAC-1", response: "optOut" } })).json).to.include({ status: 404 });
    expect((await http({ url: "/v1/events/dr-wed/performance", token: tokens.c })).json).to.include({ status: 404 });
    expect((await http({ url: "/v1/events", token: tokens.c })).json.events).to.deep.equal([]);
    // Before the start nothing can be measured yet.
    const early = await http({ url: "/v1/events/dr-wed/performance", token: tokens.operator });
    expect(early.json.resources.map((r: { status: string }) => r.status)).to.deep.equal(["pending", "pending"]);
  });

  it("after the event: answers are fixed, and the performance is the baseline of like days minus what the meter imported", async () => {
    await jumpTo("2026-11-18T18:05:00Z");
    const late = await http({ method: "POST", url: "/v1/events/dr-wed/responses", token: tokens.a, body: { resourceId: "HVAC-1", response: "optOut" } });
    expect(late.json).to.include({ status: 409, code: "event_started" });
    await sendDay(eventDay.day, eventDay.wh);

    // Expected, from the readings sent: weekdays with every interval reported, most recent
    // first (Tuesday, Monday); the half-reported Thursday and the Sunday do not count.
    const days = history.filter(({ day, wh }) => ![0, 6].includes(new Date(`${day}T12:00:00Z`).getUTCDay()) && wh.every((w) => w !== undefined)).reverse();
    expect(days.map((d) => d.day)).to.deep.equal(["2026-11-17", "2026-11-16"]);
    const baselinePerSlot = SLOTS.map((_, i) => Math.floor(days.reduce((sum, d) => sum + d.wh[i]!, 0) / days.length));
    const baselineWh = baselinePerSlot.reduce((a, b) => a + b, 0);
    const actualWh = eventDay.wh.reduce((a, b) => a + b, 0);
    const reductionWh = baselineWh - actualWh;
    const targetWh = DISPATCH_KW * 1000 * 1; // 2 kW for one hour

    const res = await http({ url: "/v1/events/dr-wed/performance", token: tokens.operator });
    expect(res.status, res.text).to.equal(200);
    expect(res.json).to.include({ eventId: "dr-wed", status: "completed", intervalMinutes: 15 });
    const [ev, hvac] = res.json.resources;
    expect(hvac).to.deep.include({
      resourceId: "HVAC-1", meterId: "meter-4", response: "optIn", status: "measured", final: true, slotsTotal: 4, slotsMeasured: 4,
      actualKwh: actualWh / 1000, baselineKwh: baselineWh / 1000, reductionKwh: reductionWh / 1000, reductionPct: Math.round((reductionWh / baselineWh) * 10_000) / 100,
      targetReductionKwh: targetWh / 1000, met: reductionWh >= targetWh,
      baseline: { dayType: "weekday", daysUsed: 2, dates: ["2026-11-17", "2026-11-16"] },
    });
    expect(hvac.met).to.equal(true);
    expect(hvac.intervals).to.deep.equal(SLOTS.map((s, i) => ({ start: `${eventDay.day}T${s}:00.000Z`, actualKwh: eventDay.wh[i]! / 1000, baselineKwh: baselinePerSlot[i]! / 1000 })));
    // meter-5 sent nothing during the event: not measured, and said why.
    expect(ev).to.deep.include({ resourceId: "EV-9", meterId: "meter-5", response: "optOut", status: "missing_data", final: false, actualKwh: null, met: null });
    expect(ev.detail).to.include("meter-5");

    // Owners see their own resources' results only; a second request reads the stored result back.
    const asA = await http({ url: "/v1/events/dr-wed/performance", token: tokens.a });
    expect(asA.json.resources).to.deep.equal([hvac]);
    const asB = await http({ url: "/v1/events/dr-wed/performance", token: tokens.b });
    expect(asB.json.resources.map((r: { resourceId: string }) => r.resourceId)).to.deep.equal(["EV-9"]);
    const stored = await db.selectFrom("coordination_performance").select(["resource_id"]).where("event_id", "=", "dr-wed").execute();
    expect(stored.map((r) => r.resource_id)).to.deep.equal(["HVAC-1"]);

    // The event is over: no longer in the default listing, still with includeEnded.
    expect((await http({ url: "/v1/events", token: tokens.a })).json.events).to.deep.equal([]);
    const ended = await http({ url: "/v1/events?includeEnded=true", token: tokens.a });
    expect(ended.json.events.map((e: { event_id: string; status: string }) => [e.event_id, e.status])).to.deep.equal([["dr-wed", "completed"]]);
  });
});
