/**
 * Ring throughput between two real threads (two Workers; the main thread only orchestrates), against
 * `postMessage` between the same two threads as the baseline, measured in the same run.
 *
 * - Ring: 64-byte slots carrying full TRADE records (schemas/records.ts, `writeTrade`) and 32-byte slots
 *   carrying a compact tick, at batch sizes 1, 64 and 1024 (the producer claims and publishes whole
 *   batches; the consumer releases up to that many at a time). Ring of 4096 slots. Sync parks on both
 *   sides (`waitForSpace` / `waitForData`): neither peer has async work. Two extra points at batch 64
 *   busy-spin instead of parking, to show what the park/wake round trips cost on this machine (a
 *   spinning peer burns a core: not how the engine runs).
 * - postMessage: one message per 64 records carrying a Float64Array copy (8 f64 per record = 64 bytes,
 *   the same data), and one plain object per record; at most a window of messages in flight (acks in a
 *   SAB word) so the baseline measures delivery, not memory growth.
 * - Both consumers compute an order-sensitive checksum over seq, ts, price and size; it must equal the
 *   producer's or the suite throws.
 * - Each point moves a fixed count of records, timed by the consumer from the start gate to the last
 *   record; 3 repetitions, median reported (1 repetition and small counts with `quick`).
 *
 * Targets to report against (not asserted): >= 40 million records/s at batch >= 64, and >= 30x the
 * postMessage baseline. The 64- vs 128-byte control-line comparison is not run: LINE_BYTES is a module
 * constant baked into every control-word index (engine/ring/layout.ts), not a per-ring parameter, so
 * comparing would need a second ring implementation rather than a flag.
 */
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { createRing } from '../engine/ring/ring.ts';
import { spawnWorker, waitForMessage } from '../engine/worker-host.ts';
import { RECORD_SLOT_BYTES } from '../schemas/records.ts';
import { sig, type BenchResult, type BenchSuite } from './lib.ts';
import type { PeerCommand, PeerDone } from './ring-peer.worker.ts';

const PEER = new URL('./ring-peer.worker.ts', import.meta.url);
const RING_SLOTS = 4096;
const BATCHES = [1, 64, 1024] as const;
const SLOT_SIZES = [RECORD_SLOT_BYTES, 32] as const;

const isReady = (m: unknown): m is { code: 'ready' } => (m as { code?: unknown } | null)?.code === 'ready';
const isDone = (m: unknown): m is PeerDone => (m as { code?: unknown } | null)?.code === 'done';

interface Point { recordsPerSec: number; consumerParks?: number }

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Run one measured transfer: both peers get their command, report ready, start together at the gate. */
async function once(producer: Worker, consumer: Worker, prodCmd: PeerCommand, consCmd: PeerCommand, gateSab: SharedArrayBuffer, count: number, what: string, ports?: readonly [MessagePort, MessagePort]): Promise<Point> {
  const gate = new Int32Array(gateSab);
  const readyP = waitForMessage(producer, isReady);
  const readyC = waitForMessage(consumer, isReady);
  if (ports) {
    producer.postMessage(prodCmd, [ports[0]]);
    consumer.postMessage(consCmd, [ports[1]]);
  } else {
    producer.postMessage(prodCmd);
    consumer.postMessage(consCmd);
  }
  await Promise.all([readyP, readyC]);
  const timeoutMs = 120_000;
  const doneP = waitForMessage(producer, isDone, timeoutMs);
  const doneC = waitForMessage(consumer, isDone, timeoutMs);
  Atomics.store(gate, 0, 1);
  Atomics.notify(gate, 0);
  const [p, c] = await Promise.all([doneP, doneC]);
  if (p.checksum !== c.checksum) {
    throw new Error(`ring bench: CHECKSUM MISMATCH in ${what}: producer ${p.checksum}, consumer ${c.checksum} — records were lost, duplicated or corrupted`);
  }
  const point: Point = { recordsPerSec: count / (c.elapsedMs / 1000) };
  if (c.parks !== undefined) point.consumerParks = c.parks;
  return point;
}

