/**
 * Redis sink against the real Redis on 127.0.0.1:6379 (database 9, a unique key prefix per test, keys
 * deleted afterwards): stream entries and IDs, latest hash, PUBLISH payloads, replay idempotence, MINID
 * trimming, bad input. The outage test (own redis-server) is test/redis-outage.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isEngineError } from '../engine/errors.ts';
import { RecordKind, TradeFlag } from '../schemas/records.ts';
import { idSeqPart } from '../workers/redis-sink/ids.ts';
import { parseRedisUrl } from '../workers/redis-sink/config.ts';
import { RedisSink, type RedisSinkOptions } from '../workers/redis-sink/sink.ts';
import { RecordFeeder, deleteKeys, freePort, makeRegistry, makeTrades, waitFor, type TestTrade } from '../workers/redis-sink/testing.ts';

const URL9 = 'redis://127.0.0.1:6379/9';
let admin: Redis;
const prefixes: string[] = [];
const dirs: string[] = [];
const sinks: RedisSink[] = [];
const feeders: RecordFeeder[] = [];

function prefix(): string {
  const p = `tp-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}:`;
  prefixes.push(p);
  return p;
}
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tp-redis-'));
  dirs.push(d);
  return d;
}
function feeder(dataDir: string | null, slots = 4096): RecordFeeder {
  const f = new RecordFeeder({ dataDir, slots });
  feeders.push(f);
  return f;
}
function sink(opts: Partial<RedisSinkOptions> & Pick<RedisSinkOptions, 'ring' | 'registry'>): RedisSink {
  const s = new RedisSink({ redisUrl: URL9, ...opts });
  sinks.push(s);
  void s.run();
  return s;
}
const idOf = (t: TestTrade): string => `${Math.floor(t.tsMicros / 1000)}-${idSeqPart(t.tsMicros, Math.floor(t.tsMicros / 1000), t.sourceId, t.seq)}`;

beforeAll(async () => {
  admin = new Redis(URL9);
  await admin.ping();
});
afterEach(async () => {
  for (const s of sinks.splice(0)) await s.stop();
  for (const f of feeders.splice(0)) await f.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  for (const p of prefixes.splice(0)) await deleteKeys(admin, p);
});
afterAll(() => {
  admin.disconnect();
});

describe('RedisSink: streams, latest hash, publish', () => {
  it('writes every trade to ticks:<SYM> with the record-derived ID and the documented fields, and HSETs latest:<SYM>', async () => {
    const { registry, ids } = makeRegistry(['MNQZ25', 'NQZ25', 'MESZ25']);
    const dataDir = tempDir();
    const f = feeder(dataDir);
    const kp = prefix();
    const s = sink({ ring: f.ring, registry: registry.buffer, dataDir, keyPrefix: kp });
    const trades = makeTrades(3000, ids, Date.now());
    await f.push(trades);
    await waitFor(() => s.status().sent === 3000, 20_000, 'sent = 3000');
    expect(s.state).toBe('live');
    for (const [i, sym] of ['MNQZ25', 'NQZ25', 'MESZ25'].entries()) {
      const mine = trades.filter((t) => t.symbolId === ids[i]);
      expect(await admin.xlen(`${kp}ticks:${sym}`)).toBe(mine.length);
      const entries = await admin.xrange(`${kp}ticks:${sym}`, '-', '+');
      expect(entries.map((e) => e[0])).toEqual(mine.map(idOf));
      const last = mine[mine.length - 1]!;
      const [, fields] = entries[entries.length - 1]!;
      expect(Object.fromEntries(chunk(fields))).toEqual({
        price: String(last.price), size: String(last.size), bid: String(last.price - 0.25), ask: String(last.price + 0.25),
        side: last.flags === TradeFlag.SIDE_BUY ? 'B' : 'S', seq: String(last.seq), ts_us: String(last.tsMicros), source: 'sierra',
      });
      const latest = await admin.hgetall(`${kp}latest:${sym}`);
      expect(latest).toMatchObject({ symbol: sym, price: String(last.price), size: String(last.size), seq: String(last.seq), ts_us: String(last.tsMicros), ts_ms: String(Math.floor(last.tsMicros / 1000)), source: 'sierra' });
      expect(latest.timestamp).toBe(`${new Date(Math.floor(last.tsMicros / 1000)).toISOString().slice(0, 23)}${String(last.tsMicros % 1000).padStart(3, '0')}Z`);
    }
    // The first connection replays the journal, which may already hold some of these: sent once either way.
    expect(s.status()).toMatchObject({ sent: 3000, unknownSymbol: 0, errors: 0, lost: 0, dropped: 0 });
  });

  it('lingers: trades that trickle in go out in a few larger pipelines, none lost; a pipeline\'s worth goes at once', async () => {
    const { registry, ids } = makeRegistry(['MNQZ25']);
    const trades = makeTrades(400, ids, Date.now());
    const run = async (lingerMs: number): Promise<{ batches: number }> => {
      const f = feeder(null);
      const s = sink({ ring: f.ring, registry: registry.buffer, keyPrefix: prefix(), lingerMs, lingerRecords: 256 });
      await waitFor(() => s.state === 'live', 15_000, 'live');
      const b0 = s.status().batches;
      // 40 dribbles of 10 trades, ~1 ms apart: what a 10 k ticks/s file source looks like to the sink
      for (let i = 0; i < 40; i++) {
        await f.push(trades.slice(i * 10, i * 10 + 10));
        await new Promise((r) => setTimeout(r, 1));
      }
      await waitFor(() => s.status().sent === 400, 15_000, 'sent 400');
      expect(s.status()).toMatchObject({ sent: 400, errors: 0, lost: 0, dropped: 0 });
      return { batches: s.status().batches - b0 };
    };
    const eager = await run(0);
    const lingering = await run(200);
    // with a 200 ms linger the 40 dribbles (tens of ms, even on a loaded machine) go out in one or two pipelines
    expect(lingering.batches).toBeLessThanOrEqual(6);
    expect(eager.batches).toBeGreaterThanOrEqual(lingering.batches); // (about one per dribble on a quiet machine)
    // a pipeline's worth does not wait: 300 records at once (over lingerRecords) go out before a 1 s linger could end
    const f = feeder(null);
    const s = sink({ ring: f.ring, registry: registry.buffer, keyPrefix: prefix(), lingerMs: 1000, lingerRecords: 256 });
    await waitFor(() => s.state === 'live', 15_000, 'live');
    const t0 = performance.now();
    await f.push(makeTrades(300, ids, Date.now() + 60_000));
    await waitFor(() => s.status().sent === 300, 15_000, 'sent 300');
    expect(performance.now() - t0).toBeLessThan(900);
  });

  it('PUBLISHes each live trade on market_data:<source>:trades as JSON {symbol, price, size, side, timestamp, ts_ms, source}', async () => {
    const { registry, ids } = makeRegistry(['MNQZ25', 'ESZ25']);
    const f = feeder(null);
    const kp = prefix();
    const sub = new Redis(URL9);
    const got: { channel: string; msg: unknown }[] = [];
    try {
      await sub.subscribe(`${kp}market_data:sierra:trades`, `${kp}market_data:dxlink:trades`);
      sub.on('message', (channel: string, msg: string) => got.push({ channel, msg: JSON.parse(msg) }));
      const s = sink({ ring: f.ring, registry: registry.buffer, keyPrefix: kp, sourceNames: { 1: 'sierra', 3: 'dxlink' } });
      const a = makeTrades(200, ids, Date.now(), 1);
      const b = makeTrades(100, [ids[1]!], Date.now() + 1000, 3); // after a's trades: a stream only appends
      await f.push([...a, ...b]);
      await waitFor(() => got.length === 300, 15_000, '300 messages');
      expect(s.status().published).toBe(300);
      expect(got.filter((g) => g.channel === `${kp}market_data:sierra:trades`)).toHaveLength(200);
      const first = got[0]!.msg as Record<string, unknown>;
      const t = a[0]!;
      expect(first).toEqual({
        symbol: 'MNQZ25', price: t.price, size: t.size, side: 'B', ts_ms: Math.floor(t.tsMicros / 1000), source: 'sierra',
        timestamp: `${new Date(Math.floor(t.tsMicros / 1000)).toISOString().slice(0, 23)}${String(t.tsMicros % 1000).padStart(3, '0')}Z`,
      });
      const dx = got.find((g) => g.channel === `${kp}market_data:dxlink:trades`)!.msg as Record<string, unknown>;
      expect(dx).toMatchObject({ symbol: 'ESZ25', source: 'dxlink' });
    } finally {
      sub.disconnect();
    }
  });

  it('keeps same-millisecond order and separates two sources stamping the same microsecond', async () => {
    const { registry, ids } = makeRegistry(['MNQZ25']);
    const f = feeder(null);
    const kp = prefix();
    const s = sink({ ring: f.ring, registry: registry.buffer, keyPrefix: kp });
    const ms = Date.now() - 1000;
    const sym = ids[0]!;
    const trades: TestTrade[] = [
      { sourceId: 1, symbolId: sym, seq: 1, tsMicros: ms * 1000, price: 1, size: 1 },
      { sourceId: 2, symbolId: sym, seq: 1, tsMicros: ms * 1000, price: 2, size: 1 }, // same µs, other source
      { sourceId: 1, symbolId: sym, seq: 2, tsMicros: ms * 1000 + 1, price: 3, size: 1 }, // Sierra's same-ms counter
      { sourceId: 1, symbolId: sym, seq: 3, tsMicros: ms * 1000 + 1, price: 4, size: 1 }, // same µs, next seq
      { sourceId: 1, symbolId: sym, seq: 4, tsMicros: ms * 1000 + 999, price: 5, size: 1 },
      { sourceId: 2, symbolId: sym, seq: 2, tsMicros: ms * 1000 + 500, price: 6, size: 1 }, // older than the stream's top: skipped
      { sourceId: 1, symbolId: sym, seq: 5, tsMicros: (ms + 1) * 1000, price: 7, size: 1 },
      { sourceId: 1, symbolId: sym, seq: 6, tsMicros: ms * 1000 + 2, price: 8, size: 1, flags: TradeFlag.SIDE_BUY | TradeFlag.V_OUT_OF_ORDER }, // flagged late
    ];
    await f.push(trades);
    await waitFor(() => s.status().sent + s.status().skippedDuplicate + s.status().outOfOrder === 8, 15_000, 'all 8 accounted');
    const entries = await admin.xrange(`${kp}ticks:MNQZ25`, '-', '+');
    expect(entries.map((e) => e[1][1])).toEqual(['1', '2', '3', '4', '5', '7']);
    expect(entries.map((e) => e[0])).toEqual([0, 1, 2, 3, 4, 6].map((i) => idOf(trades[i]!)));
    expect(s.status()).toMatchObject({ sent: 6, skippedDuplicate: 1, outOfOrder: 1 });
  });
});

describe('RedisSink: idempotent replay and trimming', () => {
  it('a second sink over the same journal and the same ring records adds nothing (IDs at or below the last are skipped)', async () => {
    const { registry, ids } = makeRegistry(['MNQZ25', 'NQZ25']);
    const dataDir = tempDir();
    const f = feeder(dataDir);
    const kp = prefix();
    const s1 = sink({ ring: f.ring, registry: registry.buffer, dataDir, keyPrefix: kp });
    const trades = makeTrades(2000, ids, Date.now());
    await f.push(trades);
    await waitFor(() => s1.status().sent === 2000, 20_000, 'first pass');
    await s1.stop();
    await f.journal!.flush();
    const len1 = await admin.xlen(`${kp}ticks:MNQZ25`);
    const len2 = await admin.xlen(`${kp}ticks:NQZ25`);
    expect(len1 + len2).toBe(2000);
    // a restarted sink: first connection, so it replays the journal; then the same records come through the ring again
    const s2 = sink({ ring: f.ring, registry: registry.buffer, dataDir, keyPrefix: kp });
    await waitFor(() => s2.status().catchUps === 1 && s2.state === 'live', 15_000, 'catch-up');
    await f.push(trades, { journal: false });
    await waitFor(() => s2.status().skippedDuplicate === 4000, 20_000, 'replays skipped');
    expect(s2.status()).toMatchObject({ sent: 0, catchUpRecords: 2000, errors: 0 });
    expect(await admin.xlen(`${kp}ticks:MNQZ25`)).toBe(len1);
    expect(await admin.xlen(`${kp}ticks:NQZ25`)).toBe(len2);
    // a few new trades after the replay are still sent
    const more = makeTrades(10, ids, Date.now() + 50).map((t) => ({ ...t, seq: t.seq + 5000 }));
    await f.push(more);
    await waitFor(() => s2.status().sent === 10, 15_000, 'new trades');
    expect((await admin.xlen(`${kp}ticks:MNQZ25`)) + (await admin.xlen(`${kp}ticks:NQZ25`))).toBe(2010);
  });

  it('catches up from the journal what never reached the ring (engine restarted after journaling)', async () => {
    const { registry, ids } = makeRegistry(['MNQZ25']);
    const dataDir = tempDir();
    const f = feeder(dataDir);
    const kp = prefix();
    const trades = makeTrades(1500, ids, Date.now());
    await f.push(trades.slice(0, 1000), { ring: false }); // journaled, then the engine died before the sink saw them
    await f.journal!.flush();
    const s = sink({ ring: f.ring, registry: registry.buffer, dataDir, keyPrefix: kp });
    await f.push(trades.slice(1000));
    await waitFor(() => s.status().sent === 1500, 20_000, 'all 1500');
    const entries = await admin.xrange(`${kp}ticks:MNQZ25`, '-', '+');
    expect(entries.map((e) => e[0])).toEqual(trades.map(idOf));
    // records replayed from the journal are not re-published (pub/sub is live only); the live ones are
    expect(s.status().published).toBeLessThanOrEqual(500);
    expect(s.status().catchUps).toBe(1);
  });

  it("catches up what the validator dropped for a full ring (its output-overflow GAP marker) before anything newer, in order", async () => {
    const { registry, ids } = makeRegistry(['MNQZ25', 'NQZ25']);
    const dataDir = tempDir();
    const f = feeder(dataDir);
    const kp = prefix();
    const s = sink({ ring: f.ring, registry: registry.buffer, dataDir, keyPrefix: kp, journalLagMs: 200 });
    await waitFor(() => s.state === 'live', 15_000, 'live');
    const trades = makeTrades(3000, ids, Date.now());
    await f.push(trades.slice(0, 1000));
    await f.push(trades.slice(1000, 1800), { ring: false }); // journaled, dropped for the sink's ring
    await f.pushOverflowMarker(trades[1000]!.tsMicros, trades[1799]!.tsMicros, 800);
    await f.push(trades.slice(1800));
    await waitFor(() => s.status().sent === 3000 && s.state === 'live', 20_000, 'all 3000');
    expect(s.status()).toMatchObject({ upstreamDropped: 800, lost: 0, errors: 0 });
    expect(s.status().catchUps).toBeGreaterThanOrEqual(2);
    for (const [i, sym] of ['MNQZ25', 'NQZ25'].entries()) {
      const got = (await admin.xrange(`${kp}ticks:${sym}`, '-', '+')).map((e) => e[0]);
      expect(got).toEqual(trades.filter((t) => t.symbolId === ids[i]).map(idOf));
    }
  });

  it('trims each stream to the retention window with MINID (exact and approximate) and never sends trades older than it', async () => {
    const { registry, ids } = makeRegistry(['MNQZ25']);
    const kp = prefix();
    let clock = Date.now();
    const f = feeder(null);
    const s = sink({ ring: f.ring, registry: registry.buffer, keyPrefix: kp, trim: '=', now: () => clock });
    const hourAgo = clock - 3_600_000;
    // 600 trades over the last 2 hours: the older 300 are beyond the horizon
    const trades: TestTrade[] = [];
    for (let i = 0; i < 600; i++) trades.push({ sourceId: 1, symbolId: ids[0]!, seq: i + 1, tsMicros: (clock - 7_200_000 + 2_000 + i * 12_000) * 1000, price: 100 + i, size: 1 });
    await f.push(trades);
    await waitFor(() => s.status().sent + s.status().expired === 600, 15_000, 'all accounted');
    const inWindow = trades.filter((t) => t.tsMicros >= hourAgo * 1000);
    expect(s.status().expired).toBe(600 - inWindow.length);
    expect(await admin.xlen(`${kp}ticks:MNQZ25`)).toBe(inWindow.length);
    // 30 minutes later: the next XADD trims everything older than the new horizon
    clock += 1_800_000;
    const later = { sourceId: 1, symbolId: ids[0]!, seq: 10_000, tsMicros: clock * 1000, price: 1, size: 1 };
    await f.push([later]);
    await waitFor(() => s.status().sent === inWindow.length + 1, 15_000, 'later trade');
    const horizonMs = clock - 3_600_000;
    const left = await admin.xrange(`${kp}ticks:MNQZ25`, '-', '+');
    const expected = [...inWindow, later].filter((t) => t.tsMicros >= horizonMs * 1000);
    expect(left.map((e) => e[0])).toEqual(expected.map(idOf));

    // approximate trimming: nothing inside the window is ever removed, whole old nodes are
    const kp2 = prefix();
    clock = Date.now();
    const f2 = feeder(null);
    const s2 = sink({ ring: f2.ring, registry: registry.buffer, keyPrefix: kp2, trim: '~', now: () => clock });
    const t2: TestTrade[] = [];
    for (let i = 0; i < 1000; i++) t2.push({ sourceId: 1, symbolId: ids[0]!, seq: i + 1, tsMicros: (clock - 3_500_000 + i * 3000) * 1000, price: 1, size: 1 });
    await f2.push(t2);
    await waitFor(() => s2.status().sent === 1000, 15_000, 'approx batch');
    clock += 3_000_000;
    await f2.push([{ sourceId: 1, symbolId: ids[0]!, seq: 5000, tsMicros: clock * 1000, price: 1, size: 1 }]);
    await waitFor(() => s2.status().sent === 1001, 15_000, 'approx later');
    const h2 = clock - 3_600_000;
    const all = await admin.xrange(`${kp2}ticks:MNQZ25`, '-', '+');
    const keptInWindow = all.filter((e) => Number(e[0].split('-')[0]) >= h2).length;
    expect(keptInWindow).toBe(t2.filter((t) => t.tsMicros >= h2 * 1000).length + 1);
    expect(all.length).toBeLessThan(1001); // old macro nodes went
  });
});

describe('RedisSink: bad input', () => {
  it('a malformed REDIS_URL is a coded ENGINE_ERR_CONFIG that never echoes the password', () => {
    for (const bad of ['localhost:6379', 'http://127.0.0.1:6379', 'redis://', 'redis://127.0.0.1:99999', 'redis://h:1/notadb', 'redis://:s3cret@h:1/x', 'redis://h/0?x=1', 42]) {
      let err: unknown = null;
      try { parseRedisUrl(bad); } catch (e) { err = e; }
      expect(isEngineError(err, 'ENGINE_ERR_CONFIG'), String(bad)).toBe(true);
      expect((err as Error).message).toContain('REDIS_URL');
      expect((err as Error).message).not.toContain('s3cret');
    }
    expect(parseRedisUrl(undefined)).toBeNull();
    expect(parseRedisUrl('')).toBeNull();
    expect(parseRedisUrl('redis://:pw@10.0.0.5:6380/3')).toMatchObject({ host: '10.0.0.5', port: 6380, db: 3, tls: false, redacted: 'redis://:***@10.0.0.5:6380/3' });
    const { registry } = makeRegistry(['MNQZ25']);
    const f = feeder(null);
    expect(() => new RedisSink({ ring: f.ring, registry: registry.buffer, redisUrl: 'redis://h:1/x' })).toThrow(/REDIS_URL/);
    expect(() => new RedisSink({ ring: new SharedArrayBuffer(64), registry: registry.buffer, redisUrl: URL9 })).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_RING_ATTACH' }));
    expect(() => new RedisSink({ ring: f.ring, registry: registry.buffer, redisUrl: URL9, batchRecords: 0 })).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_INVALID_ARG' }));
    for (const bad of [{ lingerMs: -1 }, { lingerMs: 1.5 }, { lingerMs: 5000 }, { lingerRecords: 0 }]) {
      expect(() => new RedisSink({ ring: f.ring, registry: registry.buffer, redisUrl: URL9, ...bad })).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_INVALID_ARG' }));
    }
  });

  it('counts records of unknown symbols and other kinds without crashing, and still sends the good ones', async () => {
    const { registry, ids } = makeRegistry(['MNQZ25']);
    const f = feeder(null);
    const kp = prefix();
    const s = sink({ ring: f.ring, registry: registry.buffer, keyPrefix: kp });
    const now = Date.now();
    const good = makeTrades(50, ids, now);
    const bad: TestTrade[] = [
      { sourceId: 1, symbolId: 0, seq: 1, tsMicros: now * 1000, price: 1, size: 1 },
      { sourceId: 1, symbolId: 999, seq: 1, tsMicros: now * 1000, price: 1, size: 1 },
      { sourceId: 1, symbolId: 65535, seq: 1, tsMicros: now * 1000, price: 1, size: 1 },
      { kind: RecordKind.DEPTH, sourceId: 2, symbolId: ids[0]!, seq: 1, tsMicros: now * 1000, price: 1, size: 1 },
      { kind: 250, sourceId: 2, symbolId: ids[0]!, seq: 1, tsMicros: now * 1000, price: 1, size: 1 },
      { sourceId: 1, symbolId: ids[0]!, seq: 1, tsMicros: Number.NaN, price: 1, size: 1 },
    ];
    await f.push([...bad.slice(0, 3), ...good.slice(0, 25), ...bad.slice(3), ...good.slice(25)]);
    await waitFor(() => s.status().sent === 50, 15_000, 'good ones');
    expect(s.status()).toMatchObject({ unknownSymbol: 3, ignored: 2, expired: 1, errors: 0 });
    expect(await admin.xlen(`${kp}ticks:MNQZ25`)).toBe(50);
    expect(s.state).toBe('live');
  });

  it('QUOTE records update the bid/ask of latest:<SYM> only', async () => {
    const { registry, ids } = makeRegistry(['MNQZ25']);
    const f = feeder(null);
    const kp = prefix();
    const s = sink({ ring: f.ring, registry: registry.buffer, keyPrefix: kp });
    const now = Date.now() * 1000;
    await f.push([
      { sourceId: 1, symbolId: ids[0]!, seq: 1, tsMicros: now, price: 100, size: 2 },
      { kind: RecordKind.QUOTE, sourceId: 1, symbolId: ids[0]!, seq: 2, tsMicros: now + 5, price: Number.NaN, size: 0, bid: 100.5, ask: 101 },
    ]);
    await waitFor(() => s.status().quotes === 1 && s.status().sent === 1, 15_000, 'trade and quote');
    expect(await admin.hgetall(`${kp}latest:MNQZ25`)).toMatchObject({ price: '100', size: '2', bid: '100.5', ask: '101', quote_ts_us: String(now + 5) });
    expect(await admin.xlen(`${kp}ticks:MNQZ25`)).toBe(1);
  });

  it('without REDIS_URL the sink is disabled and drains its ring; with Redis unreachable it keeps draining and says connecting', async () => {
    const { registry, ids } = makeRegistry(['MNQZ25']);
    const f = feeder(null, 256);
    const off = new RedisSink({ ring: f.ring, registry: registry.buffer, redisUrl: undefined });
    sinks.push(off);
    const done = off.run();
    expect(off.state).toBe('disabled');
    await f.push(makeTrades(2000, ids, Date.now())); // 8x the ring: only completes if the ring is drained
    await waitFor(() => off.status().ignored === 2000, 10_000, 'disabled drain');
    await off.stop();
    await done;

    const port = await freePort(); // nothing listens there
    const f2 = feeder(null, 256);
    const s = sink({ ring: f2.ring, registry: registry.buffer, redisUrl: `redis://127.0.0.1:${port}`, holdRecords: 512 });
    await f2.push(makeTrades(3000, ids, Date.now()));
    await waitFor(() => s.status().dropped + s.status().held === 3000, 10_000, 'held or dropped');
    expect(s.state).toBe('connecting');
    expect(s.status().errors).toBeGreaterThan(0);
    expect(s.status().lastError).toMatch(/ECONNREFUSED|connect/i);
  });
});

function chunk(a: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < a.length; i += 2) out.push([a[i]!, a[i + 1]!]);
  return out;
}
