/**
 * The quarantine and the gap store: on-disk, queryable logs written by the validator stage
 * (record-log.ts format), read by anyone (the API on the main thread) with async scans.
 *
 * - Quarantine: `<data-dir>/quarantine/<YYYY-MM-DD>.tpq`: every record the validator rejected (code =
 *   RejectReason) and, unless disabled, every record it kept with verdict flags (code 0, `kept: true`).
 *   Records answered REPLAYED (already stored before a restart) are not quarantined: they are stored.
 * - Gaps: `<data-dir>/gaps/<YYYY-MM-DD>.tpg`: GAP records (schemas/records.ts GAP body): sequence and
 *   time gaps found by the validator, and FILE_RESET / SOURCE_STATUS markers of the sources.
 */
import { join } from 'node:path';
import { engineError } from '../errors.ts';
import {
  GapKind, RecordKind, readF64, readKind, readSeq, readSourceId, readSymbolId, readTsMicros, readU32, slotToObject,
} from '../../schemas/records.ts';
import { RecordLogWriter, listLogDays, scanLogFile } from './record-log.ts';
import { rejectReasonCode, rejectReasonName, verdictNames } from './validator.ts';

export const QUARANTINE_DIR = 'quarantine';
export const QUARANTINE_EXT = 'tpq';
export const QUARANTINE_MAGIC = 0x31515054; // 'TPQ1'
export const GAPS_DIR = 'gaps';
export const GAPS_EXT = 'tpg';
export const GAPS_MAGIC = 0x31475054; // 'TPG1'

const DAY_MICROS = 86_400_000_000;
const MAX_LIMIT = 100_000;

export function quarantineWriter(dataDir: string): RecordLogWriter {
  return new RecordLogWriter(join(dataDir, QUARANTINE_DIR), QUARANTINE_EXT, QUARANTINE_MAGIC);
}

export function gapWriter(dataDir: string): RecordLogWriter {
  return new RecordLogWriter(join(dataDir, GAPS_DIR), GAPS_EXT, GAPS_MAGIC, 256);
}

export interface QuarantineQuery {
  /** Only this symbol id. */
  symbolId?: number;
  sourceId?: number;
  /** Event time range, Unix µs, inclusive from / exclusive to. */
  fromMicros?: number;
  toMicros?: number;
  /** Only this reason: a RejectReason code or its name (`duplicate`, `off_tick`...); 'flagged' = kept records with verdict flags. */
  reason?: number | string;
  /** Include kept-but-flagged entries (default true). */
  includeFlagged?: boolean;
  /** At most this many entries (default 1000, at most 100000). */
  limit?: number;
  /** 'asc' (default): the oldest `limit` entries, oldest first; 'desc': the newest `limit`, newest first. */
  order?: 'asc' | 'desc';
}

export interface QuarantineEntry {
  /** Reject reason name (`duplicate`, `bad_price`...) or `flagged` for a kept record. */
  reason: string;
  code: number;
  kept: boolean;
  /** Verdict flag names found on the record. */
  flags: string[];
  arrivedMicros: number;
  symbolId: number;
  symbol: string | null;
  sourceId: number;
  seq: number;
  tsMicros: number;
  /** Every field of the record (schemas/records.ts `slotToObject`). */
  record: Record<string, number>;
}

export interface GapQuery {
  symbolId?: number;
  fromMicros?: number;
  toMicros?: number;
  /** GapKind code or name ('sequence', 'time', 'source_status', 'file_reset'). */
  kind?: number | string;
  limit?: number;
  /** 'asc' (default): oldest first; 'desc': the newest `limit`, newest first. */
  order?: 'asc' | 'desc';
}

export interface GapEntry {
  kind: string;
  symbolId: number;
  symbol: string | null;
  sourceId: number;
  startMicros: number;
  endMicros: number;
  expectedSeq: number;
  gotSeq: number;
  status: number;
  arrivedMicros: number;
}

const GAP_KIND_NAMES: Record<number, string> = { [GapKind.SEQUENCE]: 'sequence', [GapKind.TIME]: 'time', [GapKind.SOURCE_STATUS]: 'source_status', [GapKind.FILE_RESET]: 'file_reset' };

export function gapKindName(k: number): string {
  return GAP_KIND_NAMES[k] ?? `unknown_${k}`;
}

