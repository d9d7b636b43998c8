/**
 * Concurrent registration from two real worker threads and the main thread at once, with overlapping
 * symbol sets in different orders: no duplicates, one id per symbol, the same ids everywhere.
 */
import { afterEach, expect, test } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { spawnWorker, waitForMessage } from '../worker-host.ts';
import { MONTH_CODES } from './contracts.ts';
import { SymbolRegistry, type SymbolInput } from './registry.ts';
import { GO_I32, type RegisterData, type RegisterDone } from './fixtures/register-protocol.ts';

const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

function universe(): SymbolInput[] {
  const out: SymbolInput[] = [];
  for (const root of ['MNQ', 'NQ', 'MES', 'ES']) {
    for (let year = 2025; year <= 2039; year++) {
      for (const m of [3, 6, 9, 12]) out.push({ symbol: `${root}${MONTH_CODES[m - 1]}${String(year % 100).padStart(2, '0')}` });
    }
  }
  for (let i = 0; i < 360; i++) {
    out.push({ symbol: `EQ${String(i).padStart(4, '0')}`, kind: 'equity', exchange: 'ARCA', tickSize: 0.01, sessionCalendar: 'us-equity-rth', priceMultiplier: i % 7 === 0 ? 0.01 : 1 });
  }
  return out; // 240 futures + 360 equities
}

function shuffled<T>(xs: T[], seed: number): T[] {
  const a = xs.slice();
  let s = seed >>> 0;
  for (let i = a.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

test('two workers and the main thread register overlapping symbols concurrently: no duplicates, ids consistent everywhere', async ({ annotate }) => {
  const all = universe();
  const registry = SymbolRegistry.create({ capacity: 4096 });
  const start = new SharedArrayBuffer(4);
  const go = new Int32Array(start);
  const setA = shuffled(all.slice(0, 400), 1); // A ∩ B = 200..399
  const setB = shuffled(all.slice(200, 600), 2);
  const setMain = shuffled(all.slice(100, 500), 3); // overlaps both

  for (const inputs of [setA, setB]) {
    const data: RegisterData = { registry: registry.buffer, start, inputs };
    const w = spawnWorker(new URL('./fixtures/register.worker.ts', import.meta.url), data, { name: 'registrant' });
    workers.push(w);
  }
  await Promise.all(workers.map((w) => waitForMessage(w, (m): m is { code: 'READY' } => (m as { code?: string } | null)?.code === 'READY')));
  const dones = workers.map((w) => waitForMessage(w, (m): m is RegisterDone => (m as { code?: string } | null)?.code === 'DONE'));

  Atomics.store(go, GO_I32, 1);
  Atomics.notify(go, GO_I32);
  const mainIds = new Map<string, number>();
  for (const input of setMain) mainIds.set(input.symbol, registry.register(input));
  const [doneA, doneB] = await Promise.all(dones);

  // one registry, every symbol exactly once, ids dense 1..600 in list order
  const listed = registry.list();
  expect(listed).toHaveLength(all.length);
  expect(registry.size).toBe(all.length);
  expect(new Set(listed.map((m) => m.symbol)).size).toBe(all.length);
  expect(listed.map((m) => m.id)).toEqual(all.map((_, i) => i + 1));

  // every registrant got the same id for the same symbol, and it matches the registry
  const seen = new Map<string, number>();
  for (const [symbol, id] of [...(doneA as RegisterDone).ids, ...(doneB as RegisterDone).ids, ...mainIds]) {
    const prev = seen.get(symbol);
    if (prev !== undefined) expect(id, symbol).toBe(prev);
    seen.set(symbol, id);
    expect(registry.idOf(symbol), symbol).toBe(id);
  }
  expect(seen.size).toBe(all.length);

  // each worker's view of the registry is a prefix of the final one (same id -> same symbol)
  const finalOrder = listed.map((m) => m.symbol);
  for (const d of [doneA, doneB] as RegisterDone[]) {
    expect(d.listed.length).toBeGreaterThanOrEqual(400);
    expect(d.listed).toEqual(finalOrder.slice(0, d.listed.length));
  }

  // a fresh attach decodes the same metadata from the SAB
  const fresh = SymbolRegistry.attach(registry.buffer);
  for (const input of all) {
    const m = fresh.metaOf(fresh.requireId(input.symbol));
    expect(m.symbol).toBe(input.symbol);
    if (input.kind === 'equity') expect(m.priceMultiplier).toBe(input.priceMultiplier);
    else expect(m.contract?.year).toBeGreaterThanOrEqual(2025);
  }

  const note = `lock contentions during the race: ${registry.lockContentions}`;
  console.info(`[registry] ${note}`);
  await annotate(note);
});
