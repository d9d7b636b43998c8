/**
 * Durable per-source checkpoints: how far each file was read.
 *
 * One small JSON file per source under `<data-dir>/checkpoints/<source>.json`, written atomically
 * (write a temp file, fsync it, rename over the old one, fsync the directory), so a crash leaves
 * either the old or the new checkpoint, never a torn one. A corrupt or unreadable checkpoint is a
 * coded error naming the file: we never guess a position (that would duplicate or lose ticks).
 *
 * Is the file at the path still the one a checkpoint was taken of? The inode and device alone do not
 * prove it: once nobody holds the old file open the file system may give a new file the same inode
 * number, and a file can be rewritten in place (Sierra's "clear and download" keeps the inode). So a
 * checkpoint also carries a fingerprint of the file's content: a hash of its first bytes and of the bytes
 * just before the checkpoint offset (`fileFingerprint`). Resuming needs the same inode, device, a size at
 * least the offset and, when present, the same fingerprint; otherwise the file is read from its start.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { engineError } from './errors.ts';

export interface FileCheckpoint {
  /** Next byte offset to read (header + whole records). */
  offset: number;
  /** Index of the next record (records before it were handed downstream). */
  recordIndex: number;
  ino: number;
  dev: number;
  /** Event time of the last record handed downstream (Unix µs), for resumption after a file reset. */
  lastTsMicros: number;
  updatedAt: string;
  /** The file actually being read (rolling series such as daily depth files change it). */
  path?: string;
  /** Series tag of that file (a depth file's date as yyyymmdd), 0 for single files. */
  tag?: number;
  /** `fileFingerprint(fd, fingerprintHeadBytes, offset)` when the checkpoint was taken. */
  fingerprint?: string;
  /** File bytes the fingerprint's head part covers (the file may have been shorter than the maximum). */
  fingerprintHeadBytes?: number;
}

/** Most file bytes hashed from the start of a file for its fingerprint. */
export const FINGERPRINT_HEAD_BYTES = 256;
/** File bytes hashed just before the checkpoint offset (the last record or two). */
export const FINGERPRINT_TAIL_BYTES = 64;

function fnv1a(h: number, u8: Uint8Array, n: number): number {
  for (let i = 0; i < n; i++) h = Math.imul(h ^ (u8[i] ?? 0), 0x01000193) >>> 0;
  return h;
}

/**
 * Fingerprint of an open file: FNV-1a (32 bit) of bytes [0, headBytes) and of the up to
 * FINGERPRINT_TAIL_BYTES bytes before `offset`, as "hhhhhhhh-tttttttt". Null when the file is too short
 * to hold those bytes (it is then not the file the fingerprint was taken of). Cold path.
 */
export function fileFingerprint(fd: number, headBytes: number, offset: number): string | null {
  const buf = new Uint8Array(Math.max(headBytes, FINGERPRINT_TAIL_BYTES));
  const readAll = (n: number, pos: number): boolean => {
    let got = 0;
    while (got < n) {
      const k = readSync(fd, buf, got, n - got, pos + got);
      if (k === 0) return false;
      got += k;
    }
    return true;
  };
  if (!readAll(headBytes, 0)) return null;
  const head = fnv1a(0x811c9dc5, buf, headBytes);
  const tailBytes = Math.min(offset, FINGERPRINT_TAIL_BYTES);
  if (!readAll(tailBytes, offset - tailBytes)) return null;
  const tail = fnv1a(0x811c9dc5, buf, tailBytes);
  return `${head.toString(16).padStart(8, '0')}-${tail.toString(16).padStart(8, '0')}`;
}

export interface SourceCheckpoint {
  version: 1;
  source: string;
  files: Record<string, FileCheckpoint>;
}

export function checkpointPath(dataDir: string, source: string): string {
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(source)) throw engineError('ENGINE_ERR_INVALID_ARG', `bad source name for a checkpoint: ${JSON.stringify(source)}`);
  return join(dataDir, 'checkpoints', `${source}.json`);
}

function isFileCheckpoint(x: unknown): x is FileCheckpoint {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as Record<string, unknown>;
  for (const k of ['offset', 'recordIndex', 'ino', 'dev', 'lastTsMicros'] as const) {
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) return false;
  }
  if (o.path !== undefined && typeof o.path !== 'string') return false;
  if (o.tag !== undefined && !(typeof o.tag === 'number' && Number.isInteger(o.tag) && o.tag >= 0)) return false;
  if (o.fingerprint !== undefined && typeof o.fingerprint !== 'string') return false;
  if (o.fingerprintHeadBytes !== undefined && !(typeof o.fingerprintHeadBytes === 'number' && Number.isInteger(o.fingerprintHeadBytes) && o.fingerprintHeadBytes >= 0 && o.fingerprintHeadBytes <= FINGERPRINT_HEAD_BYTES)) return false;
  if ((o.fingerprint === undefined) !== (o.fingerprintHeadBytes === undefined)) return false;
  return (o.offset as number) >= 0 && Number.isInteger(o.offset) && (o.recordIndex as number) >= 0 && Number.isInteger(o.recordIndex);
}

/** Load a source's checkpoint; a missing file is an empty checkpoint, a corrupt one a coded error. */
export function loadCheckpoint(dataDir: string, source: string): SourceCheckpoint {
  const path = checkpointPath(dataDir, source);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, source, files: {} };
    throw engineError('ENGINE_ERR_FILE_IO', `cannot read checkpoint ${path}: ${(err as Error).message}`, { file: path }, err);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw engineError('ENGINE_ERR_CONFIG', `checkpoint ${path} is not valid JSON; move it away to re-read the files from the start`, { file: path }, err);
  }
  const o = parsed as Partial<SourceCheckpoint>;
  if (typeof o !== 'object' || o === null || o.version !== 1 || typeof o.files !== 'object' || o.files === null) {
    throw engineError('ENGINE_ERR_CONFIG', `checkpoint ${path} has an unknown shape`, { file: path });
  }
  const files: Record<string, FileCheckpoint> = {};
  for (const [name, fc] of Object.entries(o.files)) {
    if (!isFileCheckpoint(fc)) throw engineError('ENGINE_ERR_CONFIG', `checkpoint ${path} has a bad entry for ${name}`, { file: path });
    files[name] = fc;
  }
  return { version: 1, source, files };
}

/** Atomically replace a source's checkpoint. */
export function saveCheckpoint(dataDir: string, cp: SourceCheckpoint): void {
  const path = checkpointPath(dataDir, cp.source);
  const dir = dirname(path);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    mkdirSync(dir, { recursive: true });
    const fd = openSync(tmp, 'w');
    try {
      const bytes = Buffer.from(JSON.stringify(cp), 'utf8');
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    const dfd = openSync(dir, 'r');
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
  } catch (err) {
    throw engineError('ENGINE_ERR_FILE_IO', `cannot write checkpoint ${path}: ${(err as Error).message}`, { file: path }, err);
  }
}
