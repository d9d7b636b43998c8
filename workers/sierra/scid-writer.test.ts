import { copyFileSync, chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { type EngineError, isEngineError } from '../../engine/errors.ts';
import { decodeScidColumns, readScidHeader } from './scid-decoder.ts';
import { SCID_FIRST_SUB_TRADE_BITS, SCID_LAST_SUB_TRADE_BITS, ScidSide, ScidSubTrade } from './scid-format.ts';
import type { TickSink } from '../sim/market-sim.ts';
import { encodeScidTrade, ScidWriter } from './scid-writer.ts';

const FIXTURE = fileURLToPath(new URL('../../test/fixtures/sierra/ESM23-excerpt.scid', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tickpipe-scidw-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmpFile = (): string => join(dir, `w-${n++}.scid`);
const T0 = Date.UTC(2025, 10, 11, 14, 30) * 1000;

function thrown(fn: () => unknown): EngineError {
  try { fn(); } catch (e) { return e as EngineError; }
  throw new Error('expected a throw');
}

describe('ScidWriter', () => {
  test('writes the header Sierra writes', () => {
    const path = tmpFile();
    ScidWriter.open(path).closeSync();
    const b = readFileSync(path);
    expect(b.length).toBe(56);
    expect(b.toString('latin1', 0, 4)).toBe('SCID');
    expect([b.readUInt32LE(4), b.readUInt32LE(8), b.readUInt16LE(12), b.readUInt16LE(14), b.readUInt32LE(16)]).toEqual([56, 40, 1, 0, 0]);
    expect(b.subarray(20, 56).every((x) => x === 0)).toBe(true);
    // Byte-identical to the header of the real Sierra recording.
    expect(Buffer.compare(b, readFileSync(FIXTURE).subarray(0, 56))).toBe(0);
  });

  test('re-writing the real Sierra file from its decoded fields gives the same bytes', () => {
    const real = new Uint8Array(readFileSync(FIXTURE));
    const c = decodeScidColumns(real, { fileName: FIXTURE });
    const path = tmpFile();
    const w = ScidWriter.open(path, { bufferRecords: 3 });
    for (let i = 0; i < c.count; i++) {
      const side = c.askVolume[i]! > 0 ? ScidSide.BUY : c.bidVolume[i]! > 0 ? ScidSide.SELL : ScidSide.NONE;
      const f = c.flags[i]!;
      const sub = f & 4 ? ScidSubTrade.FIRST : f & 8 ? ScidSubTrade.LAST : f & 16 ? ScidSubTrade.MIDDLE : ScidSubTrade.NONE;
      w.trade(c.tsMicros[i]!, c.close[i]!, c.low[i]!, c.high[i]!, c.totalVolume[i]!, side, sub, c.numTrades[i]!);
    }
    expect(w.recordsWritten).toBe(10);
    expect(w.fileBytes).toBe(456);
    w.closeSync();
    expect(Buffer.compare(readFileSync(path), Buffer.from(real))).toBe(0);
  });

  test('a writer is a simulator TickSink (same side and sub-trade numbers)', () => {
    const path = tmpFile();
    const sink: TickSink = ScidWriter.open(path);
    sink.trade(T0, 21000.25, 21000, 21000.25, 2, 1, 1);
    sink.trade(T0 + 1, 21000.5, 21000.25, 21000.5, 3, 2, 3);
    (sink as ScidWriter).closeSync();
    const c = decodeScidColumns(new Uint8Array(readFileSync(path)), { fileName: path });
    expect(Array.from(c.flags)).toEqual([1 | 4, 2 | 8]); // BUY|SUB_FIRST, SELL|SUB_LAST
  });

  test('tick encoding: markers as raw bits, side in Bid/AskVolume', () => {
    const b = new Uint8Array(120);
    const dv = new DataView(b.buffer);
    encodeScidTrade(dv, 0, T0, 21000.25, 21000, 21000.25, 3, ScidSide.BUY, ScidSubTrade.FIRST, 1);
    encodeScidTrade(dv, 40, T0 + 1, 21000.5, 21000, 21000.5, 2, ScidSide.BUY, ScidSubTrade.MIDDLE, 1);
    encodeScidTrade(dv, 80, T0 + 2, 21000.75, 21000.25, 21000.75, 4, ScidSide.SELL, ScidSubTrade.LAST, 1);
    expect([dv.getUint32(8, true), dv.getUint32(48, true), dv.getUint32(88, true)]).toEqual([SCID_FIRST_SUB_TRADE_BITS, 0, SCID_LAST_SUB_TRADE_BITS]);
    expect([dv.getUint32(32, true), dv.getUint32(36, true), dv.getUint32(112, true), dv.getUint32(116, true)]).toEqual([0, 3, 4, 0]);
    expect([dv.getFloat32(12, true), dv.getFloat32(16, true), dv.getFloat32(20, true)]).toEqual([21000.25, 21000, 21000.25]);
    // int64 µs since 1899-12-30, independent formula.
    expect(Buffer.from(b).readBigInt64LE(0)).toBe(BigInt(T0) - BigInt(Date.UTC(1899, 11, 30)) * 1000n);
  });

  test('legacyTime writes a float64 day count', () => {
    const path = tmpFile();
    const w = ScidWriter.open(path, { legacyTime: true });
    const t = Date.UTC(2001, 0, 2, 12) * 1000; // noon: .5 of a day
    w.trade(t, 1, 1, 1, 1, ScidSide.BUY, ScidSubTrade.NONE);
    w.closeSync();
    const b = readFileSync(path);
    expect(b.readDoubleLE(56)).toBe((Date.UTC(2001, 0, 2, 12) - Date.UTC(1899, 11, 30)) / 86_400_000);
  });

  test('async flush and sync writes interleave into a correct file', async () => {
    const path = tmpFile();
    const w = ScidWriter.open(path, { bufferRecords: 4 });
    const ts: number[] = [];
    const pending: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      ts.push(T0 + i * 1000);
      w.trade(T0 + i * 1000, 100 + i * 0.25, 100, 200, i + 1, ScidSide.SELL, ScidSubTrade.NONE);
      if (i % 3 === 0) pending.push(w.flush());
      if (i % 7 === 0) w.flushSync();
    }
    await Promise.all(pending);
    await w.close();
    await w.close(); // idempotent
    const c = decodeScidColumns(new Uint8Array(readFileSync(path)), { fileName: path });
    expect(Array.from(c.tsMicros)).toEqual(ts);
    expect(Array.from(c.totalVolume)).toEqual(ts.map((_, i) => i + 1));
    expect(() => w.trade(T0, 1, 1, 1, 1, 1, 0)).toThrow(/closed/);
  });

  test('append validates the existing file and continues it', () => {
    const path = tmpFile();
    copyFileSync(FIXTURE, path);
    chmodSync(path, 0o644);
    const w = ScidWriter.open(path, { append: true });
    w.trade(Date.parse('2023-02-21T20:41:00Z') * 1000, 4049.25, 4049, 4049.25, 5, ScidSide.BUY, ScidSubTrade.NONE);
    w.closeSync();
    const b = new Uint8Array(readFileSync(path));
    expect(b.length).toBe(456 + 40);
    expect(Buffer.compare(Buffer.from(b.subarray(0, 456)), readFileSync(FIXTURE))).toBe(0);
    const c = decodeScidColumns(b, { fileName: path });
    expect(c.count).toBe(11);
    expect(c.close[10]).toBe(4049.25);

    // A missing file is created with a header.
    const fresh = tmpFile();
    ScidWriter.open(fresh, { append: true }).closeSync();
    expect(readScidHeader(new Uint8Array(readFileSync(fresh)), fresh).headerBytes).toBe(56);

    // A bad header is refused, and the file is left alone.
    const bad = tmpFile();
    writeFileSync(bad, Buffer.concat([Buffer.from('SCDD'), readFileSync(FIXTURE).subarray(4)]));
    const e1 = thrown(() => ScidWriter.open(bad, { append: true }));
    expect(isEngineError(e1, 'ENGINE_ERR_SCID_FORMAT')).toBe(true);
    expect(e1.detail.file).toBe(bad);
    expect(statSync(bad).size).toBe(456);

    // A trailing partial record would misalign everything appended after it.
    const partial = tmpFile();
    writeFileSync(partial, readFileSync(FIXTURE).subarray(0, 456 - 13));
    const e2 = thrown(() => ScidWriter.open(partial, { append: true }));
    expect(isEngineError(e2, 'ENGINE_ERR_SCID_FORMAT')).toBe(true);
    expect(e2.detail.byteOffset).toBe(56 + 9 * 40);
    expect(e2.message).toMatch(/partial record of 27 bytes/);

    // The DateTime encoding must match the file's.
    const e3 = thrown(() => ScidWriter.open(path, { append: true, legacyTime: true }));
    expect(isEngineError(e3, 'ENGINE_ERR_SCID_FORMAT')).toBe(true);
    expect(e3.message).toMatch(/int64 µs/);
  });

  test('raw mode writes broken files on purpose; normal mode refuses to', () => {
    const path = tmpFile();
    const w = ScidWriter.open(path, { raw: true, rawHeader: { magic: 'JUNK', headerBytes: 7, recordBytes: 41, version: 9, writtenBytes: 30 } });
    w.rawBytes(new Uint8Array([1, 2, 3]));
    w.closeSync();
    const b = readFileSync(path);
    expect(b.length).toBe(33);
    expect(b.toString('latin1', 0, 4)).toBe('JUNK');
    expect([b.readUInt32LE(4), b.readUInt32LE(8), b.readUInt16LE(12)]).toEqual([7, 41, 9]);
    expect(Array.from(b.subarray(30))).toEqual([1, 2, 3]);
    const normal = ScidWriter.open(tmpFile());
    expect(() => normal.rawBytes(new Uint8Array(1))).toThrow(/raw: true/);
    expect(() => ScidWriter.open(tmpFile(), { rawHeader: { magic: 'X' } })).toThrow(/raw: true/);
    // Timestamps must be whole µs an int64 can hold; a failed record leaves nothing behind.
    expect(isEngineError(thrown(() => normal.trade(1.5, 1, 1, 1, 1, 1, 0)), 'ENGINE_ERR_INVALID_ARG')).toBe(true);
    expect(normal.recordsWritten).toBe(0);
    expect(normal.fileBytes).toBe(56);
    normal.closeSync();
  });
});
