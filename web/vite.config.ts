// The dashboard's build: plain TypeScript + uPlot + viem bundled into web/dist, served by the
// node at `/` (server/routes/web.ts). No CDN: everything the page loads comes from the node.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  root,
  base: "/",
  logLevel: "warn",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 1_500,
  },
  server: {
    // `vite` dev server against a node on :8080 (npm start) (the API and the WebSocket).
    proxy: { "/v1": { target: "http://127.0.0.1:8080", ws: true }, "/docs": "http://127.0.0.1:8080" },
  },
});
