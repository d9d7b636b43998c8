import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RECORD_SLOT_BYTES, readSeq, readSourceId, readTsMicros } from '../../schemas/records.ts';
import { isEngineError } from '../errors.ts';
import { BLOCK_HEADER_BYTES, FILE_HEADER_BYTES, HOUR_MICROS, hourFilePath, slotViewsOf } from './format.ts';
import { Journal } from './journal.ts';
import { fillRecord, recordMatches } from './fixtures/records.ts';

const root = mkdtempSync(join(tmpdir(), 'tp-journal-rec-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirNo = 0;
const freshDir = (): string => join(root, `d${dirNo++}`);

const T0 = Date.UTC(2025, 10, 11, 14) * 1000;
const slot = slotViewsOf(new ArrayBuffer(RECORD_SLOT_BYTES));
const open = (dataDir: string): Journal => Journal.open({ dataDir, commitIntervalMs: 0 });

/** Blocks of the given sizes (one flushSync each) in hour T0; returns the data dir and the block start offsets. */
function makeJournal(blockSizes: number[]): { dataDir: string; path: string; starts: number[]; bytes: Buffer } {
  const dataDir = freshDir();
  const j = open(dataDir);
  const starts: number[] = [];
  let seq = 0;
  let pos = FILE_HEADER_BYTES;
  for (const n of blockSizes) {
    starts.push(pos);
    for (let k = 0; k < n; k++) {
      seq++;
      fillRecord(slot, 0, 1, seq, T0 + seq);
      j.append(slot, 0);
    }
    j.flushSync();
    pos += BLOCK_HEADER_BYTES + n * RECORD_SLOT_BYTES;
  }
  j.closeSync();
  const path = hourFilePath(join(dataDir, 'journal'), T0);
  const bytes = readFileSync(path);
  expect(bytes.length).toBe(pos);
  return { dataDir, path, starts, bytes };
}

function seqs(j: Journal): number[] {
  const out: number[] = [];
  j.replay('open-hours', (v, off, count) => {
    for (let k = 0; k < count; k++) {
      const b = off + k * RECORD_SLOT_BYTES;
      expect(recordMatches(v, b, readSourceId(v, b), readSeq(v, b), readTsMicros(v, b))).toBe(true);
      out.push(readSeq(v, b));
    }
  });
  return out;
}

/** Flip bits of one byte in place. */
function flip(buf: Buffer, at: number, mask: number): void {
  buf.writeUInt8(buf.readUInt8(at) ^ mask, at);
}

const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return null;
}

describe('journal recovery: torn tails', () => {
  it('a file cut at every byte offset of its last block recovers to the last whole block, losing nothing before it', () => {
    const { dataDir, path, starts, bytes } = makeJournal([4, 3, 2]); // the last block: header + 2 records = 144 cut points
    const lastStart = starts[2] as number;
    for (let cut = lastStart; cut < bytes.length; cut++) {
      writeFileSync(path, bytes.subarray(0, cut));
      const j = open(dataDir);
      const torn = cut - lastStart;
      expect(j.recovery).toEqual(torn === 0 ? [] : [{ hourStartMicros: T0, path, action: 'truncated-torn-tail', bytesCut: torn, records: 7 }]);
      expect(statSync(path).size).toBe(lastStart);
      expect(seqs(j)).toEqual(range(1, 7));
      if (cut % 37 === 0 || cut === bytes.length - 1) {
        // the journal goes on cleanly after the cut
        fillRecord(slot, 0, 1, 100, T0 + 100);
        j.append(slot, 0);
        j.flushSync();
        expect(seqs(j)).toEqual([...range(1, 7), 100]);
      }
      j.closeSync();
    }
  });

  it('a file cut inside its header or first block recovers to an empty file that takes a new header', () => {
    const { dataDir, path, bytes } = makeJournal([1]);
    for (let cut = 1; cut < bytes.length; cut += cut < FILE_HEADER_BYTES + BLOCK_HEADER_BYTES ? 1 : 7) {
      writeFileSync(path, bytes.subarray(0, cut));
      const j = open(dataDir);
      const torn = cut < FILE_HEADER_BYTES ? cut : cut - FILE_HEADER_BYTES; // a whole header alone is a clean, empty file
      expect(j.recovery).toEqual(torn === 0 ? [] : [{ hourStartMicros: T0, path, action: 'truncated-torn-tail', bytesCut: torn, records: 0 }]);
      expect(statSync(path).size).toBe(cut < FILE_HEADER_BYTES ? 0 : FILE_HEADER_BYTES);
      expect(seqs(j)).toEqual([]);
      if (cut % 17 === 0) {
        fillRecord(slot, 0, 1, 9, T0 + 9);
        j.append(slot, 0);
        j.flushSync();
        j.closeSync();
        const r = open(dataDir);
        expect(r.recovery).toEqual([]);
        expect(seqs(r)).toEqual([9]);
        r.closeSync();
      } else j.closeSync();
    }
  });

  it('a whole last block with a bad CRC, a bad magic, or trailing zeros is a torn tail', () => {
    const { dataDir, path, starts, bytes } = makeJournal([4, 3, 5]);
    const lastStart = starts[2] as number;
    const variants: Array<[string, Buffer]> = [];
    const crcBad = Buffer.from(bytes);
    flip(crcBad, lastStart + BLOCK_HEADER_BYTES + 70, 0x01);
    variants.push(['payload bit flip', crcBad]);
    const magicBad = Buffer.from(bytes);
    flip(magicBad, lastStart, 0xff);
    variants.push(['header magic', magicBad]);
    variants.push(['zeros after the last block (size extended, data lost)', Buffer.concat([bytes, Buffer.alloc(4096)])]);
    for (const [name, buf] of variants) {
      writeFileSync(path, buf);
      const j = open(dataDir);
      const keep = name.startsWith('zeros') ? bytes.length : lastStart;
      expect(j.recovery, name).toEqual([{ hourStartMicros: T0, path, action: 'truncated-torn-tail', bytesCut: buf.length - keep, records: name.startsWith('zeros') ? 12 : 7 }]);
      expect(seqs(j), name).toEqual(range(1, name.startsWith('zeros') ? 12 : 7));
      j.closeSync();
    }
  });
});

describe('journal recovery: corruption is a coded error naming file and offset', () => {
  it('a bad payload in a middle block: replay throws ENGINE_ERR_JOURNAL at that block', () => {
    const { dataDir, path, starts, bytes } = makeJournal([4, 3, 5]);
    const buf = Buffer.from(bytes);
    flip(buf, (starts[1] as number) + BLOCK_HEADER_BYTES + 5, 0x40);
    writeFileSync(path, buf);
    const j = open(dataDir);
    expect(j.recovery).toEqual([]);
    const err = caught(() => seqs(j));
    expect(isEngineError(err, 'ENGINE_ERR_JOURNAL')).toBe(true);
    expect(err).toMatchObject({ detail: { file: path, byteOffset: starts[1], reason: 'payload CRC mismatch' } });
    j.closeSync();
    expect(statSync(path).size).toBe(bytes.length); // nothing was cut
  });

  it('a bad header or count in a middle block: open throws ENGINE_ERR_JOURNAL and leaves the file alone', () => {
    const { dataDir, path, starts, bytes } = makeJournal([4, 3, 5, 2]);
    for (const [what, at, reason] of [
      ['magic', starts[1] as number, 'bad block magic'],
      ['count', (starts[2] as number) + 4, 'short payload'],
      ['count', (starts[1] as number) + 4, 'bad'],
    ] as const) {
      const buf = Buffer.from(bytes);
      if (what === 'magic') flip(buf, at, 0xff);
      else buf.writeUInt32LE(what === 'count' && reason === 'bad' ? 0 : 1_000_000, at);
      writeFileSync(path, buf);
      const err = caught(() => open(dataDir));
      expect(isEngineError(err, 'ENGINE_ERR_JOURNAL'), `${what}/${reason}`).toBe(true);
      expect(err).toMatchObject({ detail: { file: path, byteOffset: what === 'magic' ? at : at - 4 } });
      expect(String((err as { detail: { reason: string } }).detail.reason)).toContain(reason);
      expect(statSync(path).size).toBe(bytes.length);
    }
  });

  it('a bad file header with valid blocks after it is corruption at byte 0', () => {
    const { dataDir, path, bytes } = makeJournal([4, 3]);
    const buf = Buffer.from(bytes);
    flip(buf, 5, 0x01); // version byte: header CRC no longer matches
    writeFileSync(path, buf);
    const err = caught(() => open(dataDir));
    expect(isEngineError(err, 'ENGINE_ERR_JOURNAL')).toBe(true);
    expect(err).toMatchObject({ detail: { file: path, byteOffset: 0 } });
  });

  it('a file whose header names another hour is refused', () => {
    const { dataDir, path } = makeJournal([2]);
    const other = hourFilePath(join(dataDir, 'journal'), T0 + HOUR_MICROS);
    copyFileSync(path, other);
    const err = caught(() => open(dataDir));
    expect(isEngineError(err, 'ENGINE_ERR_JOURNAL')).toBe(true);
    expect(err).toMatchObject({ detail: { file: other, reason: 'hour mismatch' } });
  });
});
