// Serve web/dist on 127.0.0.1 and forward /v1 (HTTP and WebSocket upgrades) and /healthz to the Worker,
// so the app and the API share one origin. Only used while the Worker does not serve the assets itself
// (wrangler.toml without [assets]); the test prefers the Worker when it does.
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer, request, type IncomingMessage } from "node:http";
import { connect } from "node:net";
import { extname, join, normalize } from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
  ".webmanifest": "application/manifest+json",
};

const isApi = (url: string) => url.startsWith("/v1/") || url === "/v1" || url.startsWith("/healthz");

function rawHead(req: IncomingMessage, host: string): string {
  let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    head += `${name}: ${name.toLowerCase() === "host" ? host : req.rawHeaders[i + 1]}\r\n`;
  }
  return `${head}\r\n`;
}

export async function serveApp(apiUrl: string, dist: string): Promise<{ url: string; close(): Promise<void> }> {
  const api = new URL(apiUrl);
  const server = createServer((req, res) => {
    const url = req.url ?? "/";
    if (isApi(url)) {
      const upstream = request(
        { host: api.hostname, port: api.port, method: req.method, path: url, headers: { ...req.headers, host: api.host } },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      upstream.on("error", () => res.writeHead(502).end());
      req.pipe(upstream);
      return;
    }
    const path = normalize(join(dist, decodeURIComponent(url.split("?")[0]!)));
    const file = path.startsWith(dist) && existsSync(path) && statSync(path).isFile() ? path : join(dist, "index.html");
    res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream", "Cache-Control": "no-store" });
    createReadStream(file).pipe(res);
  });
  server.on("upgrade", (req, socket, head) => {
    if (!isApi(req.url ?? "")) return socket.destroy();
    const upstream = connect(Number(api.port), api.hostname, () => {
      upstream.write(rawHead(req, api.host));
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    const end = () => {
      upstream.destroy();
      socket.destroy();
    };
    upstream.on("error", end);
    socket.on("error", end);
    upstream.on("close", end);
    socket.on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
