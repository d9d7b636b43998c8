/**
 * Durable source checkpoints: round trip, atomic replace, coded errors for anything that is not a
 * checkpoint we wrote, and the content fingerprint that tells a file from another one at the same path.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import {
  FINGERPRINT_HEAD_BYTES, FINGERPRINT_TAIL_BYTES, checkpointPath, fileFingerprint, loadCheckpoint, saveCheckpoint,
  type FileCheckpoint, type SourceCheckpoint,
} from './checkpoint.ts';
import { isEngineError, type EngineError } from './errors.ts';

let dir = '';
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tickpipe-cp-')); });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

const entry = (over: Partial<FileCheckpoint> = {}): FileCheckpoint => ({
  offset: 56 + 40 * 10, recordIndex: 10, ino: 123, dev: 45, lastTsMicros: 1_762_871_400_000_000, updatedAt: '2025-11-11T14:30:00.000Z',
  path: '/data/MNQZ25_FUT_CME.scid', tag: 0, fingerprint: '0123abcd-89ef4567', fingerprintHeadBytes: 256, ...over,
});

function thrown(f: () => unknown): EngineError {
  let err: unknown;
  try { f(); } catch (e) { err = e; }
  expect(isEngineError(err)).toBe(true);
  return err as EngineError;
}

describe('checkpoint files', () => {
  test('a missing checkpoint is an empty one; a saved one loads back as saved', () => {
    expect(loadCheckpoint(dir, 'sierra-scid')).toEqual({ version: 1, source: 'sierra-scid', files: {} });
    const cp: SourceCheckpoint = {
      version: 1, source: 'sierra-scid',
      files: { 'scid:MNQZ25:/data/MNQZ25_FUT_CME.scid': entry(), 'depth:MNQZ25:/d/MNQZ25_FUT_CME': entry({ tag: 20251112, offset: 64, recordIndex: 0 }) },
    };
    saveCheckpoint(dir, cp);
    expect(checkpointPath(dir, 'sierra-scid')).toBe(join(dir, 'checkpoints', 'sierra-scid.json'));
    expect(loadCheckpoint(dir, 'sierra-scid')).toEqual(cp);
    // replaced, not appended to; no temp file left behind
    const cp2: SourceCheckpoint = { version: 1, source: 'sierra-scid', files: { a: entry({ offset: 96, recordIndex: 1 }) } };
    saveCheckpoint(dir, cp2);
    expect(loadCheckpoint(dir, 'sierra-scid')).toEqual(cp2);
    expect(readdirSync(join(dir, 'checkpoints'))).toEqual(['sierra-scid.json']);
    // entries written before fingerprints (and paths) existed still load
    const old = { version: 1, source: 'x', files: { a: { offset: 0, recordIndex: 0, ino: 1, dev: 2, lastTsMicros: 0, updatedAt: '' } } };
    writeFileSync(checkpointPath(dir, 'x'), JSON.stringify(old));
    expect(loadCheckpoint(dir, 'x').files.a).toEqual(old.files.a);
  });

  test('a write that fails leaves the previous checkpoint whole and is a coded error naming the file', () => {
    const cp: SourceCheckpoint = { version: 1, source: 's', files: { a: entry() } };
    saveCheckpoint(dir, cp);
    const path = checkpointPath(dir, 's');
    // the temp file cannot be created (a directory is in its way)
    mkdirSync(`${path}.tmp-${process.pid}`);
    const err = thrown(() => saveCheckpoint(dir, { version: 1, source: 's', files: {} }));
    expect(err.code).toBe('ENGINE_ERR_FILE_IO');
    expect(err.message).toContain(path);
    expect(loadCheckpoint(dir, 's')).toEqual(cp);
  });

  test('corrupt or foreign content is ENGINE_ERR_CONFIG naming the checkpoint file', () => {
    const path = checkpointPath(dir, 's');
    mkdirSync(join(dir, 'checkpoints'));
    const bad: [string, RegExp][] = [
      ['', /not valid JSON/],
      ['{"version":1,"files":{"a":', /not valid JSON/],
      ['\u0000\u0000\u0000', /not valid JSON/],
      ['null', /unknown shape/],
      ['[]', /unknown shape/],
      ['{"version":2,"files":{}}', /unknown shape/],
      ['{"version":1}', /unknown shape/],
      ['{"version":1,"files":null}', /unknown shape/],
      [JSON.stringify({ version: 1, files: { a: { ...entry(), offset: -1 } } }), /bad entry for a/],
      [JSON.stringify({ version: 1, files: { a: { ...entry(), offset: 1.5 } } }), /bad entry for a/],
      [JSON.stringify({ version: 1, files: { a: { ...entry(), recordIndex: '3' } } }), /bad entry for a/],
      [JSON.stringify({ version: 1, files: { a: { ...entry(), ino: undefined } } }), /bad entry for a/],
      [JSON.stringify({ version: 1, files: { a: { ...entry(), lastTsMicros: null } } }), /bad entry for a/],
      [JSON.stringify({ version: 1, files: { a: { ...entry(), path: 7 } } }), /bad entry for a/],
      [JSON.stringify({ version: 1, files: { a: { ...entry(), tag: -1 } } }), /bad entry for a/],
      [JSON.stringify({ version: 1, files: { a: { ...entry(), fingerprintHeadBytes: undefined } } }), /bad entry for a/],
      [JSON.stringify({ version: 1, files: { a: { ...entry(), fingerprintHeadBytes: 100_000 } } }), /bad entry for a/],
      [JSON.stringify({ version: 1, files: { a: 5 } }), /bad entry for a/],
    ];
    for (const [text, why] of bad) {
      writeFileSync(path, text);
      const err = thrown(() => loadCheckpoint(dir, 's'));
      expect(err.code, text).toBe('ENGINE_ERR_CONFIG');
      expect(err.message, text).toMatch(why);
      expect(err.message).toContain(path);
      expect(err.detail.file).toBe(path);
    }
  });

  test('an unreadable checkpoint is ENGINE_ERR_FILE_IO; a bad source name is ENGINE_ERR_INVALID_ARG', () => {
    mkdirSync(checkpointPath(dir, 'd'), { recursive: true }); // a directory where the file should be
    const err = thrown(() => loadCheckpoint(dir, 'd'));
    expect(err.code).toBe('ENGINE_ERR_FILE_IO');
    expect(err.detail.file).toBe(checkpointPath(dir, 'd'));
    for (const name of ['', '../up', 'a/b', 'x'.repeat(101), 'sp ace']) {
      expect(thrown(() => checkpointPath(dir, name)).code).toBe('ENGINE_ERR_INVALID_ARG');
    }
  });
});

describe('fileFingerprint', () => {
  const file = (bytes: Uint8Array): number => {
    const p = join(dir, `f-${Math.random().toString(36).slice(2)}`);
    writeFileSync(p, bytes);
    return openSync(p, 'r');
  };
  const data = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

  test('same bytes, same fingerprint; growth after the offset does not change it', () => {
    const a = data(2000);
    const fd1 = file(a);
    const fd2 = file(Uint8Array.from([...a, ...data(500, 9)]));
    const fp = fileFingerprint(fd1, FINGERPRINT_HEAD_BYTES, 1096);
    expect(fp).toMatch(/^[0-9a-f]{8}-[0-9a-f]{8}$/);
    expect(fileFingerprint(fd2, FINGERPRINT_HEAD_BYTES, 1096)).toBe(fp);
    expect(fileFingerprint(fd1, FINGERPRINT_HEAD_BYTES, 1136)).not.toBe(fp); // another position
    closeSync(fd1); closeSync(fd2);
  });

  test('a change in the head, or just before the offset, changes it; elsewhere it does not', () => {
    const a = data(2000);
    const off = 1096;
    const fp = (bytes: Uint8Array): string | null => { const fd = file(bytes); try { return fileFingerprint(fd, FINGERPRINT_HEAD_BYTES, off); } finally { closeSync(fd); } };
    const base = fp(a);
    const flip = (at: number): Uint8Array => { const b = a.slice(); b[at] = b[at]! ^ 0x40; return b; };
    expect(fp(flip(0))).not.toBe(base);
    expect(fp(flip(FINGERPRINT_HEAD_BYTES - 1))).not.toBe(base);
    expect(fp(flip(off - 1))).not.toBe(base);
    expect(fp(flip(off - FINGERPRINT_TAIL_BYTES))).not.toBe(base);
    expect(fp(flip(FINGERPRINT_HEAD_BYTES + 10))).toBe(base); // between head and tail: not covered
    expect(fp(flip(off))).toBe(base); // after the offset
  });

  test('a file too short for the bytes it covers has no fingerprint; a small head and offset 0 work', () => {
    const fd = file(data(100));
    expect(fileFingerprint(fd, FINGERPRINT_HEAD_BYTES, 50)).toBeNull();
    expect(fileFingerprint(fd, 64, 200)).toBeNull();
    expect(fileFingerprint(fd, 100, 100)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{8}$/);
    expect(fileFingerprint(fd, 0, 0)).toBe('811c9dc5-811c9dc5'); // FNV-1a of nothing
    closeSync(fd);
    // the fingerprint follows a rewrite in place of the same file
    const p = join(dir, 'inplace');
    writeFileSync(p, data(300));
    const fdA = openSync(p, 'r');
    const before = fileFingerprint(fdA, 256, 300);
    const w = openSync(p, 'r+');
    writeSync(w, Uint8Array.of(0xee), 0, 1, 5);
    closeSync(w);
    expect(fileFingerprint(fdA, 256, 300)).not.toBe(before);
    closeSync(fdA);
    expect(readFileSync(p)[5]).toBe(0xee);
  });
});
