/**
 * Hold buffer: a FIFO of 64-byte records the sink keeps while Redis cannot take them (down, reconnecting,
 * catching up), so the ring keeps draining and the engine never waits for Redis. Bounded: when it is
 * full, `push` discards everything it holds and reports it (`onDiscard`) — those records are in the
 * journal, and the sink's catch-up re-reads them from there — then takes the new record. Discarding the
 * whole buffer (rather than each new record) keeps the newest records contiguous, so the catch-up has a
 * fixed target (the discarded records) instead of chasing a watermark that moves with every record.
 */
import { RECORD_SLOT_BYTES } from '../../schemas/records.ts';
import type { SlotViews } from '../../engine/ring/ring.ts';
import { slotViewsOf } from '../../engine/journal/format.ts';

export class HoldBuffer {
  readonly capacity: number;
  readonly views: SlotViews;
  readonly #mask: number;
  #head = 0;
  #size = 0;

  /** `capacity` is rounded up to a power of two. */
  constructor(capacity: number) {
    let cap = 1;
    while (cap < capacity) cap *= 2;
    this.capacity = cap;
    this.#mask = cap - 1;
    this.views = slotViewsOf(new ArrayBuffer(cap * RECORD_SLOT_BYTES));
  }

  get size(): number {
    return this.#size;
  }

  /** Byte offset of the i-th held record (0 = oldest). */
  byteOf(i: number): number {
    return ((this.#head + i) & this.#mask) * RECORD_SLOT_BYTES;
  }

  /** Records from the i-th that are contiguous in memory (before the buffer wraps). */
  contiguousFrom(i: number, want: number): number {
    const start = (this.#head + i) & this.#mask;
    return Math.min(want, this.capacity - start);
  }

  /** True when full: the caller discards (`discardAll`) before pushing. */
  get full(): boolean {
    return this.#size === this.capacity;
  }

  /** Copy the 64-byte record at byte `b` of `v` to the tail. The caller checks `full` first. */
  push(v: SlotViews, b: number): void {
    const d = this.views.u32;
    const s = v.u32;
    const o = (((this.#head + this.#size) & this.#mask) * RECORD_SLOT_BYTES) >> 2;
    const i = b >> 2;
    for (let k = 0; k < 16; k++) d[o + k] = s[i + k]!;
    this.#size++;
  }

  /** Remove the oldest `n` records. */
  shift(n: number): void {
    const k = Math.min(n, this.#size);
    this.#head = (this.#head + k) & this.#mask;
    this.#size -= k;
  }

  clear(): void {
    this.#head = 0;
    this.#size = 0;
  }
}
