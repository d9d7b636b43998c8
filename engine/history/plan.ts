/**
 * Where the ticks of [from, to) of one symbol are, older than the hot window: hour by hour, the journal
 * when the hour's journal is still the truth (listJournalHours: `.tpj` present, no `.compacted` marker),
 * else Parquet. An hour being compacted right now (its Parquet written, its journal not yet deleted) is
 * therefore answered from the journal only, and an hour whose journal is deleted between the listing and
 * the read (`missing`) from Parquet only: every tick once, whatever the compactor does meanwhile (it
 * deletes a journal only after the Parquet is verified and in place, DESIGN.md §2).
 *
 * Shared by the REST historical route (api/rest) and the WebSocket replay (api/ws/parquet-history.ts).
 */
import { HOUR_MICROS } from '../journal/format.ts';
import { listJournalHours, type JournalReader } from './journal-reader.ts';
import type { JournalHourRef, JournalTicks } from './journal-ticks.ts';
import { GrowableTickColumns } from './tick-columns.ts';

export type Range = readonly [number, number];

/** A part of [from, to) the answer cannot hold, with the reason (for the caller's `unavailable`). */
export interface HistoryFault {
  fromMicros: number;
  toMicros: number;
  reason: string;
}

export interface JournalPart {
  /** Rows from the journal, in (ts, seq) order (length 0 when none). */
  ticks: JournalTicks;
  /** Hour starts answered from the journal: Parquet rows of these hours must be ignored. */
  hours: Set<number>;
  /** Hours the journal could not be read whole (their readable rows are in `ticks`). */
  faults: HistoryFault[];
  /** More rows than `maxRows`: nothing else in this part is meaningful. */
  tooMany: boolean;
}

const EMPTY: JournalTicks = new GrowableTickColumns(0).toPlain();

export interface JournalPartOptions {
  reader: JournalReader;
  journalDir: string;
  symbolId: number;
  fromMicros: number;
  toMicros: number;
  tradesOnly: boolean;
  maxRows: number;
  /** Journal hours already listed (default: listed here). */
  hours?: JournalHourRef[];
}

/** Read the journal hours of [from, to) for one symbol (off-thread, see journal-reader.ts). */
export async function readJournalPart(o: JournalPartOptions): Promise<JournalPart> {
  const refs = o.hours ?? await listJournalHours(o.journalDir, o.fromMicros, o.toMicros);
  if (refs.length === 0 || !(o.toMicros > o.fromMicros) || o.symbolId <= 0) return { ticks: EMPTY, hours: new Set(), faults: [], tooMany: false };
  const r = await o.reader.read({ hours: refs, symbolId: o.symbolId, fromMicros: o.fromMicros, toMicros: o.toMicros, tradesOnly: o.tradesOnly, maxRows: o.maxRows });
  const hours = new Set<number>();
  const faults: HistoryFault[] = [];
  for (const h of r.hours) {
    if (h.state === 'missing') continue; // compacted and deleted meanwhile: Parquet has it
    hours.add(h.hourStartMicros);
    if (h.state === 'corrupt') {
      faults.push({
        fromMicros: Math.max(o.fromMicros, h.hourStartMicros), toMicros: Math.min(o.toMicros, h.hourStartMicros + HOUR_MICROS),
        reason: `journal hour not readable whole (${h.code}: ${h.message}); ${h.rows} ticks read before the fault are included, the rest of the hour is missing`,
      });
    }
  }
  return { ticks: r, hours, faults, tooMany: r.tooMany };
}

/** [from, to) minus the given whole hours, as ordered, merged ranges. */
export function rangesWithout(fromMicros: number, toMicros: number, hours: ReadonlySet<number>): Range[] {
  if (!(toMicros > fromMicros)) return [];
  if (hours.size === 0) return [[fromMicros, toMicros]];
  const out: [number, number][] = [];
  let a = fromMicros;
  for (const h of [...hours].sort((x, y) => x - y)) {
    const hs = Math.max(fromMicros, h);
    const he = Math.min(toMicros, h + HOUR_MICROS);
    if (!(he > hs)) continue;
    if (hs > a) out.push([a, hs]);
    a = Math.max(a, he);
  }
  if (toMicros > a) out.push([a, toMicros]);
  return out;
}

/** The parts of `ranges` inside [a, b). */
export function clipRanges(ranges: readonly Range[], a: number, b: number): Range[] {
  const out: Range[] = [];
  for (const [x, y] of ranges) {
    const lo = Math.max(x, a);
    const hi = Math.min(y, b);
    if (hi > lo) out.push([lo, hi]);
  }
  return out;
}

/** `ranges` minus `cut` (both ordered and disjoint). */
export function subtractRanges(ranges: readonly Range[], cut: readonly Range[]): Range[] {
  let cur: Range[] = [...ranges];
  for (const [c0, c1] of cut) {
    const next: Range[] = [];
    for (const [x, y] of cur) {
      if (c1 <= x || c0 >= y) { next.push([x, y]); continue; }
      if (c0 > x) next.push([x, c0]);
      if (c1 < y) next.push([c1, y]);
    }
    cur = next;
  }
  return cur;
}
