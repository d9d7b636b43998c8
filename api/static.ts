/**
 * The status panel's files for the uWS front end: `/`, `/status.html`, `/panel.css`, `/panel.js` and the
 * uPlot dist files under `/vendor/uplot/`.
 *
 * Every file is read once, when `attachStatic` is called, into memory together with a gzip copy and a
 * strong ETag: a request never touches the disk. Only the exact paths listed in `PANEL_FILES` are routes
 * (no wildcard, no path joined from the URL), so a request can only ever get one of those bytes: directory
 * traversal has nothing to walk. The HTML refers to the assets as `panel.js?v=<etag>`; a request carrying
 * the current version may be cached for a year (`immutable`), anything else revalidates (`no-cache` +
 * ETag → 304). Cold path: allocates per request (headers), never blocks.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { engineError } from '../engine/errors.ts';

export interface StaticOptions {
  /** Folder holding status.html, panel.css and panel.js (default: this repository's web/). */
  webDir?: string;
  /** uPlot's dist folder (default: resolved from node_modules). */
  uplotDir?: string;
}

/** One file served from memory. */
export interface StaticAsset {
  readonly route: string;
  readonly contentType: string;
  readonly body: Buffer;
  /** gzip of body, or null when gzip does not make it smaller. */
  readonly gzip: Buffer | null;
  /** Strong ETag, quoted. */
  readonly etag: string;
  /** Short version tag (part of the ETag) used as `?v=` in the HTML. */
  readonly version: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

/** The panel's page: no inline script or style, data only from this origin (HTTP and WebSocket). */
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** [route, which folder, file name]: the only paths served. */
const PANEL_FILES: readonly (readonly [string, 'web' | 'uplot', string])[] = [
  ['/panel.css', 'web', 'panel.css'],
  ['/panel.js', 'web', 'panel.js'],
  ['/vendor/uplot/uPlot.min.css', 'uplot', 'uPlot.min.css'],
  ['/vendor/uplot/uPlot.iife.min.js', 'uplot', 'uPlot.iife.min.js'],
];
const PAGE_ROUTES = ['/', '/status.html'] as const;

function defaultWebDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'web');
}

function defaultUplotDir(): string {
  return join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
}

function readAsset(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw engineError('ENGINE_ERR_FILE_IO', `cannot read panel file ${path}: ${(err as Error).message}`, { file: path }, err);
  }
}

function makeAsset(route: string, body: Buffer): StaticAsset {
  const ext = route === '/' ? '.html' : route.slice(route.lastIndexOf('.'));
  const version = createHash('sha256').update(body).digest('base64url').slice(0, 16);
  const gz = gzipSync(body, { level: 9 });
  return {
    route, body, version, etag: `"${version}"`,
    contentType: CONTENT_TYPES[ext] ?? 'application/octet-stream',
    gzip: gz.length < body.length ? gz : null,
  };
}

/** Read the panel's files into memory (throws ENGINE_ERR_FILE_IO naming a missing file). */
export function loadPanelAssets(opts: StaticOptions = {}): StaticAsset[] {
  const dirs = { web: opts.webDir ?? defaultWebDir(), uplot: opts.uplotDir ?? defaultUplotDir() };
  const assets = PANEL_FILES.map(([route, dir, name]) => makeAsset(route, readAsset(join(dirs[dir], name))));
  // Version the asset URLs in the page, so the assets themselves can be cached for good.
  let html = readAsset(join(dirs.web, 'status.html')).toString('utf8');
  for (const a of assets) {
    const rel = a.route.slice(1);
    html = html.split(`"${rel}"`).join(`"${rel}?v=${a.version}"`);
  }
  const page = Buffer.from(html, 'utf8');
  for (const r of PAGE_ROUTES) assets.push(makeAsset(r, page));
  return assets;
}

function etagMatches(header: string, etag: string): boolean {
  if (header === '') return false;
  if (header.trim() === '*') return true;
  for (const part of header.split(',')) {
    const t = part.trim();
    if (t === etag || t === `W/${etag}`) return true;
  }
  return false;
}

function serve(a: StaticAsset, isPage: boolean, withBody: boolean) {
  return (res: HttpResponse, req: HttpRequest): void => {
    // Everything the answer needs is read from req now: req is invalid after this handler returns.
    const inm = req.getHeader('if-none-match');
    const gzipOk = a.gzip !== null && /\bgzip\b/.test(req.getHeader('accept-encoding'));
    const pinned = !isPage && req.getQuery('v') === a.version;
    const cache = pinned ? 'public, max-age=31536000, immutable' : 'no-cache';
    res.cork(() => {
      if (etagMatches(inm, a.etag)) {
        res.writeStatus('304 Not Modified').writeHeader('etag', a.etag).writeHeader('cache-control', cache).endWithoutBody();
        return;
      }
      const body = gzipOk ? a.gzip! : a.body;
      res.writeStatus('200 OK')
        .writeHeader('content-type', a.contentType)
        .writeHeader('etag', a.etag)
        .writeHeader('cache-control', cache)
        .writeHeader('vary', 'accept-encoding')
        .writeHeader('x-content-type-options', 'nosniff');
      if (gzipOk) res.writeHeader('content-encoding', 'gzip');
      if (isPage) res.writeHeader('content-security-policy', PAGE_CSP).writeHeader('referrer-policy', 'no-referrer');
      // uws-pack 20.0.8: endWithoutBody(n) with an argument aborts the process; write the length ourselves.
      if (withBody) res.end(body);
      else res.writeHeader('content-length', String(body.length)).endWithoutBody();
    });
  };
}

function register(app: TemplatedApp, assets: readonly StaticAsset[]): TemplatedApp {
  for (const a of assets) {
    const isPage = a.route === '/' || a.route.endsWith('.html');
    app.get(a.route, serve(a, isPage, true));
    app.head(a.route, serve(a, isPage, false));
  }
  return app;
}

/**
 * Register GET and HEAD for `/`, `/status.html`, the panel assets and uPlot on `app` (before the catch-all
 * 404). Reads the files now; throws ENGINE_ERR_FILE_IO if one is missing. Returns the app for chaining.
 */
export function attachStatic(app: TemplatedApp, opts: StaticOptions = {}): TemplatedApp {
  return register(app, loadPanelAssets(opts));
}

/**
 * The same as an `attach` callback for `createApi(deps, opts, [..., panelAttach()])` (api/server.ts). The
 * files are read when `panelAttach` is called, so a missing file fails at start, not at attach time.
 */
export function panelAttach(opts: StaticOptions = {}): (app: TemplatedApp) => void {
  const assets = loadPanelAssets(opts);
  return (app) => { register(app, assets); };
}
