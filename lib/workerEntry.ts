// How to start one of our modules as a worker thread. TypeScript runs through tsx (there is no
// build step), and a worker does not inherit loader hooks registered in-process (hardhat test
// registers tsx that way), so it imports tsx itself; resolved from here, so its cwd does not matter.

/** The worker module `name` beside the module at `base` (its import.meta.url), and how to run it. */
export function workerEntry(name: string, base: string): { url: URL; execArgv?: string[] } {
  if (!base.endsWith(".ts")) return { url: new URL(`./${name}.js`, base) };
  return { url: new URL(`./${name}.ts`, base), execArgv: ["--import", import.meta.resolve("tsx/esm")] };
}
