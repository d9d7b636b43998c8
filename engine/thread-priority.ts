/**
 * CPU priority of one thread (Linux). On a small machine every thread of the engine competes for the same
 * cores; the ones a trader waits on (ingest, validator, the main thread's feed and WebSocket fan-out) should
 * win over background work whose latency nobody waits on (the Redis mirror, compaction). `setPriority` with
 * a thread id changes that thread only (Linux: PRIO_PROCESS applies to a task), and raising the nice value
 * needs no privilege. Elsewhere (no /proc/thread-self) nothing changes.
 */
import { readlinkSync, writeFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** The calling thread's kernel id (from /proc/thread-self -> "<pid>/task/<tid>"), or null where there is none. */
export function kernelThreadId(): number | null {
  try {
    const m = /\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/**
 * Set the calling thread's nice value (0 = normal, 19 = lowest); returns the value now in force, or null
 * when it could not be set (not Linux, or refused). Never raises priority above normal.
 */
export function setThreadNice(nice: number): number | null {
  const tid = kernelThreadId();
  if (tid === null) return null;
  const n = Math.max(0, Math.min(19, Math.round(nice)));
  try {
    setPriority(tid, n);
    return getPriority(tid);
  } catch {
    return null;
  }
}

/**
 * Name the calling thread for `top -H`, `ps -L` and /proc (Linux keeps 15 bytes): e.g. `tp:validator`.
 * Best effort: false when it could not be set.
 */
export function nameThisThread(name: string): boolean {
  try {
    writeFileSync('/proc/thread-self/comm', name.replace(/[^\x21-\x7e]/g, '_').slice(0, 15));
    return true;
  } catch {
    return false;
  }
}
