/**
 * FileTailer on real files in a temp dir: whole records only, a partial tail stays on disk, the chunk
 * cap, and the four non-data outcomes of a poll (idle, missing, truncated, replaced).
 */
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isEngineError } from '../../engine/errors.ts';
import { SCID_HEADER_BYTES, SCID_RECORD_BYTES } from './scid-format.ts';
import { buildScidBytes, encodeScidTrade } from './scid-writer.ts';
import { FileTailer, type TailEvent } from './tailer.ts';

const HB = SCID_HEADER_BYTES;
const RB = SCID_RECORD_BYTES;
const T0 = Date.UTC(2025, 10, 11, 14, 30) * 1000;

let dir = '';
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tickpipe-tailer-')); });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

/** A .scid file image of `n` records whose record i has time T0 + (first + i) µs. */
function scid(n: number, first = 0): Uint8Array {
  return buildScidBytes(n, (dv, off, i) => encodeScidTrade(dv, off, T0 + first + i, 100 + i, 99, 101, 1, 1, 0));
}
/** Just the record bytes of `scid(n, first)`. */
function records(n: number, first = 0): Uint8Array {
  return scid(n, first).subarray(HB);
}

/** Poll until something other than data arrives; returns all data read (copied) and the final event. */
function drain(t: FileTailer, maxBytes?: number): { bytes: Uint8Array; chunks: { off: number; len: number }[]; last: TailEvent } {
  const parts: Uint8Array[] = [];
  const chunks: { off: number; len: number }[] = [];
  for (;;) {
    const ev = maxBytes === undefined ? t.read() : t.read(maxBytes);
    if (ev !== 'data') {
      const total = parts.reduce((a, p) => a + p.length, 0);
      const bytes = new Uint8Array(total);
      let o = 0;
      for (const p of parts) { bytes.set(p, o); o += p.length; }
      return { bytes, chunks, last: ev };
    }
    chunks.push({ off: t.chunkOffset, len: t.chunk.length });
    parts.push(t.chunk.slice());
  }
}

