// Regressions of the outside fuzz ("Robustness" issue): what the database or the math cannot
// hold is refused with 400 problem+json naming the field and the rule, framework refusals are
// problems with stable codes, a stored VPP resource out of range is a 422 naming it, the CSV
// export is declared as text/csv, and a request whose body stalls is answered 408 and closed.
import { expect } from "chai";
import { connect } from "node:net";
import type { Kysely } from "kysely";
import { addResource, type VppDatabase } from "../../server/vpp/vppStore.js";
import { injectClient, signIn, type Http, type HttpResponse, type TestNode, startTestNode } from "./helpers.js";

const REQUEST_TIMEOUT_MS = 1_500;

function expectProblem(res: HttpResponse, status: number, code: string, field?: string) {
  expect(res.status, res.text).to.equal(status);
  expect(res.headers["content-type"]).to.match(/^application\/problem\+json/);
  expect(res.json).to.include({ status, code });
  if (field !== undefined) expect(res.json.field).to.equal(field);
}

/** Sends `raw` on a fresh socket and resolves with what came back once the server closed it. */
function rawExchange(url: string, raw: string): Promise<{ text: string; closedAfterMs: number }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let text = "";
    const socket = connect(Number(port), hostname, () => socket.write(raw));
    socket.setEncoding("utf8");
    socket.on("data", (chunk) => (text += chunk));
    socket.on("error", reject);
    socket.on("close", () => resolve({ text, closedAfterMs: Date.now() - started }));
  });
}

