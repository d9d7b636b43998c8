/**
 * QueryHistory (api/history/history.ts): per-key rings in preallocated columns, newest first, wrap-around,
 * the NDJSON file written in batches and read back at open (a torn last line skipped), interned parameter
 * strings never mixing entries up, and the pending-line cap counted instead of growing memory.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { QueryHistory, redactParams } from '../api/history/history.ts';

const dir = mkdtempSync(join(tmpdir(), 'tickpipe-qh-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const T = Date.UTC(2026, 11, 5, 12);

describe('QueryHistory', () => {
  test('a ring per key: newest first, wraps at perKey, limit honoured, keys kept apart', async () => {
    const h = await QueryHistory.open({ file: null, perKey: 3 });
    for (let i = 0; i < 5; i++) h.record('a', T + i, 'latest', `symbols=S${i}`, 200, i, i / 10);
    h.record('b', T + 99, 'historical', 'symbols=X', 403, 0, 0.5);
    expect(h.list('a', 10).map((e) => e.params)).toEqual(['symbols=S4', 'symbols=S3', 'symbols=S2']);
    expect(h.list('a', 2).map((e) => e.rows)).toEqual([4, 3]);
    expect(h.list('a', 1)[0]).toEqual({ t: new Date(T + 4).toISOString(), route: 'latest', params: 'symbols=S4', status: 200, rows: 4, ms: 0.4 });
    expect(h.list('b', 10)).toEqual([{ t: new Date(T + 99).toISOString(), route: 'historical', params: 'symbols=X', status: 403, rows: 0, ms: 0.5 }]);
    expect(h.list('nobody', 10)).toEqual([]);
    await h.close();
  });

  test('repeated parameters are interned without mixing entries up', async () => {
    const h = await QueryHistory.open({ file: null, perKey: 10_000 });
    for (let i = 0; i < 6000; i++) h.record('k', T + i, 'latest', `q=${i % 5000}`, 200, 1, 0.01); // more distinct strings than the intern table holds
    const got = h.list('k', 6000);
    expect(got).toHaveLength(6000);
    got.forEach((e, j) => expect(e.params).toBe(`q=${(5999 - j) % 5000}`));
    await h.close();
  });

  test('the file: batched NDJSON lines with the key, read back at open (a torn tail line skipped)', async () => {
    const file = join(dir, 'h1', 'history.ndjson');
    const h = await QueryHistory.open({ file, perKey: 5, flushMs: 60_000 });
    for (let i = 0; i < 4; i++) h.record(i % 2 ? 'odd' : 'even', T + i, 'realtime', `limit=${i}`, 200, i, 1.25);
    await h.flush();
    await h.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(4);
    expect(lines[3]).toEqual({ key: 'odd', t: new Date(T + 3).toISOString(), route: 'realtime', params: 'limit=3', status: 200, rows: 3, ms: 1.25 });
    appendFileSync(file, '{"key":"odd","t":"not a time","route":"x","params":"bad","status":200,"rows":0,"ms":0}\n'); // skipped, not an Invalid Date
    appendFileSync(file, '{"key":"odd","t":"2026-');
    const again = await QueryHistory.open({ file, perKey: 5, flushMs: 60_000 });
    expect(again.list('odd', 10).map((e) => e.params)).toEqual(['limit=3', 'limit=1']);
    expect(again.list('even', 10).map((e) => e.params)).toEqual(['limit=2', 'limit=0']);
    await again.close();
  });

  test('file lines are exactly JSON.stringify of the entry (escaping, non-finite numbers); records made during a flush are kept, in order', async () => {
    const file = join(dir, 'h3', 'history.ndjson');
    const h = await QueryHistory.open({ file, perKey: 10, flushMs: 60_000 });
    const odd = 'q="a\\b"&s=\u00e9\ud83d\ude00&c=\u0001';
    h.record('k1', T + 1, 'historical', odd, 200, 12, 0.125);
    h.record('k2', T + 1, 'latest', 'symbols=MNQ', 403, NaN, Infinity);
    const first = h.flush();
    for (let i = 0; i < 5000; i++) h.record('k1', T + 2 + i, 'latest', `i=${i}`, 200, 1, 0.5); // while the first flush runs
    await first;
    await h.close();
    const text = readFileSync(file, 'utf8');
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(5002);
    expect(lines[0]).toBe(JSON.stringify({ key: 'k1', t: new Date(T + 1).toISOString(), route: 'historical', params: odd, status: 200, rows: 12, ms: 0.125 }));
    expect(lines[1]).toBe(JSON.stringify({ key: 'k2', t: new Date(T + 1).toISOString(), route: 'latest', params: 'symbols=MNQ', status: 403, rows: null, ms: null }));
    lines.slice(2).forEach((l, i) => expect((JSON.parse(l) as { params: string }).params).toBe(`i=${i}`));
  });

  test('more lines than the pending cap in one interval are counted as dropped, memory stays bounded', async () => {
    const file = join(dir, 'h2', 'history.ndjson');
    const h = await QueryHistory.open({ file, perKey: 2, flushMs: 60_000 });
    for (let i = 0; i < 100_010; i++) h.record('k', T, 'latest', 'symbols=MNQ', 200, 1, 0.001);
    expect(h.dropped).toBe(10);
    await h.close();
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(100_000);
    expect(h.list('k', 5)).toHaveLength(2);
  });

  test('redactParams drops token= and cuts long strings', () => {
    expect(redactParams('symbols=MNQ&token=tpk_secret&limit=5')).toBe('symbols=MNQ&limit=5');
    expect(redactParams('x'.repeat(600))).toBe(`${'x'.repeat(500)}…`);
  });
});
