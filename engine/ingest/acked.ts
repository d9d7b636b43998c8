/**
 * Progress of a file source as of its ring consumer's RELEASE point, for checkpoints that must never lead
 * what downstream has stored durably.
 *
 * The validator stage releases input slots only after the journal committed their records
 * (engine/validate/stage.ts). A source checkpointing the position it PUBLISHED could lead the journal
 * (records in the ring, not yet committed, lost by a kill -9: the restart would start after them). So
 * after every publish (and every switch of file) the source records (ring write sequence after it, file
 * slot, record index, byte offset, last event time, tag) in this FIFO; at checkpoint time the entries
 * whose write sequence the consumer has released are applied, and the checkpoint is taken from the
 * resulting per-file "acked" progress. Entries hold absolute positions, so skipping one (FIFO full) only
 * makes a checkpoint older, never wrong.
 *
 * Typed arrays only; one instance per source worker.
 */
import { READ_SEQ_I32, WRITE_SEQ_I32, CTRL_I32 } from '../ring/layout.ts';
import type { FileProgress } from './progress.ts';

const F_INDEX = 0;
const F_OFFSET = 1;
const F_TS = 2;
const F_TAG = 3;
const F_N = 4;

export class AckedProgress {
  readonly #ctrl: Int32Array;
  readonly #cap: number;
  readonly #seq: Int32Array;
  readonly #slot: Int32Array;
  readonly #val: Float64Array;
  #head = 0;
  #len = 0;
  readonly #acked: Float64Array;
  /** Entries not recorded because the FIFO was full (the checkpoint lags a little more). */
  skipped = 0;

  constructor(ring: SharedArrayBuffer, files: number, capacity = 65536) {
    this.#ctrl = new Int32Array(ring, 0, CTRL_I32);
    this.#cap = capacity;
    this.#seq = new Int32Array(capacity);
    this.#slot = new Int32Array(capacity);
    this.#val = new Float64Array(capacity * F_N);
    this.#acked = new Float64Array(files * F_N);
  }

  /** Set a file's acked position (start-up: the durable checkpoint, or the start of the file). */
  set(slot: number, p: Pick<FileProgress, 'recordIndex' | 'offset' | 'lastTsMicros' | 'tag'>): void {
    const o = slot * F_N;
    this.#acked[o + F_INDEX] = p.recordIndex;
    this.#acked[o + F_OFFSET] = p.offset;
    this.#acked[o + F_TS] = p.lastTsMicros;
    this.#acked[o + F_TAG] = p.tag;
  }

  /** After a publish or a file switch: file `slot` is at `p` once the consumer released everything published so far. */
  record(slot: number, p: FileProgress): void {
    if (this.#len === this.#cap) {
      this.advance();
      if (this.#len === this.#cap) { this.skipped++; return; }
    }
    const i = (this.#head + this.#len) % this.#cap;
    this.#seq[i] = Atomics.load(this.#ctrl, WRITE_SEQ_I32);
    this.#slot[i] = slot;
    const o = i * F_N;
    this.#val[o + F_INDEX] = p.recordIndex;
    this.#val[o + F_OFFSET] = p.offset;
    this.#val[o + F_TS] = p.lastTsMicros;
    this.#val[o + F_TAG] = p.tag;
    this.#len++;
  }

  /** Apply every entry the consumer has released. */
  advance(): void {
    const released = Atomics.load(this.#ctrl, READ_SEQ_I32);
    while (this.#len > 0) {
      const h = this.#head;
      if (((released - this.#seq[h]!) | 0) < 0) break;
      const o = h * F_N;
      const a = this.#slot[h]! * F_N;
      this.#acked[a + F_INDEX] = this.#val[o + F_INDEX]!;
      this.#acked[a + F_OFFSET] = this.#val[o + F_OFFSET]!;
      this.#acked[a + F_TS] = this.#val[o + F_TS]!;
      this.#acked[a + F_TAG] = this.#val[o + F_TAG]!;
      this.#head = (h + 1) % this.#cap;
      this.#len--;
    }
  }

  /** True when the consumer released everything published (then the committed progress is durable). */
  get drained(): boolean {
    return Atomics.load(this.#ctrl, READ_SEQ_I32) === Atomics.load(this.#ctrl, WRITE_SEQ_I32);
  }

  /** Acked position of a file (after `advance`). */
  get(slot: number): { recordIndex: number; offset: number; lastTsMicros: number; tag: number } {
    const o = slot * F_N;
    return { recordIndex: this.#acked[o + F_INDEX]!, offset: this.#acked[o + F_OFFSET]!, lastTsMicros: this.#acked[o + F_TS]!, tag: this.#acked[o + F_TAG]! };
  }
}
