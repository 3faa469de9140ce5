/**
 * Serves `dist/` under a sub-path, the way GitHub Pages serves a project site
 * (`https://user.github.io/moe-balance-lab/`): clean URLs (`/z-loss` reads
 * `z-loss.html`), the site's own 404.html with status 404 for anything
 * missing, no COOP/COEP headers, as Pages sends none, and Pages' caching
 * headers (`Cache-Control: max-age=600`, an `ETag` and `Last-Modified`,
 * answered with 304 when the browser revalidates) and each file's
 * `Content-Length`, so that timings of a
 * second visit mean what they mean on Pages. Requests outside the
 * base path get 404 and are recorded, so that tests catch root-absolute URLs.
 * Used by the browser tests, the bench, the screenshot script and
 * `npm run preview`.
 */
import { createServer, type Server } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import type { AddressInfo } from "node:net";

const types: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".mjs": "text/javascript",
  ".onnx": "application/octet-stream",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff2": "font/woff2",
  ".woff": "font/woff",
  ".ttf": "font/ttf",
  ".csv": "text/csv",
  ".txt": "text/plain",
};

export interface StaticSite {
  url: string;
  outside: string[];
  close(): Promise<void>;
}

export async function serveDist(root: string, base = "/moe-balance-lab/", port = 0): Promise<StaticSite> {
  const outside: string[] = [];
  const server: Server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname);
    if (!path.startsWith(base)) {
      outside.push(path);
      response.writeHead(404).end("outside the base path");
      return;
    }
    let file = normalize(join(root, path.slice(base.length)));
    if (!file.startsWith(normalize(root))) return void response.writeHead(403).end();
    try {
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
    } catch {
      // Framework writes clean URLs as page.html
      file = file.endsWith(".html") ? file : `${file}.html`;
    }
    try {
      const info = await stat(file);
      const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
      const headers = {
        "content-type": types[extname(file)] ?? "application/octet-stream",
        "cache-control": "max-age=600",
        etag,
        "last-modified": new Date(info.mtimeMs).toUTCString(),
      };
      if (request.headers["if-none-match"] === etag) return void response.writeHead(304, headers).end();
      const body = await readFile(file);
      // Pages announces a file's length (Node would otherwise send it chunked, with none).
      response.writeHead(200, { ...headers, "content-length": body.byteLength }).end(body);
    } catch {
      const notFound = await readFile(join(root, "404.html")).catch(() => null);
      if (notFound) response.writeHead(404, { "content-type": types[".html"] }).end(notFound);
      else response.writeHead(404).end("not found");
    }
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, "127.0.0.1", resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}${base}`,
    outside,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
