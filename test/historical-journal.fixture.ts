/**
 * A real front end over real stored data in every state an hour can be in (for test/historical-journal*.test.ts):
 * journal files written by the project's own `Journal`, Parquet written by the compactor's own pool task
 * (workers/compactor/tasks.ts `compact-hour`, the code CompactionService runs), a hot window filled like the
 * validator fills it (TRADE records only), behind `createApi` on 127.0.0.1:0.
 *
 * All UTC, "now" = 2025-11-11T15:30Z. Symbols MNQZ25 (id 1), NQZ25 (id 2), MESZ25 (id 3). Per hour:
 * - 10:00  journal, CORRUPT: three blocks, the middle one's payload damaged (a bad block followed by a valid
 *          one); MNQ and MES ticks.
 * - 12:00  Parquet only: journaled, compacted, journal deleted (`.compacted` marker), as in production.
 * - 13:00  mid-compaction: 2/3 of the hour journaled and compacted to Parquet (tick and bar files), then the
 *          last third journaled (late records: the delete would be refused): Parquet ⊂ journal, journal is truth.
 * - 14:00  journal only (compaction never ran).
 * - 15:00  journal up to 15:20 (the open hour).
 * - hot window: MNQ trades from 14:40 to 15:20 (so the cut is inside the journal-only hour 14:00);
 *   NQ has nothing in the hot window (its cut is the end of the range: the journal answers up to 15:20).
 * Other record kinds (GAP, DEPTH) and the other symbols share the journal files.
 *
 * `expected(sym)`: every tick the answer must hold for that symbol, in order: all TRADE and QUOTE rows before
 * the hot-window cut, then the hot window's trades (it holds trades only, engine/hot).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyStore } from '../api/auth/keystore.ts';
import type { ApiDeps } from '../api/deps.ts';
import { createApi, type Api, type ApiServer } from '../api/server.ts';
import { HotWindow } from '../engine/hot/hot-window.ts';
import { Journal } from '../engine/journal/journal.ts';
import { hourFilePath } from '../engine/journal/format.ts';
import { LatestTable } from '../engine/latest/latest-table.ts';
import type { SlotViews } from '../engine/ring/ring.ts';
import { SymbolRegistry } from '../engine/symbols/registry.ts';
import { RecordKind, writeDepth, writeGap, writeTrade } from '../schemas/records.ts';
import handle, { type CompactHourResult } from '../workers/compactor/tasks.ts';
import { makeTape } from '../workers/compactor/test-ticks.ts';
import type { TickColumns } from '../workers/compactor/figures.ts';
import { slotViewsOf } from '../engine/journal/format.ts';
import type { Row } from './historical-helpers.ts';

export const NOW_MS = Date.parse('2025-11-11T15:30:00Z');
export const HOUR = 3_600_000_000;
export const H10 = Date.parse('2025-11-11T10:00:00Z') * 1000;
export const H11 = H10 + HOUR;
export const H12 = H11 + HOUR;
export const H13 = H12 + HOUR;
export const H14 = H13 + HOUR;
export const H15 = H14 + HOUR;
export const HOT_FROM = H14 + 40 * 60_000_000;
export const DATA_END = H15 + 20 * 60_000_000;
export const SOURCE_NAMES = ['', 'sierra', 'sierra-depth'];
export const IDS = { MNQZ25: 1, NQZ25: 2, MESZ25: 3 } as const;

export interface JournalFixture {
  dir: string;
  base: string;
  api: Api;
  server: ApiServer;
  hot: HotWindow;
  key: string;
  /** The hot-window cut of MNQ (its first held trade). */
  mnqCut: number;
  expected(symbol: 'MNQZ25' | 'NQZ25'): Row[];
  /** MNQ rows journaled in the corrupt hour's first (intact) block. */
  corruptHourReadable: Row[];
  compactions: Compacted[];
  close(): Promise<void>;
}

interface Tick { sym: number; ts: number; price: number; bid: number; ask: number; size: number; flags: number; seq: number }

const nn = (x: number): number | null => (Number.isNaN(x) ? null : x);

