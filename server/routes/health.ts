// GET /healthz (is every part answering?) and GET /metrics (Prometheus text exposition).
// Probes and gauges are passed in by the node, so this file knows no part's internals.
import type { FastifyInstance } from "fastify";

export type Probe = () => Promise<{ ok: boolean; detail?: string }>;
export type Gauges = () => Record<string, number>;

export interface HealthOptions {
  probes: Record<string, Probe>;
  gauges: Gauges;
}

/** What the node reads of its matching engine for the "engine" probe (engineProbe). */
export interface EngineHealth {
  status: "running" | "failed";
  /** Why it stopped, when it did. */
  failure?: string | undefined;
  /** Books a step threw on (engine/engineState.ts: quarantineBook). */
  quarantined: readonly { zone: string; intervalStart: number; seq: number; opType: string; error: string }[];
}

const LISTED_BOOKS = 5;

/**
 * The engine's health: ok only while it takes orders and no book is quarantined. Stopped, it
 * refuses every order (engine_failed) until a restart; with quarantined books it still trades,
 * but an error took those books out of the market and someone has to look at it: both degrade.
 */
export function engineProbe(engine: EngineHealth): { ok: boolean; detail: string } {
  const parts: string[] = [];
  if (engine.status === "failed") parts.push(`stopped: every order is refused (engine_failed) until a restart; ${engine.failure ?? "reason unknown"}`);
  const q = engine.quarantined;
  if (q.length > 0) {
    const listed = q.slice(0, LISTED_BOOKS).map((b) => `${b.zone} ${new Date(b.intervalStart * 1000).toISOString()} (operation ${b.seq}, ${b.opType}: ${b.error})`);
    if (q.length > LISTED_BOOKS) listed.push(`and ${q.length - LISTED_BOOKS} more`);
    parts.push(`${q.length} book${q.length === 1 ? "" : "s"} quarantined: ${listed.join("; ")}`);
  }
  if (parts.length === 0) return { ok: true, detail: "running" };
  return { ok: false, detail: parts.join(". ") };
}

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export async function healthRoutes(app: FastifyInstance, options: HealthOptions): Promise<void> {
  const requests = new Map<string, number>();
  const durations = new Map<string, { buckets: number[]; sum: number; count: number }>();

  // Counted at the root so every route (and every 404) shows up, labelled by route pattern.
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    const key = `method="${request.method}",route="${route}",status="${reply.statusCode}"`;
    requests.set(key, (requests.get(key) ?? 0) + 1);
    const seconds = reply.elapsedTime / 1000;
    const dkey = `method="${request.method}",route="${route}"`;
    let d = durations.get(dkey);
    if (!d) durations.set(dkey, (d = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) d.buckets[i]!++;
    d.sum += seconds;
    d.count++;
  });

  app.get("/healthz", {
    schema: {
      tags: ["health"],
      summary: "Liveness of the node and its parts",
      response: {
        200: { type: "object", properties: { status: { type: "string" }, checks: { type: "object", additionalProperties: { type: "object", properties: { ok: { type: "boolean" }, detail: { type: "string" } } } } } },
        503: { type: "object", properties: { status: { type: "string" }, checks: { type: "object", additionalProperties: { type: "object", properties: { ok: { type: "boolean" }, detail: { type: "string" } } } } } },
      },
    },
  }, async (_request, reply) => {
    const checks: Record<string, { ok: boolean; detail?: string }> = {};
    await Promise.all(Object.entries(options.probes).map(async ([name, probe]) => {
      try {
        checks[name] = await Promise.race([probe(), new Promise<{ ok: boolean; detail: string }>((resolve) => setTimeout(() => resolve({ ok: false, detail: "no answer within 2 s" }), 2_000).unref())]);
      } catch (err) {
        checks[name] = { ok: false, detail: (err as Error).message.split("\n")[0]! };
      }
    }));
    const ok = Object.values(checks).every((c) => c.ok);
    return reply.code(ok ? 200 : 503).send({ status: ok ? "ok" : "degraded", checks });
  });

  app.get("/metrics", { schema: { tags: ["health"], summary: "Prometheus metrics", produces: ["text/plain"] } }, async (_request, reply) => {
    const lines: string[] = [];
    lines.push("# HELP http_requests_total HTTP requests by method, route and status.", "# TYPE http_requests_total counter");
    for (const [labels, n] of requests) lines.push(`http_requests_total{${labels}} ${n}`);
    lines.push("# HELP http_request_duration_seconds HTTP request duration.", "# TYPE http_request_duration_seconds histogram");
    for (const [labels, d] of durations) {
      BUCKETS.forEach((b, i) => lines.push(`http_request_duration_seconds_bucket{${labels},le="${b}"} ${d.buckets[i]}`));
      lines.push(`http_request_duration_seconds_bucket{${labels},le="+Inf"} ${d.count}`);
      lines.push(`http_request_duration_seconds_sum{${labels}} ${d.sum}`, `http_request_duration_seconds_count{${labels}} ${d.count}`);
    }
    for (const [name, value] of Object.entries(options.gauges())) {
      lines.push(`# TYPE ${name} gauge`, `${name} ${value}`);
    }
    return reply.type("text/plain; version=0.0.4").send(lines.join("\n") + "\n");
  });
}

// Registered without encapsulation so the request counter sees every route of the app.
(healthRoutes as unknown as Record<symbol, boolean>)[Symbol.for("skip-override")] = true;
