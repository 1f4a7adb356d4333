// A signature worker (worker_threads): digests and recovers the signers of batches of orders for
// one market, with the same function intake runs on the main thread (createOrderRecoverer), and
// answers each batch with one message. Started by createSignaturePool.ts.
import { parentPort, workerData } from "node:worker_threads";
import { createOrderRecoverer } from "./orderSignature.js";
import { decodeRecoveryRequest, encodeRecoveryResult, type RecoveryBatchMessage, type RecoveryWorkerData, type RecoveryWorkerMessage } from "./signatureBatch.js";

const port = parentPort;
if (!port) throw new Error("recoverWorker.ts runs as a worker thread (see createSignaturePool.ts)");

const recover = createOrderRecoverer((workerData as RecoveryWorkerData).domain);

port.on("message", ({ seq, lines }: RecoveryBatchMessage) => {
  const results = lines.split("\n").map((line) => {
    try {
      const { order, signature } = decodeRecoveryRequest(line);
      return encodeRecoveryResult(recover(order, signature));
    } catch (err) {
      return encodeRecoveryResult(err instanceof Error ? err : new Error(String(err)));
    }
  });
  port.postMessage({ seq, results: results.join("\n") } satisfies RecoveryWorkerMessage);
});
port.postMessage({ ready: true } satisfies RecoveryWorkerMessage);
