// Every operation of the node's OpenAPI document, fuzzed: valid-ish requests built from each
// operation's schemas, then mutated (NUL, unpaired surrogates, huge and infinite numbers, deep
// nesting, long strings, wrong types, bad %-escapes, long URLs). Whatever arrives, the node
// answers no 5xx, every 4xx is application/problem+json with a code, and it is healthy after.
import { expect } from "chai";
import fc from "fast-check";
import { injectClient, signIn, startTestNode, type Http, type TestNode } from "./helpers.js";

const SEED = 20_240_611;
const RUNS = 25_000;

type Schema = Record<string, any>;
interface Operation { method: "GET" | "POST" | "PUT" | "DELETE"; path: string; params: { name: string; in: string; schema?: Schema }[]; body?: Schema }

/** A value the schema accepts, or close to it: the fuzz mutates from here. */
function sample(schema: Schema | undefined, depth = 0): unknown {
  if (!schema || depth > 6) return null;
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return schema.enum[0];
  if (schema.default !== undefined) return schema.default;
  if (schema.anyOf || schema.oneOf) return sample((schema.anyOf ?? schema.oneOf)[0], depth + 1);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case "object": {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(schema.properties ?? {})) if ((schema.required ?? []).includes(k)) out[k] = sample(v as Schema, depth + 1);
      return out;
    }
    case "array": return [sample(schema.items, depth + 1)];
    case "integer": return schema.minimum ?? 1;
    case "number": return schema.minimum ?? 1.5;
    case "boolean": return true;
    case "null": return null;
    default:
      if (schema.format === "date-time") return "2030-01-01T00:00:00Z";
      if (schema.pattern === "^0x[0-9a-fA-F]{40}$") return "0x00000000000000000000000000000000000000aa";
      return "x".repeat(Math.max(1, schema.minLength ?? 1));
  }
}

const nasty = fc.oneof(
  fc.constantFrom<unknown>("\u0000", "a\u0000b", "\ud800", "x\udfff", 1e308, -1e308, 1e400 as never, "1e400", "1e309", -0, 2 ** 64, "NaN", "Infinity", [], {}, null, true, "", "%", "%00", "%E0%A4%A"),
  fc.string({ maxLength: 20, unit: "binary" }),
  fc.integer({ min: 10_000, max: 70_000 }).map((n) => "a".repeat(n)),
  fc.double(),
  fc.integer({ min: 33, max: 3_000 }).map((d) => ({ __deep: d })),
);

/** Replaces a random leaf of `value` (or adds a field) with `bad`. */
function mutate(value: unknown, bad: unknown, pick: number): unknown {
  if (value === null || typeof value !== "object") return bad;
  const keys = Object.keys(value);
  if (keys.length === 0 || pick % 5 === 0) return Array.isArray(value) ? [...value, bad] : { ...value, [pick % 2 ? "extra" : "\u0000"]: bad };
  const k = keys[pick % keys.length]!;
  const copy: any = Array.isArray(value) ? [...value] : { ...value };
  copy[k] = mutate(copy[k], bad, Math.floor(pick / 7));
  return copy;
}

/** JSON text of `value`, with deep-nesting markers expanded and JSON's own infinity spelt as 1e400. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? "__inf__" : v))
    .replace(/"__inf__"/g, "1e400")
    .replace(/\{"__deep":(\d+)\}/g, (_m, d) => "[".repeat(Number(d)) + "]".repeat(Number(d)));
}

/** A lone surrogate has no UTF-8: it goes out as the bytes of its code point (invalid UTF-8). */
function encode(text: string): string {
  return text.replace(/[\ud800-\udfff]/g, "\u0001").split("\u0001").map(encodeURIComponent).join("%ED%A0%80");
}

function asParam(value: unknown): string {
  if (typeof value === "string") return /^%/.test(value) ? value : encode(value);
  if (value !== null && typeof value === "object") return encode(toJson(value).slice(0, 5_000));
  return encode(String(value));
}

describe("Fuzz: every operation of the OpenAPI document", function () {
  this.timeout(300_000);
  let t: TestNode;
  let http: Http;
  let operator: string;
  let operations: Operation[];

  before(async () => {
    // No rate limits: the fuzz sends thousands of requests from one address.
    t = await startTestNode({ RATE_LIMIT_PER_IP: "0", RATE_LIMIT_PER_ADDRESS: "0" });
    http = injectClient(t.node.app);
    operator = await signIn(http, t.node, t.node.operatorKey!);
    const doc = (await http({ url: "/docs/json" })).json;
    operations = [];
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      if (path.startsWith("/docs") || path === "/v1/realtime" || path.startsWith("/ws")) continue;
      for (const [method, op] of Object.entries(item)) {
        if (!["get", "post", "put", "delete"].includes(method)) continue;
        operations.push({ method: method.toUpperCase() as Operation["method"], path, params: op.parameters ?? [], body: op.requestBody?.content?.["application/json"]?.schema });
      }
    }
    expect(operations.length).to.be.above(50);
  });
  after(async () => t?.close());

  it("answers no 5xx, and every 4xx as problem+json with a code", async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.nat(), nasty, fc.nat(), fc.constantFrom("body", "query", "path", "url", "wrongType"), fc.boolean(), async (which, bad, pick, target, signedIn) => {
        const op = operations[which % operations.length]!;
        let path = op.path;
        const query: string[] = [];
        const targetParam = pick % Math.max(1, op.params.length);
        op.params.forEach((p, i) => {
          const good = sample(p.schema);
          const value = (target === "path" && p.in === "path") || (target === "query" && p.in === "query" && i === targetParam) ? bad : good;
          if (p.in === "path") path = path.replace(`{${p.name}}`, asParam(value));
          else if (p.in === "query") query.push(`${p.name}=${asParam(value)}`);
        });
        if (target === "url") path += pick % 2 ? `/${"%zz".repeat(pick % 50)}` : `?${"q".repeat(20_000)}`;
        let body: string | undefined;
        if (op.method !== "GET" && op.method !== "DELETE") {
          const good = sample(op.body ?? { type: "object" });
          body = target === "wrongType" ? toJson(bad) : target === "body" ? toJson(mutate(good, bad, pick)) : toJson(good);
        }
        const url = query.length ? `${path}?${query.join("&")}` : path;
        const res = await http({ method: op.method, url, ...(signedIn ? { token: operator } : {}), ...(body !== undefined ? { body, headers: { "content-type": "application/json" } } : {}) });
        seen.set(`${op.method} ${op.path}`, (seen.get(`${op.method} ${op.path}`) ?? 0) + 1);
        const what = `${op.method} ${url.slice(0, 200)} ${body?.slice(0, 200) ?? ""} -> ${res.status} ${res.text.slice(0, 300)}`;
        expect(res.status, what).to.be.below(500);
        if (res.status >= 400) {
          expect(res.headers["content-type"], what).to.match(/^application\/problem\+json/);
          expect(res.json?.code, what).to.be.a("string");
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    expect(seen.size).to.be.above(operations.length / 2);
  });

  it("is healthy afterwards", async () => {
    expect((await http({ url: "/healthz" })).status).to.equal(200);
    expect((await http({ url: "/v1/chain" })).status).to.equal(200);
  });
});
