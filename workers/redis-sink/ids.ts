/**
 * Redis stream entry IDs derived from the record itself, so that a replay produces the same IDs and
 * Redis (or the sink, first) can refuse what is already in a stream.
 *
 * ID = `<ms>-<n>`:
 *   ms = floor(tsMicros / 1000)                         the record's event time in Unix ms
 *   n  = usInMs · 2^40 + sourceId · 2^32 + seq          (usInMs = tsMicros − ms·1000, 0..999)
 *
 * - `usInMs` is the major part of `n`, so Sierra's same-millisecond counter (the µs digits, which order
 *   trades inside one millisecond) keeps its order in the stream.
 * - `sourceId` (8 bits) separates two sources that stamp a trade with the same microsecond, and `seq`
 *   (the per-source, per-symbol 32-bit sequence) separates two trades of one source in the same µs.
 * - n < 999·2^40 + 2^40 < 2^50: exact in a float64, no BigInt. Redis accepts any u64 sequence part.
 *
 * An ID is strictly larger than every ID before it in the stream as long as records of one symbol reach
 * the sink in (µs, source, seq) order. A record whose ID is not above the stream's last ID is never sent:
 * it is a replayed duplicate, or (several sources interleaving out of time order) older than the
 * stream's newest entry: a Redis stream only appends. The journal and Parquet keep such records.
 */
export const N_US_FACTOR = 1_099_511_627_776; // 2^40
export const N_SOURCE_FACTOR = 4_294_967_296; // 2^32

/** Sequence part of the ID (see above). */
export function idSeqPart(tsMicros: number, ms: number, sourceId: number, seq: number): number {
  return Math.floor(tsMicros - ms * 1000) * N_US_FACTOR + sourceId * N_SOURCE_FACTOR + seq;
}

/** `a > b` for IDs (ms, n). */
export function idAfter(aMs: number, aN: number, bMs: number, bN: number): boolean {
  return aMs > bMs || (aMs === bMs && aN > bN);
}

/** Parse `"<ms>-<n>"` (as Redis returns it). Anything else: null. Cold path. */
export function parseStreamId(id: unknown): { ms: number; n: number } | null {
  if (typeof id !== 'string') return null;
  const m = /^(\d+)-(\d+)$/.exec(id);
  if (!m) return null;
  return { ms: Number(m[1]), n: Number(m[2]) };
}

export function formatStreamId(ms: number, n: number): string {
  return `${ms}-${n}`;
}
