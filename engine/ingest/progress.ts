/**
 * Exactly-once progress of a file-ingest worker across worker restarts.
 *
 * The ring lives in the supervisor's SharedArrayBuffer and survives the death of its producer. What a
 * restarted producer must know is exactly which source records already reached the ring. A checkpoint
 * written after publish can lag (duplicates on restart); one written before can lead (loss). So each
 * batch is a two-step intent/commit in a small shared table, tied to the ring's write sequence:
 *
 *   1. slots are written (not yet visible);
 *   2. `begin()`: store the file's next index/offset as PENDING together with the ring write sequence the
 *      publish will produce, then store the pending file slot (seq-cst: orders the plain stores above);
 *   3. `RingWriter.publish(n)` (one Atomics.store of WRITE_SEQ);
 *   4. `commit()`: copy PENDING to COMMITTED, clear the pending mark.
 *
 * A worker can die between any two instructions. `recover()` on restart: if a pending mark is set and
 * the ring's WRITE_SEQ equals the pending target, step 3 happened and PENDING is the truth; otherwise it
 * did not and COMMITTED is. No other writer touches the ring in between (SPSC), so the comparison is exact.
 */
import { engineError } from '../errors.ts';
import { CTRL_I32, WRITE_SEQ_I32 } from '../ring/layout.ts';

const MAGIC = 0x50524f47; // 'PROG'
// Int32 header words
const MAGIC_I32 = 0;
const FILES_I32 = 1;
const PENDING_FILE_I32 = 2; // -1 when no batch is in flight
const PENDING_WRITE_SEQ_I32 = 3;
const HEADER_BYTES = 64;
// Per file: 11 f64 words
const F64_PER_FILE = 11;
const COMMITTED_INDEX = 0;
const COMMITTED_OFFSET = 1;
const COMMITTED_TS = 2;
const PENDING_INDEX = 3;
const PENDING_OFFSET = 4;
const PENDING_TS = 5;
const COMMITTED_PUBLISHED = 6; // records (ring slots) published from this file, for stats
const PENDING_PUBLISHED = 7;
const COMMITTED_TAG = 8; // which file of a rolling series (e.g. a depth file's date as yyyymmdd)
const PENDING_TAG = 9;
const SEEDED = 10; // 1 once the slot was seeded from a durable checkpoint (or chose to start fresh)

export interface FileProgress { recordIndex: number; offset: number; lastTsMicros: number; published: number; tag: number }

export class IngestProgress {
  readonly buffer: SharedArrayBuffer;
  readonly files: number;
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #ringCtrl: Int32Array;

  private constructor(sab: SharedArrayBuffer, ringSab: SharedArrayBuffer) {
    this.buffer = sab;
    this.#i32 = new Int32Array(sab, 0, HEADER_BYTES / 4);
    this.files = this.#i32[FILES_I32] ?? 0;
    this.#f64 = new Float64Array(sab, HEADER_BYTES, this.files * F64_PER_FILE);
    this.#ringCtrl = new Int32Array(ringSab, 0, CTRL_I32);
  }

  /** Allocate a table for `files` file slots (on the supervisor). */
  static create(files: number): SharedArrayBuffer {
    if (!Number.isInteger(files) || files < 1 || files > 4096) throw engineError('ENGINE_ERR_INVALID_ARG', `progress table needs 1..4096 file slots, got ${files}`);
    const sab = new SharedArrayBuffer(HEADER_BYTES + files * F64_PER_FILE * 8);
    const i32 = new Int32Array(sab, 0, HEADER_BYTES / 4);
    i32[FILES_I32] = files;
    Atomics.store(i32, PENDING_FILE_I32, -1);
    Atomics.store(i32, MAGIC_I32, MAGIC);
    return sab;
  }

