/**
 * The bench's native programs (bench/native/*.cc): compiled with the machine's g++ into a temp dir when a
 * bench needs them, and their "TAG v:c v:c ..." histogram lines (1 µs buckets) read back as hdr histograms.
 * Used by bench/ws.bench.ts (the native fan-out fleet and the raw-TCP floor) and bench/e2e (native
 * WebSocket clients).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as hdr from 'hdr-histogram-js';

export const WS_CLIENT_SRC = fileURLToPath(new URL('./ws-client.cc', import.meta.url));
export const TCP_FANOUT_SRC = fileURLToPath(new URL('./tcp-fanout.cc', import.meta.url));

/** Build each source into `<tmp>/<name>`; `missing` (with the reason) when g++ is absent or a build fails. */
export function buildNative<K extends string>(sources: Record<K, string>): { bins: Record<K, string>; dir: string } | { missing: string } {
  const probe = spawnSync('g++', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return { missing: `g++ not found (${probe.error?.message ?? `exit ${probe.status}`})` };
  const dir = mkdtempSync(path.join(tmpdir(), 'tickpipe-native-'));
  const bins = {} as Record<K, string>;
  for (const [name, src] of Object.entries(sources) as Array<[K, string]>) {
    const bin = path.join(dir, name);
    const r = spawnSync('g++', ['-O2', '-std=c++17', '-Wall', '-o', bin, src], { encoding: 'utf8' });
    if (r.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      return { missing: `g++ could not build ${src}: ${(r.stderr || r.error?.message || '').slice(0, 500)}` };
    }
    bins[name] = bin;
  }
  return { bins, dir };
}

/** A "TAG v:c v:c ..." line of the native programs (1 µs buckets) as an hdr histogram. */
export function histogramLine(lines: readonly string[], tag: string, h: hdr.Histogram): hdr.Histogram {
  const line = lines.find((l) => l.startsWith(`${tag} `) || l === tag);
  if (line === undefined) throw new Error(`native client output has no ${tag} line`);
  const top = h.highestTrackableValue;
  for (const kv of line.split(' ').slice(1)) {
    const [v, c] = kv.split(':').map(Number) as [number, number];
    h.recordValueWithCount(Math.min(Math.max(v, 1), top), c);
  }
  return h;
}

/** Offset between this thread's wall clock ((timeOrigin + now()) µs) and CLOCK_MONOTONIC µs (process.hrtime): median of 9 reads. */
export function clockOffsetMicros(): number {
  const xs: number[] = [];
  for (let i = 0; i < 9; i++) {
    const w = (performance.timeOrigin + performance.now()) * 1000;
    const m = Number(process.hrtime.bigint()) / 1000;
    xs.push(w - m);
  }
  xs.sort((a, b) => a - b);
  return xs[4]!;
}
