import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { RECORD_SLOT_BYTES, readSeq, readSourceId, readTsMicros } from '../../schemas/records.ts';
import { isEngineError } from '../errors.ts';
import { createRing, RingReader, RingWriter } from '../ring/ring.ts';
import { HOUR_MICROS, hourFilePath, hourStartOf, slotViewsOf } from './format.ts';
import { APPEND_BAD_TIME, APPEND_COMPACTED_HOUR, APPEND_FULL, Journal, type JournalOptions } from './journal.ts';
import { fillRecord, recordMatches } from './fixtures/records.ts';

const root = mkdtempSync(join(tmpdir(), 'tp-journal-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirNo = 0;
const freshDir = (): string => join(root, `d${dirNo++}`);

/** 2025-11-11T14:00Z */
const T0 = Date.UTC(2025, 10, 11, 14) * 1000;
const slot = slotViewsOf(new ArrayBuffer(RECORD_SLOT_BYTES));

function appendOne(j: Journal, sourceId: number, seq: number, ts: number): number {
  fillRecord(slot, 0, sourceId, seq, ts);
  return j.append(slot, 0);
}

interface Seen { hour: number; sourceId: number; seq: number; ts: number; ok: boolean }

function replayAll(j: Journal, target: number | 'open-hours' = 'open-hours'): Seen[] {
  const out: Seen[] = [];
  j.replay(target, (v, off, count, hour) => {
    for (let k = 0; k < count; k++) {
      const b = off + k * RECORD_SLOT_BYTES;
      const sourceId = readSourceId(v, b), seq = readSeq(v, b), ts = readTsMicros(v, b);
      out.push({ hour, sourceId, seq, ts, ok: recordMatches(v, b, sourceId, seq, ts) });
    }
  });
  return out;
}

const open = (dataDir: string, o: Partial<JournalOptions> = {}): Journal => Journal.open({ dataDir, commitIntervalMs: 0, ...o });

describe('journal: append, commit, replay', () => {
  it('round trip over random streams spanning several hours, late records, flushes and reopens (property)', async () => {
    const op = fc.oneof(
      { weight: 12, arbitrary: fc.record({ t: fc.constant('append' as const), hour: fc.nat(4), late: fc.boolean(), n: fc.integer({ min: 1, max: 40 }) }) },
      { weight: 2, arbitrary: fc.constant({ t: 'flushSync' as const }) },
      { weight: 2, arbitrary: fc.constant({ t: 'flush' as const }) },
      { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), fc.integer({ min: 1, max: 16 }), fc.boolean(), async (ops, commitRecords, timer) => {
        const dataDir = freshDir();
        const opts = { commitRecords, commitIntervalMs: timer ? 2 : 0 };
        let j = open(dataDir, opts);
        const model = new Map<number, number[]>(); // hour -> seqs in append order
        let seq = 0;
        let maxHour = 0;
        try {
          for (const o of ops) {
            if (o.t === 'append') {
              // mostly the newest hour seen, sometimes late ones for older hours
              const h = o.late ? Math.min(o.hour, maxHour) : Math.max(o.hour, maxHour);
              maxHour = Math.max(maxHour, h);
              for (let k = 0; k < o.n; k++) {
                seq++;
                const ts = T0 + h * HOUR_MICROS + ((seq * 7919) % HOUR_MICROS);
                let r = appendOne(j, 1, seq, ts);
                if (r === APPEND_FULL) {
                  if (seq % 2 === 0) j.flushSync();
                  else await j.flush();
                  r = appendOne(j, 1, seq, ts);
                }
                expect(r).toBeGreaterThan(0);
                const hs = hourStartOf(ts);
                const list = model.get(hs) ?? [];
                list.push(seq);
                model.set(hs, list);
              }
            } else if (o.t === 'flushSync') {
              expect(j.flushSync()).toBe(j.appendedSeq);
            } else if (o.t === 'flush') {
              const target = j.appendedSeq;
              expect(await j.flush()).toBeGreaterThanOrEqual(target);
            } else {
              await j.close();
              j = open(dataDir, opts);
              expect(j.recovery).toEqual([]); // a clean close leaves nothing to repair
            }
          }
          await j.close();
          j = open(dataDir, opts);
          expect(j.recovery).toEqual([]);
          const hours = [...model.keys()].sort((a, b) => a - b);
          const expected = hours.flatMap((h) => (model.get(h) as number[]).map((s) => ({ hour: h, seq: s })));
          const got = replayAll(j);
          expect(got.map((g) => ({ hour: g.hour, seq: g.seq }))).toEqual(expected);
          expect(got.every((g) => g.ok && hourStartOf(g.ts) === g.hour)).toBe(true);
          for (const h of hours) expect(replayAll(j, h).map((g) => g.seq)).toEqual(model.get(h));
          expect(j.listHours().map((x) => [x.hourStartMicros, x.records, x.state])).toEqual(hours.map((h) => [h, (model.get(h) as number[]).length, 'open']));
        } finally {
          await j.close().catch(() => undefined);
        }
      }),
      { numRuns: 25 },
    );
  });

  it('replays block by block into a ring smaller than the data (cursor pull, back-pressure between slots)', async () => {
    const dataDir = freshDir();
    const j = open(dataDir);
    for (let k = 1; k <= 100; k++) {
      appendOne(j, 2, k, T0 + (k % 3) * HOUR_MICROS + k);
      if (k % 9 === 0) j.flushSync(); // several blocks per hour
    }
    await j.flush();
    const sab = createRing({ slotCount: 16, slotBytes: RECORD_SLOT_BYTES });
    const w = RingWriter.attach(sab);
    const r = RingReader.attach(sab);
    const got: number[] = [];
    const drain = (): void => {
      const n = r.available();
      for (let i = 0; i < n; i++) got.push(readSeq(r.views, r.slotByte(i)));
      r.release(n);
    };
    const c = j.openCursor('open-hours');
    for (let n = c.next(); n > 0; n = c.next()) {
      let done = 0;
      while (done < n) {
        const m = w.claim(n - done);
        for (let i = 0; i < m; i++) w.views.u8.set(c.views.u8.subarray(c.byteOffset + (done + i) * RECORD_SLOT_BYTES, c.byteOffset + (done + i + 1) * RECORD_SLOT_BYTES), w.slotByte(i));
        w.publish(m);
        done += m;
        if (done < n) drain(); // a real consumer runs on another thread; here the ring is drained when full
      }
    }
    drain();
    const byHour = [0, 1, 2].map((h) => Array.from({ length: 100 }, (_, i) => i + 1).filter((k) => k % 3 === h));
    expect(got).toEqual(byHour.flat());
    expect(c.records).toBe(100);
    expect(c.hours).toBe(3);
    await j.close();
  });

  it('commits within the interval without any flush call, as a group', async () => {
    const commits: number[] = [];
    const intervalMs = 40;
    const j = open(freshDir(), { commitIntervalMs: intervalMs, onCommit: (seq) => commits.push(seq) });
    try {
      const latencies: number[] = [];
      for (let round = 0; round < 4; round++) {
        await new Promise((r) => setTimeout(r, Math.random() * intervalMs));
        const t0 = performance.now();
        const seq = appendOne(j, 1, round + 1, T0 + round);
        expect(j.committedSeq).toBeLessThan(seq); // buffered, not written per append
        while (j.committedSeq < seq) await new Promise((r) => setTimeout(r, 1));
        latencies.push(performance.now() - t0);
      }
      // interval + one commit (write + fdatasync); generous slack for a shared, busy disk
      for (const ms of latencies) expect(ms).toBeLessThan(intervalMs + 250);
      // group commit: 20 appends spread over ~10 ms land in at most two commits
      const before = commits.length;
      const first = j.appendedSeq + 1;
      for (let k = 0; k < 20; k++) {
        appendOne(j, 1, first + k, T0 + first + k);
        if (k % 4 === 0) await new Promise((r) => setTimeout(r, 2));
      }
      await new Promise((r) => setTimeout(r, intervalMs * 2 + 100));
      expect(j.committedSeq).toBe(j.appendedSeq);
      expect(commits.length - before).toBeLessThanOrEqual(2);
    } finally {
      await j.close();
    }
  });

  it('a full staging buffer starts a commit at once (no timer needed)', async () => {
    let committed = 0;
    const j = open(freshDir(), { commitIntervalMs: 60_000, commitRecords: 64, onCommit: (seq) => { committed = seq; } });
    try {
      for (let k = 1; k <= 63; k++) appendOne(j, 1, k, T0 + k);
      await new Promise((r) => setTimeout(r, 50));
      expect(committed).toBe(0);
      appendOne(j, 1, 64, T0 + 64);
      const t0 = performance.now();
      while (committed < 64 && performance.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 1));
      expect(committed).toBe(64);
    } finally {
      await j.close();
    }
  });

  it('back-pressure: APPEND_FULL when both buffers are busy; nothing taken; flush() then retry', async () => {
    const dataDir = freshDir();
    const j = open(dataDir, { commitRecords: 4 });
    for (let k = 1; k <= 8; k++) expect(appendOne(j, 1, k, T0 + k)).toBe(k); // 4 in flight, 4 staged
    expect(appendOne(j, 1, 9, T0 + 9)).toBe(APPEND_FULL);
    expect(j.appendedSeq).toBe(8);
    expect(j.stats().fullRejections).toBe(1);
    expect(await j.flush()).toBe(8);
    expect(appendOne(j, 1, 9, T0 + 9)).toBe(9);
    await j.close();
    const r = open(dataDir);
    expect(replayAll(r).map((g) => g.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    r.closeSync();
  });

  it('flushSync while an async commit is in flight makes both durable, without duplicates', async () => {
    const dataDir = freshDir();
    const commits: number[] = [];
    const j = open(dataDir, { commitRecords: 4, onCommit: (s) => commits.push(s) });
    for (let k = 1; k <= 7; k++) appendOne(j, 1, k, T0 + (k % 2) * HOUR_MICROS + k); // two hours: the in-flight commit is mixed
    expect(j.committedSeq).toBe(0);
    expect(j.flushSync()).toBe(7); // re-issues the in-flight writes, then writes the stage
    expect(commits).toEqual([7]);
    await new Promise((r) => setTimeout(r, 50)); // let the pool finish the original commit
    expect(commits).toEqual([7]); // no second notification for the same records
    j.closeSync();
    const r = open(dataDir);
    expect(r.recovery).toEqual([]);
    expect(replayAll(r).map((g) => [g.hour - T0, g.seq])).toEqual([[0, 2], [0, 4], [0, 6], [HOUR_MICROS, 1], [HOUR_MICROS, 3], [HOUR_MICROS, 5], [HOUR_MICROS, 7]]);
    r.closeSync();
  });

  it('refuses times it cannot file, and reports them as return values', () => {
    const j = open(freshDir());
    expect(appendOne(j, 1, 1, Number.NaN)).toBe(APPEND_BAD_TIME);
    expect(appendOne(j, 1, 1, -1)).toBe(APPEND_BAD_TIME);
    expect(appendOne(j, 1, 1, 3e17)).toBe(APPEND_BAD_TIME);
    expect(appendOne(j, 1, 1, T0)).toBe(1);
    expect(j.stats().badTimeRejections).toBe(3);
    j.closeSync();
  });

  it('writes <data-dir>/journal/<YYYY-MM-DD>/<HH>.tpj by event time', () => {
    const dataDir = freshDir();
    const j = open(dataDir);
    appendOne(j, 1, 1, Date.UTC(2025, 10, 11, 23, 59, 59, 999) * 1000 + 999);
    appendOne(j, 1, 2, Date.UTC(2025, 10, 12, 0, 0, 0) * 1000);
    j.closeSync();
    expect(existsSync(join(dataDir, 'journal', '2025-11-11', '23.tpj'))).toBe(true);
    expect(existsSync(join(dataDir, 'journal', '2025-11-12', '00.tpj'))).toBe(true);
  });

  it('after close, append is a coded error', async () => {
    const j = open(freshDir());
    await j.close();
    expect(() => appendOne(j, 1, 1, T0)).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_JOURNAL' }));
  });
});

describe('journal: compacted hours', () => {
  it('deleteHour removes the file, keeps a marker, and refuses late records for that hour (also after reopen)', async () => {
    const dataDir = freshDir();
    const j = open(dataDir);
    const h0 = T0, h1 = T0 + HOUR_MICROS;
    for (let k = 1; k <= 5; k++) appendOne(j, 1, k, h0 + k);
    for (let k = 6; k <= 8; k++) appendOne(j, 1, k, h1 + k);
    await j.flush();
    await j.deleteHour(h0, { expectedRecords: 5 });
    expect(existsSync(hourFilePath(j.dir, h0))).toBe(false);
    expect(readdirSync(join(j.dir, '2025-11-11')).sort()).toEqual(['14.compacted', '15.tpj']);
    expect(j.listHours().map((x) => [x.hourStartMicros, x.state, x.records])).toEqual([[h0, 'compacted', 0], [h1, 'open', 3]]);
    expect(appendOne(j, 1, 9, h0 + 123)).toBe(APPEND_COMPACTED_HOUR);
    expect(appendOne(j, 1, 9, h1 + 9)).toBe(9); // other hours are unaffected
    expect(appendOne(j, 1, 10, h0 + 1)).toBe(APPEND_COMPACTED_HOUR); // and back again: the hour cache was reset
    expect(j.stats().compactedHourRejections).toBe(2);
    await j.deleteHour(h0); // idempotent
    expect(() => j.openCursor(h0)).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_JOURNAL' }));
    await j.close();
    const r = open(dataDir);
    expect(appendOne(r, 1, 1, h0 + 5)).toBe(APPEND_COMPACTED_HOUR);
    expect(replayAll(r).map((g) => g.seq)).toEqual([6, 7, 8, 9]);
    r.closeSync();
  });

  it('deleteHour refuses when late records arrived after the compactor counted (expectedRecords mismatch)', async () => {
    const dataDir = freshDir();
    const j = open(dataDir);
    for (let k = 1; k <= 4; k++) appendOne(j, 1, k, T0 + k);
    await j.flush();
    appendOne(j, 1, 5, T0 + 5); // late arrival, not yet committed when the compactor asks
    const err = await j.deleteHour(T0, { expectedRecords: 4 }).then(() => null, (e: unknown) => e);
    expect(isEngineError(err, 'ENGINE_ERR_JOURNAL')).toBe(true);
    expect(err).toMatchObject({ detail: { records: 5, expectedRecords: 4 } });
    expect(existsSync(hourFilePath(j.dir, T0))).toBe(true);
    expect(appendOne(j, 1, 6, T0 + 6)).toBe(6); // still open for appends
    await j.deleteHour(T0, { expectedRecords: 6 });
    await j.close();
  });

  it('a marker beside its journal at open (crash between marker and unlink) finishes the delete', () => {
    const dataDir = freshDir();
    const j = open(dataDir);
    appendOne(j, 1, 1, T0 + 1);
    j.closeSync();
    writeFileSync(join(dataDir, 'journal', '2025-11-11', '14.compacted'), 'compacted\n');
    const r = open(dataDir);
    expect(r.recovery).toEqual([{ hourStartMicros: T0, path: hourFilePath(r.dir, T0), action: 'finished-delete', bytesCut: 0, records: 0 }]);
    expect(existsSync(hourFilePath(r.dir, T0))).toBe(false);
    expect(appendOne(r, 1, 2, T0 + 2)).toBe(APPEND_COMPACTED_HOUR);
    r.closeSync();
  });
});

describe('journal: failures are coded errors, never a silent stall', () => {
  it('data dir below a regular file: ENGINE_ERR_FILE_IO at open (ENOTDIR)', () => {
    const file = join(root, `plain-file-${dirNo++}`);
    writeFileSync(file, 'x');
    let err: unknown = null;
    try {
      Journal.open({ dataDir: join(file, 'data') });
    } catch (e) {
      err = e;
    }
    expect(isEngineError(err, 'ENGINE_ERR_FILE_IO')).toBe(true);
    expect(err).toMatchObject({ detail: { errno: 'ENOTDIR', file: join(file, 'data', 'journal') } });
  });

  it('a commit that cannot create its file fails the journal: onError, flush rejects, append throws, committedSeq stops', async () => {
    const dataDir = freshDir();
    const errors: unknown[] = [];
    const j = open(dataDir, { commitIntervalMs: 10, onError: (e) => errors.push(e) });
    expect(appendOne(j, 1, 1, T0 + 1)).toBe(1);
    await j.flush();
    // the next day's directory path is taken by a regular file: mkdir fails for real
    mkdirSync(join(dataDir, 'journal'), { recursive: true });
    writeFileSync(join(dataDir, 'journal', '2025-11-12'), 'not a directory');
    expect(appendOne(j, 1, 2, Date.UTC(2025, 10, 12, 1) * 1000)).toBe(2);
    const t0 = performance.now();
    while (errors.length === 0 && performance.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5));
    expect(errors).toHaveLength(1);
    expect(isEngineError(errors[0], 'ENGINE_ERR_FILE_IO')).toBe(true);
    expect(errors[0]).toMatchObject({ detail: { errno: 'EEXIST' } });
    expect(j.committedSeq).toBe(1);
    expect(j.failure).toBe(errors[0]);
    await expect(j.flush()).rejects.toBe(errors[0]);
    expect(() => j.flushSync()).toThrow(errors[0] as Error);
    expect(() => appendOne(j, 1, 3, T0 + 3)).toThrow(errors[0] as Error);
    await expect(j.close()).rejects.toBe(errors[0]);
    // what was committed before the failure is intact
    const r = open(dataDir);
    expect(replayAll(r).map((g) => g.seq)).toEqual([1]);
    r.closeSync();
  });
});
