// The browser app: Preact components with signals on the SDK, built into web/dist, which the Worker
// serves as static assets. `vite --config web/vite.config.ts` also works against a running
// `wrangler dev` on :8787 (API and sockets are proxied).
import { defineConfig } from "vite";

export default defineConfig({
  root: import.meta.dirname,
  base: "/",
  // JSX through Vite's own transformer (no preset plugin): the automatic runtime from preact/jsx-runtime.
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: true,
  },
  server: {
    host: "127.0.0.1",
    proxy: {
      "/v1": { target: "http://127.0.0.1:8787", ws: true },
      "/healthz": "http://127.0.0.1:8787",
    },
  },
});
