/**
 * Verification figures: what the compactor computes from the input columns in JS and again from the
 * written file in DuckDB, and compares before a journal may be deleted.
 *
 * - `rows`, `minTsMicros`, `maxTsMicros` (Unix µs; null for an empty file).
 * - `checksum` = Σ round(price × 10⁶) × size over rows whose |price| < 10⁹, as an **exact integer**
 *   (decimal string). `round(x)` is `floor(x + 0.5)` evaluated in IEEE doubles, the same two operations in
 *   JS and in DuckDB (`floor(price * 1e6 + 0.5)`), so both sides agree bit for bit; the per-row product
 *   and the sum are exact integers (HUGEINT in DuckDB, base-2^k limbs in JS: no float sums that depend
 *   on summation order, and no BigInt per row). NULL/NaN/±Inf or absurd prices contribute 0. 10⁶
 *   resolves every tick size we carry (0.25, 0.01, 0.00005 for 6E …); a finer price change is still
 *   caught by the column-for-column round-trip tests, not by this sum.
 * - `volume` = Σ size, exact (decimal string).
 *
 * JS side: {@link scanTickColumns} does one pass over the columns (also validating them and finding
 * whether they are already sorted by (ts, seq)). Allocation-free per row.
 */
import { engineError } from '../../engine/errors.ts';
import { MICROS_PER_HOUR, MICROS_PER_MINUTE } from './layout.ts';

export const PRICE_SCALE = 1_000_000;
/** Prices at or beyond this magnitude (and NaN/±Inf) contribute 0 to the checksum. */
export const CHECKSUM_PRICE_LIMIT = 1e9;

/** DuckDB expression of the checksum over a price column and a size column (exact HUGEINT, as text). */
export function checksumSql(price: string, size: string): string {
  return `coalesce(sum(CASE WHEN abs(${price}) < 1e9 THEN CAST(floor(${price} * 1e6 + 0.5::DOUBLE) AS HUGEINT) * ${size} ELSE 0::HUGEINT END), 0::HUGEINT)::VARCHAR`;
}

/** DuckDB select list producing the {@link FileFigures} of a tick file (columns ts, price, size). */
export const TICK_FIGURES_SELECT =
  `count(*)::DOUBLE AS rows, epoch_us(min(ts))::DOUBLE AS min_us, epoch_us(max(ts))::DOUBLE AS max_us, ` +
  `${checksumSql('price', 'size')} AS checksum, coalesce(sum(size)::HUGEINT, 0::HUGEINT)::VARCHAR AS volume`;

/** DuckDB select list producing the {@link FileFigures} of a bar file (checksum over close × volume). */
export const BAR_FIGURES_SELECT =
  `count(*)::DOUBLE AS rows, epoch_us(min(ts))::DOUBLE AS min_us, epoch_us(max(ts))::DOUBLE AS max_us, ` +
  `${checksumSql('close', 'volume')} AS checksum, coalesce(sum(volume)::HUGEINT, 0::HUGEINT)::VARCHAR AS volume`;

export interface FileFigures {
  rows: number;
  minTsMicros: number | null;
  maxTsMicros: number | null;
  /** Exact integer as decimal text (see module doc). */
  checksum: string;
  /** Σ size (ticks) or Σ volume (bars), exact integer as decimal text. */
  volume: string;
}

export interface TickScan extends FileFigures {
  /** Rows with a price (not NaN): what bars count as trades. */
  trades: number;
  /** Σ size over those rows, exact decimal text. */
  tradeVolume: string;
  /** Distinct minutes that hold a trade: the number of 1-minute bars. */
  tradeMinutes: number;
  /** Input already ordered by (ts, seq). */
  sorted: boolean;
}

