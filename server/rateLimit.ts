// Rate limits per client IP and, once signed in, per wallet address: token buckets refilled
// continuously, checked in O(1) per request. Over the limit → 429 problem with Retry-After.
import type { FastifyReply, FastifyRequest } from "fastify";
import { problemOf, sendProblem } from "./problems.js";

export interface RateLimitOptions {
  /** Requests per minute per IP; 0 turns the limit off. */
  perIpPerMinute: number;
  /** Requests per minute per signed-in address; 0 turns the limit off. */
  perAddressPerMinute: number;
  clock: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

function createBuckets(perMinute: number, clock: () => number) {
  const buckets = new Map<string, Bucket>();
  const ratePerMs = perMinute / 60_000;
  let sweepAt = 0;
  /** Milliseconds until a request is allowed, 0 when it is allowed now (and counted). */
  return (key: string): number => {
    const now = clock();
    if (now > sweepAt) {
      // Full buckets carry no information: forget them so memory follows active clients.
      for (const [k, b] of buckets) if (b.tokens + (now - b.at) * ratePerMs >= perMinute) buckets.delete(k);
      sweepAt = now + 60_000;
    }
    const bucket = buckets.get(key) ?? { tokens: perMinute, at: now };
    bucket.tokens = Math.min(perMinute, bucket.tokens + (now - bucket.at) * ratePerMs);
    bucket.at = now;
    buckets.set(key, bucket);
    if (bucket.tokens < 1) return Math.ceil((1 - bucket.tokens) / ratePerMs);
    bucket.tokens -= 1;
    return 0;
  };
}

export function createRateLimits(options: RateLimitOptions) {
  const byIp = options.perIpPerMinute > 0 ? createBuckets(options.perIpPerMinute, options.clock) : undefined;
  const byAddress = options.perAddressPerMinute > 0 ? createBuckets(options.perAddressPerMinute, options.clock) : undefined;
  const refuse = (reply: FastifyReply, waitMs: number, what: string) => {
    reply.header("retry-after", Math.max(1, Math.ceil(waitMs / 1000)));
    return sendProblem(reply, problemOf("rate_limited", `${what}; retry in ${Math.ceil(waitMs / 1000)} s`));
  };
  return {
    /** onRequest: the per-IP limit (before any work is done); undefined when off. */
    ip: byIp && (async (request: FastifyRequest, reply: FastifyReply) => {
      const wait = byIp(request.ip);
      if (wait > 0) return refuse(reply, wait, `more than ${options.perIpPerMinute} requests a minute from ${request.ip}`);
    }),
    /** preHandler: the per-address limit, once the token is known; undefined when off. */
    address: byAddress && (async (request: FastifyRequest, reply: FastifyReply) => {
      if (!request.account) return;
      const wait = byAddress(request.account.address);
      if (wait > 0) return refuse(reply, wait, `more than ${options.perAddressPerMinute} requests a minute from ${request.account.address}`);
    }),
  };
}