function ticksOf(sym: number, c: TickColumns, n: number, from = -Infinity, to = Infinity): Tick[] {
  const out: Tick[] = [];
  for (let i = 0; i < n; i++) {
    const ts = c.tsMicros[i] as number;
    if (ts < from || ts >= to) continue;
    out.push({ sym, ts, price: c.price[i] as number, bid: c.bid[i] as number, ask: c.ask[i] as number, size: c.size[i] as number, flags: c.flags[i] as number, seq: c.seq[i] as number });
  }
  return out;
}

export function rowOf(t: Tick): Row {
  return {
    ts_us: t.ts, price: nn(t.price), size: t.size, bid: nn(t.bid), ask: nn(t.ask),
    side: (t.flags & 3) === 1 ? 'B' : (t.flags & 3) === 2 ? 'S' : '', source: 'sierra', seq: t.seq, flags: t.flags,
  };
}

/** Merge by ts (stable: a before b on equal ts). */
function merge(...lists: Tick[][]): Tick[] {
  return lists.flat().map((t, i) => ({ t, i })).sort((x, y) => (x.t.ts - y.t.ts) || (x.i - y.i)).map((x) => x.t);
}

/** Journal the ticks (and, every 500th tick, a GAP and a DEPTH record of the same symbol: not ticks). */
function journal(j: Journal, v: SlotViews, ticks: Tick[]): void {
  let k = 0;
  for (const t of ticks) {
    writeTrade(v, 0, Number.isNaN(t.price) ? RecordKind.QUOTE : RecordKind.TRADE, 1, t.sym, t.seq, t.ts, t.price, t.bid, t.ask, t.size, t.flags, 3, 4, t.seq, 1);
    if (j.append(v, 0) <= 0) throw new Error('journal refused a tick');
    if (++k % 500 === 0) {
      writeGap(v, 0, 1, t.sym, 0, t.ts, t.ts + 1, 1, 1, 2, 0);
      if (j.append(v, 0) <= 0) throw new Error('journal refused a gap');
      writeDepth(v, 0, 2, t.sym, 0, t.ts, 2, 0, 1, t.bid, 5, 0);
      if (j.append(v, 0) <= 0) throw new Error('journal refused a depth record');
    }
  }
}

export type Compacted = Extract<CompactHourResult, { kind: 'compacted' }>;

async function compact(dir: string, hour: number): Promise<Compacted> {
  const r = await handle({
    kind: 'compact-hour', dataDir: dir, journalPath: hourFilePath(join(dir, 'journal'), hour), hourStartMicros: hour,
    symbolNames: { 1: 'MNQZ25', 2: 'NQZ25', 3: 'MESZ25' }, sourceNames: { 1: 'sierra', 2: 'sierra-depth' },
  });
  if (r.kind !== 'compacted') throw new Error(`compaction of ${new Date(hour / 1000).toISOString()}: ${JSON.stringify(r)}`);
  return r;
}

