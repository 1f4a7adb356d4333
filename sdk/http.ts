// Requests to the node's API. A problem+json answer becomes an EnergyClientError carrying the
// problem's code, field and detail as the node sent them; a node that cannot be reached is a
// retryable network_error.
import type { EnergyContext } from "./context.js";
import { EnergyClientError } from "./errors.js";

export interface ApiRequest {
  method: "GET" | "POST" | "DELETE";
  path: string;
  query?: Record<string, string | number | boolean | undefined> | undefined;
  body?: unknown;
  token?: string | undefined;
}

interface ProblemJson {
  code?: unknown;
  detail?: unknown;
  field?: unknown;
  title?: unknown;
}

export function apiUrl(ctx: EnergyContext, path: string, query?: ApiRequest["query"]): string {
  const url = new URL(`${ctx.apiUrl}${path}`);
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
  return url.toString();
}

export async function apiRequest<T>(ctx: EnergyContext, req: ApiRequest): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json, application/problem+json" };
  if (req.body !== undefined) headers["content-type"] = "application/json";
  if (req.token) headers.authorization = `Bearer ${req.token}`;
  let response: Response;
  try {
    response = await ctx.fetch(apiUrl(ctx, req.path, req.query), {
      method: req.method,
      headers,
      ...(req.body !== undefined ? { body: JSON.stringify(req.body, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) } : {}),
    });
  } catch (err) {
    throw new EnergyClientError({
      code: "network_error", source: "api", retryable: true, cause: err,
      detail: `cannot reach the node at ${ctx.apiUrl} (${(err as Error)?.cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error)?.message ?? String(err)})`,
    });
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let body: unknown;
  try {
    body = text === "" ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!response.ok) throw problemError(response.status, body, `${req.method} ${req.path}`);
  if (body === undefined) {
    throw new EnergyClientError({ code: "http_error", source: "api", status: response.status, detail: `${req.method} ${req.path} answered ${response.status} without a JSON body` });
  }
  return body as T;
}

/**
 * A GET whose body matters byte for byte (a delivery's evidence, whose hash is on chain): the
 * text exactly as the node sent it; a problem answer throws like apiRequest.
 */
export async function apiRequestText(ctx: EnergyContext, path: string): Promise<string> {
  let response: Response;
  try {
    response = await ctx.fetch(apiUrl(ctx, path), { method: "GET", headers: { accept: "application/json, application/problem+json" } });
  } catch (err) {
    throw new EnergyClientError({ code: "network_error", source: "api", retryable: true, cause: err, detail: `cannot reach the node at ${ctx.apiUrl} (${(err as Error)?.message ?? String(err)})` });
  }
  const text = await response.text();
  if (!response.ok) {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    throw problemError(response.status, body, `GET ${path}`);
  }
  return text;
}

function problemError(status: number, body: unknown, what: string): EnergyClientError {
  const p = (body && typeof body === "object" ? body : {}) as ProblemJson;
  const code = typeof p.code === "string" ? p.code : "http_error";
  const detail = typeof p.detail === "string" ? p.detail : `${what} answered HTTP ${status}${typeof p.title === "string" ? ` (${p.title})` : ""}`;
  return new EnergyClientError({
    code, detail, source: "api", status,
    field: typeof p.field === "string" ? p.field : undefined,
    retryable: status === 429 || status === 502 || status === 503 || status === 504,
  });
}