describe('FileTailer', () => {
  test('hands out whole records only; a partial tail stays on disk until it is completed', () => {
    const path = join(dir, 'a.scid');
    const full = scid(5);
    // header, 3 records and 17 bytes of the 4th
    writeFileSync(path, full.subarray(0, HB + 3 * RB + 17));
    const t = new FileTailer(path, { startOffset: HB });
    t.setAlignment(HB, RB);
    const r1 = drain(t);
    expect(r1.last).toBe('idle');
    expect(Buffer.from(r1.bytes).equals(Buffer.from(full.subarray(HB, HB + 3 * RB)))).toBe(true);
    expect(t.offset).toBe(HB + 3 * RB);
    expect(t.size).toBe(HB + 3 * RB + 17);
    // still partial: nothing
    appendFileSync(path, full.subarray(HB + 3 * RB + 17, HB + 4 * RB - 1));
    expect(t.read()).toBe('idle');
    expect(t.offset).toBe(HB + 3 * RB);
    // completed, plus half of the 5th: exactly the 4th record
    appendFileSync(path, full.subarray(HB + 4 * RB - 1, HB + 4 * RB + 20));
    const r2 = drain(t);
    expect(r2.chunks).toEqual([{ off: HB + 3 * RB, len: RB }]);
    expect(Buffer.from(r2.bytes).equals(Buffer.from(full.subarray(HB + 3 * RB, HB + 4 * RB)))).toBe(true);
    appendFileSync(path, full.subarray(HB + 4 * RB + 20));
    const r3 = drain(t);
    expect(r3.chunks).toEqual([{ off: HB + 4 * RB, len: RB }]);
    expect(t.offset).toBe(full.length);
    t.close();
  });

  test('read from offset 0 with alignment: the header and whole records, never the partial tail', () => {
    const path = join(dir, 'h.scid');
    const full = scid(3);
    writeFileSync(path, full.subarray(0, HB + 2 * RB + 5));
    const t = new FileTailer(path);
    t.setAlignment(HB, RB);
    const r = drain(t);
    expect(r.last).toBe('idle');
    expect(r.bytes.length).toBe(HB + 2 * RB);
    expect(t.offset).toBe(HB + 2 * RB);
    // a file still shorter than its header is handed out as it grows (the decoder validates it)
    const p2 = join(dir, 'short.scid');
    writeFileSync(p2, full.subarray(0, 20));
    const t2 = new FileTailer(p2);
    t2.setAlignment(HB, RB);
    expect(drain(t2).bytes.length).toBe(20);
    appendFileSync(p2, full.subarray(20, HB + RB + 3));
    const r2 = drain(t2);
    expect(r2.chunks).toEqual([{ off: 20, len: HB - 20 + RB }]);
    t.close(); t2.close();
  });

  test('maxChunkBytes (and read(maxBytes)) caps every read at a record boundary', () => {
    const path = join(dir, 'cap.scid');
    const full = scid(50);
    writeFileSync(path, full);
    const t = new FileTailer(path, { startOffset: HB, maxChunkBytes: 130 });
    t.setAlignment(HB, RB);
    const r = drain(t);
    expect(Buffer.from(r.bytes).equals(Buffer.from(full.subarray(HB)))).toBe(true);
    for (const c of r.chunks) {
      expect(c.len).toBeLessThanOrEqual(130);
      expect(c.len % RB).toBe(0);
      expect((c.off - HB) % RB).toBe(0);
    }
    expect(r.chunks.length).toBe(Math.ceil(50 / 3)); // 3 records per read, the last one 2
    // per-call cap, including one below a record: one record per read
    const t2 = new FileTailer(path, { startOffset: HB });
    t2.setAlignment(HB, RB);
    const small = drain(t2, 7);
    expect(small.chunks.length).toBe(50);
    expect(small.chunks.every((c) => c.len === RB)).toBe(true);
    const t3 = new FileTailer(path, { startOffset: HB });
    t3.setAlignment(HB, RB);
    expect(drain(t3, 990).chunks.map((c) => c.len)).toEqual([960, 960, 80]); // 990 B → 24 records
    t.close(); t2.close(); t3.close();
  });

  test('a missing file is "missing", then picked up when it appears; a deleted file is "missing"', () => {
    const path = join(dir, 'later', 'm.scid');
    const t = new FileTailer(path, { startOffset: HB });
    t.setAlignment(HB, RB);
    expect(t.read()).toBe('missing');
    expect(t.read()).toBe('missing');
    mkdirSync(join(dir, 'later'));
    writeFileSync(path, scid(2));
    const r = drain(t);
    expect(r.chunks).toEqual([{ off: HB, len: 2 * RB }]);
    unlinkSync(path);
    expect(t.read()).toBe('missing');
    expect(t.read()).toBe('missing');
    t.close();
  });

  test('a file that shrinks is "truncated" and the tailer is back at offset 0', () => {
    const path = join(dir, 't.scid');
    writeFileSync(path, scid(10));
    const t = new FileTailer(path, { startOffset: HB });
    t.setAlignment(HB, RB);
    drain(t);
    expect(t.offset).toBe(HB + 10 * RB);
    truncateSync(path, HB + 4 * RB);
    expect(t.read()).toBe('truncated');
    expect(t.offset).toBe(0);
    // the same file again from its start (header included): the caller decides what to skip
    const r = drain(t);
    expect(r.chunks).toEqual([{ off: 0, len: HB + 4 * RB }]);
    t.close();
  });

  test('a file replaced by another (write tmp + rename over) is "replaced"; the new file is read from 0', () => {
    const path = join(dir, 'r.scid');
    writeFileSync(path, scid(10));
    const t = new FileTailer(path, { startOffset: HB });
    t.setAlignment(HB, RB);
    drain(t);
    const before = t.identity;
    expect(before).not.toBeNull();
    // the new file is LONGER than what was read: only the inode says it is another file
    const tmp = join(dir, 'r.scid.tmp');
    const next = scid(12, 1000);
    writeFileSync(tmp, next);
    renameSync(tmp, path);
    expect(t.read()).toBe('replaced');
    expect(t.offset).toBe(0);
    expect(t.identity).not.toEqual(before);
    expect(t.identity!.ino).toBe(statSync(path).ino);
    const r = drain(t);
    expect(Buffer.from(r.bytes).equals(Buffer.from(next))).toBe(true);
    t.close();
  });

  test('a deleted file that comes back as a new file is "replaced", not continued', () => {
    const path = join(dir, 'd.scid');
    writeFileSync(path, scid(3));
    const t = new FileTailer(path, { startOffset: HB });
    t.setAlignment(HB, RB);
    drain(t);
    unlinkSync(path);
    expect(t.read()).toBe('missing');
    writeFileSync(path, scid(5, 50));
    expect(t.read()).toBe('replaced');
    expect(drain(t).bytes.length).toBe(HB + 5 * RB);
    t.close();
  });

  test('identity on open: a checkpoint of another file gives "replaced"; of the same file resumes at startOffset', () => {
    const path = join(dir, 'i.scid');
    writeFileSync(path, scid(6));
    const st = statSync(path);
    const same = new FileTailer(path, { startOffset: HB + 4 * RB, identity: { ino: st.ino, dev: st.dev } });
    same.setAlignment(HB, RB);
    const r = drain(same);
    expect(r.chunks).toEqual([{ off: HB + 4 * RB, len: 2 * RB }]);
    same.close();

    const other = new FileTailer(path, { startOffset: HB + 4 * RB, identity: { ino: st.ino + 1, dev: st.dev } });
    other.setAlignment(HB, RB);
    expect(other.read()).toBe('replaced');
    expect(other.offset).toBe(0);
    expect(other.identity).toEqual({ ino: st.ino, dev: st.dev });
    const r2 = drain(other);
    expect(r2.chunks[0]!.off).toBe(0);
    expect(r2.bytes.length).toBe(HB + 6 * RB);
    other.close();
  });

  test('identity on open of a file that is gone, then re-created (whatever its inode number): "missing", then "replaced"', () => {
    const path = join(dir, 'v.scid');
    writeFileSync(path, scid(6));
    const st = statSync(path);
    unlinkSync(path);
    const t = new FileTailer(path, { startOffset: HB + 4 * RB, identity: { ino: st.ino, dev: st.dev } });
    t.setAlignment(HB, RB);
    expect(t.read()).toBe('missing');
    writeFileSync(path, scid(8, 100)); // ext4 and tmpfs often hand out the freed inode number again
    expect(t.read()).toBe('replaced');
    const r = drain(t);
    expect(r.chunks[0]!.off).toBe(0);
    expect(r.bytes.length).toBe(HB + 8 * RB);
    t.close();
  });

  test('a startOffset beyond the end of the file is a truncation', () => {
    const path = join(dir, 'b.scid');
    writeFileSync(path, scid(2));
    const t = new FileTailer(path, { startOffset: HB + 5 * RB });
    t.setAlignment(HB, RB);
    expect(t.read()).toBe('truncated');
    expect(t.offset).toBe(0);
    t.close();
  });

  test('a path that is a directory is a coded error naming it; bad alignment is a coded error', () => {
    const sub = join(dir, 'adir.scid');
    mkdirSync(sub);
    const t = new FileTailer(sub);
    let err: unknown;
    try { t.read(); } catch (e) { err = e; }
    expect(isEngineError(err, 'ENGINE_ERR_FILE_IO')).toBe(true);
    expect((err as Error).message).toContain(sub);
    expect(() => t.setAlignment(HB, 0)).toThrow(/bad alignment/);
    t.close();
  });

  test('growing by whole records between polls: every byte exactly once, in order', () => {
    const path = join(dir, 'g.scid');
    const full = scid(200);
    writeFileSync(path, full.subarray(0, HB));
    const t = new FileTailer(path, { startOffset: HB, maxChunkBytes: 256 });
    t.setAlignment(HB, RB);
    const got: Uint8Array[] = [];
    let at = HB;
    // appends of odd sizes (split records), polled in between
    for (let step = 1; at < full.length; step++) {
      const n = Math.min(full.length - at, (step * 37) % 173 + 1);
      appendFileSync(path, full.subarray(at, at + n));
      at += n;
      for (let ev = t.read(); ev === 'data'; ev = t.read()) {
        expect((t.chunkOffset - HB) % RB).toBe(0);
        expect(t.chunk.length % RB).toBe(0);
        got.push(t.chunk.slice());
      }
    }
    const all = Buffer.concat(got);
    expect(all.equals(Buffer.from(records(200)))).toBe(true);
    t.close();
  });
});
