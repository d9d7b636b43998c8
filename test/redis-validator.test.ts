/**
 * The sink behind the real producer: engine/validate's ValidatorStage (journal first, then the Redis
 * ring; a full Redis ring drops records and announces them with an output-overflow GAP marker) feeding
 * the RedisSink, with a private redis-server killed and restarted in the middle. In the end every stream
 * holds exactly the TRADE records the journal holds (what the validator accepted), once, in journal order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../engine/journal/journal.ts';
import { LatestTable } from '../engine/latest/latest-table.ts';
import { RingState } from '../engine/ring/layout.ts';
import { RingWriter, createRing, setRingState } from '../engine/ring/ring.ts';
import { ValidatorStage } from '../engine/validate/stage.ts';
import { RECORD_RING_KIND, RECORD_SLOT_BYTES, RecordKind } from '../schemas/records.ts';
import { idSeqPart } from '../workers/redis-sink/ids.ts';
import { RedisSink } from '../workers/redis-sink/sink.ts';
import { RedisProcess, freePort, makeRegistry, makeTrades, waitFor, writeTestRecord } from '../workers/redis-sink/testing.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('RedisSink behind the validator stage', () => {
  it('streams equal the journal after an overflowing Redis ring and a Redis restart', async () => {
    const port = await freePort();
    const server = new RedisProcess(port);
    await server.start();
    cleanups.push(() => server.stop());
    const dataDir = mkdtempSync(join(tmpdir(), 'tp-redis-val-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const symbols = ['MNQZ25', 'NQZ25', 'MESZ25'];
    const { registry, ids } = makeRegistry(symbols);
    const latest = LatestTable.create(64);
    const input = createRing({ slotCount: 4096, slotBytes: RECORD_SLOT_BYTES, recordKind: RECORD_RING_KIND });
    const redisRing = createRing({ slotCount: 256, slotBytes: RECORD_SLOT_BYTES, recordKind: RECORD_RING_KIND }); // small: it will overflow
    const stage = await ValidatorStage.open({
      name: 'validator', dataDir, inputs: [input], feedRing: null, redisRing, hot: null, latest: latest.buffer, registry: registry.buffer,
      commitIntervalMs: 20, validator: { spikeBandFraction: 0, staleAfterMicros: 0, timeGapMicros: 0, calendar: '24x7' },
    });
    const stageDone = stage.run();
    cleanups.push(async () => { stage.requestStop(); await stageDone.catch(() => undefined); });
    const sink = new RedisSink({ ring: redisRing, registry: registry.buffer, redisUrl: server.url, dataDir, holdRecords: 512, stallMs: 300, journalLagMs: 300, redisOptions: { retryStrategy: () => 50 } });
    const sinkDone = sink.run();
    cleanups.push(async () => { await sink.stop(); await sinkDone; });

    const w = RingWriter.attach(input, RECORD_RING_KIND);
    const trades = makeTrades(30_000, ids, Date.now(), 1, 4);
    const push = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to;) {
        const k = w.claim(Math.min(512, to - i));
        if (k === 0) { await w.waitForSpaceAsync(1, 50); continue; }
        for (let j = 0; j < k; j++) writeTestRecord(w.views, w.slotByte(j), trades[i + j]!);
        w.publish(k);
        i += k;
        await new Promise((r) => setImmediate(r));
      }
    };
    await push(0, 10_000);
    await server.stop('SIGKILL');
    await push(10_000, 20_000);
    await server.start();
    await push(20_000, 30_000);
    setRingState(input, RingState.STOPPED);
    await stageDone; // drained, journal committed and closed
    expect(stage.stats().redisDropped).toBeGreaterThan(0); // the validator had to drop for the sink's ring

    // what the journal holds, per symbol, in journal order: the streams must hold exactly these
    const j = Journal.open({ dataDir, commitIntervalMs: 0 });
    const want = new Map<number, string[]>(ids.map((id) => [id, []]));
    let journaled = 0;
    j.replay('open-hours', (v, off, count) => {
      for (let k = 0; k < count; k++) {
        const b = off + k * RECORD_SLOT_BYTES;
        if (v.u8[b] !== RecordKind.TRADE) continue;
        const ts = v.f64[(b + 8) >> 3]!;
        const ms = Math.floor(ts / 1000);
        want.get(v.u16[(b + 2) >> 1]!)!.push(`${ms}-${idSeqPart(ts, ms, v.u8[b + 1]!, v.u32[(b + 4) >> 2]!)}`);
        journaled++;
      }
    });
    await j.close();
    expect(journaled).toBe(30_000);
    const admin = new Redis(server.url);
    cleanups.push(() => admin.disconnect());
    await waitFor(async () => {
      let n = 0;
      for (const s of symbols) n += await admin.xlen(`ticks:${s}`);
      return n === journaled && sink.state === 'live';
    }, 30_000, 'streams complete');
    for (const [i, s] of symbols.entries()) {
      expect((await admin.xrange(`ticks:${s}`, '-', '+')).map((e) => e[0])).toEqual(want.get(ids[i]!));
    }
    expect(sink.status()).toMatchObject({ lost: 0 });
    // every drop window's marker reached the sink, the last one too (the stage waits at close for a free slot)
    expect(stage.stats().overflowMarkersUnsent).toBe(0);
    expect(sink.status().upstreamDropped).toBe(stage.stats().redisDropped);
  });
});
