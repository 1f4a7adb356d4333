// Providers that refuse ranges, in their own words, and that fail now and then: the backfill
// must shrink, grow back, retry, and still end equal to an index over a well-behaved endpoint.
// The provider is a thin JSON-RPC proxy in front of the embedded chain; its faults are seeded.
import { expect } from "chai";
import { createServer, type Server } from "node:http";
import { classifyRpcFailure, createChainRpc } from "../../indexer/sync/rpc.js";
import { createLogRangeSizer, isRangeRefusalMessage, parseRangeHint } from "../../indexer/sync-historical/logRange.js";
import { RpcError } from "../../indexer/errors.js";
import { databaseTargets, dumpTables, indexOnce, openTestDatabase, settleFills, startMarketChain, type MarketChain } from "./fixtures.js";
import { runScenario } from "./scenario.js";
import { mulberry32 } from "../../lib/random.js";

describe("indexer: provider range hints", () => {
  const cases: [string, ReturnType<typeof parseRangeHint>][] = [
    ["query returned more than 10000 results. Try with this block range [0x3D09000, 0x3D0AF2F].", { range: { fromBlock: 0x3d09000n, toBlock: 0x3d0af2fn }, maxBlocks: 0x3d0af2f - 0x3d09000 + 1 }],
    [
      "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of 10K logs in the response. Based on your parameters, this block range should work: [0x3d09000, 0x3d097cf]",
      { range: { fromBlock: 0x3d09000n, toBlock: 0x3d097cfn }, maxBlocks: 2000 },
    ],
    ["Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range", { maxBlocks: 2000 }],
    ["eth_getLogs is limited to a 10,000 range", { maxBlocks: 10_000 }],
    ["exceed maximum block range: 50000", { maxBlocks: 50_000 }],
    ["Maximum allowed number of requested blocks is 500", { maxBlocks: 500 }],
    ["requested too many blocks from 0 to 20000, maximum is set to 2048", { maxBlocks: 2048 }],
    ["ranges over 10000 blocks are not supported", { maxBlocks: 10_000 }],
    ["block range too large, range: 5001, max: 5000", { maxBlocks: 5000 }],
    ["query returned more than 10000 results", {}],
    ["block range is too wide", {}],
  ];
  for (const [message, hint] of cases) {
    it(`reads ${JSON.stringify(message.slice(0, 60))}`, () => {
      expect(isRangeRefusalMessage(message), "recognised as a range refusal").to.equal(true);
      expect(parseRangeHint(message)).to.deep.equal(hint);
    });
  }

  it("tells rate limits and outages (wait) from range refusals (shrink) and real errors (stop)", () => {
    expect(classifyRpcFailure("eth_getLogs", { message: "query returned more than 10000 results" }).kind).to.equal("range");
    expect(classifyRpcFailure("eth_getLogs", { message: "no answer", timeout: true }).kind).to.equal("range");
    expect(classifyRpcFailure("eth_getLogs", { httpStatus: 413, message: "Payload Too Large" }).kind).to.equal("range");
    expect(classifyRpcFailure("eth_getLogs", { code: -32005, message: "daily request count exceeded, request rate limited" }).kind).to.equal("transient");
    expect(classifyRpcFailure("eth_blockNumber", { httpStatus: 429, message: "Too Many Requests" }).kind).to.equal("transient");
    expect(classifyRpcFailure("eth_blockNumber", { httpStatus: 503, message: "Service Unavailable" }).kind).to.equal("transient");
    expect(classifyRpcFailure("eth_blockNumber", { network: true, message: "fetch failed (ECONNREFUSED)" }).kind).to.equal("transient");
    expect(classifyRpcFailure("eth_getBlockByNumber", { code: -32000, message: "header not found" }).kind).to.equal("transient");
    expect(classifyRpcFailure("eth_getLogs", { code: -32601, message: "the method eth_getLogs does not exist/is not available" }).kind).to.equal("permanent");
    expect(classifyRpcFailure("eth_chainId", { httpStatus: 401, message: "invalid project id" }).kind).to.equal("permanent");
  });

  it("shrinks to the provider's figure, halves without one, grows back after successes, never past a stated maximum", () => {
    const sizer = createLogRangeSizer({ initial: 1_000, max: 8_000 });
    expect(sizer.refused(1_000, {})).to.equal(true);
    expect(sizer.size).to.equal(500);
    sizer.refused(500, { range: { fromBlock: 10n, toBlock: 109n } });
    expect(sizer.size).to.equal(100);
    sizer.succeeded();
    expect(sizer.size).to.equal(100);
    sizer.succeeded();
    expect(sizer.size).to.equal(200);
    sizer.refused(200, { maxBlocks: 150 });
    expect([sizer.size, sizer.providerMax]).to.deep.equal([150, 150]);
    for (let i = 0; i < 10; i++) sizer.succeeded();
    expect(sizer.size).to.equal(150);
    // A "proposal" as large as what was refused must still make the next try smaller.
    sizer.refused(150, { range: { fromBlock: 0n, toBlock: 499n } });
    expect(sizer.size).to.equal(75);
    const tiny = createLogRangeSizer({ initial: 1, max: 10 });
    expect(tiny.refused(1, {})).to.equal(false);
  });
});

/** The proxy's faults, from a seed: one provider dialect per refusal, and outages. */
const random = mulberry32;

type Dialect = "proposed" | "maxStated" | "noHint" | "http413";

interface ProxyStats {
  rangeRefusals: number;
  tooManyResults: number;
  transient: number;
  getLogsServed: number;
}

