// How many blocks one eth_getLogs call asks for. Providers cap ranges by block count (often
// 2,000 or 10,000) or by result count (10,000 logs), and say so in many dialects; some propose
// the range that would work. The size shrinks on a refusal, to the provider's figure when it
// gave one, and grows back after a run of successes, never above a maximum the provider named.
// It also follows how dense the logs are: a range that brought far more than `targetLogs`
// makes the next one smaller, so responses stay well under result caps, memory stays bounded,
// and fetching the next range overlaps writing the last one.
import type { RangeHint } from "../errors.js";

export interface LogRangeSizer {
  /** Blocks to ask for next. */
  readonly size: number;
  /** The provider's stated maximum, once it named one. */
  readonly providerMax: number | undefined;
  /** The provider answered `requested` blocks with `logs` logs. */
  succeeded(requested?: number, logs?: number): void;
  /** The provider refused `requested` blocks; returns false when even one block was refused. */
  refused(requested: number, hint: RangeHint): boolean;
}

export interface LogRangeSizerParameters {
  initial: number;
  max: number;
  /** Successes in a row before the size doubles. */
  growAfter?: number;
  /** Logs per range to aim for. */
  targetLogs?: number;
}

export function createLogRangeSizer({ initial, max, growAfter = 2, targetLogs = 5_000 }: LogRangeSizerParameters): LogRangeSizer {
  let size = Math.max(1, Math.min(initial, max));
  let providerMax: number | undefined;
  let streak = 0;
  return {
    get size() {
      return size;
    },
    get providerMax() {
      return providerMax;
    },
    succeeded(requested, logs) {
      if (requested !== undefined && logs !== undefined && logs > targetLogs) {
        // Dense blocks: aim the next range at the target, but keep at least one block.
        streak = 0;
        size = Math.max(1, Math.min(size, Math.floor((requested * targetLogs) / logs)));
        return;
      }
      streak += 1;
      if (streak < growAfter) return;
      streak = 0;
      // Growing must not overshoot the target either: at most what the density seen allows.
      const dense = requested !== undefined && logs !== undefined && logs > 0 ? Math.floor((requested * targetLogs) / logs) : Infinity;
      size = Math.max(1, Math.min(size * 2, Math.max(size, dense), providerMax ?? max, max));
    },
    refused(requested, hint) {
      streak = 0;
      if (requested <= 1) return false;
      let next: number;
      if (hint.range) {
        // A proposed range reflects how dense the logs are here, not a fixed cap.
        next = Number(hint.range.toBlock - hint.range.fromBlock + 1n);
      } else if (hint.maxBlocks !== undefined) {
        providerMax = Math.max(1, hint.maxBlocks);
        next = providerMax;
      } else {
        next = Math.floor(requested / 2);
      }
      // Whatever the provider said, the next try must be smaller than the refused one.
      if (!(next >= 1 && next < requested)) next = Math.floor(requested / 2);
      size = Math.max(1, next);
      return true;
    },
  };
}

const RATE_LIMIT = /rate.?limit|too many requests|requests? per (?:second|minute)|exceeded .*(?:quota|capacity|credits)|daily request count/i;
const RANGE_REFUSAL =
  /block range|range (?:is )?too|too (?:large|wide|big|many blocks)|more than \d[\d,]* (?:results|logs|blocks)|response size|exceed(?:s|ed)? (?:the )?max|max(?:imum)? (?:block )?range|limited to|ranges? over|returned more than|query timeout|query timed out|too many (?:results|logs)|log response|result set too large|requested too many blocks|number of (?:requested )?blocks/i;

/** Whether a provider message is about the rate of calls (wait) rather than their size (shrink). */
export function isRateLimitMessage(message: string): boolean {
  return RATE_LIMIT.test(message);
}

/** Whether a provider message refuses an eth_getLogs call for its range or result size. */
export function isRangeRefusalMessage(message: string): boolean {
  return !isRateLimitMessage(message) && RANGE_REFUSAL.test(message);
}

/**
 * Reads what a refusal says about an acceptable range: a proposed `[from, to]` (Infura,
 * Alchemy) or a block maximum ("limited to a 10,000 range", "up to a 2K block range",
 * "maximum block range: 5000", "max is 500 blocks"). A result-count cap ("more than 10000
 * results") names no block figure, so it yields no hint and the caller halves.
 */
export function parseRangeHint(message: string): RangeHint {
  const proposed = /\[\s*(0x[0-9a-f]+|\d+)\s*,\s*(0x[0-9a-f]+|\d+)\s*\]/i.exec(message);
  if (proposed) {
    const fromBlock = BigInt(proposed[1]!);
    const toBlock = BigInt(proposed[2]!);
    if (toBlock >= fromBlock) return { range: { fromBlock, toBlock }, maxBlocks: Number(toBlock - fromBlock + 1n) };
  }
  const patterns = [
    /up to (?:a )?(\d[\d,_]*k?)[ -]block range/i,
    /limited to (?:a |an )?(\d[\d,_]*k?)(?:[ -]block)? range/i,
    /max(?:imum)?(?: allowed)?(?: block)? range(?: is| of)?(?: set to)?\s*[:=]?\s*(\d[\d,_]*k?)/i,
    /max(?:imum)?(?: allowed)? number of (?:requested )?blocks(?: is)?\s*[:=]?\s*(\d[\d,_]*k?)/i,
    /max(?:imum)? is (?:set to )?(\d[\d,_]*k?)/i,
    /(?:ranges? over|more than|greater than|exceeds?|over) (\d[\d,_]*k?) blocks/i,
    /(\d[\d,_]*k?) blocks? (?:max(?:imum)?|limit)/i,
    /range[^\d]{0,20}\d[\d,_]*,? max(?:imum)?\s*[:=]?\s*(\d[\d,_]*)/i,
  ];
  for (const pattern of patterns) {
    const m = pattern.exec(message);
    if (m) {
      const n = parseCount(m[1]!);
      if (n !== undefined && n > 0) return { maxBlocks: n };
    }
  }
  return {};
}

function parseCount(text: string): number | undefined {
  const k = /k$/i.test(text);
  const digits = text.replace(/[,_]/g, "").replace(/k$/i, "");
  if (!/^\d+$/.test(digits)) return undefined;
  const n = Number(digits) * (k ? 1000 : 1);
  return Number.isSafeInteger(n) ? n : undefined;
}
