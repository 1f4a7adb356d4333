// Every number and array a request may carry has a bound its route chose (an energy, a price, a
// count, a page size), not only the layer's catch-all default (issue #17: "add maximums to every
// schema"). The default stays as the net under routes added later; this test is what makes a
// new route declare its own.
import { expect } from "chai";
import type { RouteOptions } from "fastify";
import { boundRequestSchemas, DEFAULT_MAX_ITEMS, DEFAULT_NUMBER_BOUND, defaultedBounds } from "../../server/validation/inputLimits.js";
import { startTestNode, type TestNode } from "./helpers.js";

describe("request bounds: every route declares its own", () => {
  let t: TestNode;
  before(async () => {
    t = await startTestNode();
  });
  after(async () => t?.close());

  it("no request field of the node's routes falls back to the default bound", () => {
    const routes = t.node.app.printRoutes({ commonPrefix: false });
    expect(routes).to.include("orders");
    expect(defaultedBounds(t.node.app)).to.deep.equal([]);
  });

  it("the default is given, and named, where a schema declares none", () => {
    const defaulted: string[] = [];
    const route = {
      method: "POST", url: "/x", handler: () => undefined,
      schema: {
        body: { type: "object", properties: { a: { type: "integer" }, b: { type: "number", minimum: 0, maximum: 5 }, c: { type: "array", items: { type: "number", minimum: 0, maximum: 1 } } } },
        querystring: { type: "object", properties: { kind: { type: "integer", enum: [1, 2] } } },
      },
    } as unknown as RouteOptions;
    boundRequestSchemas(route, defaulted);
    expect(defaulted).to.deep.equal(["POST /x body.a: maximum", "POST /x body.a: minimum", "POST /x body.c: maxItems"]);
    const body = (route.schema as { body: { properties: Record<string, { maximum?: number; maxItems?: number }> } }).body;
    expect(body.properties.a!.maximum).to.equal(Number.MAX_SAFE_INTEGER);
    expect(body.properties.b!.maximum).to.equal(5);
    expect(body.properties.c!.maxItems).to.equal(DEFAULT_MAX_ITEMS);
    expect(DEFAULT_NUMBER_BOUND).to.equal(1e15);
  });
});
