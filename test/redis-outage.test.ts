/**
 * Redis outage: a private redis-server (no persistence, so a restart comes back EMPTY) is killed
 * (SIGKILL, later SIGTERM) and started again on the same port while records keep flowing; its client
 * connections are also cut (CLIENT KILL: Redis keeps its data) and it is frozen (DEBUG SLEEP: batches
 * stall). The producer must never be held up by the sink, the sink must say 'reconnecting' and must
 * not crash, and in the end every stream must hold exactly the expected entries: no gap, no duplicate,
 * IDs equal to the record-derived ones, lengths equal to the records sent.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { idSeqPart } from '../workers/redis-sink/ids.ts';
import { RedisSink } from '../workers/redis-sink/sink.ts';
import { RecordFeeder, RedisProcess, freePort, makeRegistry, makeTrades, waitFor, type TestTrade } from '../workers/redis-sink/testing.ts';

const idOf = (t: TestTrade): string => `${Math.floor(t.tsMicros / 1000)}-${idSeqPart(t.tsMicros, Math.floor(t.tsMicros / 1000), t.sourceId, t.seq)}`;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('Redis outage', () => {
  it('keeps draining while Redis is down, reports reconnecting, and catches up from the journal with no gap and no duplicate', async () => {
    const port = await freePort();
    const server = new RedisProcess(port);
    await server.start();
    cleanups.push(() => server.stop());
    const dataDir = mkdtempSync(join(tmpdir(), 'tp-redis-outage-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const symbols = ['MNQZ25', 'NQZ25', 'MESZ25'];
    const { registry, ids } = makeRegistry(symbols);
    const feeder = new RecordFeeder({ dataDir, slots: 1024 });
    const errors: string[] = [];
    cleanups.push(() => feeder.close());
    const sink = new RedisSink({
      ring: feeder.ring, registry: registry.buffer, redisUrl: server.url, dataDir, holdRecords: 2048, stallMs: 300,
      redisOptions: { retryStrategy: () => 50 },
      onError: (e) => errors.push(`${e.code}: ${e.message}`),
    });
    let crashed: unknown = null;
    const running = sink.run().catch((e: unknown) => { crashed = e; });
    cleanups.push(async () => { await sink.stop(); await running; });
    const admin = new Redis(server.url, { retryStrategy: () => 50, maxRetriesPerRequest: null });
    admin.on('error', () => undefined);
    cleanups.push(() => admin.disconnect());

    const TOTAL = 24_000;
    const trades = makeTrades(TOTAL, ids, Date.now(), 1, 4);
    const part = (a: number, b: number): TestTrade[] => trades.slice(a, b);
    const states = new Set<string>();
    const watch = setInterval(() => states.add(sink.state), 5);
    cleanups.push(() => clearInterval(watch));

    // 1. normal flow
    await feeder.push(part(0, 4000));
    await waitFor(() => sink.status().sent >= 4000, 20_000, 'first 4000 sent');

    // 2. SIGKILL: Redis gone (and empty when it comes back); the producer keeps going through the 1024-slot ring
    await server.stop('SIGKILL');
    await feeder.push(part(4000, 10_000)); // 6000 records > ring + hold: completes only because the sink keeps draining
    await waitFor(() => sink.state === 'reconnecting', 10_000, 'reconnecting');
    expect(sink.status().dropped).toBeGreaterThan(0); // the hold buffer overflowed: those are left to the journal
    await server.start();
    await feeder.push(part(10_000, 12_000));
    await waitFor(() => sink.state === 'live' && sink.status().lagRecords === 0, 20_000, 'live again after SIGKILL');

    // 3. connections cut, Redis keeps its data (fast path: no journal needed unless the hold overflowed)
    await admin.client('KILL', 'TYPE', 'normal').catch(() => undefined);
    await feeder.push(part(12_000, 15_000));

    // 4. Redis frozen for a while: batches stall, the sink keeps draining into the hold buffer
    await waitFor(() => sink.state === 'live' && sink.status().lagRecords === 0, 20_000, 'live after CLIENT KILL');
    const sleeper = new Redis(server.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    sleeper.on('error', () => undefined);
    await sleeper.ping();
    const slept = sleeper.call('DEBUG', 'SLEEP', '1');
    await new Promise((r) => setTimeout(r, 100)); // the server is asleep now
    await feeder.push(part(15_000, 18_000));
    expect(await slept).toBe('OK');
    sleeper.disconnect();

    // 5. SIGTERM, restart on the same port (empty again)
    await waitFor(() => sink.state === 'live', 20_000, 'live before SIGTERM');
    await server.stop('SIGTERM');
    await feeder.push(part(18_000, 21_000));
    await server.start();
    await feeder.push(part(21_000, TOTAL));

    // every stream complete, exactly once
    await waitFor(async () => {
      try {
        let n = 0;
        for (const s of symbols) n += await admin.xlen(`ticks:${s}`);
        return n === TOTAL && sink.state === 'live';
      } catch {
        return false;
      }
    }, 30_000, `${TOTAL} entries in the streams`);
    for (const [i, s] of symbols.entries()) {
      const got = (await admin.xrange(`ticks:${s}`, '-', '+')).map((e) => e[0]);
      const want = trades.filter((t) => t.symbolId === ids[i]).map(idOf);
      expect(got.length).toBe(want.length);
      expect(new Set(got).size).toBe(got.length);
      expect(got).toEqual(want);
      const latest = await admin.hgetall(`latest:${s}`);
      const last = trades.filter((t) => t.symbolId === ids[i]).at(-1)!;
      expect(latest.seq).toBe(String(last.seq));
    }
    expect(crashed).toBeNull();
    expect(states.has('reconnecting')).toBe(true);
    expect(states.has('catching-up')).toBe(true);
    const st = sink.status();
    expect(st.reconnects).toBeGreaterThanOrEqual(3);
    expect(st.catchUps).toBeGreaterThanOrEqual(3); // first connection, and after each empty restart
    expect(st.lost).toBe(0);
    expect(st.lastError).not.toBeNull();
    expect(errors.some((e) => e.startsWith('ENGINE_ERR_TIMEOUT')), errors.join('\n')).toBe(true); // the frozen server stalled a batch
    expect(errors.some((e) => /connection .* lost/.test(e))).toBe(true);
  });

  it('Redis paused (it keeps its data): stalled batches, hold-buffer overflow, then a journal catch-up to the watermark; no journal: counted as lost', async () => {
    const port = await freePort();
    const server = new RedisProcess(port);
    await server.start();
    cleanups.push(() => server.stop());
    const dataDir = mkdtempSync(join(tmpdir(), 'tp-redis-pause-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const { registry, ids } = makeRegistry(['MNQZ25', 'NQZ25']);
    const feeder = new RecordFeeder({ dataDir, slots: 512 });
    cleanups.push(() => feeder.close());
    const sink = new RedisSink({ ring: feeder.ring, registry: registry.buffer, redisUrl: server.url, dataDir, holdRecords: 1024, stallMs: 200, redisOptions: { retryStrategy: () => 50 } });
    const running = sink.run();
    cleanups.push(async () => { await sink.stop(); await running; });
    const admin = new Redis(server.url, { retryStrategy: () => 50 });
    admin.on('error', () => undefined);
    cleanups.push(() => admin.disconnect());
    const trades = makeTrades(12_000, ids, Date.now(), 1, 4);
    await feeder.push(trades.slice(0, 3000));
    await waitFor(() => sink.status().sent === 3000 && sink.state === 'live', 20_000, 'first 3000');
    const catchUpsBefore = sink.status().catchUps;
    await admin.client('PAUSE', '1500', 'WRITE');
    await feeder.push(trades.slice(3000, 9000)); // 6000 > ring + hold while writes are paused
    await waitFor(() => sink.state !== 'live', 10_000, 'not live while paused');
    await waitFor(() => sink.status().dropped > 0, 10_000, 'hold overflow');
    await feeder.push(trades.slice(9000));
    await waitFor(() => sink.status().sent === 12_000 && sink.state === 'live', 30_000, 'all 12000');
    for (const [i, s] of ['MNQZ25', 'NQZ25'].entries()) {
      const got = (await admin.xrange(`ticks:${s}`, '-', '+')).map((e) => e[0]);
      expect(got).toEqual(trades.filter((t) => t.symbolId === ids[i]).map(idOf));
    }
    expect(sink.status().catchUps).toBeGreaterThan(catchUpsBefore);
    expect(sink.status().lost).toBe(0);

    // the same without a journal: what the hold buffer let go is counted as lost, and the sink goes on
    const f2 = new RecordFeeder({ slots: 256 });
    const s2 = new RedisSink({ ring: f2.ring, registry: registry.buffer, redisUrl: server.url, keyPrefix: 'nojournal:', holdRecords: 256, stallMs: 200, redisOptions: { retryStrategy: () => 50 } });
    const r2 = s2.run();
    cleanups.push(async () => { await s2.stop(); await r2; });
    await waitFor(() => s2.state === 'live', 10_000, 'second sink live');
    const t2 = makeTrades(4000, ids, Date.now() + 2000, 1, 4);
    await admin.client('PAUSE', '1000', 'WRITE');
    await f2.push(t2.slice(0, 3000));
    await waitFor(() => s2.status().dropped > 0, 10_000, 'overflow without journal');
    await f2.push(t2.slice(3000));
    await waitFor(() => s2.state === 'live' && s2.status().lagRecords === 0 && s2.status().lost > 0, 20_000, 'lost counted');
    const st = s2.status();
    expect(st.sent + st.lost).toBeGreaterThanOrEqual(4000 - st.skippedDuplicate);
    expect(st.lost).toBe(st.dropped);
    expect(await admin.xlen('nojournal:ticks:MNQZ25') + await admin.xlen('nojournal:ticks:NQZ25')).toBe(st.sent);
  });
});
