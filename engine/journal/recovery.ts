/**
 * Journal file recovery: find the end of the last whole block, and tell a torn tail from corruption.
 *
 * Rule (one sentence): a bad block (short, bad magic, absurd count, or a bad CRC) is a **torn tail** when no
 * valid block follows it anywhere in the file, and **corruption** when one does. A torn tail is the normal
 * trace of a crash during a group commit (its records were never reported committed) and is cut off; a
 * valid block after a bad one means data the journal once committed would be thrown away, so that is a
 * coded ENGINE_ERR_JOURNAL naming the file and the byte offset, never a silent drop.
 *
 * What open() checks: the file header, every block header (a walk from block to block, one 16-byte read
 * each), and the CRC of the last block. The CRCs of the blocks before it are checked by replay (which reads
 * every byte anyway), so a flipped payload byte in the middle of a file is reported at replay, with the
 * same error shape. A header that is torn (file shorter than 32 bytes, or a bad header with no valid block
 * after it) leaves an empty file whose header is written again with the next block.
 */
import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync } from 'node:fs';
import { engineError } from '../errors.ts';
import {
  BH_COUNT_BYTE, BH_CRC_BYTE, BLOCK_HEADER_BYTES, BLOCK_MAGIC, FH_HOUR_START_BYTE, FILE_HEADER_BYTES, JOURNAL_RECORD_BYTES, MAX_BLOCK_RECORDS,
  checkFileHeader, crc32Of,
} from './format.ts';

export interface FileScan {
  /** Bytes of the file that hold the header and whole valid blocks (the new size after a cut). */
  validBytes: number;
  records: number;
  blocks: number;
  /** Bytes removed from the end (0 when the file was clean). */
  bytesCut: number;
  /** Size before recovery. */
  fileBytes: number;
}

const SCAN_CHUNK_BYTES = 1 << 20;