/** Columns of one symbol-hour, one element per tick (arrays may be longer than `count`). */
export interface TickColumns {
  /** Event time, Unix µs, integer. */
  tsMicros: Float64Array;
  /** Trade price in real units; NaN when unknown (stored as NULL). */
  price: Float64Array;
  bid: Float64Array;
  ask: Float64Array;
  size: Uint32Array;
  /** `TradeFlag` bits (schemas/records.ts); `side` is derived from SIDE_BUY / SIDE_SELL. */
  flags: Uint32Array;
  seq: Uint32Array;
  /** Optional per-row index into the `source` names; without it every row has source name 0. */
  sourceId?: Uint8Array;
  /**
   * Optional record index in the source (TRADE_SRC_INDEX: the `.scid` record index for Sierra files), kept
   * in the `src_index` column so spot checks can re-read the source record; without it `src_index` is NULL.
   */
  srcIndex?: Uint32Array;
}

const TWO16 = 65_536;
const TWO25 = 33_554_432;
const TWO32 = 4_294_967_296;
/** Rows between limb normalisations: keeps every limb below 2^53 (see scanTickColumns). */
const BLOCK_ROWS = 2048;

function invalid(message: string, detail: Record<string, string | number | boolean | null>): never {
  throw engineError('ENGINE_ERR_INVALID_ARG', `compactor: ${message}`, detail);
}

/** Check lengths and types of the columns for `count` rows. */
export function checkColumns(columns: TickColumns, count: number): void {
  if (!Number.isSafeInteger(count) || count < 0) invalid(`count must be a non-negative integer, got ${count}`, { count });
  const need: [string, unknown, new (n: number) => { length: number }][] = [
    ['tsMicros', columns.tsMicros, Float64Array], ['price', columns.price, Float64Array], ['bid', columns.bid, Float64Array],
    ['ask', columns.ask, Float64Array], ['size', columns.size, Uint32Array], ['flags', columns.flags, Uint32Array],
    ['seq', columns.seq, Uint32Array],
  ];
  if (columns.sourceId !== undefined) need.push(['sourceId', columns.sourceId, Uint8Array]);
  if (columns.srcIndex !== undefined) need.push(['srcIndex', columns.srcIndex, Uint32Array]);
  for (const [name, arr, ctor] of need) {
    if (!(arr instanceof ctor)) invalid(`column ${name} must be a ${ctor.name}`, { column: name });
    if ((arr as { length: number }).length < count) invalid(`column ${name} has ${(arr as { length: number }).length} elements, fewer than count ${count}`, { column: name, count });
  }
}

/**
 * One pass over the input: validates every row (integer ts inside [hourStart, hourStart + 1 h), source id
 * below `sourceCount`), and computes the figures. Hot loop: locals only, no allocation per row.
 *
 * Checksum limbs: p = floor(price·10⁶ + 0.5) (|p| < 2^50), split p = ph·2^25 + pl (0 ≤ pl < 2^25),
 * size = sh·2^16 + sl. The four partial products are each < 2^41 in magnitude and go to limbs of weight
 * 2^0, 2^16, 2^25, 2^41; after at most 2048 rows (< 2^52 per limb) carries move up, and the top limb
 * (weight 2^57) stays exact below 2^28 rows. One BigInt assembly at the end.
 */
