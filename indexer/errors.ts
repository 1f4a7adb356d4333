// The indexer's errors. Each says what stopped and what to do; `retryable` tells the sync loop
// whether waiting can help. Anything not retryable stops the indexer rather than writing rows
// it cannot vouch for.
import { BaseError } from "../lib/errors.js";

/** A configuration variable broke a rule: names the variable, its value and the rule. */
export class IndexerConfigError extends BaseError {
  override name = "IndexerConfigError";
  constructor(readonly variable: string, rule: string, value: string | undefined) {
    super(`${variable}=${JSON.stringify(value ?? "")}: ${rule}`, { code: "indexer_config_invalid", field: variable });
  }
}

/** The JSON-RPC provider answered with an error that waiting will not fix, or kept failing. */
export class RpcError extends BaseError {
  override name = "RpcError";
  constructor(readonly method: string, shortMessage: string, options: { retryable: boolean; cause?: unknown; details?: string }) {
    super(`${method}: ${shortMessage}`, { code: options.retryable ? "rpc_unavailable" : "rpc_failed", ...options });
  }
}

/** The provider refused an eth_getLogs range as too large; `hint` is the range size it suggested. */
export class LogRangeTooLargeError extends BaseError {
  override name = "LogRangeTooLargeError";
  constructor(readonly providerMessage: string, readonly hint: RangeHint, options: { cause?: unknown } = {}) {
    super(`eth_getLogs range refused: ${providerMessage}`, { code: "log_range_too_large", retryable: true, ...options });
  }
}

/** What a provider's refusal says about the range it would accept. */
export interface RangeHint {
  /** A block count the provider says it accepts (its maximum, or the size of the range it proposed). */
  maxBlocks?: number;
  /** The exact range the provider proposed, when it named one. */
  range?: { fromBlock: bigint; toBlock: bigint };
}

/** A reorg replaced more blocks than the finality depth: the indexer stops instead of guessing. */
export class DeepReorgError extends BaseError {
  override name = "DeepReorgError";
  constructor(readonly checkpointBlock: bigint, readonly finalityDepth: number, details: string) {
    super(
      `reorg deeper than the finality depth (${finalityDepth} blocks) below block ${checkpointBlock}; ` +
        "the indexed data may be on a dropped branch: re-index from scratch, or raise FINALITY_DEPTH if this chain reorgs that deep",
      { code: "deep_reorg", details },
    );
  }
}

/** The configured contracts or chain do not match what the provider serves. */
export class ChainMismatchError extends BaseError {
  override name = "ChainMismatchError";
  constructor(shortMessage: string) {
    super(shortMessage, { code: "chain_mismatch" });
  }
}
