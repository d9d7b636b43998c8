/**
 * Two-thread stress test of the SPSC ring (STYLE.md §3.13): a real producer Worker pushes 10 million
 * 64-byte records in seeded random batch sizes through a 1024-slot ring (it wraps ~10,000 times and
 * fills often); the main thread consumes with the async park and checks every record:
 * - the record number advances by exactly 1 (no loss, no duplicate, no reordering);
 * - every field and the canary tail of the slot belong to that record (no torn, stale or unwritten slot);
 * - `available()` never reports more than the ring holds or than the producer has written;
 * - the order-sensitive checksums of both sides agree and ringStats shows published == released == N;
 * - the control block's unused words (canaries between and after the owners' lines) are untouched.
 * The sequences start 3 million below 2^31, so the int32 sign flip happens mid-run under real contention,
 * and the 64-bit published/released counters start 4 million below 2^32, so their carry happens mid-run
 * too while the consumer samples ringStats (monotonic, never 2^32 off).
 *
 * `TICKPIPE_SOAK=1` runs 200 million records; `TICKPIPE_SEED=<n>` replays a seed (printed on failure).
 */
import type { Worker } from 'node:worker_threads';
import { afterEach, expect, test } from 'vitest';
import { fromWire } from '../errors.ts';
import { spawnWorker, waitForMessage } from '../worker-host.ts';
import type { ProducerWorkerData } from './fixtures/producer.worker.ts';
import { checkSlot, recordChecksum } from './fixtures/stress-record.ts';
import * as L from './layout.ts';
import { createRingAtSeq, RingReader, ringStats } from './ring.ts';
import { RECORD_RING_KIND, RECORD_SLOT_BYTES } from '../../schemas/records.ts';
import { Prng } from '../../workers/sim/prng.ts';

const SOAK = process.env.TICKPIPE_SOAK === '1';
const TOTAL = SOAK ? 200_000_000 : 10_000_000;
const SLOT_COUNT = 1024;
const START_SEQ = 0x7fffffff - 3_000_000;
const COUNTER0 = 2 ** 32 - 4_000_000;
const PRODUCER = new URL('./fixtures/producer.worker.ts', import.meta.url);

let worker: Worker | undefined;
afterEach(async () => {
  if (worker) await worker.terminate();
  worker = undefined;
});

/** Every control word layout.ts declares; the others are canaries. */
const USED_I32 = new Set(Object.entries(L).filter(([k, v]) => k.endsWith('_I32') && typeof v === 'number' && k !== 'CTRL_I32' && k !== 'I32_PER_LINE').map(([, v]) => v as number));
const ctrlCanary = (i: number): number => (0x5ca1ab1e ^ Math.imul(i, 0x01000193)) | 0;

const isMsg = <C extends string>(code: C) => (m: unknown): m is { code: C } & Record<string, unknown> =>
  typeof m === 'object' && m !== null && (m as { code?: unknown }).code === code;

