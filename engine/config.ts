/**
 * Engine configuration: environment variables (and a `.env` file in the working directory, loaded with
 * Node's own `process.loadEnvFile`), then command-line overrides, validated with zod at start. Every
 * problem is reported at once with the variable's name, as ENGINE_ERR_CONFIG.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { engineError } from './errors.ts';
import { deriveFrontMonth } from './symbols/contracts.ts';

const SYMBOL_RE = /^[A-Z0-9][A-Z0-9._-]{0,30}$/;

const multipliers = z.string().transform((s, ctx) => {
  const out: Record<string, number> = {};
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [sym, val] = part.split('=');
    const n = Number(val);
    if (!sym || !SYMBOL_RE.test(sym.toUpperCase()) || !Number.isFinite(n) || n <= 0) {
      ctx.addIssue({ code: 'custom', message: `"${part}" is not SYMBOL=positive-number` });
      return z.NEVER;
    }
    out[sym.toUpperCase()] = n;
  }
  return out;
});

const symbolList = z.string().transform((s, ctx) => {
  const list = s.split(',').map((p) => p.trim().toUpperCase()).filter(Boolean);
  for (const sym of list) {
    if (!SYMBOL_RE.test(sym)) { ctx.addIssue({ code: 'custom', message: `"${sym}" is not a symbol (letters, digits, . _ -)` }); return z.NEVER; }
  }
  if (list.length === 0) { ctx.addIssue({ code: 'custom', message: 'empty list' }); return z.NEVER; }
  return list;
});

const bool = z.enum(['1', '0', 'true', 'false', 'on', 'off', 'yes', 'no']).transform((v) => ['1', 'true', 'on', 'yes'].includes(v));

/** Variables read by `tickpipe start` (README lists them; `tickpipe start --help` too). */
export const ENV_SCHEMA = z.object({
  TICKPIPE_DATA_DIR: z.string().min(1).default('./data'),
  TICKPIPE_PORT: z.coerce.number().int().min(0).max(65535).default(8877),
  TICKPIPE_HOST: z.string().min(1).default('127.0.0.1'),
  TICKPIPE_SIERRA_DIR: z.string().min(1).optional(),
  TICKPIPE_DEPTH_DIR: z.string().min(1).optional(),
  TICKPIPE_SYMBOLS: symbolList.optional(),
  TICKPIPE_FILE_SUFFIX: z.string().regex(/^[A-Za-z0-9._-]{0,32}$/).default('_FUT_CME'),
  TICKPIPE_PRICE_MULTIPLIERS: multipliers.optional(),
  TICKPIPE_MERGE_BUNDLES: bool.default(false),
  TICKPIPE_POLL_MS: z.coerce.number().int().min(1).max(60_000).default(250),
  TICKPIPE_POLL_MIN_MS: z.coerce.number().min(0.1).max(60_000).default(1),
  TICKPIPE_DEMO: bool.optional(),
  TICKPIPE_DEMO_RATE: z.coerce.number().min(1).max(2_000_000).default(600),
  TICKPIPE_DEMO_HISTORY_MIN: z.coerce.number().min(0).max(24 * 60).default(10),
  TICKPIPE_RING_SLOTS: z.coerce.number().int().refine((n) => n >= 64 && n <= 1 << 24 && (n & (n - 1)) === 0, 'a power of two between 64 and 16777216').default(1 << 16),
  TICKPIPE_COMMIT_INTERVAL_MS: z.coerce.number().int().min(1).max(10_000).default(100),
  TICKPIPE_REORDER_WINDOW_MS: z.coerce.number().min(0).max(3_600_000).default(500),
  TICKPIPE_SPIKE_BAND: z.coerce.number().min(0).max(100).default(0.05),
  TICKPIPE_OFF_TICK: z.enum(['reject', 'flag']).default('reject'),
  TICKPIPE_TIME_GAP_SEC: z.coerce.number().min(0).max(7 * 86_400).default(300),
  TICKPIPE_STALE_AFTER_SEC: z.coerce.number().min(0).max(86_400).default(60),
  TICKPIPE_SESSION_CALENDAR: z.enum(['cme-globex', 'us-equity-rth', '24x7']).default('cme-globex'),
  TICKPIPE_QUARANTINE_FLAGGED: bool.default(true),
  TICKPIPE_HOT_CAPACITY: z.coerce.number().int().refine((n) => n >= 1024 && n <= 1 << 26 && (n & (n - 1)) === 0, 'a power of two between 1024 and 67108864').default(1 << 20),
  TICKPIPE_HOT_MAX_MB: z.coerce.number().int().min(16).max(1 << 20).default(2048),
  REDIS_URL: z.string().regex(/^rediss?:\/\/\S+$/, 'a redis:// or rediss:// URL').optional(),
  TICKPIPE_COMPACT: bool.default(true),
  TICKPIPE_RETENTION_DAYS: z.coerce.number().int().min(1).max(36_500).default(365),
  TICKPIPE_BACKGROUND_NICE: z.coerce.number().int().min(0).max(19).default(5),
});

