// What the database and the math can hold, refused before any handler runs. One layer for
// every route, the auditor API's included:
// - the JSON body parser refuses nesting deeper than MAX_JSON_DEPTH before parsing it (the
//   schema validator and the error paths recurse once per level);
// - request schemas get default bounds where a route declares none: numbers within
//   ±DEFAULT_NUMBER_BOUND, integers within the safe integers, arrays at most DEFAULT_MAX_ITEMS;
// - a root preHandler walks params, querystring and body after validation and refuses strings
//   with NUL (Postgres text cannot hold it) or unpaired UTF-16 surrogates (not UTF-8), and
//   numbers that are not finite (ajv coerces "1e400" in a querystring to Infinity and then skips
//   its own maximum check, so the walk is what catches it).
// Every refusal is 400 invalid_request naming the field and the rule.
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from "fastify";
import { problemOf, sendProblem } from "../problems.js";

/** Deepest nesting of arrays and objects a JSON body may have. */
export const MAX_JSON_DEPTH = 32;
/** Largest |number| a schema without its own bound accepts: above any energy, price or count a community has. */
export const DEFAULT_NUMBER_BOUND = 1e15;
/** The latest unix time (s) a request may name: 2100-01-01T00:00:00Z. Routes bound their times with it. */
export const MAX_UNIX_SECONDS = 4_102_444_800;
/** Most items an array without its own maxItems accepts. */
export const DEFAULT_MAX_ITEMS = 10_000;

export class InputLimitError extends Error {
  override name = "InputLimitError";
  readonly statusCode = 400;
  readonly code = "INPUT_LIMIT";
  constructor(readonly field: string, readonly rule: string) {
    super(`${field} ${rule}`);
  }
}

/** How deep `text` (JSON) nests, counting brackets outside strings; stops once past `limit`. */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth > limit) return true;
    } else if (c === 93 /* ] */ || c === 125 /* } */) depth--;
  }
  return false;
}

/** The rule a string breaks, or undefined: no NUL, no unpaired surrogate. */
function stringRule(s: string): string | undefined {
  if (s.includes("\u0000")) return "must not contain NUL (U+0000)";
  if (!(s as unknown as { isWellFormed(): boolean }).isWellFormed()) return "must not contain unpaired UTF-16 surrogates";
  return undefined;
}

/** The first value under `value` the database or the math cannot hold, as [field, rule]. */
export function findUnstorable(value: unknown, path: string): [string, string] | undefined {
  if (typeof value === "string") {
    const rule = stringRule(value);
    return rule ? [path, rule] : undefined;
  }
  if (typeof value === "number") return Number.isFinite(value) ? undefined : [path, "must be a finite number"];
  if (value === null || typeof value !== "object") return undefined;
  if (Array.isArray(value)) {
    if (value.length > DEFAULT_MAX_ITEMS) return [path, `must hold at most ${DEFAULT_MAX_ITEMS} items`];
    for (let i = 0; i < value.length; i++) {
      const found = findUnstorable(value[i], `${path}[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    const keyRule = stringRule(k);
    if (keyRule) return [path, `field names ${keyRule}`];
    const found = findUnstorable(v, path ? `${path}.${k}` : k);
    if (found) return found;
  }
  return undefined;
}

/** The root preHandler: params, querystring and body hold only what can be stored and computed. */
export async function refuseUnstorableInput(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  const parts: [string, unknown][] = [["params", request.params], ["querystring", request.query], ["body", request.body]];
  for (const [where, value] of parts) {
    const found = findUnstorable(value, "");
    if (!found) continue;
    const [field, rule] = found;
    return sendProblem(reply, problemOf("invalid_request", `${where}${field ? `.${field}` : ""} ${rule}`, field || where));
  }
  return undefined;
}

type Schema = Record<string, unknown>;

/**
 * Adds default bounds to one request schema, in place (the caller passes a copy); `defaulted`
 * gets the path of each number and array that declared no bound of its own (every route should
 * declare its own: test/server/inputBounds.test.ts).
 */
function boundSchema(schema: unknown, path: string, defaulted: string[]): void {
  if (schema === null || typeof schema !== "object") return;
  if (Array.isArray(schema)) {
    schema.forEach((sub, i) => boundSchema(sub, `${path}[${i}]`, defaulted));
    return;
  }
  const s = schema as Schema;
  const types = Array.isArray(s.type) ? s.type : [s.type];
  if (types.includes("number") || types.includes("integer")) {
    const bound = types.includes("number") ? DEFAULT_NUMBER_BOUND : Number.MAX_SAFE_INTEGER;
    const fixed = s.const !== undefined || s.enum !== undefined;
    if (s.maximum === undefined && s.exclusiveMaximum === undefined && !fixed) {
      s.maximum = bound;
      defaulted.push(`${path}: maximum`);
    }
    if (s.minimum === undefined && s.exclusiveMinimum === undefined && !fixed) {
      s.minimum = -bound;
      defaulted.push(`${path}: minimum`);
    }
  }
  if (types.includes("array") && s.maxItems === undefined) {
    s.maxItems = DEFAULT_MAX_ITEMS;
    defaulted.push(`${path}: maxItems`);
  }
  for (const [k, v] of Object.entries(s)) {
    // Data, not subschemas.
    if (k === "enum" || k === "const" || k === "default" || k === "examples" || k === "required") continue;
    if (k === "properties" || k === "patternProperties" || k === "definitions" || k === "$defs") {
      if (v && typeof v === "object") for (const [name, sub] of Object.entries(v)) boundSchema(sub, `${path}.${name}`, defaulted);
    } else boundSchema(v, path, defaulted);
  }
}

/** A deep copy of a JSON schema (TypeBox's symbol keys dropped: the validator does not read them). */
function copySchema<T>(schema: T): T {
  return JSON.parse(JSON.stringify(schema)) as T;
}

/**
 * onRoute: each route's body, querystring, params and headers schemas get the default bounds;
 * `defaulted` gets "METHOD url part.field: rule" for each default given.
 */
export function boundRequestSchemas(route: RouteOptions, defaulted: string[] = []): void {
  const schema = route.schema as Schema | undefined;
  if (!schema) return;
  const bounded: Schema = { ...schema };
  const method = Array.isArray(route.method) ? route.method.join(",") : route.method;
  for (const part of ["body", "querystring", "params", "headers"]) {
    if (bounded[part] === undefined) continue;
    bounded[part] = copySchema(bounded[part]);
    boundSchema(bounded[part], `${method} ${route.url} ${part}`, defaulted);
  }
  route.schema = bounded;
}

const defaultedByApp = new WeakMap<FastifyInstance, string[]>();

/** The request fields of `app`'s routes that declared no bound of their own and got a default. */
export function defaultedBounds(app: FastifyInstance): readonly string[] {
  return defaultedByApp.get(app) ?? [];
}

/** Puts the layer on `app`: call before any route is registered. */
export function installInputLimits(app: FastifyInstance): void {
  const defaulted: string[] = [];
  defaultedByApp.set(app, defaulted);
  app.addHook("onRoute", (route) => boundRequestSchemas(route, defaulted));
  app.addHook("preHandler", refuseUnstorableInput);
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    if (jsonDepthExceeds(body as string, MAX_JSON_DEPTH)) {
      done(new InputLimitError("body", `must not nest arrays and objects deeper than ${MAX_JSON_DEPTH} levels`), undefined);
      return;
    }
    parseJson(request, body as string, done);
  });
}