async function startFaultyProxy(upstream: string, seed: number, dialect: Dialect, { maxBlocks = 6, maxResults = 12, faultRate = 0.08 } = {}) {
  const rand = random(seed);
  const stats: ProxyStats = { rangeRefusals: 0, tooManyResults: 0, transient: 0, getLogsServed: 0 };
  const forward = async (body: unknown) => {
    const res = await fetch(upstream, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    return res.json() as Promise<{ id: unknown; result?: unknown[] }>;
  };
  const answer = async (req: { id: unknown; method: string; params: [{ fromBlock?: string; toBlock?: string; blockHash?: string }] }): Promise<{ status?: number; json: unknown }> => {
    const error = (code: number, message: string) => ({ json: { jsonrpc: "2.0", id: req.id, error: { code, message } } });
    const filter = req.params?.[0];
    if (req.method === "eth_getLogs" && filter?.fromBlock && filter.toBlock) {
      const from = BigInt(filter.fromBlock);
      const to = BigInt(filter.toBlock);
      if (to - from + 1n > BigInt(maxBlocks)) {
        stats.rangeRefusals++;
        const end = `0x${(from + BigInt(maxBlocks) - 1n).toString(16)}`;
        if (dialect === "proposed") return error(-32005, `query returned more than 10000 results. Try with this block range [${filter.fromBlock}, ${end}].`);
        if (dialect === "maxStated") return error(-32602, `eth_getLogs is limited to a ${maxBlocks} range`);
        if (dialect === "http413") return { status: 413, json: { jsonrpc: "2.0", id: req.id, error: { code: -32000, message: "request entity too large" } } };
        return error(-32600, "block range is too wide");
      }
      const upstreamAnswer = await forward(req);
      if ((upstreamAnswer.result?.length ?? 0) > maxResults) {
        stats.tooManyResults++;
        return error(-32005, "query returned more than 10000 results");
      }
      stats.getLogsServed++;
      return { json: upstreamAnswer };
    }
    return { json: await forward(req) };
  };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => {
      void (async () => {
        if (rand() < faultRate) {
          stats.transient++;
          if (rand() < 0.5) return response.writeHead(503).end("Service Unavailable");
          return response.writeHead(429, { "content-type": "application/json" }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32005,"message":"rate limit exceeded"}}');
        }
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        const answers = Array.isArray(body) ? await Promise.all(body.map(answer)) : [await answer(body)];
        const status = answers.find((a) => a.status)?.status ?? 200;
        const payload = Array.isArray(body) ? answers.map((a) => a.json) : answers[0]!.json;
        response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(payload));
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}`, stats, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe("indexer: a provider that refuses large ranges and fails now and then", function () {
  let m: MarketChain;
  before(async () => {
    m = await startMarketChain();
    await runScenario(m);
    for (let i = 0; i < 3; i++) {
      await settleFills(m, Array.from({ length: 8 }, (_, j) => ({ buyer: m.buyers[j % 5]!, seller: m.sellers[(j + i) % 5]!, energyWh: BigInt(100 + 10 * i + j) })));
    }
  });
  after(async () => {
    await m?.close();
  });

  for (const target of databaseTargets) {
    describe(`on ${target.name}`, () => {
      let expected: Record<string, unknown[]>;
      before(async () => {
        const direct = await openTestDatabase(target);
        await indexOnce(m, direct.db, { finalityDepth: 5 });
        expected = await dumpTables(direct.db);
        await direct.close();
      });

      const dialects: Dialect[] = ["proposed", "maxStated", "noHint", "http413"];
      dialects.forEach((dialect, i) => {
        it(`completes the backfill when ranges are refused as "${dialect}" (seed ${i + 1})`, async () => {
          const proxy = await startFaultyProxy(m.url, i + 1, dialect);
          const viaProxy = await openTestDatabase(target);
          try {
            const rpc = createChainRpc({ url: proxy.url, maxRetries: 12, backoffMs: 1, maxBackoffMs: 5, batchSize: 10 });
            await indexOnce(m, viaProxy.db, { rpc, logRange: { initial: 1_000, max: 1_000 }, finalityDepth: 5 });
            expect(await dumpTables(viaProxy.db)).to.deep.equal(expected);
            const s = proxy.stats;
            for (const [name, count] of Object.entries(s)) expect(count, `${name}: ${JSON.stringify(s)}`).to.be.greaterThan(0);
          } finally {
            await proxy.close();
            await viaProxy.close();
          }
        });
      });
    });
  }

  it("stops with the provider's words on a permanent error, and after its retries on an outage", async () => {
    const { db, close } = await openTestDatabase(databaseTargets[0]!);
    const refusing = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end('{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"the method eth_getBlockByNumber does not exist/is not available"}}'));
    await new Promise<void>((resolve) => refusing.listen(0, "127.0.0.1", () => resolve()));
    try {
      const port = (refusing.address() as { port: number }).port;
      let error: unknown;
      await indexOnce(m, db, { rpc: createChainRpc({ url: `http://127.0.0.1:${port}`, maxRetries: 3, backoffMs: 1 }) }).catch((e: unknown) => (error = e));
      expect(error).to.be.instanceOf(RpcError);
      expect((error as RpcError).retryable).to.equal(false);
      expect((error as Error).message).to.match(/eth_getBlockByNumber: the method eth_getBlockByNumber does not exist/);

      error = undefined;
      await new Promise<void>((resolve) => refusing.close(() => resolve()));
      await indexOnce(m, db, { rpc: createChainRpc({ url: `http://127.0.0.1:${port}`, maxRetries: 2, backoffMs: 1 }) }).catch((e: unknown) => (error = e));
      expect(error).to.be.instanceOf(RpcError);
      expect((error as RpcError).retryable).to.equal(true);
      expect((error as Error).message).to.match(/gave up after 3 attempts/);
    } finally {
      if (refusing.listening) refusing.close();
      await close();
    }
  });
});
