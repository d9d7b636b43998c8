/**
 * Live tail of a growing file by size polling.
 *
 * Why polling and not fs.watch: file watch events do not fire for files on `/mnt/c` under WSL2 (where
 * Sierra Chart writes), and Sierra flushes about every 5 s anyway. The caller polls (default every
 * 250 ms), each poll is one `fstat` of the open descriptor plus one `stat` of the path:
 * - path gone                         -> 'missing'
 * - path now names another file       -> 'replaced' (inode or device changed; and any file that appears
 *                                        after 'missing': once the descriptor is closed the file system may
 *                                        give the new file the old inode number, so the number proves nothing)
 * - file shorter than what we read    -> 'truncated'
 * - new whole records                 -> 'data' (the bytes are in `chunk`)
 * Only whole records are read: `setAlignment(headerBytes, recordBytes)` tells where records start, and a
 * trailing partial record stays on disk until the writer completes it. `chunk` is a view into a reused
 * buffer: the caller must be done with it before the next `read()`.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { engineError } from '../../engine/errors.ts';

export type TailEvent = 'data' | 'idle' | 'missing' | 'truncated' | 'replaced';

export interface FileIdentity { ino: number; dev: number }

export interface TailerOptions {
  /** Byte offset to resume from (a checkpoint); 0 for a new file. */
  startOffset?: number;
  /** Identity of the file the checkpoint belongs to; a different file at the path is 'replaced'. */
  identity?: FileIdentity | null;
  /** Largest read per call (default 4 MiB). */
  maxChunkBytes?: number;
}

export class FileTailer {
  readonly path: string;
  #fd = -1;
  #identity: FileIdentity | null;
  #offset: number;
  #headerBytes = 0;
  #recordBytes = 1;
  #buf: Buffer;
  #chunk: Uint8Array = new Uint8Array(0);
  #chunkOffset = 0;
  #lastSize = 0;

  constructor(path: string, opts: TailerOptions = {}) {
    this.path = path;
    this.#offset = opts.startOffset ?? 0;
    this.#identity = opts.identity ?? null;
    this.#buf = Buffer.allocUnsafe(opts.maxChunkBytes ?? 4 * 1024 * 1024);
  }

  /** Records start at `headerBytes` and are `recordBytes` long; reads stop at a record boundary. */
  setAlignment(headerBytes: number, recordBytes: number): void {
    if (!(recordBytes > 0) || !(headerBytes >= 0)) throw engineError('ENGINE_ERR_INVALID_ARG', `bad alignment ${headerBytes}/${recordBytes}`);
    this.#headerBytes = headerBytes;
    this.#recordBytes = recordBytes;
  }

  /** Next byte offset to read (everything before it has been handed out). */
  get offset(): number { return this.#offset; }
  /** File size seen at the last poll. */
  get size(): number { return this.#lastSize; }
  get identity(): FileIdentity | null { return this.#identity; }
  /** Bytes of the last 'data' read, valid until the next read. */
  get chunk(): Uint8Array { return this.#chunk; }
  /** File offset of chunk[0]. */
  get chunkOffset(): number { return this.#chunkOffset; }

  /** Open (or re-open) the file; returns false when it does not exist (yet). Other errors are coded. */
  #open(): boolean {
    if (this.#fd >= 0) return true;
    try {
      this.#fd = openSync(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw engineError('ENGINE_ERR_FILE_IO', `cannot open ${this.path}: ${(err as Error).message}`, { file: this.path }, err);
    }
    const st = fstatSync(this.#fd);
    if (!st.isFile()) {
      this.close();
      throw engineError('ENGINE_ERR_FILE_IO', `${this.path} is not a regular file`, { file: this.path });
    }
    const id = { ino: st.ino, dev: st.dev };
    if (this.#identity && (this.#lost || this.#identity.ino !== id.ino || this.#identity.dev !== id.dev)) {
      // A checkpoint of another file, or a file that vanished and came back: the caller decides (this is
      // reported once as 'replaced').
      this.#replacedOnOpen = true;
    }
    this.#lost = false;
    this.#identity = id;
    return true;
  }
  #replacedOnOpen = false;
  /** The file went missing after we knew it: whatever appears at the path next is another file. */
  #lost = false;

  #missing(): TailEvent {
    this.close();
    if (this.#identity) this.#lost = true;
    return 'missing';
  }

  /**
   * Poll once and read up to `maxBytes` of whole records (default: the buffer size).
   * After 'truncated' or 'replaced' the tailer is positioned at offset 0 of the current file: the caller
   * re-reads the header and decides what to skip.
   */
  read(maxBytes = this.#buf.length): TailEvent {
    if (!this.#open()) return this.#missing();
    let pathSt;
    try {
      pathSt = statSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.#missing();
      throw engineError('ENGINE_ERR_FILE_IO', `cannot stat ${this.path}: ${(err as Error).message}`, { file: this.path }, err);
    }
    if (this.#replacedOnOpen || (this.#identity && (pathSt.ino !== this.#identity.ino || pathSt.dev !== this.#identity.dev))) {
      this.#replacedOnOpen = false;
      this.close();
      this.#offset = 0;
      this.#identity = null;
      this.#open();
      this.#lastSize = pathSt.size;
      return 'replaced';
    }
    const size = fstatSync(this.#fd).size;
    this.#lastSize = size;
    if (size < this.#offset) {
      this.#offset = 0;
      return 'truncated';
    }
    // Reads end on a boundary: the end of the header or the end of a whole record (absolute file
    // offsets), so a trailing partial record stays on disk whatever the read position or the cap.
    let end = this.#boundaryAtOrBefore(size);
    const cap = Math.min(maxBytes, this.#buf.length);
    if (end - this.#offset > cap) {
      end = this.#boundaryAtOrBefore(this.#offset + cap);
      // A cap below one record still makes progress: one record (the buffer grows for it).
      if (end <= this.#offset) end = Math.min(this.#boundaryAfter(this.#offset), this.#boundaryAtOrBefore(size));
    }
    const want = end - this.#offset;
    if (want <= 0) return 'idle';
    if (want > this.#buf.length) this.#buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const n = readSync(this.#fd, this.#buf, got, want - got, this.#offset + got);
      if (n === 0) break; // shrank between fstat and read: seen as truncation next poll
      got += n;
    }
    // A short read (the file shrank meanwhile) is cut back to a boundary too.
    if (got < want) got = Math.max(0, this.#boundaryAtOrBefore(this.#offset + got) - this.#offset);
    if (got === 0) return 'idle';
    this.#chunkOffset = this.#offset;
    this.#chunk = new Uint8Array(this.#buf.buffer, this.#buf.byteOffset, got);
    this.#offset += got;
    return 'data';
  }

  /** The last read boundary at or before `pos`: inside the header any byte, after it a record start. */
  #boundaryAtOrBefore(pos: number): number {
    if (pos <= this.#headerBytes || this.#recordBytes <= 1) return pos;
    return this.#headerBytes + Math.floor((pos - this.#headerBytes) / this.#recordBytes) * this.#recordBytes;
  }

  /** The first record boundary after `pos` (the header's end when `pos` is inside the header). */
  #boundaryAfter(pos: number): number {
    if (pos < this.#headerBytes) return this.#headerBytes;
    return this.#boundaryAtOrBefore(pos) + this.#recordBytes;
  }

  /** Move the read position (e.g. back to a record boundary after a partial header read). */
  seek(offset: number): void {
    this.#offset = offset;
  }

  close(): void {
    if (this.#fd >= 0) {
      try { closeSync(this.#fd); } catch { /* already closed */ }
      this.#fd = -1;
    }
  }
}
