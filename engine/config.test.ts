import { describe, expect, test } from 'vitest';
import { isEngineError } from './errors.ts';
import { ENV_HELP, ENV_SCHEMA, demoSymbols, loadConfig } from './config.ts';

function configError(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(isEngineError(err, 'ENGINE_ERR_CONFIG')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected a configuration error');
}

describe('engine config', () => {
  test('embedded defaults: demo market on 8877 under ./data', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8877);
    expect(c.demo).toBe(true);
    expect(c.symbols).toEqual(demoSymbols());
    expect(demoSymbols(Date.UTC(2025, 10, 1) * 1000)).toEqual(['NQZ25', 'MNQZ25', 'MESZ25']);
    expect(demoSymbols(Date.UTC(2025, 11, 15) * 1000)).toEqual(['NQH26', 'MNQH26', 'MESH26']);
    expect(c.dataDir.endsWith('/data')).toBe(true);
    expect(c.host).toBe('127.0.0.1');
    expect(c.pollMs).toBe(250);
    expect(c.pollMinMs).toBe(1);
  });

  test('file polling: the quick interval never exceeds the longest; fractions allowed', () => {
    expect(loadConfig({ TICKPIPE_POLL_MS: '5', TICKPIPE_POLL_MIN_MS: '0.5' })).toMatchObject({ pollMs: 5, pollMinMs: 0.5 });
    expect(loadConfig({ TICKPIPE_POLL_MS: '2', TICKPIPE_POLL_MIN_MS: '10' })).toMatchObject({ pollMs: 2, pollMinMs: 2 });
  });

  test('values from the environment, overrides win', () => {
    const c = loadConfig({ TICKPIPE_PORT: '9000', TICKPIPE_SIERRA_DIR: '/mnt/c/SierraChart/Data', TICKPIPE_SYMBOLS: 'mnqz25, esz25', TICKPIPE_PRICE_MULTIPLIERS: 'ESZ25=0.01' }, { TICKPIPE_PORT: '9100' });
    expect(c.port).toBe(9100);
    expect(c.demo).toBe(false);
    expect(c.symbols).toEqual(['MNQZ25', 'ESZ25']);
    expect(c.depthDir).toBe('/mnt/c/SierraChart/Data/MarketDepthData');
    expect(c.priceMultipliers).toEqual({ ESZ25: 0.01 });
  });

  test.each([
    [{ TICKPIPE_PORT: 'http' }, 'TICKPIPE_PORT'],
    [{ TICKPIPE_PORT: '70000' }, 'TICKPIPE_PORT'],
    [{ TICKPIPE_PORT: '-1' }, 'TICKPIPE_PORT'],
    [{ TICKPIPE_POLL_MS: '0' }, 'TICKPIPE_POLL_MS'],
    [{ TICKPIPE_POLL_MIN_MS: '0' }, 'TICKPIPE_POLL_MIN_MS'],
    [{ TICKPIPE_POLL_MIN_MS: 'fast' }, 'TICKPIPE_POLL_MIN_MS'],
    [{ TICKPIPE_RING_SLOTS: '1000' }, 'TICKPIPE_RING_SLOTS'],
    [{ TICKPIPE_DEMO: 'maybe' }, 'TICKPIPE_DEMO'],
    [{ TICKPIPE_PRICE_MULTIPLIERS: 'ES=abc' }, 'TICKPIPE_PRICE_MULTIPLIERS'],
    [{ TICKPIPE_PRICE_MULTIPLIERS: 'ES=-1' }, 'TICKPIPE_PRICE_MULTIPLIERS'],
    [{ TICKPIPE_SYMBOLS: 'MNQ Z25' }, 'TICKPIPE_SYMBOLS'],
    [{ TICKPIPE_SYMBOLS: ' , ' }, 'TICKPIPE_SYMBOLS'],
    [{ TICKPIPE_DEMO_RATE: '0' }, 'TICKPIPE_DEMO_RATE'],
    [{ TICKPIPE_DEMO: '0' }, 'TICKPIPE_SIERRA_DIR'],
    [{ TICKPIPE_SIERRA_DIR: '/x' }, 'TICKPIPE_SYMBOLS'],
    [{ TICKPIPE_COMMIT_INTERVAL_MS: '0' }, 'TICKPIPE_COMMIT_INTERVAL_MS'],
    [{ TICKPIPE_REORDER_WINDOW_MS: '-5' }, 'TICKPIPE_REORDER_WINDOW_MS'],
    [{ TICKPIPE_SPIKE_BAND: 'wide' }, 'TICKPIPE_SPIKE_BAND'],
    [{ TICKPIPE_OFF_TICK: 'ignore' }, 'TICKPIPE_OFF_TICK'],
    [{ TICKPIPE_TIME_GAP_SEC: '-1' }, 'TICKPIPE_TIME_GAP_SEC'],
    [{ TICKPIPE_STALE_AFTER_SEC: 'x' }, 'TICKPIPE_STALE_AFTER_SEC'],
    [{ TICKPIPE_SESSION_CALENDAR: 'nyse' }, 'TICKPIPE_SESSION_CALENDAR'],
    [{ TICKPIPE_QUARANTINE_FLAGGED: 'sometimes' }, 'TICKPIPE_QUARANTINE_FLAGGED'],
    [{ TICKPIPE_HOT_CAPACITY: '1000' }, 'TICKPIPE_HOT_CAPACITY'],
    [{ TICKPIPE_HOT_MAX_MB: '1' }, 'TICKPIPE_HOT_MAX_MB'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ TICKPIPE_BACKGROUND_NICE: '20' }, 'TICKPIPE_BACKGROUND_NICE'],
    [{ TICKPIPE_BACKGROUND_NICE: '-1' }, 'TICKPIPE_BACKGROUND_NICE'],
    [{ TICKPIPE_BACKGROUND_NICE: 'low' }, 'TICKPIPE_BACKGROUND_NICE'],
  ])('bad value %o is a coded error naming %s', (env, name) => {
    expect(configError(env)).toContain(name);
  });

  test('validator, journal, hot window and Redis knobs: defaults and values', () => {
    const d = loadConfig({});
    expect(d).toMatchObject({
      commitIntervalMs: 100, reorderWindowMs: 500, spikeBand: 0.05, offTick: 'reject', timeGapSec: 300, staleAfterSec: 60,
      sessionCalendar: 'cme-globex', quarantineFlagged: true, hotCapacity: 1 << 20, hotMaxBytes: 2048 * 1024 * 1024, redisUrl: null, backgroundNice: 5,
    });
    const c = loadConfig({
      TICKPIPE_COMMIT_INTERVAL_MS: '50', TICKPIPE_REORDER_WINDOW_MS: '0', TICKPIPE_SPIKE_BAND: '0.1', TICKPIPE_OFF_TICK: 'flag', TICKPIPE_TIME_GAP_SEC: '0',
      TICKPIPE_STALE_AFTER_SEC: '30', TICKPIPE_SESSION_CALENDAR: '24x7', TICKPIPE_QUARANTINE_FLAGGED: '0', TICKPIPE_HOT_CAPACITY: '65536',
      TICKPIPE_HOT_MAX_MB: '64', REDIS_URL: 'redis://127.0.0.1:6379/0', TICKPIPE_BACKGROUND_NICE: '0',
    });
    expect(c).toMatchObject({
      commitIntervalMs: 50, reorderWindowMs: 0, spikeBand: 0.1, offTick: 'flag', timeGapSec: 0, staleAfterSec: 30, sessionCalendar: '24x7',
      quarantineFlagged: false, hotCapacity: 65536, hotMaxBytes: 64 * 1024 * 1024, redisUrl: 'redis://127.0.0.1:6379/0', backgroundNice: 0,
    });
  });

  test('several problems are reported together', () => {
    const msg = configError({ TICKPIPE_PORT: 'x', TICKPIPE_POLL_MS: 'y' });
    expect(msg).toContain('TICKPIPE_PORT');
    expect(msg).toContain('TICKPIPE_POLL_MS');
  });

  test('every variable has help text', () => {
    expect(Object.keys(ENV_HELP).sort()).toEqual(Object.keys(ENV_SCHEMA.shape).sort());
  });
});