function gapKindCode(k: number | string): number {
  if (typeof k === 'number') return k;
  for (const [c, n] of Object.entries(GAP_KIND_NAMES)) if (n === k) return Number(c);
  throw engineError('ENGINE_ERR_INVALID_ARG', `unknown gap kind ${JSON.stringify(k)}; expected one of ${Object.values(GAP_KIND_NAMES).join(', ')}`);
}

function checkRange(from: number | undefined, to: number | undefined, limit: number | undefined): { from: number; to: number; limit: number } {
  const f = from ?? -Infinity;
  const t = to ?? Infinity;
  if (typeof f !== 'number' || Number.isNaN(f) || typeof t !== 'number' || Number.isNaN(t)) throw engineError('ENGINE_ERR_INVALID_ARG', 'fromMicros/toMicros must be numbers (Unix µs)');
  const l = limit ?? 1000;
  if (!Number.isInteger(l) || l < 1 || l > MAX_LIMIT) throw engineError('ENGINE_ERR_INVALID_ARG', `limit must be an integer 1..${MAX_LIMIT}, got ${String(limit)}`);
  return { from: f, to: t, limit: l };
}

/**
 * Collect up to `limit` results over day files: ascending stops at the first `limit`; descending walks the
 * days newest first and keeps the last `limit` matches of each day (entries are in arrival order in a day).
 */
async function collect<T>(days: number[], order: 'asc' | 'desc' | undefined, limit: number, scanDay: (day: number, take: (x: T) => boolean) => Promise<unknown>): Promise<T[]> {
  if (order !== undefined && order !== 'asc' && order !== 'desc') throw engineError('ENGINE_ERR_INVALID_ARG', `order must be 'asc' or 'desc', got ${JSON.stringify(order)}`);
  const out: T[] = [];
  if (order !== 'desc') {
    for (const day of days) {
      let full = false;
      await scanDay(day, (x) => { out.push(x); full = out.length >= limit; return full; });
      if (full) break;
    }
    return out;
  }
  for (let i = days.length - 1; i >= 0 && out.length < limit; i--) {
    let dayOut: T[] = [];
    await scanDay(days[i]!, (x) => {
      dayOut.push(x);
      if (dayOut.length >= 2 * limit) dayOut = dayOut.slice(-limit);
      return false;
    });
    dayOut = dayOut.slice(-(limit - out.length));
    for (let k = dayOut.length - 1; k >= 0; k--) out.push(dayOut[k]!);
  }
  return out;
}

function dayRange(from: number, to: number): [number, number] {
  // entries are filed by event-time day; an implausible time is filed by arrival day: scan all then
  return [Number.isFinite(from) ? Math.floor(from / DAY_MICROS) : -Infinity, Number.isFinite(to) ? Math.floor(to / DAY_MICROS) : Infinity];
}

/** Read side of the quarantine (any thread; async, chunked: never blocks the event loop long). */
export class QuarantineStore {
  readonly dir: string;
  readonly #symbolOf: (id: number) => string | null;

  constructor(dataDir: string, symbolOf: (id: number) => string | null = () => null) {
    this.dir = join(dataDir, QUARANTINE_DIR);
    this.#symbolOf = symbolOf;
  }

  /** Entries matching `q`, oldest day first (within a day in arrival order). Bad arguments: ENGINE_ERR_INVALID_ARG. */
  async query(q: QuarantineQuery = {}): Promise<QuarantineEntry[]> {
    const { from, to, limit } = checkRange(q.fromMicros, q.toMicros, q.limit);
    let code = -1;
    if (q.reason !== undefined) {
      code = typeof q.reason === 'number' ? q.reason : q.reason === 'flagged' ? 0 : rejectReasonCode(q.reason);
      if (code < 0 || (typeof q.reason === 'string' && q.reason !== 'flagged' && code === 0)) {
        throw engineError('ENGINE_ERR_INVALID_ARG', `unknown quarantine reason ${JSON.stringify(q.reason)}`);
      }
    }
    const includeFlagged = q.includeFlagged ?? true;
    const [d0, d1] = dayRange(from, to);
    // implausible-time entries live under their arrival day, which may be outside [d0, d1]: a time-bounded query skips them (their time is not in range anyway)
    const days = await listLogDays(this.dir, QUARANTINE_EXT, d0, d1);
    return collect<QuarantineEntry>(days, q.order, limit, (day, take) => scanLogFile(this.dir, QUARANTINE_EXT, QUARANTINE_MAGIC, day, (v, b, c, verdict, arrived) => {
      if (c === 0 && !includeFlagged) return false;
      if (code >= 0 && c !== code) return false;
      const sym = readSymbolId(v, b);
      if (q.symbolId !== undefined && sym !== q.symbolId) return false;
      const src = readSourceId(v, b);
      if (q.sourceId !== undefined && src !== q.sourceId) return false;
      const ts = readTsMicros(v, b);
      if ((Number.isFinite(from) || Number.isFinite(to)) && !(ts >= from && ts < to)) return false;
      return take({
        reason: c === 0 ? 'flagged' : rejectReasonName(c), code: c, kept: c === 0, flags: verdictNames(verdict), arrivedMicros: arrived,
        symbolId: sym, symbol: this.#symbolOf(sym), sourceId: src, seq: readSeq(v, b), tsMicros: ts, record: slotToObject(v, b),
      });
    }));
  }

