/**
 * Tick rows as owned (non-shared) typed-array columns, `length` rows valid: what the historical paths hand to
 * DuckDB's scan table functions and to WebSocket replay (hot-window snapshots in api/rest, journal hours read by
 * engine/history). Growable by doubling; transferable (every column has its own ArrayBuffer).
 */
export interface TickRowColumns {
  length: number;
  tsMicros: Float64Array<ArrayBuffer>;
  price: Float64Array<ArrayBuffer>;
  bid: Float64Array<ArrayBuffer>;
  ask: Float64Array<ArrayBuffer>;
  size: Uint32Array<ArrayBuffer>;
  flags: Uint32Array<ArrayBuffer>;
  seq: Uint32Array<ArrayBuffer>;
  sourceId: Uint8Array<ArrayBuffer>;
}

type Column = Float64Array<ArrayBuffer> | Uint32Array<ArrayBuffer> | Uint8Array<ArrayBuffer>;

export class GrowableTickColumns implements TickRowColumns {
  length = 0;
  tsMicros: Float64Array<ArrayBuffer>;
  price: Float64Array<ArrayBuffer>;
  bid: Float64Array<ArrayBuffer>;
  ask: Float64Array<ArrayBuffer>;
  size: Uint32Array<ArrayBuffer>;
  flags: Uint32Array<ArrayBuffer>;
  seq: Uint32Array<ArrayBuffer>;
  sourceId: Uint8Array<ArrayBuffer>;

  constructor(capacity = 1024) {
    this.tsMicros = new Float64Array(capacity);
    this.price = new Float64Array(capacity);
    this.bid = new Float64Array(capacity);
    this.ask = new Float64Array(capacity);
    this.size = new Uint32Array(capacity);
    this.flags = new Uint32Array(capacity);
    this.seq = new Uint32Array(capacity);
    this.sourceId = new Uint8Array(capacity);
  }

  get capacity(): number { return this.tsMicros.length; }

  /** Make room for `n` rows in total (doubling; keeps the rows held). */
  reserve(n: number): void {
    if (n <= this.capacity) return;
    let c = Math.max(1, this.capacity);
    while (c < n) c *= 2;
    const grow = <T extends Column>(a: T, b: T): T => { b.set(a.subarray(0, this.length)); return b; };
    this.tsMicros = grow(this.tsMicros, new Float64Array(c));
    this.price = grow(this.price, new Float64Array(c));
    this.bid = grow(this.bid, new Float64Array(c));
    this.ask = grow(this.ask, new Float64Array(c));
    this.size = grow(this.size, new Uint32Array(c));
    this.flags = grow(this.flags, new Uint32Array(c));
    this.seq = grow(this.seq, new Uint32Array(c));
    this.sourceId = grow(this.sourceId, new Uint8Array(c));
  }

  /** The columns as a plain object (structured-clone / transfer friendly). */
  toPlain(): TickRowColumns {
    return { length: this.length, tsMicros: this.tsMicros, price: this.price, bid: this.bid, ask: this.ask, size: this.size, flags: this.flags, seq: this.seq, sourceId: this.sourceId };
  }
}
