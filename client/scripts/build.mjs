// Build the publishable package: one ESM bundle (the shared protocol from ../src/protocol is bundled
// in, so the package stands alone) plus declarations, with relative specifiers made Node-ESM-safe.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { build } from "vite";

const root = resolve(import.meta.dirname, "..");
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });

await build({
  configFile: false,
  root,
  logLevel: "warn",
  build: {
    lib: { entry: join(root, "src/index.ts"), formats: ["es"], fileName: () => "index.js" },
    outDir: dist,
    emptyOutDir: false,
    sourcemap: true,
    minify: false,
    target: "es2022",
    rolldownOptions: { external: ["valibot"] },
  },
});

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });

// The shared protocol uses bundler-style specifiers ("./errors"); Node16/NodeNext consumers need "./errors.js".
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (path.endsWith(".d.ts")) {
      const text = readFileSync(path, "utf8");
      const fixed = text.replace(/(from\s+|import\()(["'])(\.{1,2}\/[^"']+)\2/g, (all, pre, q, spec) => {
        if (/\.(js|ts)$/.test(spec)) return `${pre}${q}${spec.replace(/\.ts$/, ".js")}${q}`;
        const base = resolve(dirname(path), spec);
        if (existsSync(`${base}.d.ts`)) return `${pre}${q}${spec}.js${q}`;
        if (existsSync(join(base, "index.d.ts"))) return `${pre}${q}${spec}/index.js${q}`;
        return all;
      });
      if (fixed !== text) writeFileSync(path, fixed);
    }
  }
}
walk(join(dist, "types"));
console.log("built client/dist");
