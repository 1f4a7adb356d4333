// Builds the dashboard (web/) into web/dist with Vite's API: `npm run build:web`. The node
// serves web/dist at `/` (server/routes/web.ts); the dashboard's browser test calls buildWeb()
// itself so it always checks the current sources.
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "vite";

const webDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "web");

/** Builds web/ into web/dist; returns the output folder. */
export async function buildWeb(): Promise<string> {
  await build({ configFile: path.join(webDir, "vite.config.ts"), root: webDir, logLevel: "warn" });
  return path.join(webDir, "dist");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const started = performance.now();
  const out = await buildWeb();
  process.stdout.write(`dashboard built into ${path.relative(process.cwd(), out)} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}
