// The live simulation's clock: an instant (unix milliseconds) and a way to sleep until a later
// one that a stop signal cuts short. The CLI uses wall time, shifted by the node's own offset
// when the node runs on another clock (NODE_CLOCK=chain); a test passes the node's clock, which
// it moves forward, and the sleeper notices within one poll.

export interface LiveClock {
  /** Unix milliseconds. */
  now(): number;
  /** Resolves once now() >= unixMs, or at once when `signal` aborts (it never rejects). */
  sleepUntil(unixMs: number, signal: AbortSignal): Promise<void>;
}

export interface CreateLiveClockOptions {
  /** Longest real-time wait before looking at now() again, ms. Default 1,000: a clock that jumps is noticed within it. */
  pollMs?: number;
}

/** A clock over `now` (default wall time). */
export function createLiveClock(now: () => number = Date.now, options: CreateLiveClockOptions = {}): LiveClock {
  const pollMs = options.pollMs ?? 1_000;
  return {
    now,
    async sleepUntil(unixMs, signal) {
      while (!signal.aborted) {
        const left = unixMs - now();
        if (left <= 0) return;
        await delay(Math.min(left, pollMs), signal);
      }
    },
  };
}

/** Waits `ms` of real time; resolves early (never rejects) when `signal` aborts, leaving no timer behind. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