export function scanTickColumns(columns: TickColumns, count: number, hourStartMicros: number, sourceCount: number): TickScan {
  checkColumns(columns, count);
  const { tsMicros: ts, price, size, seq } = columns;
  const src = columns.sourceId;
  const lo = hourStartMicros;
  const hi = hourStartMicros + MICROS_PER_HOUR;
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0;
  let vLo = 0, vHi = 0, tvLo = 0, tvHi = 0;
  let trades = 0;
  let minTs = Infinity, maxTs = -Infinity;
  let sorted = true;
  let prevTs = -Infinity, prevSeq = 0;
  const minutes = new Uint8Array(60);
  for (let start = 0; start < count; start += BLOCK_ROWS) {
    const end = Math.min(count, start + BLOCK_ROWS);
    let vBlock = 0, tvBlock = 0;
    for (let i = start; i < end; i++) {
      const t = ts[i] as number;
      if (!(t >= lo && t < hi) || Math.floor(t) !== t) {
        invalid(`row ${i}: ts ${t} is not an integer Unix µs inside the hour starting ${new Date(lo / 1000).toISOString()}`, { row: i, tsMicros: t, hourStartMicros });
      }
      const q = seq[i] as number;
      if (t < prevTs || (t === prevTs && q < prevSeq)) sorted = false;
      prevTs = t; prevSeq = q;
      if (t < minTs) minTs = t;
      if (t > maxTs) maxTs = t;
      if (src !== undefined && (src[i] as number) >= sourceCount) {
        invalid(`row ${i}: source id ${src[i]} has no name (${sourceCount} source names given)`, { row: i, sourceId: src[i] ?? 0 });
      }
      const s = size[i] as number;
      const px = price[i] as number;
      vBlock += s;
      if (px === px) {
        trades++;
        tvBlock += s;
        minutes[Math.floor((t - lo) / MICROS_PER_MINUTE)] = 1;
      }
      if (Math.abs(px) < CHECKSUM_PRICE_LIMIT) {
        const p = Math.floor(px * PRICE_SCALE + 0.5);
        const ph = Math.floor(p / TWO25);
        const pl = p - ph * TWO25;
        const sh = s >>> 16;
        const sl = s & 0xffff;
        a0 += pl * sl; a1 += pl * sh; a2 += ph * sl; a3 += ph * sh;
      }
    }
    let c = Math.floor(a0 / TWO16); a0 -= c * TWO16; a1 += c;
    c = Math.floor(a1 / 512); a1 -= c * 512; a2 += c;
    c = Math.floor(a2 / TWO16); a2 -= c * TWO16; a3 += c;
    c = Math.floor(a3 / TWO16); a3 -= c * TWO16; a4 += c;
    vLo += vBlock; c = Math.floor(vLo / TWO32); vLo -= c * TWO32; vHi += c;
    tvLo += tvBlock; c = Math.floor(tvLo / TWO32); tvLo -= c * TWO32; tvHi += c;
  }
  let tradeMinutes = 0;
  for (let m = 0; m < 60; m++) tradeMinutes += minutes[m] as number;
  const checksum = BigInt(a0) + (BigInt(a1) << 16n) + (BigInt(a2) << 25n) + (BigInt(a3) << 41n) + (BigInt(a4) << 57n);
  return {
    rows: count,
    minTsMicros: count > 0 ? minTs : null,
    maxTsMicros: count > 0 ? maxTs : null,
    checksum: checksum.toString(),
    volume: (BigInt(vLo) + (BigInt(vHi) << 32n)).toString(),
    trades,
    tradeVolume: (BigInt(tvLo) + (BigInt(tvHi) << 32n)).toString(),
    tradeMinutes,
    sorted,
  };
}

/** Names of the figures that differ (empty when equal). */
export function diffFigures(expected: FileFigures, actual: FileFigures): string[] {
  const out: string[] = [];
  if (expected.rows !== actual.rows) out.push('rows');
  if (expected.minTsMicros !== actual.minTsMicros) out.push('minTsMicros');
  if (expected.maxTsMicros !== actual.maxTsMicros) out.push('maxTsMicros');
  if (expected.checksum !== actual.checksum) out.push('checksum');
  if (expected.volume !== actual.volume) out.push('volume');
  return out;
}

/** Sum of several files' figures (cold path: BigInt is fine here). */
export function sumFigures(parts: readonly FileFigures[]): FileFigures {
  let rows = 0;
  let minTs: number | null = null;
  let maxTs: number | null = null;
  let checksum = 0n;
  let volume = 0n;
  for (const f of parts) {
    rows += f.rows;
    if (f.minTsMicros !== null && (minTs === null || f.minTsMicros < minTs)) minTs = f.minTsMicros;
    if (f.maxTsMicros !== null && (maxTs === null || f.maxTsMicros > maxTs)) maxTs = f.maxTsMicros;
    checksum += BigInt(f.checksum);
    volume += BigInt(f.volume);
  }
  return { rows, minTsMicros: minTs, maxTsMicros: maxTs, checksum: checksum.toString(), volume: volume.toString() };
}