describe("Robustness: what cannot be stored or computed is refused", function () {
  this.timeout(120_000);
  let t: TestNode;
  let http: Http;
  let operator: string;

  before(async () => {
    t = await startTestNode({ HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS), HTTP_HEADERS_TIMEOUT_MS: "1000" });
    http = injectClient(t.node.app);
    operator = await signIn(http, t.node, t.node.operatorKey!);
  });
  after(async () => t?.close());

  it("row 1: NUL bytes and unpaired surrogates in strings are 400s naming the field", async () => {
    expectProblem(await http({ method: "POST", url: "/v1/vpp", token: operator, body: { name: "a\u0000b", zone: "ZONE-A" } }), 400, "invalid_request", "name");
    expectProblem(await http({ method: "POST", url: "/v1/vpp", token: operator, body: { name: "a\ud800b", zone: "ZONE-A" } }), 400, "invalid_request", "name");
    expectProblem(await http({ method: "POST", url: "/v1/orchestrator/island", token: operator, body: { zone: "ZONE-A", reason: "x\u0000" } }), 400, "invalid_request", "reason");
    const ev = await http({ method: "POST", url: "/v1/ev/plans", token: operator, body: { resourceId: "EV\u0000", kwhNeeded: 10, chargerKw: 7, arrival: "2030-01-01T00:00:00Z", departure: "2030-01-01T06:00:00Z" } });
    expectProblem(ev, 400, "invalid_request");
    const nul = await http({ url: "/v1/resources?zone=%00", token: operator });
    expectProblem(nul, 400, "invalid_request", "zone");
    expect(nul.json.detail).to.match(/NUL/);
  });

  it("row 2: infinite and huge numbers are 400s, in querystrings, paths and bodies", async () => {
    for (const url of ["/v1/events?limit=1e400", "/v1/trading/history?limit=1e400", "/v1/orchestrator/actions?limit=1e400", "/v1/reports?resourceId=R1&limit=1e400"]) {
      const res = await http({ url, token: operator });
      expectProblem(res, 400, "invalid_request", "limit");
    }
    expectProblem(await http({ url: "/v1/trading/markets/ZONE-A/1e309/book", token: operator }), 400, "invalid_request", "intervalStart");
    const order = await http({ method: "POST", url: "/v1/trading/orders", token: operator, body: '{"order":{"energyWh":1e400},"signature":"0x"}', headers: { "content-type": "application/json" } });
    expectProblem(order, 400, "invalid_request");
    await http({ method: "POST", url: "/v1/vpp", token: operator, body: { id: "VPP-R2", name: "r2", zone: "ZONE-A", resources: [{ id: "G", type: "grid", capacityKw: 100, costPerKWh: 0.2 }] } });
    const huge = await http({ method: "POST", url: "/v1/vpp/VPP-R2/optimize", token: operator, body: { demand: 1e308 } });
    expectProblem(huge, 400, "invalid_request", "demand");
    expectProblem(await http({ url: "/v1/events?limit=1e3", token: operator }), 400, "invalid_request", "limit");
  });

  it("row 3: deeply nested JSON is a 400 naming the rule, before parsing", async () => {
    const deep = "[".repeat(5000) + "]".repeat(5000);
    for (const url of ["/v1/carbon", "/v1/compliance/validate-trade", "/v1/savings/estimate"]) {
      const res = await http({ method: "POST", url, token: operator, body: `{"a":${deep}}`, headers: { "content-type": "application/json" } });
      expectProblem(res, 400, "invalid_request", "body");
      expect(res.json.detail).to.match(/deeper than 32 levels/);
    }
  });

  it("row 5: an export limit past 1 GW is a 400, not a transaction the chain refuses", async () => {
    const res = await http({
      method: "POST", url: "/v1/prosumers", token: operator,
      body: '{"address":"0x00000000000000000000000000000000000000aa","meterId":"M-R5","zone":"ZONE-A","exportLimitW":18446744073709551616}', headers: { "content-type": "application/json" },
    });
    expectProblem(res, 400, "invalid_request", "exportLimitW");
  });

  it("row 6: resources out of range are refused; a stored one out of range makes optimise a 422 naming it", async () => {
    const storage = { id: "BAT", type: "storage", capacityKw: 10, energyCapacityKwh: 1e308, soc: 0.5 };
    expectProblem(await http({ method: "POST", url: "/v1/vpp", token: operator, body: { id: "VPP-R6", name: "r6", zone: "ZONE-A", resources: [storage] } }), 400, "invalid_request", "resources.0.energyCapacityKwh");
    expectProblem(await http({ method: "POST", url: "/v1/vpp", token: operator, body: { id: "VPP-R6", name: "r6", zone: "ZONE-A", resources: [{ id: "PV", type: "solar", capacityKw: 1e308 }] } }), 400, "invalid_request", "resources.0.capacityKw");
    const created = await http({ method: "POST", url: "/v1/vpp", token: operator, body: { id: "VPP-R6", name: "r6", zone: "ZONE-A", resources: [{ id: "G", type: "grid", capacityKw: 100, costPerKWh: 0.2 }] } });
    expect(created.status, created.text).to.equal(201);
    // A resource stored before the ranges existed (or written around the API).
    const db = t.node.app.node.indexer.db as unknown as Kysely<VppDatabase>;
    expect(await addResource(db, "VPP-R6", { id: "BAT", type: "storage", name: null, spec: { capacityKw: 10, energyCapacityKwh: 1e308, soc: 0.5 }, device: null }, Date.now())).to.equal("added");
    const res = await http({ method: "POST", url: "/v1/vpp/VPP-R6/optimize", token: operator, body: { demand: 5 } });
    expectProblem(res, 422, "validation_failed", "resources[1].energyCapacityKwh");
    expect(res.json.detail).to.match(/resource BAT/);
  });

  it("row 7: router refusals are problems with stable codes", async () => {
    expectProblem(await http({ url: `/v1/vpp/${"a".repeat(200)}`, token: operator }), 414, "uri_too_long");
    expectProblem(await http({ url: "/v1/vpp/%E0%A4%A", token: operator }), 400, "invalid_request");
    expectProblem(await http({ method: "POST", url: "/v1/vpp", token: operator, body: "x", headers: { "content-type": "application/xml" } }), 400, "invalid_request");
    // 431 comes from Node's HTTP parser: only a real socket shows it.
    const res = await fetch(`${t.node.url}/v1/vpp?q=${"a".repeat(20_000)}`);
    expect(res.status).to.equal(431);
    expect(res.headers.get("content-type")).to.match(/^application\/problem\+json/);
    expect(await res.json()).to.include({ code: "headers_too_large", status: 431 });
  });

  it("row 8: the OpenAPI document declares GET /v1/trades.csv as text/csv", async () => {
    const doc = (await http({ url: "/docs/json" })).json;
    const ok = doc.paths["/v1/trades.csv"].get.responses["200"];
    expect(Object.keys(ok.content)).to.deep.equal(["text/csv"]);
  });

  it("row 9: a body that stalls is answered 408 problem+json and its socket closed within the request timeout", async () => {
    const { host } = new URL(t.node.url);
    const raw = `POST /v1/carbon HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"from":"20`;
    const { text, closedAfterMs } = await rawExchange(t.node.url, raw);
    expect(text).to.match(/^HTTP\/1\.1 408 /);
    expect(text).to.match(/content-type: application\/problem\+json/i);
    expect(JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4))).to.include({ code: "request_timeout", status: 408 });
    expect(closedAfterMs).to.be.below(REQUEST_TIMEOUT_MS + 2_000);
  });

  it("the node still answers afterwards", async () => {
    expect((await fetch(`${t.node.url}/healthz`)).status).to.equal(200);
  });
});