  /** Attach to a table and the ring it guards; resolves a batch left in flight by a dead worker. */
  static attach(sab: unknown, ringSab: SharedArrayBuffer): IngestProgress {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < HEADER_BYTES) throw engineError('ENGINE_ERR_LAYOUT', 'progress table must be a SharedArrayBuffer from IngestProgress.create');
    const i32 = new Int32Array(sab, 0, HEADER_BYTES / 4);
    const files = i32[FILES_I32] ?? 0;
    if (Atomics.load(i32, MAGIC_I32) !== MAGIC || sab.byteLength !== HEADER_BYTES + files * F64_PER_FILE * 8) {
      throw engineError('ENGINE_ERR_LAYOUT', 'buffer is not a progress table (bad magic or size)');
    }
    const p = new IngestProgress(sab, ringSab);
    p.recover();
    return p;
  }

  /** Seed a file slot from a durable checkpoint (only when the slot has never been used). */
  seed(file: number, recordIndex: number, offset: number, lastTsMicros: number, tag = 0): void {
    const o = this.#base(file);
    if (this.isSeeded(file)) return;
    this.#f64[o + COMMITTED_INDEX] = recordIndex;
    this.#f64[o + COMMITTED_OFFSET] = offset;
    this.#f64[o + COMMITTED_TS] = lastTsMicros;
    this.#f64[o + COMMITTED_TAG] = tag;
    this.#f64[o + SEEDED] = 1;
  }

  /** True once a slot was seeded or has published (a restarted worker must not re-seed it). */
  isSeeded(file: number): boolean {
    const o = this.#base(file);
    return this.#f64[o + SEEDED] === 1 || this.#f64[o + COMMITTED_OFFSET] !== 0 || this.#f64[o + COMMITTED_TAG] !== 0 || this.#f64[o + COMMITTED_PUBLISHED] !== 0;
  }

  /** Step 2: the batch about to be published takes file `file` to `nextIndex`/`nextOffset`. */
  begin(file: number, nextIndex: number, nextOffset: number, lastTsMicros: number, slots: number): void {
    const o = this.#base(file);
    this.#f64[o + PENDING_INDEX] = nextIndex;
    this.#f64[o + PENDING_OFFSET] = nextOffset;
    this.#f64[o + PENDING_TS] = lastTsMicros;
    this.#f64[o + PENDING_PUBLISHED] = (this.#f64[o + COMMITTED_PUBLISHED] ?? 0) + slots;
    this.#f64[o + PENDING_TAG] = this.#f64[o + COMMITTED_TAG] ?? 0;
    const target = (Atomics.load(this.#ringCtrl, WRITE_SEQ_I32) + slots) | 0;
    Atomics.store(this.#i32, PENDING_WRITE_SEQ_I32, target);
    Atomics.store(this.#i32, PENDING_FILE_I32, file);
  }

  /** Step 4, after `publish`. */
  commit(): void {
    const file = Atomics.load(this.#i32, PENDING_FILE_I32);
    if (file < 0) return;
    this.#promote(file);
  }

  /**
   * Move a slot to the start of another file (a replaced or truncated file, or the next file of a rolling
   * series with `tag`), as one intent/commit step so a crash leaves either the old or the new position.
   */
  switchFile(file: number, tag: number): void {
    const o = this.#base(file);
    this.#f64[o + PENDING_INDEX] = 0;
    this.#f64[o + PENDING_OFFSET] = 0;
    this.#f64[o + PENDING_TS] = this.#f64[o + COMMITTED_TS] ?? 0;
    this.#f64[o + PENDING_PUBLISHED] = this.#f64[o + COMMITTED_PUBLISHED] ?? 0;
    this.#f64[o + PENDING_TAG] = tag;
    Atomics.store(this.#i32, PENDING_WRITE_SEQ_I32, Atomics.load(this.#ringCtrl, WRITE_SEQ_I32));
    Atomics.store(this.#i32, PENDING_FILE_I32, file);
    this.#promote(file);
  }

  get(file: number): FileProgress {
    const o = this.#base(file);
    return {
      recordIndex: this.#f64[o + COMMITTED_INDEX] ?? 0,
      offset: this.#f64[o + COMMITTED_OFFSET] ?? 0,
      lastTsMicros: this.#f64[o + COMMITTED_TS] ?? 0,
      published: this.#f64[o + COMMITTED_PUBLISHED] ?? 0,
      tag: this.#f64[o + COMMITTED_TAG] ?? 0,
    };
  }

  /** Resolve an in-flight batch of a dead producer (see the file comment). */
  recover(): void {
    const file = Atomics.load(this.#i32, PENDING_FILE_I32);
    if (file < 0) return;
    const target = Atomics.load(this.#i32, PENDING_WRITE_SEQ_I32);
    if (Atomics.load(this.#ringCtrl, WRITE_SEQ_I32) === target) this.#promote(file);
    else Atomics.store(this.#i32, PENDING_FILE_I32, -1);
  }

  #promote(file: number): void {
    const o = this.#base(file);
    this.#f64[o + COMMITTED_INDEX] = this.#f64[o + PENDING_INDEX] ?? 0;
    this.#f64[o + COMMITTED_OFFSET] = this.#f64[o + PENDING_OFFSET] ?? 0;
    this.#f64[o + COMMITTED_TS] = this.#f64[o + PENDING_TS] ?? 0;
    this.#f64[o + COMMITTED_PUBLISHED] = this.#f64[o + PENDING_PUBLISHED] ?? 0;
    this.#f64[o + COMMITTED_TAG] = this.#f64[o + PENDING_TAG] ?? 0;
    Atomics.store(this.#i32, PENDING_FILE_I32, -1);
  }

  #base(file: number): number {
    if (!Number.isInteger(file) || file < 0 || file >= this.files) throw engineError('ENGINE_ERR_INVALID_ARG', `file slot ${file} outside 0..${this.files - 1}`);
    return file * F64_PER_FILE;
  }
}