export const ENV_HELP: Record<keyof z.infer<typeof ENV_SCHEMA>, string> = {
  TICKPIPE_DATA_DIR: 'data directory (checkpoints, demo files, later Parquet); default ./data',
  TICKPIPE_PORT: 'HTTP/WebSocket port; default 8877',
  TICKPIPE_HOST: 'address to listen on; default 127.0.0.1 (use 0.0.0.0 to serve the LAN)',
  TICKPIPE_SIERRA_DIR: "Sierra Chart's Data folder (e.g. /mnt/c/SierraChart/Data); unset: the demo market",
  TICKPIPE_DEPTH_DIR: 'market depth folder; default <TICKPIPE_SIERRA_DIR>/MarketDepthData',
  TICKPIPE_SYMBOLS: 'contracts to read, comma-separated (e.g. MNQZ25,NQZ25,MESZ25); default: front months of NQ, MNQ, MES',
  TICKPIPE_FILE_SUFFIX: 'file name suffix after the symbol; default _FUT_CME (MNQZ25_FUT_CME.scid)',
  TICKPIPE_PRICE_MULTIPLIERS: 'per-symbol price multipliers, e.g. ESZ25=0.01 for feeds that store prices ×100',
  TICKPIPE_MERGE_BUNDLES: 'merge unbundled sub-trades into one trade (1/0); default 0',
  TICKPIPE_POLL_MS: 'longest file polling interval in ms, reached after 50 ms without new data (doubling from TICKPIPE_POLL_MIN_MS); default 250',
  TICKPIPE_POLL_MIN_MS: 'file polling interval in ms while data is arriving (fractions allowed; raise it where stat is slow, e.g. /mnt/c under WSL2); default 1',
  TICKPIPE_DEMO: 'run the simulated market (1/0); default 1 when TICKPIPE_SIERRA_DIR is unset',
  TICKPIPE_DEMO_RATE: 'demo market trades per second over all symbols; default 600',
  TICKPIPE_DEMO_HISTORY_MIN: 'minutes of demo history written at start before the live part; default 10',
  TICKPIPE_RING_SLOTS: 'slots per ring (power of two); default 65536',
  TICKPIPE_COMMIT_INTERVAL_MS: 'journal group commit: fsync at least this often, ms; default 100',
  TICKPIPE_REORDER_WINDOW_MS: 'late ticks within this many ms of the newest (per source and symbol) are kept and flagged; older ones are quarantined; default 500',
  TICKPIPE_SPIKE_BAND: 'trades further than this fraction from the reference price are flagged as spikes (0 = off); default 0.05',
  TICKPIPE_OFF_TICK: 'trade prices off the tick grid: reject (quarantine) or flag; default reject',
  TICKPIPE_TIME_GAP_SEC: 'in-session silence of a symbol recorded as a time gap, seconds (0 = off); default 300',
  TICKPIPE_STALE_AFTER_SEC: 'no tick for this long while the session is open: the feed is stale, seconds (0 = off); default 60',
  TICKPIPE_SESSION_CALENDAR: 'session calendar for time gaps and staleness: cme-globex, us-equity-rth or 24x7; default cme-globex',
  TICKPIPE_QUARANTINE_FLAGGED: 'also quarantine kept-but-flagged ticks (outside quote, crossed, spike...) (1/0); default 1',
  TICKPIPE_HOT_CAPACITY: 'hot window entries per symbol (power of two); default 1048576',
  TICKPIPE_HOT_MAX_MB: 'bound on the hot window shared memory, MiB; default 2048',
  REDIS_URL: 'Redis for the stream/latest/pub-sub sink (redis://host:6379/0); unset: no Redis',
  TICKPIPE_COMPACT: 'compact closed journal hours to Parquet inside the engine (1/0); default 1 (0: the journal keeps them, e.g. for tests of the journal itself)',
  TICKPIPE_RETENTION_DAYS: 'Parquet kept this many days, older partitions purged (older queries answer 410); default 365',
  TICKPIPE_BACKGROUND_NICE: 'CPU nice value (0-19) of background threads (Redis sink, compactor, DuckDB) so ingest, validation and WebSocket fan-out win the cores; 0 = same priority; default 5 (Linux)',
};

export interface EngineConfig {
  dataDir: string;
  port: number;
  host: string;
  sierraDir: string | null;
  depthDir: string | null;
  symbols: string[];
  fileSuffix: string;
  priceMultipliers: Record<string, number>;
  mergeBundles: boolean;
  pollMs: number;
  /** polling interval while data arrives (≤ pollMs) */
  pollMinMs: number;
  demo: boolean;
  demoRate: number;
  demoHistoryMinutes: number;
  ringSlots: number;
  commitIntervalMs: number;
  reorderWindowMs: number;
  spikeBand: number;
  offTick: 'reject' | 'flag';
  timeGapSec: number;
  staleAfterSec: number;
  sessionCalendar: 'cme-globex' | 'us-equity-rth' | '24x7';
  quarantineFlagged: boolean;
  hotCapacity: number;
  hotMaxBytes: number;
  redisUrl: string | null;
  retentionDays: number;
  compact: boolean;
  /** Nice value of background threads (Redis sink, compactor); 0 = normal. */
  backgroundNice: number;
}

