/**
 * `tickpipe start` on embedded defaults, in-process: demo market → Sierra files → source workers → rings →
 * latest table and books, and the real uWS server on loopback answering a real HTTP client.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadConfig } from '../engine/config.ts';
import { Engine } from '../engine/engine.ts';
import { isEngineError } from '../engine/errors.ts';

const quiet = { info: (): void => undefined, warn: (): void => undefined };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('engine on the demo market', () => {
  let dir = '';
  let engine: Engine;
  let base = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tickpipe-engine-'));
    engine = await Engine.start(loadConfig({ TICKPIPE_DATA_DIR: dir, TICKPIPE_PORT: '0', TICKPIPE_DEMO_RATE: '2000', TICKPIPE_POLL_MS: '50', TICKPIPE_DEMO_HISTORY_MIN: '0.5', TICKPIPE_HOT_CAPACITY: '65536' }), quiet);
    base = `http://127.0.0.1:${engine.port}`;
  }, 60_000);

  afterAll(async () => {
    await engine?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('health, readiness and 404 in JSON', async () => {
    const h = await fetch(`${base}/healthz`);
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ ok: true });
    const r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(200);
    const nf = await fetch(`${base}/api/v1/nope?x=1`);
    expect(nf.status).toBe(404);
    expect(nf.headers.get('content-type')).toBe('application/json');
    const body = (await nf.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('NOT_FOUND');
    expect(body.error.message).toContain('/api/v1/nope');
  });

  test('ticks flow from the demo files into the latest table and books', async () => {
    type Status = {
      mode: string; stages: { name: string; state: string }[];
      rings: Record<string, { published: number; released: number }>;
      symbols: { symbol: string; trades: number; latest: { price: number | null; bid: number | null; ask: number | null } | null; book: { bestBid: number; bestAsk: number; bidLevels: number } | null }[];
    };
    let s: Status | null = null;
    for (let i = 0; i < 100; i++) {
      s = (await (await fetch(`${base}/api/v1/status`)).json()) as Status;
      if (s.symbols.every((x) => x.trades > 100 && x.book && x.book.bidLevels > 0)) break;
      await sleep(100);
    }
    expect(s).not.toBeNull();
    expect(s!.mode).toBe('demo');
    expect(s!.stages.map((x) => [x.name, x.state])).toEqual([['demo-market', 'running'], ['sierra-scid', 'running'], ['sierra-depth', 'running'], ['validator', 'running']]);
    for (const sym of s!.symbols) {
      expect(sym.trades).toBeGreaterThan(100);
      expect(sym.latest?.price).toBeGreaterThan(0);
      // demo prices are on the 0.25 tick grid
      expect(((sym.latest!.price! * 4) % 1)).toBe(0);
      expect(sym.book!.bestBid).toBeLessThan(sym.book!.bestAsk);
    }
    expect(s!.rings['sierra-scid']!.published).toBeGreaterThan(0);
  });

  test('a second engine on the same port is a clear coded error, and cleans up after itself', async () => {
    const other = mkdtempSync(join(tmpdir(), 'tickpipe-engine2-'));
    let err: unknown;
    try {
      await Engine.start(loadConfig({ TICKPIPE_DATA_DIR: other, TICKPIPE_PORT: String(engine.port), TICKPIPE_DEMO_HISTORY_MIN: '0' }), quiet);
    } catch (e) { err = e; }
    rmSync(other, { recursive: true, force: true });
    expect(isEngineError(err, 'ENGINE_ERR_CONFIG')).toBe(true);
    expect((err as Error).message).toContain(String(engine.port));
  });
});

test('close() drains the rings: everything published is consumed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tickpipe-engine3-'));
  try {
    const e = await Engine.start(loadConfig({ TICKPIPE_DATA_DIR: dir, TICKPIPE_PORT: '0', TICKPIPE_DEMO_RATE: '5000', TICKPIPE_POLL_MS: '20', TICKPIPE_DEMO_HISTORY_MIN: '0.2' }), quiet);
    await sleep(1500);
    await e.close();
    const st = e.status() as { rings: Record<string, { published: number; released: number; state: string }> };
    for (const r of Object.values(st.rings)) {
      expect(r.published).toBeGreaterThan(0);
      expect(r.released).toBe(r.published);
      expect(r.state).toBe('stopped');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

test('symbol ids survive a restart with the symbols reordered, one dropped and one added (symbol-ids.json)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tickpipe-engine-ids-'));
  const env = (symbols: string): Record<string, string> => ({
    TICKPIPE_DATA_DIR: dir, TICKPIPE_PORT: '0', TICKPIPE_SYMBOLS: symbols, TICKPIPE_DEMO: '1', TICKPIPE_DEMO_HISTORY_MIN: '0', TICKPIPE_COMPACT: '0',
  });
  const names = (e: Engine): string[] => Array.from({ length: e.registry.size }, (_, i) => e.registry.metaOf(i + 1).symbol);
  try {
    const a = await Engine.start(loadConfig(env('NQZ26,MNQZ26,MESZ26')), quiet);
    expect(names(a)).toEqual(['NQZ26', 'MNQZ26', 'MESZ26']);
    await a.close();
    // the roll: NQH27 replaces NQZ26 and the list is reordered; NQZ26's stored records must still read as NQZ26
    const b = await Engine.start(loadConfig(env('MESZ26,NQH27,MNQZ26')), quiet);
    expect(names(b)).toEqual(['NQZ26', 'MNQZ26', 'MESZ26', 'NQH27']);
    expect(b.registry.requireId('MESZ26')).toBe(3);
    await b.close();
    const recorded = (JSON.parse(readFileSync(join(dir, 'symbol-ids.json'), 'utf8')) as { symbols: { id: number; symbol: string }[] }).symbols;
    expect(recorded.map((x) => [x.id, x.symbol])).toEqual([[1, 'NQZ26'], [2, 'MNQZ26'], [3, 'MESZ26'], [4, 'NQH27']]);
    // a damaged file stops the start with a coded error instead of relabelling stored data
    writeFileSync(join(dir, 'symbol-ids.json'), '{"version":1,"symbols":[{"id":7}]}');
    let err: unknown = null;
    try { await Engine.start(loadConfig(env('NQH27')), quiet); } catch (e) { err = e; }
    expect(isEngineError(err) && err.code === 'ENGINE_ERR_CONFIG' && err.message.includes('symbol-ids.json')).toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);