/** pread until `len` bytes or end of file; returns the bytes read. */
export function preadFully(fd: number, buf: Uint8Array, off: number, len: number, pos: number): number {
  let done = 0;
  while (done < len) {
    const n = readSync(fd, buf, off + done, len - done, pos + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

function u32At(buf: Uint8Array, at: number): number {
  return ((buf[at] ?? 0) | ((buf[at + 1] ?? 0) << 8) | ((buf[at + 2] ?? 0) << 16) | ((buf[at + 3] ?? 0) << 24)) >>> 0;
}

/** Is there a whole block with a matching CRC at `pos`? */
function validBlockAt(fd: number, pos: number, size: number, hdr: Uint8Array, scratch: { buf: Uint8Array }): boolean {
  if (size - pos < BLOCK_HEADER_BYTES + JOURNAL_RECORD_BYTES) return false;
  if (preadFully(fd, hdr, 0, BLOCK_HEADER_BYTES, pos) !== BLOCK_HEADER_BYTES) return false;
  if (u32At(hdr, 0) !== BLOCK_MAGIC) return false;
  const count = u32At(hdr, BH_COUNT_BYTE);
  if (count === 0 || count > MAX_BLOCK_RECORDS) return false;
  const payload = count * JOURNAL_RECORD_BYTES;
  if (pos + BLOCK_HEADER_BYTES + payload > size) return false;
  if (scratch.buf.length < payload) scratch.buf = new Uint8Array(payload);
  if (preadFully(fd, scratch.buf, 0, payload, pos + BLOCK_HEADER_BYTES) !== payload) return false;
  return crc32Of(scratch.buf, 0, payload) === u32At(hdr, BH_CRC_BYTE);
}

/** Byte offset of the first valid block at or after `from` (16-byte steps: every block starts 16-aligned), or -1. */
export function findValidBlock(fd: number, from: number, size: number): number {
  const chunk = new Uint8Array(Math.max(BLOCK_HEADER_BYTES, Math.min(SCAN_CHUNK_BYTES, size - from)));
  const hdr = new Uint8Array(BLOCK_HEADER_BYTES);
  const scratch = { buf: new Uint8Array(0) };
  let start = from + ((16 - (from % 16)) % 16);
  while (start + BLOCK_HEADER_BYTES <= size) {
    const n = preadFully(fd, chunk, 0, Math.min(chunk.length, size - start), start);
    for (let i = 0; i + 4 <= n; i += 16) {
      if (u32At(chunk, i) === BLOCK_MAGIC && validBlockAt(fd, start + i, size, hdr, scratch)) return start + i;
    }
    if (n < chunk.length) break;
    start += n;
  }
  return -1;
}

function corrupt(path: string, byteOffset: number, reason: string): never {
  throw engineError('ENGINE_ERR_JOURNAL', `journal ${path} is corrupt at byte ${byteOffset}: ${reason} (valid blocks follow, so this is not a torn tail; move the file away after saving what it holds)`, {
    file: path, byteOffset, reason,
  });
}

/**
 * Scan an open file descriptor. Does not modify the file; returns where it should be cut.
 * Throws ENGINE_ERR_JOURNAL on corruption or when the header names another hour.
 */
export function scanJournalFd(fd: number, path: string, expectedHourMicros: number): FileScan {
  const size = fstatSync(fd).size;
  const clean = (validBytes: number, records: number, blocks: number): FileScan => ({ validBytes, records, blocks, bytesCut: size - validBytes, fileBytes: size });
  if (size === 0) return clean(0, 0, 0);
  const hdr = new Uint8Array(FILE_HEADER_BYTES);
  if (size < FILE_HEADER_BYTES) return clean(0, 0, 0); // torn while the file was being created
  preadFully(fd, hdr, 0, FILE_HEADER_BYTES, 0);
  const h = checkFileHeader(hdr, 0);
  if (!h.ok) {
    if (findValidBlock(fd, FILE_HEADER_BYTES, size) >= 0) corrupt(path, 0, `file header: ${h.reason}`);
    return clean(0, 0, 0);
  }
  if (h.hourStartMicros !== expectedHourMicros) {
    throw engineError('ENGINE_ERR_JOURNAL', `journal ${path} holds hour ${new Date(h.hourStartMicros / 1000).toISOString()} but its path names ${new Date(expectedHourMicros / 1000).toISOString()}`, {
      file: path, byteOffset: FH_HOUR_START_BYTE, reason: 'hour mismatch',
    });
  }
  const bh = new Uint8Array(BLOCK_HEADER_BYTES);
  const scratch = { buf: new Uint8Array(0) };
  let pos = FILE_HEADER_BYTES;
  let records = 0;
  let blocks = 0;
  while (pos < size) {
    let bad = '';
    if (size - pos < BLOCK_HEADER_BYTES) bad = 'partial block header';
    else {
      preadFully(fd, bh, 0, BLOCK_HEADER_BYTES, pos);
      const count = u32At(bh, BH_COUNT_BYTE);
      const end = pos + BLOCK_HEADER_BYTES + count * JOURNAL_RECORD_BYTES;
      if (u32At(bh, 0) !== BLOCK_MAGIC) bad = 'bad block magic';
      else if (count === 0 || count > MAX_BLOCK_RECORDS) bad = `bad record count ${count}`;
      else if (end > size) bad = `short payload (${size - pos - BLOCK_HEADER_BYTES} of ${count * JOURNAL_RECORD_BYTES} bytes)`;
      else if (end === size && !validBlockAt(fd, pos, size, bh, scratch)) bad = 'payload CRC mismatch';
      else {
        pos = end;
        records += count;
        blocks++;
        continue;
      }
    }
    if (findValidBlock(fd, pos + BLOCK_HEADER_BYTES, size) >= 0) corrupt(path, pos, bad);
    return clean(pos, records, blocks);
  }
  return clean(pos, records, blocks);
}

/** Open, scan and, when the tail is torn, truncate the file to its last whole block (fsynced). */
export function recoverJournalFile(path: string, expectedHourMicros: number): FileScan {
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (err) {
    throw engineError('ENGINE_ERR_FILE_IO', `cannot open journal ${path}: ${(err as Error).message}`, { file: path, errno: (err as NodeJS.ErrnoException).code ?? null }, err);
  }
  try {
    const scan = scanJournalFd(fd, path, expectedHourMicros);
    if (scan.bytesCut > 0) {
      try {
        ftruncateSync(fd, scan.validBytes);
        fdatasyncSync(fd);
      } catch (err) {
        throw engineError('ENGINE_ERR_FILE_IO', `cannot truncate the torn tail of journal ${path}: ${(err as Error).message}`, { file: path, errno: (err as NodeJS.ErrnoException).code ?? null }, err);
      }
    }
    return scan;
  } finally {
    closeSync(fd);
  }
}
