/**
 * The Redis sink as a worker thread (workers/redis-sink.worker.ts via spawnWorker), the way the engine
 * runs it: READY, status readable from this thread through the status SAB, STATS messages, drain-then-stop
 * when the ring is STOPPED, 'disabled' without REDIS_URL, FATAL with a coded error for a bad REDIS_URL; its
 * thread named `tp:redis-sink` and at the nice value it was given.
 */
import type { Worker } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { fromWire } from '../engine/errors.ts';
import { RingState } from '../engine/ring/layout.ts';
import { setRingState } from '../engine/ring/ring.ts';
import { spawnWorker, waitForMessage } from '../engine/worker-host.ts';
import { createRedisSinkStatus, readRedisSinkStatus } from '../workers/redis-sink/status.ts';
import type { RedisSinkWorkerData } from '../workers/redis-sink/worker-main.ts';
import { RecordFeeder, deleteKeys, makeRegistry, makeTrades, waitFor } from '../workers/redis-sink/testing.ts';
import { isWorkerMessage, type WorkerMessage } from '../workers/protocol.ts';
import { threadsNamed } from '../engine/fixtures/threads.ts';

const ENTRY = new URL('../workers/redis-sink.worker.ts', import.meta.url);
const URL9 = 'redis://127.0.0.1:6379/9';
const workers: Worker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.terminate();
});

function start(data: RedisSinkWorkerData): { w: Worker; messages: WorkerMessage[] } {
  const w = spawnWorker(ENTRY, data, { name: data.name });
  workers.push(w);
  const messages: WorkerMessage[] = [];
  w.on('message', (m: unknown) => { if (isWorkerMessage(m)) messages.push(m); });
  return { w, messages };
}
const is = <C extends WorkerMessage['code']>(code: C) => (m: unknown): m is Extract<WorkerMessage, { code: C }> => isWorkerMessage(m) && m.code === code;

describe('redis-sink worker', () => {
  it('sends the ring to Redis, reports through the status SAB and STATS, and stops once its ring is STOPPED and drained', async () => {
    const { registry, ids } = makeRegistry(['MNQZ25', 'NQZ25']);
    const feeder = new RecordFeeder({ slots: 1024 });
    const status = createRedisSinkStatus();
    const kp = `tp-test-w-${process.pid}-${Date.now()}:`;
    const admin = new Redis(URL9);
    try {
      const { w, messages } = start({ name: 'redis-sink', ring: feeder.ring, registry: registry.buffer, status, redisUrl: URL9, keyPrefix: kp, statsIntervalMs: 50, nice: 5 });
      await waitForMessage(w, is('READY'), 30_000);
      // background work: the sink's own thread runs at the nice value it was given (Linux), named for top -H
      if (process.platform === 'linux') expect(threadsNamed('tp:redis-sink')).toEqual([expect.objectContaining({ nice: 5 })]);
      await waitFor(() => readRedisSinkStatus(status).state === 'live', 15_000, 'live');
      await feeder.push(makeTrades(5000, ids, Date.now()));
      await waitFor(() => readRedisSinkStatus(status).sent === 5000, 20_000, 'sent 5000');
      await waitFor(() => messages.some((m) => m.code === 'STATS' && m.stats.sent === 5000), 10_000, 'STATS');
      const stopped = waitForMessage(w, is('STOPPED'), 15_000);
      setRingState(feeder.ring, RingState.STOPPED);
      const msg = await stopped;
      expect(msg.stats).toMatchObject({ sent: 5000, errors: 0 });
      expect(readRedisSinkStatus(status).state).toBe('stopped');
      expect((await admin.xlen(`${kp}ticks:MNQZ25`)) + (await admin.xlen(`${kp}ticks:NQZ25`))).toBe(5000);
    } finally {
      await deleteKeys(admin, kp);
      admin.disconnect();
    }
  });

  it("without REDIS_URL it says 'disabled', drains its ring and stops on STOP", async () => {
    const { registry, ids } = makeRegistry(['MNQZ25']);
    const feeder = new RecordFeeder({ slots: 256 });
    const status = createRedisSinkStatus();
    const { w } = start({ name: 'redis-sink', ring: feeder.ring, registry: registry.buffer, status, redisUrl: null });
    await waitForMessage(w, is('READY'), 30_000);
    expect(readRedisSinkStatus(status).state).toBe('disabled');
    await feeder.push(makeTrades(1000, ids, Date.now()));
    await waitFor(() => readRedisSinkStatus(status).ignored === 1000, 10_000, 'drained');
    const stopped = waitForMessage(w, is('STOPPED'), 15_000);
    w.postMessage({ code: 'STOP' });
    await stopped;
  });

  it('a malformed REDIS_URL is a FATAL with ENGINE_ERR_CONFIG, before READY', async () => {
    const { registry } = makeRegistry(['MNQZ25']);
    const feeder = new RecordFeeder({ slots: 64 });
    const { w } = start({ name: 'redis-sink', ring: feeder.ring, registry: registry.buffer, status: createRedisSinkStatus(), redisUrl: 'redis://:pw@host:70000' });
    const fatal = await waitForMessage(w, is('FATAL'), 30_000).catch(() => null);
    expect(fatal).not.toBeNull();
    const err = fromWire(fatal!.error);
    expect(err.code).toBe('ENGINE_ERR_CONFIG');
    expect(err.message).toContain('REDIS_URL');
    expect(err.message).not.toContain('pw@');
  });
});
