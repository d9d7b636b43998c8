import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isEngineError } from '../errors.ts';
import { slotViewsOf } from '../journal/format.ts';
import { GapKind, RecordKind, TradeFlag, writeGap, writeTrade } from '../../schemas/records.ts';
import { LOG_ENTRY_BYTES, LOG_HEADER_BYTES } from './record-log.ts';
import { GapStore, QuarantineStore, gapWriter, quarantineWriter } from './stores.ts';
import { RejectReason } from './validator.ts';

const v = slotViewsOf(new ArrayBuffer(64));
const D1 = Date.UTC(2025, 11, 3, 15) * 1000;
const D2 = Date.UTC(2025, 11, 4, 15) * 1000;
let dir = '';

beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tickpipe-stores-')); });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

function trade(sym: number, ts: number, price: number, seq: number): void {
  writeTrade(v, 0, RecordKind.TRADE, 1, sym, seq, ts, price, NaN, NaN, 1, TradeFlag.SIDE_BUY, 0, 0, seq, 1);
}

describe('quarantine store', () => {
  test('written entries are queryable by symbol, time range, reason, with a limit; day files by event time', async () => {
    const w = quarantineWriter(dir);
    trade(1, D1, -5, 1); w.append(v, 0, RejectReason.BAD_PRICE, 0, D1);
    trade(2, D1 + 10, 21000.3, 2); w.append(v, 0, RejectReason.OFF_TICK, 0, D1);
    trade(1, D2, 21000, 3); w.append(v, 0, 0, TradeFlag.V_OUTSIDE_QUOTE, D2);
    trade(1, NaN, 21000, 4); w.append(v, 0, RejectReason.BAD_TIME, 0, D2); // filed by arrival day
    w.writeStaged();
    const q = new QuarantineStore(dir, (id) => (id === 1 ? 'MNQZ25' : null));
    expect((await q.query()).map((e) => [e.reason, e.seq, e.kept])).toEqual([['bad_price', 1, false], ['off_tick', 2, false], ['flagged', 3, true], ['bad_time', 4, false]]);
    expect((await q.query({ symbolId: 1, includeFlagged: false })).map((e) => e.seq)).toEqual([1, 4]);
    expect((await q.query({ reason: 'off_tick' })).map((e) => e.seq)).toEqual([2]);
    expect((await q.query({ reason: 'flagged' }))[0]).toMatchObject({ seq: 3, flags: ['outside_quote'], symbol: 'MNQZ25', record: { price: 21000 } });
    expect((await q.query({ fromMicros: D1, toMicros: D1 + 5 })).map((e) => e.seq)).toEqual([1]);
    expect((await q.query({ limit: 2 })).map((e) => e.seq)).toEqual([1, 2]);
    expect((await q.query({ limit: 3, order: 'desc' })).map((e) => e.seq)).toEqual([4, 3, 2]);
    expect((await q.query({ order: 'desc', includeFlagged: false })).map((e) => e.seq)).toEqual([4, 2, 1]);
    expect(await q.counts()).toEqual({ bad_price: 1, off_tick: 1, flagged: 1, bad_time: 1 });
    w.close();
  });

  test('bad queries are coded errors', async () => {
    const q = new QuarantineStore(dir);
    await expect(q.query({ reason: 'nonsense' })).rejects.toMatchObject({ code: 'ENGINE_ERR_INVALID_ARG' });
    await expect(q.query({ limit: 0 })).rejects.toMatchObject({ code: 'ENGINE_ERR_INVALID_ARG' });
    await expect(q.query({ limit: 1e9 })).rejects.toMatchObject({ code: 'ENGINE_ERR_INVALID_ARG' });
    await expect(q.query({ fromMicros: NaN })).rejects.toMatchObject({ code: 'ENGINE_ERR_INVALID_ARG' });
    await expect(q.query({ order: 'sideways' as 'asc' })).rejects.toMatchObject({ code: 'ENGINE_ERR_INVALID_ARG' });
    expect(await q.query()).toEqual([]); // no directory yet: empty
  });

  test('a torn tail is ignored by readers and cut by the next writer; a foreign file is a coded error', async () => {
    const w = quarantineWriter(dir);
    trade(1, D1, -5, 1); w.append(v, 0, RejectReason.BAD_PRICE, 0, D1);
    w.close();
    const file = join(dir, 'quarantine', '2025-12-03.tpq');
    appendFileSync(file, Buffer.alloc(33, 7)); // a crash mid-write
    const q = new QuarantineStore(dir);
    expect((await q.query()).length).toBe(1);
    const w2 = quarantineWriter(dir);
    trade(1, D1 + 1, -6, 2); w2.append(v, 0, RejectReason.BAD_PRICE, 0, D1);
    w2.close();
    expect(statSync(file).size).toBe(LOG_HEADER_BYTES + 2 * LOG_ENTRY_BYTES);
    expect((await q.query()).map((e) => e.seq)).toEqual([1, 2]);
    writeFileSync(join(dir, 'quarantine', '2025-12-04.tpq'), Buffer.alloc(200, 1));
    await expect(q.query()).rejects.toMatchObject({ code: 'ENGINE_ERR_FILE_IO' });
    expect(readFileSync(file).subarray(0, 4).toString('latin1')).toBe('TPQ1');
  });

  test('an unusable data directory is a clear coded error', () => {
    writeFileSync(join(dir, 'quarantine'), 'not a directory');
    let err: unknown;
    try { quarantineWriter(dir); } catch (e) { err = e; }
    expect(isEngineError(err, 'ENGINE_ERR_FILE_IO')).toBe(true);
    expect((err as Error).message).toContain(join(dir, 'quarantine'));
  });
});

describe('gap store', () => {
  test('gap records are queryable by symbol, kind and time, and counted', async () => {
    const w = gapWriter(dir);
    writeGap(v, 0, 1, 1, 0, D1, D1 + 5, GapKind.SEQUENCE, 10, 15, 0); w.append(v, 0, GapKind.SEQUENCE, 0, D1);
    writeGap(v, 0, 1, 2, 0, D1 + 1, D1 + 900_000_000, GapKind.TIME, 0, 0, 0); w.append(v, 0, GapKind.TIME, 0, D1);
    w.sync();
    const g = new GapStore(dir, (id) => `S${id}`);
    expect(await g.query()).toEqual([
      { kind: 'sequence', symbolId: 1, symbol: 'S1', sourceId: 1, startMicros: D1, endMicros: D1 + 5, expectedSeq: 10, gotSeq: 15, status: 0, arrivedMicros: D1 },
      { kind: 'time', symbolId: 2, symbol: 'S2', sourceId: 1, startMicros: D1 + 1, endMicros: D1 + 900_000_000, expectedSeq: 0, gotSeq: 0, status: 0, arrivedMicros: D1 },
    ]);
    expect((await g.query({ kind: 'time' })).length).toBe(1);
    expect((await g.query({ order: 'desc', limit: 1 })).map((x) => x.kind)).toEqual(['time']);
    expect((await g.query({ symbolId: 1 })).length).toBe(1);
    expect(await g.counts()).toEqual({ sequence: 1, time: 1 });
    await expect(g.query({ kind: 'bogus' })).rejects.toMatchObject({ code: 'ENGINE_ERR_INVALID_ARG' });
    w.close();
  });
});
