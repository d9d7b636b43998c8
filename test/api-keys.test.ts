/**
 * API keys: stored hashed (never the secret, on disk or in the query history), compared in constant time
 * (crypto.timingSafeEqual on every path, known id or not), 401/403/429 over real HTTP, repeated bad keys
 * from one address rate-limited, per-key query history readable with an admin key, key administration over
 * HTTP, the `tickpipe keys` CLI as a child process, and ensureLocalKey.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as crypto from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import fc from 'fast-check';
import { ensureLocalKey, isKeyText, KEY_RE, KeyStore, KEYS_FILE } from '../api/auth/keystore.ts';
import { get, startFixture, type Fixture } from './api-fixture.ts';

vi.mock('node:crypto', async (importOriginal) => {
  const m = await importOriginal<typeof import('node:crypto')>();
  return { ...m, timingSafeEqual: vi.fn(m.timingSafeEqual) };
});

const BIN = fileURLToPath(new URL('../bin/tickpipe.js', import.meta.url));
const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'tickpipe-keys-'));
  dirs.push(d);
  return d;
};
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('KeyStore', () => {
  test('keys.json holds only SHA-256 hashes (mode 0600); the key is shown once', () => {
    const dir = tmp();
    const ks = KeyStore.open(dir);
    const { key, info } = ks.createSync({ name: 'bot', scopes: ['realtime', 'historical'], symbols: ['mnq'], ratePerSec: 5 });
    const m = /^tpk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/.exec(key);
    expect(m).not.toBeNull();
    const secret = m?.[2] as string;
    const text = readFileSync(join(dir, KEYS_FILE), 'utf8');
    expect(text).not.toContain(secret);
    expect(text).not.toContain(key);
    expect(text).toContain(createHash('sha256').update(secret).digest('hex'));
    expect(statSync(join(dir, KEYS_FILE)).mode & 0o777).toBe(0o600);
    expect(info).toMatchObject({ id: m?.[1], name: 'bot', scopes: ['realtime', 'historical'], symbols: ['MNQ'], ratePerSec: 5, revokedAt: null });
    expect(JSON.stringify(ks.list())).not.toContain(secret);
    ks.close();
  });

  test('authenticate: valid, tampered, unknown id, malformed, revoked; the hash compared with timingSafeEqual', () => {
    const ks = KeyStore.open(tmp());
    const { key, info } = ks.createSync({ name: 'a', scopes: ['admin'] });
    const tse = vi.mocked(crypto.timingSafeEqual);
    tse.mockClear();
    const p = ks.authenticate(key);
    expect(p?.keyId).toBe(info.id);
    expect(p?.scopes.has('admin')).toBe(true);
    expect(tse).toHaveBeenCalledTimes(1); // first use: the secret's SHA-256 against the stored hash
    const last = key.at(-1) === 'A' ? 'B' : 'A';
    expect(ks.authenticate(key.slice(0, -1) + last)).toBeNull();
    expect(tse).toHaveBeenCalledTimes(2); // tampered: the verified key (constant-time loop) did not match, so the hash path
    expect(ks.authenticate(`tpk_000000000000_${key.slice(-43)}`)).toBeNull(); // unknown id: still compared (dummy digest)
    expect(tse).toHaveBeenCalledTimes(3);
    expect(tse.mock.calls.map((c) => [(c[0] as Buffer).length, (c[1] as Buffer).length])).toEqual([[32, 32], [32, 32], [32, 32]]);
    expect(ks.authenticate(key)?.keyId).toBe(info.id); // verified key: constant-time compare with it, no hash
    expect(tse).toHaveBeenCalledTimes(3);
    for (const bad of ['', 'x', key + 'x', key.replace('tpk_', 'tpx_'), `${key} `, '\u0000'.repeat(70), key.toUpperCase()]) expect(ks.authenticate(bad)).toBeNull();
    expect(ks.authenticate(undefined)).toBeNull();
    // once verified, any one character changed (to anything, including a UTF-16 unit whose low byte is the
    // original character) never passes the fast path
    fc.assert(fc.property(fc.nat(59), fc.integer({ min: 1, max: 0xffff }), (i, c) => {
      const ch = String.fromCharCode(c);
      const t = key.slice(0, i) + ch + key.slice(i + 1);
      return (ks.authenticate(t) !== null) === (t === key);
    }), { numRuns: 3000 });
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      expect(ks.authenticate(key.slice(0, i) + String.fromCharCode(c + 0x100) + key.slice(i + 1))).toBeNull();
    }
    expect(ks.authenticate(key)?.keyId).toBe(info.id);
    expect(ks.revokeSync(info.id)).toBe(true);
    expect(ks.authenticate(key)).toBeNull();
    expect(ks.revokeSync(info.id)).toBe(false);
    ks.close();
  });

  test('isKeyText (the per-request format check without a regex) agrees with KEY_RE', () => {
    const idChar = fc.constantFrom(...'0123456789abcdef'.split(''));
    const secretChar = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split(''));
    const wellFormed = fc.tuple(fc.array(idChar, { minLength: 12, maxLength: 12 }), fc.array(secretChar, { minLength: 43, maxLength: 43 }))
      .map(([id, sec]) => `tpk_${id.join('')}_${sec.join('')}`);
    // well-formed keys, each with one character replaced by anything (often still well-formed, often not)
    const mutated = fc.tuple(wellFormed, fc.nat(59), fc.string({ minLength: 0, maxLength: 2 })).map(([k, i, c]) => k.slice(0, i) + c + k.slice(i + 1));
    fc.assert(fc.property(fc.oneof(wellFormed, mutated, fc.string({ maxLength: 70 })), (t) => isKeyText(t) === KEY_RE.test(t)), { numRuns: 5000 });
    expect(isKeyText(`tpk_0123456789ab_${'A'.repeat(43)}`)).toBe(true);
    expect(isKeyText(`tpk_0123456789AB_${'A'.repeat(43)}`)).toBe(false); // upper-case hex is not the format
    expect(isKeyText(`tpk_0123456789ab_${'A'.repeat(42)}=`)).toBe(false);
  });

  test('bad specs are refused with a coded error', () => {
    const ks = KeyStore.open(tmp());
    for (const spec of [{ name: '', scopes: ['admin'] }, { name: 'x', scopes: [] }, { name: 'x', scopes: ['root'] }, { name: 'x', scopes: ['admin'], ratePerSec: -1 },
      { name: 'x', scopes: ['admin'], symbols: ['bad symbol!'] }, { name: 'x'.repeat(65), scopes: ['admin'] }]) {
      expect(() => ks.createSync(spec)).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_INVALID_ARG' }) as Error);
    }
    ks.close();
  });

  test('a corrupt keys.json is a coded config error naming the file', () => {
    const dir = tmp();
    writeFileSync(join(dir, KEYS_FILE), '{"version":1,"keys":[{"id":"zz"}]}');
    expect(() => KeyStore.open(dir)).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_CONFIG', message: expect.stringContaining(KEYS_FILE) as string }) as Error);
    writeFileSync(join(dir, KEYS_FILE), '{not json');
    expect(() => KeyStore.open(dir)).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_CONFIG' }) as Error);
  });

  test('a watching store sees keys created and revoked by another process', async () => {
    const dir = tmp();
    const server = KeyStore.open(dir, { watch: true, watchIntervalMs: 50 });
    const cli = KeyStore.open(dir);
    const { key, info } = cli.createSync({ name: 'late', scopes: ['realtime'] });
    await until(() => server.authenticate(key) !== null);
    cli.revokeSync(info.id);
    await until(() => server.authenticate(key) === null);
    server.close();
    cli.close();
  });

  test('ensureLocalKey creates one admin key on first run only', () => {
    const dir = tmp();
    const first = ensureLocalKey(dir);
    expect(first?.info.scopes).toContain('admin');
    expect(ensureLocalKey(dir)).toBeNull();
    const ks = KeyStore.open(dir);
    expect(ks.authenticate(first?.key)?.name).toBe('local-admin');
    ks.close();
  });
});

describe('over HTTP', () => {
  let f: Fixture;
  beforeAll(async () => { f = await startFixture({ ticksPerHour: 500 }); });
  afterAll(async () => { await f.close(); });

  test('per-key rate limit: 429 with Retry-After once the bucket is empty (the clock is frozen: no refill)', async () => {
    const q = '/api/v1/ticks/latest?symbols=MNQ';
    expect((await get(f, q, f.keys.limited)).status).toBe(200);
    expect((await get(f, q, f.keys.limited)).status).toBe(200);
    const r = await get(f, q, f.keys.limited);
    expect(r.status).toBe(429);
    expect((r.json() as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await get(f, q, f.keys.realtime)).status).toBe(200); // other keys unaffected
  });

  test('query history: route, params (token redacted), status, rows, latency; admin only; persisted without secrets', async () => {
    await get(f, '/api/v1/ticks/latest?symbols=MNQ,NQ', f.keys.realtime);
    await get(f, '/api/v1/ticks/realtime?symbols=NQ&limit=7&token=should-not-be-kept', f.keys.realtime);
    await get(f, '/api/v1/ticks/latest?symbols=NOPE1', f.keys.realtime);
    const r = await get(f, `/api/v1/keys/${f.keys.realtimeId}/history?limit=3`, f.keys.admin);
    expect(r.status).toBe(200);
    const h = (r.json() as { data: { route: string; params: string; status: number; rows: number; ms: number; t: string }[] }).data;
    expect(h.map((e) => [e.route, e.params, e.status, e.rows])).toEqual([
      ['ticks/latest', 'symbols=NOPE1', 404, 0],
      ['ticks/realtime', 'symbols=NQ&limit=7', 200, 7],
      ['ticks/latest', 'symbols=MNQ,NQ', 200, 2],
    ]);
    for (const e of h) {
      expect(e.ms).toBeGreaterThanOrEqual(0);
      expect(Number.isNaN(Date.parse(e.t))).toBe(false);
    }
    expect((await get(f, `/api/v1/keys/${f.keys.realtimeId}/history`, f.keys.realtime)).status).toBe(403);
    expect((await get(f, '/api/v1/keys/000000000000/history', f.keys.admin)).status).toBe(404);
    expect((await get(f, '/api/v1/keys/xyz/history', f.keys.admin)).status).toBe(400);
    await f.api.history.flush();
    const file = readFileSync(join(f.dir, 'history.ndjson'), 'utf8');
    expect(file).toContain('"route":"ticks/realtime"');
    expect(file).not.toContain('should-not-be-kept');
    for (const k of Object.values(f.keys)) if (k.startsWith('tpk_')) expect(file).not.toContain(k.slice(-43));
  });

  test('admin key management: create (shown once), use, list (no secrets), revoke → 401', async () => {
    let r = await get(f, '/api/v1/keys', f.keys.admin, { method: 'POST', body: JSON.stringify({ name: 'model-7', scopes: ['realtime'], symbols: ['NQ'], rate: 100 }) });
    expect(r.status).toBe(200);
    const { key, info } = r.json() as { key: string; info: { id: string } };
    expect((await get(f, '/api/v1/ticks/latest?symbols=NQ', key)).status).toBe(200);
    expect((await get(f, '/api/v1/ticks/latest?symbols=MNQ', key)).status).toBe(403);
    r = await get(f, '/api/v1/keys', f.keys.admin);
    expect(r.text).toContain('model-7');
    expect(r.text).not.toContain(key.slice(-43));
    expect(r.text).not.toMatch(/"hash"/);
    expect((await get(f, '/api/v1/keys', f.keys.realtime)).status).toBe(403);
    expect((await get(f, `/api/v1/keys/${info.id}`, f.keys.admin, { method: 'DELETE' })).status).toBe(200);
    expect((await get(f, `/api/v1/keys/${info.id}`, f.keys.admin, { method: 'DELETE' })).status).toBe(404);
    expect((await get(f, '/api/v1/ticks/latest?symbols=NQ', key)).status).toBe(401);
  });

  test('concurrent key creation over HTTP loses no key (file updates are serialised)', async () => {
    const before = f.keystore.list().length;
    const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => get(f, '/api/v1/keys', f.keys.admin, { method: 'POST', body: JSON.stringify({ name: `par-${i}`, scopes: ['realtime'] }) })));
    expect(rs.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const reread = KeyStore.open(f.dir);
    expect(reread.list().length).toBe(before + 6);
    for (const r of rs) expect(reread.authenticate((r.json() as { key: string }).key)).not.toBeNull();
    reread.close();
  });

  test('repeated bad keys from one address: 429 for that address, even with a good key, until the window ends', async () => {
    const g = await startFixture({ ticksPerHour: 200, badKeyLimitPerMinute: 5 });
    try {
      for (let i = 0; i < 5; i++) expect((await get(g, '/api/v1/ticks/latest?symbols=MNQ', `tpk_${'0'.repeat(12)}_${'A'.repeat(43)}`)).status).toBe(401);
      const r = await get(g, '/api/v1/ticks/latest?symbols=MNQ', g.keys.realtime);
      expect(r.status).toBe(429);
      expect((r.json() as { error: { code: string } }).error.code).toBe('TOO_MANY_BAD_KEYS');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await get(g, '/healthz')).status).toBe(200); // routes without a key still answer
      expect(g.api.guard.badKeys.refused).toBeGreaterThan(0);
    } finally {
      await g.close();
    }
  });
});

describe('tickpipe keys (CLI)', () => {
  interface CliResult { code: number; stdout: string; stderr: string }
  const cli = (...args: string[]): Promise<CliResult> => new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'keys', ...args], { encoding: 'utf8', env: { ...process.env, TICKPIPE_DEBUG: '' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });

  test('create prints the key once; list never shows it; revoke; bad input exits 1 with a coded message', async () => {
    const dir = tmp();
    const c = await cli('create', '--name', 'bot 1', '--scopes', 'realtime,historical', '--symbols', 'MNQ,esz25', '--rate', '10', '--data-dir', dir);
    expect(c.code).toBe(0);
    const key = c.stdout.trim();
    expect(key).toMatch(/^tpk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(c.stderr).toContain('only time the key is shown');
    const ks = KeyStore.open(dir);
    expect(ks.authenticate(key)?.symbols).toEqual(new Set(['MNQ', 'ESZ25']));
    ks.close();
    const l = await cli('list', '--json', '--data-dir', dir);
    const list = JSON.parse(l.stdout) as { id: string; name: string; ratePerSec: number }[];
    expect(list).toEqual([expect.objectContaining({ name: 'bot 1', ratePerSec: 10 })]);
    expect(l.stdout).not.toContain(key.slice(-43));
    expect((await cli('revoke', list[0]?.id as string, '--data-dir', dir)).code).toBe(0);
    const ks2 = KeyStore.open(dir);
    expect(ks2.authenticate(key)).toBeNull();
    ks2.close();
    const bad = await cli('create', '--name', 'x', '--scopes', 'everything', '--data-dir', dir);
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringContaining('ENGINE_ERR_INVALID_ARG: unknown scope') as string]);
  });
});
