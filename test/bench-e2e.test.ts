/**
 * Smoke test of the end-to-end bench harness (bench/e2e): a tiny paced run (2,000 ticks/s for 3 s, 2
 * WebSocket clients, Redis db 12 when a Redis answers on 127.0.0.1:6379) and a small max run, into a temp
 * output directory. Asserts zero loss and exact checksums at every stage and the output files' shape, never
 * timings (those are the bench's business).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { parseSyms } from '../bench/e2e/native-clients.ts';
import { parseE2EArgs, runE2E } from '../bench/e2e/run.ts';

const out = mkdtempSync(join(tmpdir(), 'tickpipe-bench-e2e-test-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('bench:e2e harness', () => {
  test('arguments: defaults, quick, modes, bad values', () => {
    const d = parseE2EArgs([]);
    expect(d).toMatchObject({ paced: true, max: true, compare: true, rate: 10_000, seconds: 60, warmup: 5, clients: 10, wsFormat: 'both', backlog: 3_000_000, redis: 'auto' });
    expect(parseE2EArgs(['--ws-format', 'json'])).toMatchObject({ wsFormat: 'json' });
    expect(d.wsClients).toBe('native');
    expect(parseE2EArgs(['--ws-clients', 'js'])).toMatchObject({ wsClients: 'js' });
    expect(() => parseE2EArgs(['--ws-clients', 'python'])).toThrow(/--ws-clients/);
    expect(() => parseE2EArgs(['--ws-format', 'xml'])).toThrow(/--ws-format/);
    expect(parseE2EArgs(['--quick'])).toMatchObject({ seconds: 10, warmup: 2, backlog: 500_000 });
    expect(parseE2EArgs(['--warmup', '0'])).toMatchObject({ warmup: 0 });
    expect(() => parseE2EArgs(['--warmup', '-1'])).toThrow(/--warmup/);
    expect(() => parseE2EArgs(['--warmup', 'soon'])).toThrow(/--warmup/);
    expect(parseE2EArgs(['--quick', '--seconds', '4'])).toMatchObject({ seconds: 4 });
    expect(parseE2EArgs(['--max'])).toMatchObject({ paced: false, max: true, compare: false });
    expect(parseE2EArgs(['--ladder', '20000,40000', '--ring-slots', '65536'])).toMatchObject({ ladder: [20000, 40000], ringSlots: 65536 });
    expect(() => parseE2EArgs(['--ladder', '1000,x'])).toThrow(/--ladder/);
    expect(parseE2EArgs(['--paced', '--no-redis'])).toMatchObject({ paced: true, max: false, redis: 'off' });
    expect(() => parseE2EArgs(['--rate', 'fast'])).toThrow(/--rate/);
    expect(() => parseE2EArgs(['--clients', '0'])).toThrow(/--clients/);
    expect(() => parseE2EArgs(['--rate'])).toThrow(/--rate/);
    expect(() => parseE2EArgs(['--bogus'])).toThrow(/unknown argument/);
  });

  test('tiny paced and max runs lose nothing at any stage and write the report files', async () => {
    // another suite's row must survive the merge; an old e2e row must be replaced
    const resultsDir = join(out, 'results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, 'latest.json'), JSON.stringify([
      { suite: 'ring', name: 'ring: keep me', unit: 'records/s', value: 1 },
      { suite: 'e2e', name: 'e2e: stale row', unit: 'ticks/s', value: 2 },
    ]));
    const args = parseE2EArgs(['--rate', '2000', '--seconds', '3', '--warmup', '1', '--clients', '2', '--backlog', '30000', '--redis-db', '12', '--no-compare', '--out', out]);
    const { report, files } = await runE2E(args, 'test', () => undefined);

    const p = report.paced!;
    expect(p.written).toBe(8000); // 1 s warm-up + 3 s measured, at 2000/s
    expect(p.warmupSeconds).toBe(1);
    const failed = p.stages.filter((s) => !s.ok);
    expect(failed).toEqual([]);
    expect(p.lost).toBe(0);
    const names = p.stages.map((s) => s.stage);
    for (const want of ['written (.scid files)', 'validator: accepted and journaled', 'journal (read back after close)', 'Parquet (hours compacted after close, DuckDB)', 'latest table: trade count', 'hot window', 'WebSocket client 1 (binary)', 'WebSocket client 2 (JSON)']) {
      expect(names).toContain(want);
    }
    if (p.redis) expect(names).toContain('Redis streams (XLEN, XRANGE Σ)');
    for (const s of p.stages) {
      expect(s.count).toBe(8000);
      if (s.sum !== null) expect(s.sum).toBe(s.expectedSum);
    }
    // one binary and one JSON client: each format's latency has every tick once, and the measured window the
    // ticks written after the warm-up (about 3 s of the 4)
    expect(p.wsClients).toEqual({ binary: 1, json: 1, kind: 'native' }); // g++ is on every machine of this project (README)
    expect(p.latencyAll.ws.count).toBe(8000);
    expect(p.latencyAll.wsJson?.count).toBe(8000);
    expect(p.latencyAll.feed.count).toBe(8000);
    for (const l of [p.latency.ws, p.latency.wsJson!, p.latency.feed]) {
      expect(l.count).toBeGreaterThan(5400);
      expect(l.count).toBeLessThan(6600);
    }
    expect(p.latency.wsJson!.count).toBe(p.latency.ws.count); // the same ticks, by event time
    expect(p.latency.latest.count).toBeGreaterThan(0);

    const m = report.max!;
    expect(m.ticks).toBe(30_000);
    expect(m.stages.filter((s) => !s.ok)).toEqual([]);
    expect(m.lost).toBe(0);
    expect(m.ticksPerSecond).toBeGreaterThan(0);

    expect(files.map((f) => f.slice(out.length + 1)).sort()).toEqual(['E2E.md', 'e2e-latency.svg', join('results', 'latest.json')].sort());
    const json = JSON.parse(readFileSync(join(resultsDir, 'latest.json'), 'utf8')) as Array<{ suite: string; name: string; value: number }>;
    expect(json.find((r) => r.name === 'ring: keep me')).toBeTruthy();
    expect(json.find((r) => r.name === 'e2e: stale row')).toBeUndefined();
    const e2e = json.filter((r) => r.suite === 'e2e');
    expect(e2e.length).toBeGreaterThanOrEqual(8);
    expect(e2e.filter((r) => r.name.includes('ticks lost')).map((r) => r.value)).toEqual([0, 0]);
    const md = readFileSync(join(out, 'E2E.md'), 'utf8');
    expect(md).toContain(`**Node:** ${process.version}`);
    expect(md).toMatch(/logical cores/);
    expect(md).toContain('e2e-latency.svg');
    const svg = readFileSync(join(out, 'e2e-latency.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect((svg.match(/<polyline/g) ?? []).length).toBe(p.redis ? 5 : 4);
    expect(md).toContain('after a 1 s warm-up');
    expect(md).toContain('incl. warm-up');
  }, 120_000);

  test('the in-process JS clients (--ws-clients js) lose nothing either', async () => {
    const dir = join(out, 'js');
    const args = parseE2EArgs(['--paced', '--rate', '2000', '--seconds', '2', '--warmup', '0', '--clients', '2', '--ws-clients', 'js', '--no-redis', '--no-compare', '--out', dir]);
    const { report } = await runE2E(args, 'test', () => undefined);
    const p = report.paced!;
    expect(p.wsClients).toEqual({ binary: 1, json: 1, kind: 'js' });
    expect(p.stages.filter((s) => !s.ok)).toEqual([]);
    expect(p.lost).toBe(0);
    expect(p.latency.ws.count).toBe(4000); // no warm-up: every tick is measured
    expect(p.latency.wsJson?.count).toBe(4000);
  }, 120_000);

  test('native client output: per-connection totals by symbol id; unknown ids and connections are errors', () => {
    const names = new Map([[1, 'NQZ26'], [2, 'MNQZ26']]);
    const { clients, errors } = parseSyms(['RESULT 1 0', 'SYMS 0 0 1:3:120:7:9:0 2:2:50:1:2:1', 'SYMS 1 1 1:1:40:5:5:0 9:1:1:1:1:0', 'SYMS 4 0 1:1:1:1:1:0', 'END'], names, 2);
    expect(clients[0]).toEqual({ symbols: { NQZ26: { count: 3, sum: 120, firstSeq: 7, lastSeq: 9, seqBreaks: 0 }, MNQZ26: { count: 2, sum: 50, firstSeq: 1, lastSeq: 2, seqBreaks: 1 } }, closed: null });
    expect(clients[1]!.closed).toBe('closed by the server');
    expect(clients[1]!.symbols.MNQZ26).toEqual({ count: 0, sum: 0, firstSeq: -1, lastSeq: -1, seqBreaks: 0 });
    expect(errors).toEqual(['native client 1: ticks of unexpected symbol id 9', 'native client: SYMS for unknown connection 4']);
  });
});
