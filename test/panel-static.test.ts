/**
 * api/static.ts on a real uWS server (loopback, port 0): exact routes, content types, ETag/304, gzip,
 * HEAD, cache headers, files read once at start, and no way to walk out of the whitelist (raw TCP requests,
 * so that `..` and encoded variants reach the server unnormalised).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { App } from 'uWebSockets.js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { listen, type ApiServer } from '../api/server.ts';
import { attachStatic, loadPanelAssets } from '../api/static.ts';
import { isEngineError } from '../engine/errors.ts';

const WEB = new URL('../web/', import.meta.url).pathname;

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Send one raw request line (no client-side path normalisation); the status code and the whole answer. */
function raw(port: number, target: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('connect', () => s.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
    s.on('error', reject);
    s.setTimeout(10_000, () => { s.destroy(new Error('raw request timed out')); });
  });
}

function serve(webDir?: string): Promise<ApiServer> {
  const app = attachStatic(App(), webDir ? { webDir } : {});
  app.any('/*', (res) => { res.cork(() => res.writeStatus('404 Not Found').writeHeader('content-type', 'application/json').end('{"error":{"code":"NOT_FOUND","message":"no route"}}')); });
  return listen(app, '127.0.0.1', 0);
}

describe('panel files on uWS', () => {
  let srv: ApiServer;
  let tmp = '';
  let copySrv: ApiServer;

  beforeAll(async () => {
    srv = await serve();
    tmp = mkdtempSync(join(tmpdir(), 'tickpipe-static-'));
    cpSync(WEB, tmp, { recursive: true });
    copySrv = await serve(tmp);
  });
  afterAll(() => {
    srv?.close();
    copySrv?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('the page at / and /status.html, with versioned asset links and a strict CSP', async () => {
    for (const path of ['/', '/status.html']) {
      const a = await get(srv.port, path);
      expect(a.status).toBe(200);
      expect(a.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(a.headers['cache-control']).toBe('no-cache');
      expect(a.headers['x-content-type-options']).toBe('nosniff');
      expect(a.headers['content-security-policy']).toContain("script-src 'self'");
      expect(a.headers.etag).toMatch(/^"[\w-]{16}"$/);
      const html = a.body.toString('utf8');
      expect(html).toContain('<title>tickpipe · status</title>');
      expect(html).toMatch(/src="panel\.js\?v=[\w-]{16}"/);
      expect(html).toMatch(/href="vendor\/uplot\/uPlot\.min\.css\?v=[\w-]{16}"/);
    }
  });

  test('assets: exact bytes and content types; the versioned URL is immutable, the bare one revalidates', async () => {
    const html = (await get(srv.port, '/status.html')).body.toString('utf8');
    const cases: [string, string, string][] = [
      ['/panel.js', 'text/javascript; charset=utf-8', join(WEB, 'panel.js')],
      ['/panel.css', 'text/css; charset=utf-8', join(WEB, 'panel.css')],
      ['/vendor/uplot/uPlot.iife.min.js', 'text/javascript; charset=utf-8', new URL('../node_modules/uplot/dist/uPlot.iife.min.js', import.meta.url).pathname],
      ['/vendor/uplot/uPlot.min.css', 'text/css; charset=utf-8', new URL('../node_modules/uplot/dist/uPlot.min.css', import.meta.url).pathname],
    ];
    for (const [path, type, file] of cases) {
      const bare = await get(srv.port, path);
      expect(bare.status).toBe(200);
      expect(bare.headers['content-type']).toBe(type);
      expect(bare.headers['cache-control']).toBe('no-cache');
      expect(bare.body.equals(readFileSync(file))).toBe(true);
      const v = new RegExp(`"${path.slice(1).replace(/\./g, '\\.')}\\?v=([\\w-]+)"`).exec(html)?.[1];
      expect(v, path).toBeDefined();
      const pinned = await get(srv.port, `${path}?v=${v}`);
      expect(pinned.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(pinned.headers.etag).toBe(`"${v}"`);
      // an old version in the URL must not be cached for good
      expect((await get(srv.port, `${path}?v=stale`)).headers['cache-control']).toBe('no-cache');
    }
  });

  test('ETag: If-None-Match answers 304 without a body (exact, weak and listed forms); a wrong tag gets 200', async () => {
    const first = await get(srv.port, '/panel.js');
    const etag = String(first.headers.etag);
    for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
      const a = await get(srv.port, '/panel.js', { 'if-none-match': inm });
      expect(a.status, inm).toBe(304);
      expect(a.body.length).toBe(0);
      expect(a.headers.etag).toBe(etag);
    }
    for (const inm of ['"nope"', '', 'garbage,,,', etag.slice(1)]) {
      const a = await get(srv.port, '/panel.js', inm ? { 'if-none-match': inm } : {});
      expect(a.status, inm).toBe(200);
      expect(a.body.length).toBe(first.body.length);
    }
  });

  test('gzip when asked for, identity otherwise; HEAD tells the length without a body', async () => {
    const plain = await get(srv.port, '/vendor/uplot/uPlot.iife.min.js');
    const gz = await get(srv.port, '/vendor/uplot/uPlot.iife.min.js', { 'accept-encoding': 'br, gzip' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers.vary).toBe('accept-encoding');
    expect(gz.body.length).toBeLessThan(plain.body.length / 2);
    expect(gunzipSync(gz.body).equals(plain.body)).toBe(true);
    expect((await get(srv.port, '/panel.js', { 'accept-encoding': 'deflate' })).headers['content-encoding']).toBeUndefined();
    const head = await get(srv.port, '/panel.css', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(Number(head.headers['content-length'])).toBe(readFileSync(join(WEB, 'panel.css')).length);
  });

  test('only the listed paths exist: traversal, encodings and near-misses are 404 and leak nothing', async () => {
    const secret = readFileSync(new URL('../package.json', import.meta.url), 'utf8').slice(0, 40);
    const targets = [
      '/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '/vendor/uplot/../../package.json',
      '/vendor/uplot/..%2f..%2f..%2fpackage.json', '/vendor/uplot/uPlot.cjs.js', '/vendor/uplot/', '/vendor/',
      '/status.html/../../package.json', '/panel.js/..', '/panel.jsx', '/web/panel.js', '/README.md', '//etc/passwd',
      '/%2fetc%2fpasswd', '/panel.js%00.html', '/static.ts', '/api/static.ts', '/node_modules/uplot/package.json',
    ];
    for (const t of targets) {
      const a = await raw(srv.port, t);
      expect(a.status, t).toBe(404);
      expect(a.text, t).not.toContain(secret);
      expect(a.text, t).toContain('NOT_FOUND');
    }
    // and a well-formed request still works on the same server
    expect((await raw(srv.port, '/panel.css')).status).toBe(200);
  });

  test('files are read once at attach time: later changes on disk are not served (no disk I/O per request)', async () => {
    const before = await get(copySrv.port, '/panel.js');
    writeFileSync(join(tmp, 'panel.js'), '/* changed on disk */');
    rmSync(join(tmp, 'panel.css'));
    const after = await get(copySrv.port, '/panel.js');
    expect(after.body.equals(before.body)).toBe(true);
    expect(after.headers.etag).toBe(before.headers.etag);
    expect((await get(copySrv.port, '/panel.css')).status).toBe(200);
  });
});

describe('bad setup is a clear coded error', () => {
  test('a missing web folder or file names the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tickpipe-static-bad-'));
    try {
      let err: unknown;
      try { loadPanelAssets({ webDir: join(dir, 'nope') }); } catch (e) { err = e; }
      expect(isEngineError(err, 'ENGINE_ERR_FILE_IO')).toBe(true);
      expect((err as Error).message).toContain(join(dir, 'nope', 'panel.css'));
      cpSync(WEB, dir, { recursive: true });
      rmSync(join(dir, 'status.html'));
      err = undefined;
      try { attachStatic(App(), { webDir: dir }); } catch (e) { err = e; }
      expect(isEngineError(err, 'ENGINE_ERR_FILE_IO')).toBe(true);
      expect((err as Error).message).toContain('status.html');
      err = undefined;
      try { loadPanelAssets({ uplotDir: dir }); } catch (e) { err = e; }
      expect(isEngineError(err, 'ENGINE_ERR_FILE_IO')).toBe(true);
      expect((err as Error).message).toContain('uPlot.min.css');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an empty file is served as empty, with its own ETag (no crash, no gzip bigger than the body)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tickpipe-static-empty-'));
    try {
      cpSync(WEB, dir, { recursive: true });
      writeFileSync(join(dir, 'panel.css'), '');
      const css = loadPanelAssets({ webDir: dir }).find((a) => a.route === '/panel.css')!;
      expect(css.body.length).toBe(0);
      expect(css.gzip).toBeNull();
      expect(css.etag).toMatch(/^"[\w-]{16}"$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