  /** Counts by reason name over the days in range (whole days; for status). */
  async counts(q: { fromMicros?: number; toMicros?: number } = {}): Promise<Record<string, number>> {
    const { from, to } = checkRange(q.fromMicros, q.toMicros, 1);
    const out: Record<string, number> = {};
    const [d0, d1] = dayRange(from, to);
    for (const day of await listLogDays(this.dir, QUARANTINE_EXT, d0, d1)) {
      await scanLogFile(this.dir, QUARANTINE_EXT, QUARANTINE_MAGIC, day, (_v, _b, c) => {
        const k = c === 0 ? 'flagged' : rejectReasonName(c);
        out[k] = (out[k] ?? 0) + 1;
      });
    }
    return out;
  }
}

/** Read side of the gap store. */
export class GapStore {
  readonly dir: string;
  readonly #symbolOf: (id: number) => string | null;

  constructor(dataDir: string, symbolOf: (id: number) => string | null = () => null) {
    this.dir = join(dataDir, GAPS_DIR);
    this.#symbolOf = symbolOf;
  }

  /** Gaps whose start lies in [fromMicros, toMicros), oldest day first. */
  async query(q: GapQuery = {}): Promise<GapEntry[]> {
    const { from, to, limit } = checkRange(q.fromMicros, q.toMicros, q.limit);
    const kind = q.kind === undefined ? -1 : gapKindCode(q.kind);
    const [d0, d1] = dayRange(from, to);
    const days = await listLogDays(this.dir, GAPS_EXT, d0, d1);
    return collect<GapEntry>(days, q.order, limit, (day, take) => scanLogFile(this.dir, GAPS_EXT, GAPS_MAGIC, day, (v, b, _c, _verdict, arrived) => {
      if (readKind(v, b) !== RecordKind.GAP) return false;
      const k = readU32(v, b, 32);
      if (kind >= 0 && k !== kind) return false;
      const sym = readSymbolId(v, b);
      if (q.symbolId !== undefined && sym !== q.symbolId) return false;
      const ts = readTsMicros(v, b);
      if ((Number.isFinite(from) || Number.isFinite(to)) && !(ts >= from && ts < to)) return false;
      return take({
        kind: gapKindName(k), symbolId: sym, symbol: this.#symbolOf(sym), sourceId: readSourceId(v, b), startMicros: ts,
        endMicros: readF64(v, b, 16), expectedSeq: readU32(v, b, 24), gotSeq: readU32(v, b, 28), status: readU32(v, b, 36), arrivedMicros: arrived,
      });
    }));
  }

  /** Gap counts by kind name (for status). */
  async counts(q: { fromMicros?: number; toMicros?: number } = {}): Promise<Record<string, number>> {
    const { from, to } = checkRange(q.fromMicros, q.toMicros, 1);
    const out: Record<string, number> = {};
    const [d0, d1] = dayRange(from, to);
    for (const day of await listLogDays(this.dir, GAPS_EXT, d0, d1)) {
      await scanLogFile(this.dir, GAPS_EXT, GAPS_MAGIC, day, (v, b) => {
        const k = gapKindName(readU32(v, b, 32));
        out[k] = (out[k] ?? 0) + 1;
      });
    }
    return out;
  }
}
