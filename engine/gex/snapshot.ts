/**
 * GEX snapshots (GEXBot classic shape, ../shared/reference/protocols.md §3.2) parsed into one normalized
 * form that the store keeps, the REST API answers and the WebSocket `gex` channel sends.
 *
 * Input (tolerant: extra fields kept in `extra`, aliases accepted, numbers given as strings accepted):
 *   { "timestamp": 1777492800 (epoch seconds; ms/µs/ISO accepted), "ticker": "NQ_NDX", "min_dte": 0, "sec_min_dte": 1,
 *     "spot": 21138.5, "zero_gamma": 21112.9 (alias zeroGamma), "major_pos_vol": 21135 (alias mpos_vol),
 *     "major_pos_oi", "major_neg_vol" (alias mneg_vol), "major_neg_oi", "sum_gex_vol" (alias net_gex_vol, net_gex),
 *     "sum_gex_oi" (alias net_gex_oi), "delta_risk_reversal",
 *     "strikes": [[strike, gex_by_volume, gex_by_oi, [priors...]], ...], "max_priors": [[strike, change], ...] }
 * A history file is a JSON array of these, JSON lines, or one object.
 *
 * A level of 0 where GEXBot means "undefined" (zero_gamma 0) is kept as given (0), never guessed away.
 */
import { z } from 'zod';
import { parseTimeToMicros } from '../clock/iso.ts';
import { engineError } from '../errors.ts';
import type { WireGexSnapshot } from '../../schemas/wire.ts';
import { normalizeTicker } from './tickers.ts';

export interface GexSnapshot {
  ticker: string;
  /** Unix µs of the snapshot (GEXBot `timestamp`). */
  tsMicros: number;
  spot: number | null;
  zeroGamma: number | null;
  majorPosVol: number | null;
  majorPosOi: number | null;
  majorNegVol: number | null;
  majorNegOi: number | null;
  sumGexVol: number | null;
  sumGexOi: number | null;
  deltaRiskReversal: number | null;
  minDte: number | null;
  secMinDte: number | null;
  /** [strike, gex by volume, gex by open interest] per strike, as given (ascending strike). */
  strikes: [number, number, number][];
  maxPriors: [number, number][];
  /** Category (`gex_zero`, `gex_one`, `gex_full`) when known. */
  category: string | null;
  /** Provider fields not modelled above (priors of each strike are dropped; they are undocumented). */
  extra: Record<string, unknown>;
}

const num = z.union([z.number(), z.string().regex(/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/).transform(Number)]).refine((n) => Number.isFinite(n), 'must be a finite number');
const optNum = num.nullish();

const strikeRow = z.array(z.unknown()).min(2).transform((row, ctx) => {
  const s = Number(row[0]);
  const v = Number(row[1]);
  const o = row.length > 2 && typeof row[2] !== 'object' ? Number(row[2]) : NaN;
  if (!Number.isFinite(s) || !Number.isFinite(v)) {
    ctx.addIssue({ code: 'custom', message: 'a strike row needs [strike, gex_by_volume, ...] numbers' });
    return z.NEVER;
  }
  return [s, v, Number.isFinite(o) ? o : 0] as [number, number, number];
});

const snapshotSchema = z.object({
  timestamp: z.union([z.number(), z.string()]),
  ticker: z.string().min(1).max(20),
  spot: optNum,
  zero_gamma: optNum, zeroGamma: optNum,
  major_pos_vol: optNum, mpos_vol: optNum,
  major_pos_oi: optNum, mpos_oi: optNum,
  major_neg_vol: optNum, mneg_vol: optNum,
  major_neg_oi: optNum, mneg_oi: optNum,
  sum_gex_vol: optNum, net_gex_vol: optNum, net_gex: optNum,
  sum_gex_oi: optNum, net_gex_oi: optNum,
  delta_risk_reversal: optNum,
  min_dte: optNum, sec_min_dte: optNum,
  strikes: z.array(strikeRow).max(20_000).optional(),
  max_priors: z.array(z.array(z.unknown())).max(100).optional(),
}).passthrough();

const KNOWN = new Set(Object.keys(snapshotSchema.shape));

function pick(...xs: (number | null | undefined)[]): number | null {
  // first non-zero value wins; a 0 is kept when every alias is 0 or missing (upstream: legacy names carry 0, aliases the value)
  let zero = false;
  for (const x of xs) {
    if (x === null || x === undefined) continue;
    if (x !== 0) return x;
    zero = true;
  }
  return zero ? 0 : null;
}