export const run: BenchSuite = async ({ quick }) => {
  const reps = quick ? 1 : 3;
  const ringCount = (batch: number): number => (quick ? (batch === 1 ? 100_000 : 300_000) : (batch === 1 ? 5_000_000 : 20_000_000));
  const pmBatchCount = quick ? 100_000 : 5_000_000;
  const pmObjectCount = quick ? 20_000 : 500_000;

  const producer = spawnWorker(PEER, {}, { name: 'ring-bench-producer' });
  const consumer = spawnWorker(PEER, {}, { name: 'ring-bench-consumer' });
  try {
    // warm-up: JIT both sides on a short run of each kind, not measured
    for (const slotBytes of SLOT_SIZES) {
      const ring = createRing({ slotCount: RING_SLOTS, slotBytes });
      const gate = new SharedArrayBuffer(4);
      await once(producer, consumer, { cmd: 'ring-produce', ring, gate, count: 200_000, batch: 64, spin: false }, { cmd: 'ring-consume', ring, gate, count: 200_000, batch: 64, spin: false }, gate, 200_000, 'warm-up');
    }

    const ringPoint = async (slotBytes: number, batch: number, spin = false): Promise<number> => {
      const xs: number[] = [];
      const count = ringCount(batch);
      for (let r = 0; r < reps; r++) {
        const ring = createRing({ slotCount: RING_SLOTS, slotBytes });
        const gate = new SharedArrayBuffer(4);
        const pt = await once(producer, consumer, { cmd: 'ring-produce', ring, gate, count, batch, spin }, { cmd: 'ring-consume', ring, gate, count, batch, spin }, gate, count, `ring ${slotBytes}B batch=${batch}${spin ? ' spin' : ''}`);
        xs.push(pt.recordsPerSec);
      }
      return median(xs);
    };

    const pmOnce = async (mode: 'batch64' | 'object', count: number): Promise<number> => {
      const { port1, port2 } = new MessageChannel();
      const gate = new SharedArrayBuffer(4);
      const ack = new SharedArrayBuffer(4);
      const pt = await once(
        producer, consumer,
        { cmd: 'pm-produce', port: port1, gate, ack, count, mode },
        { cmd: 'pm-consume', port: port2, gate, ack, count, mode },
        gate, count, `postMessage ${mode}`, [port1, port2],
      );
      return pt.recordsPerSec;
    };
    const pmPoint = async (mode: 'batch64' | 'object', count: number): Promise<number> => {
      await pmOnce(mode, Math.min(count, 20_000)); // warm-up, not measured
      const xs: number[] = [];
      for (let r = 0; r < reps; r++) xs.push(await pmOnce(mode, count));
      return median(xs);
    };

    const pmBatch = await pmPoint('batch64', pmBatchCount);
    const pmObject = await pmPoint('object', pmObjectCount);

    const results: BenchResult[] = [];
    for (const slotBytes of SLOT_SIZES) {
      for (const batch of BATCHES) {
        const v = await ringPoint(slotBytes, batch);
        const perRecord = batch === 1;
        const baseline = perRecord ? 'postMessage, one object per record' : 'postMessage, Float64Array per 64 records';
        const base = perRecord ? pmObject : pmBatch;
        results.push({
          name: `ring: ${slotBytes}-byte slots, batch ${batch}, 2 threads`, unit: 'records/s', value: sig(v),
          baseline, baselineValue: sig(base), ratio: sig(v / base, 3),
        });
      }
    }
    for (const slotBytes of SLOT_SIZES) {
      const v = await ringPoint(slotBytes, 64, true);
      results.push({
        name: `ring: ${slotBytes}-byte slots, batch 64, 2 threads, busy-spin (no parking)`, unit: 'records/s', value: sig(v),
        baseline: 'postMessage, Float64Array per 64 records', baselineValue: sig(pmBatch), ratio: sig(v / pmBatch, 3),
      });
    }
    results.push({ name: 'ring: baseline postMessage, Float64Array per 64 records', unit: 'records/s', value: sig(pmBatch) });
    results.push({ name: 'ring: baseline postMessage, one object per record', unit: 'records/s', value: sig(pmObject) });
    return results;
  } finally {
    await Promise.all([producer.terminate(), consumer.terminate()]);
  }
};