test(`${TOTAL.toLocaleString('en')} records through a ${SLOT_COUNT}-slot ring between two threads: no loss, no duplicate, no overwrite`, async () => {
  const seed = process.env.TICKPIPE_SEED !== undefined ? Number(process.env.TICKPIPE_SEED) >>> 0 : (Date.now() * 1009) >>> 0;
  const tag = `[seed ${seed}, start sequence ${START_SEQ}, TICKPIPE_SEED=${seed} replays it]`;
  const sab = createRingAtSeq({ slotCount: SLOT_COUNT, slotBytes: RECORD_SLOT_BYTES, recordKind: RECORD_RING_KIND }, START_SEQ);
  const ctrl = new Int32Array(sab, 0, L.CTRL_I32);
  for (let i = 0; i < L.CTRL_I32; i++) if (!USED_I32.has(i)) ctrl[i] = ctrlCanary(i);
  // resume-style counters just below 2^32 (layout: LO = low word, HI = 2 x high word)
  ctrl[L.PUBLISHED_LO_I32] = COUNTER0 | 0; ctrl[L.RELEASED_LO_I32] = COUNTER0 | 0;

  const reader = RingReader.attach(sab, RECORD_RING_KIND);
  const v = reader.views;
  const data: ProducerWorkerData = { ring: sab, total: TOTAL, seed, maxBatch: 300, pauseEvery: 400_000, stallLimitMs: 20_000 };
  const w = (worker = spawnWorker(PRODUCER, data, { name: 'ring-stress-producer' }));
  let failure: Error | undefined;
  w.on('message', (m: unknown) => { if (isMsg('FAILED')(m)) failure = fromWire(m.error); });
  w.on('error', (e) => { failure = e; });
  w.on('exit', (code) => { if (code !== 0) failure ??= new Error(`producer exited with code ${code}`); });
  const done = waitForMessage(w, isMsg('DONE'), SOAK ? 3_600_000 : 60_000);
  done.catch(() => { /* observed below */ });
  await waitForMessage(w, isMsg('READY'));

  const prng = new Prng(seed ^ 0x9e3779b9);
  let n = 0; // next record number expected
  let checksum = 0;
  let idleMs = 0;
  let maxSeen = 0;
  let nextPause = prng.int(1, 800_000);
  let batches = 0;
  let lastPublished = COUNTER0;
  while (n < TOTAL) {
    if (failure) throw new Error(`${tag} producer failed: ${failure.message}`, { cause: failure });
    const avail = reader.available();
    if (avail === 0) {
      // async park: the event loop keeps running (worker messages, errors) while we wait
      if ((await reader.waitForDataAsync(250)) === 'timed-out') {
        idleMs += 250;
        if (idleMs > 20_000) throw new Error(`${tag} no data for 20 s at record ${n}`);
      }
      continue;
    }
    idleMs = 0;
    if (avail > maxSeen) maxSeen = avail;
    if (avail > SLOT_COUNT || avail > TOTAL - n) {
      throw new Error(`${tag} available() = ${avail} at record ${n}: more than the ring holds or than was written`);
    }
    const take = Math.min(avail, prng.int(1, 2 * SLOT_COUNT));
    for (let i = 0; i < take; i++) {
      const bad = checkSlot(v, reader.slotByte(i), n + i);
      if (bad !== 0) {
        const b = reader.slotByte(i);
        throw new Error(`${tag} record ${n + i} (slot ${(b - L.CTRL_BYTES) / RECORD_SLOT_BYTES}): field code ${bad}; slot holds seq ${v.u32[(b + 4) >> 2]}, kind ${v.u8[b]}`);
      }
      checksum = recordChecksum(checksum, n + i);
    }
    if (take > 1 && prng.chance(0.1)) {
      const k = prng.int(1, take - 1);
      reader.release(k);
      reader.release(take - k);
    } else {
      reader.release(take);
    }
    n += take;
    if ((++batches & 31) === 0) {
      // sample the counters while the producer publishes (across the 2^32 carry of both)
      const st = ringStats(sab);
      if (st.released !== COUNTER0 + n || st.published < lastPublished || st.published < st.released || st.published > COUNTER0 + TOTAL) {
        throw new Error(`${tag} counters off at record ${n}: published ${st.published} (previous ${lastPublished}), released ${st.released}, expected released ${COUNTER0 + n}`);
      }
      lastPublished = st.published;
    }
    if (n >= nextPause) {
      // pause so the producer fills the ring and parks (and let the event loop run)
      nextPause = n + prng.int(1, 800_000);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  const fin = (await done) as unknown as { published: number; checksum: number; claims: number; partialClaims: number };
  if (failure) throw failure;
  expect(n, tag).toBe(TOTAL);
  expect(fin.published, tag).toBe(TOTAL);
  expect(checksum, `${tag} checksum of consumed records differs from the producer's`).toBe(fin.checksum);
  // nothing beyond what the producer wrote ever shows up
  await new Promise((r) => setTimeout(r, 20));
  expect(reader.available(), tag).toBe(0);
  const st = ringStats(sab);
  expect(st, tag).toMatchObject({ published: COUNTER0 + TOTAL, released: COUNTER0 + TOTAL, occupancy: 0 });
  expect(Atomics.load(ctrl, L.WRITE_SEQ_I32), tag).toBe((START_SEQ + TOTAL) | 0);
  expect(Atomics.load(ctrl, L.READ_SEQ_I32), tag).toBe((START_SEQ + TOTAL) | 0);
  expect(Math.sign((START_SEQ + TOTAL) | 0)).toBe(-1); // crossed 2^31 during the run
  // the run really exercised full rings and both parks
  expect(st.fullStalls, `${tag} the ring never filled`).toBeGreaterThan(0);
  expect(st.producerParks, `${tag} the producer never parked`).toBeGreaterThan(0);
  expect(st.consumerParks, `${tag} the consumer never parked`).toBeGreaterThan(0);
  expect(fin.partialClaims, `${tag} no claim was ever cut short`).toBeGreaterThan(0);
  expect(maxSeen, tag).toBeGreaterThan(SLOT_COUNT / 2);
  // canaries in the control block's unused words
  const broken: number[] = [];
  for (let i = 0; i < L.CTRL_I32; i++) if (!USED_I32.has(i) && ctrl[i] !== ctrlCanary(i)) broken.push(i);
  expect(broken, `${tag} control-block canary words overwritten`).toEqual([]);
}, SOAK ? 3_600_000 : 60_000);