/** Parse one snapshot object. ENGINE_ERR_SCHEMA naming the field when it is not a GEX snapshot. */
export function parseGexSnapshot(raw: unknown, opts: { ticker?: string | null; category?: string | null } = {}): GexSnapshot {
  const r = snapshotSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw engineError('ENGINE_ERR_SCHEMA', `GEX snapshot: ${i.path.join('.') || '(object)'}: ${i.message}`, { field: i.path.join('.') });
  }
  const d = r.data;
  const ticker = normalizeTicker(opts.ticker ?? d.ticker) ?? normalizeTicker(d.ticker);
  if (ticker === null) throw engineError('ENGINE_ERR_SCHEMA', `GEX snapshot: ticker ${JSON.stringify(d.ticker)} is not a ticker`, { field: 'ticker' });
  let tsMicros: number;
  try {
    tsMicros = parseTimeToMicros(d.timestamp);
  } catch (e) {
    throw engineError('ENGINE_ERR_SCHEMA', `GEX snapshot: timestamp ${JSON.stringify(d.timestamp)} is not a time`, { field: 'timestamp' }, e);
  }
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) if (!KNOWN.has(k)) extra[k] = v;
  const maxPriors: [number, number][] = [];
  for (const p of d.max_priors ?? []) {
    const s = Number(p[0]), v = Number(p[1]);
    if (Number.isFinite(s) && Number.isFinite(v)) maxPriors.push([s, v]);
  }
  return {
    ticker, tsMicros,
    spot: d.spot ?? null,
    zeroGamma: pick(d.zero_gamma, d.zeroGamma),
    majorPosVol: pick(d.major_pos_vol, d.mpos_vol),
    majorPosOi: pick(d.major_pos_oi, d.mpos_oi),
    majorNegVol: pick(d.major_neg_vol, d.mneg_vol),
    majorNegOi: pick(d.major_neg_oi, d.mneg_oi),
    sumGexVol: pick(d.sum_gex_vol, d.net_gex_vol, d.net_gex),
    sumGexOi: pick(d.sum_gex_oi, d.net_gex_oi),
    deltaRiskReversal: d.delta_risk_reversal ?? null,
    minDte: d.min_dte ?? null,
    secMinDte: d.sec_min_dte ?? null,
    strikes: d.strikes ?? [],
    maxPriors,
    category: opts.category ?? null,
    extra,
  };
}

export interface ParsedGexFile {
  snapshots: GexSnapshot[];
  /** Entries that were not snapshots (kept out, counted). */
  rejected: number;
  firstError: string | null;
}

/**
 * Parse the text of a history file: a JSON array of snapshots, one snapshot object, or JSON lines.
 * ENGINE_ERR_SCHEMA when the text is neither JSON nor JSON lines, or when no entry is a snapshot.
 */
export function parseGexFile(text: string, opts: { ticker?: string | null; category?: string | null } = {}): ParsedGexFile {
  let items: unknown[];
  const t = text.trimStart();
  try {
    const v: unknown = JSON.parse(t);
    items = Array.isArray(v) ? v : [v];
  } catch (e) {
    // JSON lines?
    const lines = t.split('\n').filter((l) => l.trim() !== '');
    try {
      items = lines.map((l) => JSON.parse(l) as unknown);
    } catch {
      throw engineError('ENGINE_ERR_SCHEMA', `GEX file is not JSON or JSON lines: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const snapshots: GexSnapshot[] = [];
  let rejected = 0;
  let firstError: string | null = null;
  for (const it of items) {
    try {
      snapshots.push(parseGexSnapshot(it, opts));
    } catch (e) {
      rejected++;
      firstError ??= e instanceof Error ? e.message : String(e);
    }
  }
  if (snapshots.length === 0) {
    throw engineError('ENGINE_ERR_SCHEMA', `GEX file holds no snapshot (${items.length} entries${firstError ? `; first problem: ${firstError}` : ''})`);
  }
  snapshots.sort((a, b) => a.tsMicros - b.tsMicros);
  return { snapshots, rejected, firstError };
}

/** The wire form for WebSocket `gex` frames (strike gamma: net = by volume; call/put split unknown: NaN). */
export function toWireGex(g: GexSnapshot): WireGexSnapshot {
  return {
    ticker: g.ticker, tsMicros: g.tsMicros, spot: g.spot, zeroGamma: g.zeroGamma, callWall: g.majorPosVol, putWall: g.majorNegVol,
    strikes: g.strikes.map(([strike, vol]) => ({ strike, callGamma: NaN, putGamma: NaN, netGamma: vol })),
    rawJson: JSON.stringify({ majorPosOi: g.majorPosOi, majorNegOi: g.majorNegOi, sumGexVol: g.sumGexVol, sumGexOi: g.sumGexOi, category: g.category }),
  };
}