/** Roots of the demo market; the contracts are the front months at start (NQZ26 in November 2026). */
export const DEMO_ROOTS = ['NQ', 'MNQ', 'MES'];

export function demoSymbols(nowMicros = Date.now() * 1000): string[] {
  return DEMO_ROOTS.map((r) => deriveFrontMonth(r, nowMicros).symbol);
}

/** Load `.env` from `cwd` when present (existing environment variables win). */
export function loadDotEnv(cwd = process.cwd()): string | null {
  const p = resolve(cwd, '.env');
  if (!existsSync(p)) return null;
  try {
    process.loadEnvFile(p);
  } catch (err) {
    throw engineError('ENGINE_ERR_CONFIG', `cannot read ${p}: ${(err as Error).message}`, { file: p }, err);
  }
  return p;
}

/** Validate environment (plus overrides, e.g. from CLI flags) into an EngineConfig. */
export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<Record<keyof z.infer<typeof ENV_SCHEMA>, string>> = {}): EngineConfig {
  const input: Record<string, string | undefined> = {};
  for (const k of Object.keys(ENV_SCHEMA.shape)) {
    const v = overrides[k as keyof typeof overrides] ?? env[k];
    if (v !== undefined && v !== '') input[k] = v;
  }
  const r = ENV_SCHEMA.safeParse(input);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}${input[String(i.path[0])] !== undefined ? ` (got ${JSON.stringify(input[String(i.path[0])])})` : ''}`);
    throw engineError('ENGINE_ERR_CONFIG', `invalid configuration:\n  ${lines.join('\n  ')}`, { issues: lines.length });
  }
  const e = r.data;
  const sierraDir = e.TICKPIPE_SIERRA_DIR ? resolve(e.TICKPIPE_SIERRA_DIR) : null;
  const demo = e.TICKPIPE_DEMO ?? sierraDir === null;
  if (!demo && sierraDir === null) throw engineError('ENGINE_ERR_CONFIG', 'invalid configuration:\n  TICKPIPE_DEMO=0 needs TICKPIPE_SIERRA_DIR (there would be no source)');
  if (sierraDir !== null && !e.TICKPIPE_SYMBOLS) throw engineError('ENGINE_ERR_CONFIG', 'invalid configuration:\n  TICKPIPE_SIERRA_DIR needs TICKPIPE_SYMBOLS (which contracts to read)');
  return {
    dataDir: resolve(e.TICKPIPE_DATA_DIR),
    port: e.TICKPIPE_PORT,
    host: e.TICKPIPE_HOST,
    sierraDir,
    depthDir: e.TICKPIPE_DEPTH_DIR ? resolve(e.TICKPIPE_DEPTH_DIR) : sierraDir ? resolve(sierraDir, 'MarketDepthData') : null,
    symbols: e.TICKPIPE_SYMBOLS ?? demoSymbols(),
    fileSuffix: e.TICKPIPE_FILE_SUFFIX,
    priceMultipliers: e.TICKPIPE_PRICE_MULTIPLIERS ?? {},
    mergeBundles: e.TICKPIPE_MERGE_BUNDLES,
    pollMs: e.TICKPIPE_POLL_MS,
    pollMinMs: Math.min(e.TICKPIPE_POLL_MIN_MS, e.TICKPIPE_POLL_MS),
    demo,
    demoRate: e.TICKPIPE_DEMO_RATE,
    demoHistoryMinutes: e.TICKPIPE_DEMO_HISTORY_MIN,
    ringSlots: e.TICKPIPE_RING_SLOTS,
    commitIntervalMs: e.TICKPIPE_COMMIT_INTERVAL_MS,
    reorderWindowMs: e.TICKPIPE_REORDER_WINDOW_MS,
    spikeBand: e.TICKPIPE_SPIKE_BAND,
    offTick: e.TICKPIPE_OFF_TICK,
    timeGapSec: e.TICKPIPE_TIME_GAP_SEC,
    staleAfterSec: e.TICKPIPE_STALE_AFTER_SEC,
    sessionCalendar: e.TICKPIPE_SESSION_CALENDAR,
    quarantineFlagged: e.TICKPIPE_QUARANTINE_FLAGGED,
    hotCapacity: e.TICKPIPE_HOT_CAPACITY,
    hotMaxBytes: e.TICKPIPE_HOT_MAX_MB * 1024 * 1024,
    redisUrl: e.REDIS_URL ?? null,
    retentionDays: e.TICKPIPE_RETENTION_DAYS,
    compact: e.TICKPIPE_COMPACT,
    backgroundNice: e.TICKPIPE_BACKGROUND_NICE,
  };
}
