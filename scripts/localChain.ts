// The embedded chain: Hardhat 3's in-process EDR network, served as HTTP JSON-RPC on
// 127.0.0.1 so wallets and other processes can connect to it like any node.
import { createServer, type IncomingMessage, type Server } from "node:http";
import { network } from "hardhat";
import type { EIP1193Provider } from "viem";

export interface LocalChain {
  provider: EIP1193Provider;
  url: string;
  close(): Promise<void>;
}

interface JsonRpcRequest { jsonrpc?: string; id?: unknown; method?: unknown; params?: unknown }

export async function startLocalChain({ host = "127.0.0.1", port = 8545 } = {}): Promise<LocalChain> {
  const connection = await network.create();
  const provider = connection.provider as unknown as EIP1193Provider;
  const server = createServer((req, res) => {
    if (req.method !== "POST") {
      res.writeHead(405, { "content-type": "application/json" }).end('{"error":"POST JSON-RPC requests only"}');
      return;
    }
    readBody(req)
      .then(async (body) => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          return { jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error: body is not JSON" } };
        }
        return Array.isArray(parsed)
          ? Promise.all(parsed.map((r: JsonRpcRequest) => answer(provider, r)))
          : answer(provider, parsed as JsonRpcRequest);
      })
      .then((payload) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(payload)))
      .catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  try {
    await listen(server, host, port);
  } catch (err) {
    await connection.close();
    throw err;
  }
  const address = server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  return {
    provider,
    url: `http://${host}:${actualPort}`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await connection.close();
    },
  };
}

async function answer(provider: EIP1193Provider, request: JsonRpcRequest) {
  const id = request?.id ?? null;
  if (typeof request?.method !== "string") {
    return { jsonrpc: "2.0", id, error: { code: -32600, message: "Invalid request: method must be a string" } };
  }
  try {
    const result = await provider.request({ method: request.method, params: request.params } as never);
    return { jsonrpc: "2.0", id, result };
  } catch (err) {
    const e = err as { code?: number; message?: string; data?: unknown };
    return { jsonrpc: "2.0", id, error: { code: e.code ?? -32603, message: e.message ?? String(err), data: e.data } };
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") {
        reject(new Error(`chain: ${host}:${port} is already in use; stop what runs there, set CHAIN_PORT to another port, or set CHAIN_RPC_URL to use that chain`));
      } else reject(err);
    });
    server.listen(port, host, () => resolve());
  });
}