export async function startJournalFixture(n = 3000): Promise<JournalFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'tickpipe-histj-'));
  const registry = SymbolRegistry.create({ capacity: 64 });
  if (registry.register('MNQZ25') !== IDS.MNQZ25 || registry.register('NQZ25') !== IDS.NQZ25 || registry.register('MESZ25') !== IDS.MESZ25) throw new Error('ids');
  const tape = (h: number, seed: number): TickColumns => makeTape(n, h, seed);
  const m = { 10: tape(H10, 10), 12: tape(H12, 12), 13: tape(H13, 13), 14: tape(H14, 14), 15: tape(H15, 15) };
  const q = { 12: tape(H12, 112), 13: tape(H13, 113), 14: tape(H14, 114), 15: tape(H15, 115) };
  const es10 = tape(H10, 310);
  const v = slotViewsOf(new ArrayBuffer(64));
  const j = Journal.open({ dataDir: dir, commitIntervalMs: 0 });
  const compactions: Compacted[] = [];

  // 10:00, three commits (three blocks); MNQ+MES
  const h10 = merge(ticksOf(1, m[10], n), ticksOf(3, es10, n));
  const third = Math.floor(h10.length / 3);
  const corruptHourReadable = h10.slice(0, third).filter((t) => t.sym === 1).map(rowOf);
  journal(j, v, h10.slice(0, third)); j.flushSync();
  journal(j, v, h10.slice(third, 2 * third)); j.flushSync();
  journal(j, v, h10.slice(2 * third)); j.flushSync();

  // 12:00 compacted and deleted; 13:00 two thirds compacted
  journal(j, v, merge(ticksOf(1, m[12], n), ticksOf(2, q[12], n)));
  const cut13 = H13 + 40 * 60_000_000;
  journal(j, v, merge(ticksOf(1, m[13], n, -Infinity, cut13), ticksOf(2, q[13], n, -Infinity, cut13)));
  j.flushSync();
  const c12 = await compact(dir, H12);
  compactions.push(c12);
  await j.deleteHour(H12, { expectedRecords: c12.records });
  compactions.push(await compact(dir, H13));
  // late records for 13:00 after its compaction, then 14:00 and 15:00 (to 15:20)
  journal(j, v, merge(ticksOf(1, m[13], n, cut13), ticksOf(2, q[13], n, cut13)));
  journal(j, v, merge(ticksOf(1, m[14], n), ticksOf(2, q[14], n), ticksOf(1, m[15], n, -Infinity, DATA_END), ticksOf(2, q[15], n, -Infinity, DATA_END)));
  await j.close();

  // damage the payload of the 10:00 file's second block
  const f10 = hourFilePath(join(dir, 'journal'), H10);
  const bytes = readFileSync(f10);
  const block1Records = bytes.readUInt32LE(32 + 4);
  const block2Payload = 32 + 16 + block1Records * 64 + 16;
  bytes[block2Payload + 100] = (bytes[block2Payload + 100] as number) ^ 0xff;
  writeFileSync(f10, bytes);

  // hot window: MNQ trades 14:40..15:20, as the validator appends them (TRADE only)
  const hot = HotWindow.create({ symbols: 64, capacityPerSymbol: 1 << 15, retainMicros: HOUR });
  const hotTicks = [...ticksOf(1, m[14], n, HOT_FROM), ...ticksOf(1, m[15], n, -Infinity, DATA_END)].filter((t) => !Number.isNaN(t.price));
  for (const t of hotTicks) if (!hot.append(1, t.ts, t.price, t.bid, t.ask, t.size, t.flags, t.seq, 1)) throw new Error('hot append refused');
  const mnqCut = hot.heldFromMicros(1);
  if (mnqCut !== hotTicks[0]?.ts) throw new Error(`unexpected heldFrom ${mnqCut}`);

  const keystore = KeyStore.open(dir);
  const key = keystore.createSync({ name: 'hist', scopes: ['historical'] }).key;
  const deps: ApiDeps = {
    registry, latest: LatestTable.create(64), hot, dataDir: dir, sourceNames: SOURCE_NAMES,
    book: () => null, gaps: () => [], quarantine: () => [], status: () => ({}), ready: () => true,
    auth: keystore, retentionDays: 365, now: () => NOW_MS,
  };
  const api = await createApi(deps, { historyFile: null });
  const server = await api.listen('127.0.0.1', 0);

  const all = {
    MNQZ25: [...ticksOf(1, m[12], n), ...ticksOf(1, m[13], n), ...ticksOf(1, m[14], n), ...ticksOf(1, m[15], n, -Infinity, DATA_END)],
    NQZ25: [...ticksOf(2, q[12], n), ...ticksOf(2, q[13], n), ...ticksOf(2, q[14], n), ...ticksOf(2, q[15], n, -Infinity, DATA_END)],
  };
  const expected = (symbol: 'MNQZ25' | 'NQZ25'): Row[] => {
    const cut = symbol === 'MNQZ25' ? mnqCut : Infinity;
    return all[symbol].filter((t) => t.ts < cut || !Number.isNaN(t.price)).map(rowOf);
  };
  return {
    dir, base: `http://127.0.0.1:${server.port}`, api, server, hot, key, mnqCut, expected, corruptHourReadable, compactions,
    async close() {
      await api.close();
      keystore.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
