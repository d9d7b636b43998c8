/**
 * Supervisor: starts worker stages, restarts the ones that die, and shuts the pipeline down in order.
 *
 * Shutdown (`close`) is graceful and bounded: stages are closed in pipeline order (sources first). For
 * each stage the supervisor sets its output rings to DRAINING (producers stop producing and publish what
 * they claimed), waits for the stage's STOPPED message or exit (terminating it after a timeout), then sets
 * the rings to STOPPED: their consumers drain what is left and stop once empty. Both are idempotent. A stage that dies while running is restarted with exponential back-off up to its limit;
 * because rings and progress tables live in the supervisor's SharedArrayBuffers, a restarted worker
 * resumes exactly where the dead one stopped.
 */
import { EventEmitter } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { fromWire, engineError, type EngineError } from './errors.ts';
import { RingState } from './ring/layout.ts';
import { setRingState } from './ring/ring.ts';
import { spawnWorker } from './worker-host.ts';
import { isWorkerMessage, type WorkerMessage } from '../workers/protocol.ts';

export interface StageSpec {
  name: string;
  entry: URL;
  /** workerData (SharedArrayBuffers and plain values). */
  data: object;
  /** Rings this stage produces into: set to DRAINING when the stage is closed. */
  outputs?: SharedArrayBuffer[];
  /** Restarts allowed after unexpected exits (default 5), with back-off from `backoffMs` (default 200). */
  maxRestarts?: number;
  backoffMs?: number;
  /** How long to wait for READY (default 30 s). */
  readyTimeoutMs?: number;
}

export type StageState = 'starting' | 'running' | 'restarting' | 'stopping' | 'stopped' | 'failed';

export interface StageStatus {
  name: string;
  state: StageState;
  restarts: number;
  startedAt: number;
  /** The last error the stage reported or died of; kept after it recovers (see lastErrorAt). */
  lastError: string | null;
  /** When lastError was set (ms since the epoch; 0 = never). Before startedAt: it predates the running worker. */
  lastErrorAt: number;
  lastStats: Record<string, number>;
  sourceErrors: number;
}

interface Stage {
  spec: StageSpec;
  /** The last FATAL error the stage reported (cleared at each spawn). */
  fatal?: EngineError | null;
  worker: Worker | null;
  status: StageStatus;
  stopped: Promise<void> | null;
  resolveStopped: (() => void) | null;
  /** The next exit was asked for by restart(): respawn at once, not counted against maxRestarts. */
  manualRestart?: boolean;
  /** Crash restarts so far (the maxRestarts budget); status.restarts also counts operator restarts. */
  crashes?: number;
}

export class Supervisor extends EventEmitter {
  readonly #stages: Stage[] = [];
  #closing: Promise<void> | null = null;
  #nextRequest = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  /**
   * Ask a running stage to do something (cold path: e.g. the validator's `deleteHour`): posts
   * `{ code: 'REQUEST', id, op, ...args }` and resolves with the stage's REPLY result (rejects with its
   * coded error, ENGINE_ERR_WORKER when the stage is not running, ENGINE_ERR_TIMEOUT after `timeoutMs`).
   */
  request(name: string, op: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<unknown> {
    const st = this.#stages.find((s) => s.spec.name === name);
    if (!st?.worker || st.status.state !== 'running') {
      return Promise.reject(engineError('ENGINE_ERR_WORKER', `stage ${name} is not running (${st?.status.state ?? 'unknown'})`, { stage: name }));
    }
    const id = this.#nextRequest++;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(engineError('ENGINE_ERR_TIMEOUT', `stage ${name} did not answer ${op} within ${timeoutMs} ms`, { stage: name, op }));
      }, timeoutMs);
      timer.unref();
      this.#pending.set(id, { resolve, reject, timer });
      st.worker!.postMessage({ ...args, code: 'REQUEST', id, op });
    });
  }

  add(spec: StageSpec): void {
    if (this.#stages.some((s) => s.spec.name === spec.name)) throw engineError('ENGINE_ERR_INVALID_ARG', `stage ${spec.name} already exists`);
    this.#stages.push({
      spec, worker: null, stopped: null, resolveStopped: null,
      status: { name: spec.name, state: 'starting', restarts: 0, startedAt: 0, lastError: null, lastErrorAt: 0, lastStats: {}, sourceErrors: 0 },
    });
  }

  /**
   * Start every stage (spawned in the order added, booting in parallel: worker start-up is mostly module
   * loading) and wait until each has said READY. The first failure rejects (after every stage settled).
   */
  async start(): Promise<void> {
    const results = await Promise.allSettled(this.#stages.map((st) => this.#spawn(st)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  status(): StageStatus[] {
    return this.#stages.map((s) => ({ ...s.status, lastStats: { ...s.status.lastStats } }));
  }

  worker(name: string): Worker | null {
    return this.#stages.find((s) => s.spec.name === name)?.worker ?? null;
  }

  /** Terminate a stage's worker as if it had crashed (tests, and the admin "restart source" action). */
  async kill(name: string): Promise<void> {
    const st = this.#stages.find((s) => s.spec.name === name);
    if (!st?.worker) throw engineError('ENGINE_ERR_INVALID_ARG', `no running stage ${name}`);
    await st.worker.terminate();
  }

  /**
   * Operator restart (the panel's admin action): a running stage is terminated and started again at once,
   * a stage that gave up ('failed') is started again with its crash count reset. Neither counts as a crash.
   */
  async restart(name: string): Promise<void> {
    const st = this.#stages.find((s) => s.spec.name === name);
    if (!st) throw engineError('ENGINE_ERR_INVALID_ARG', `no stage ${name}`);
    if (this.#closing) throw engineError('ENGINE_ERR_INVALID_ARG', 'the engine is stopping');
    if (st.worker) {
      st.manualRestart = true;
      await st.worker.terminate();
      return;
    }
    if (st.status.state !== 'failed') throw engineError('ENGINE_ERR_INVALID_ARG', `stage ${name} is ${st.status.state}; try again when it runs`);
    st.crashes = 0;
    st.status.restarts++;
    await this.#spawn(st).then(
      () => { this.emit('stage-restarted', name, st.status.restarts); },
      (err: unknown) => { this.#setError(st, (err as Error).message); this.#restartLater(st, -1); },
    );
  }

  #spawn(st: Stage): Promise<void> {
    const { spec } = st;
    st.status.state = st.status.restarts > 0 ? 'restarting' : 'starting';
    st.status.startedAt = Date.now();
    const w = spawnWorker(spec.entry, spec.data, { name: spec.name });
    st.worker = w;
    st.fatal = null;
    st.stopped = new Promise<void>((resolve) => { st.resolveStopped = resolve; });
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      const timer = setTimeout(() => {
        if (!ready) reject(engineError('ENGINE_ERR_TIMEOUT', `stage ${spec.name} did not become ready in ${spec.readyTimeoutMs ?? 30_000} ms`));
      }, spec.readyTimeoutMs ?? 30_000);
      timer.unref();
      w.on('message', (m: unknown) => {
        if (!isWorkerMessage(m)) { this.emit('warning', engineError('ENGINE_ERR_INTERNAL', `stage ${spec.name} sent a malformed message`)); return; }
        this.#onMessage(st, m);
        if (m.code === 'READY' && !ready) { ready = true; clearTimeout(timer); resolve(); }
      });
      w.on('error', (err) => {
        this.#setError(st, err.message);
        this.emit('stage-error', spec.name, err);
        if (!ready) { clearTimeout(timer); reject(err); }
      });
      w.on('exit', (code) => {
        st.worker = null;
        st.resolveStopped?.();
        const expected = st.status.state === 'stopping' || st.status.state === 'stopped' || this.#closing !== null;
        if (expected) { st.status.state = 'stopped'; this.emit('stage-exit', spec.name, code); return; }
        if (!ready) {
          clearTimeout(timer);
          // the stage's own coded error (FATAL) says more than the exit code
          reject(st.fatal ?? engineError('ENGINE_ERR_WORKER', `stage ${spec.name} exited with code ${code} before it was ready${st.status.lastError ? `: ${st.status.lastError}` : ''}`));
          return;
        }
        this.#restartLater(st, code);
      });
    });
  }

  #setError(st: Stage, text: string): void {
    st.status.lastError = text;
    st.status.lastErrorAt = Date.now();
  }

  #restartLater(st: Stage, code: number): void {
    const { spec } = st;
    if (st.manualRestart) {
      st.manualRestart = false;
      st.status.state = 'restarting';
      st.status.restarts++;
      this.#spawn(st).then(
        () => this.emit('stage-restarted', spec.name, st.status.restarts),
        (err: unknown) => { this.#setError(st, (err as Error).message); this.#restartLater(st, -1); },
      );
      return;
    }
    const max = spec.maxRestarts ?? 5;
    const crashes = st.crashes ?? 0;
    if (crashes >= max) {
      st.status.state = 'failed';
      this.emit('stage-failed', spec.name, st.status.lastError ?? `exit code ${code}`);
      return;
    }
    st.status.state = 'restarting';
    const delay = (spec.backoffMs ?? 200) * 2 ** crashes;
    st.crashes = crashes + 1;
    st.status.restarts++;
    const t = setTimeout(() => {
      if (this.#closing) { st.status.state = 'stopped'; return; }
      this.#spawn(st).then(
        () => this.emit('stage-restarted', spec.name, st.status.restarts),
        (err: unknown) => { this.#setError(st, (err as Error).message); this.#restartLater(st, -1); },
      );
    }, delay);
    t.unref();
  }

  #onMessage(st: Stage, m: WorkerMessage): void {
    switch (m.code) {
      case 'READY':
        st.status.state = 'running';
        break;
      case 'STATS':
        st.status.lastStats = m.stats;
        break;
      case 'STOPPED':
        st.status.lastStats = m.stats;
        st.status.state = 'stopped';
        break;
      case 'SOURCE_ERROR': {
        st.status.sourceErrors++;
        const err: EngineError = fromWire(m.error);
        this.#setError(st, `${err.code}: ${err.message}`);
        this.emit('source-error', m.name, err);
        break;
      }
      case 'REPLY': {
        const p = this.#pending.get(m.id);
        if (p === undefined) break;
        this.#pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.ok) p.resolve(m.result ?? null);
        else p.reject(m.error ? fromWire(m.error) : engineError('ENGINE_ERR_WORKER', `stage ${st.spec.name} failed a request`));
        break;
      }
      case 'WARN':
        this.emit('warning', engineError('ENGINE_ERR', `${m.name}: ${m.message}`, m.detail ?? {}));
        break;
      case 'FATAL': {
        const err = fromWire(m.error);
        st.fatal = err;
        this.#setError(st, `${err.code}: ${err.message}`);
        this.emit('stage-error', m.name, err);
        break;
      }
      default: {
        const never: never = m;
        this.emit('warning', engineError('ENGINE_ERR_INTERNAL', `unknown worker message ${JSON.stringify(never)}`));
      }
    }
  }

  /** Graceful, ordered, bounded shutdown; idempotent. */
  close(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.#closing) return this.#closing;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    this.#closing = (async () => {
      for (const st of this.#stages) {
        if (!st.worker) {
          // No producer left: say so, or consumers of its rings would wait for a STOPPED that never comes.
          for (const ring of st.spec.outputs ?? []) setRingState(ring, RingState.STOPPED);
          st.status.state = st.status.state === 'failed' ? 'failed' : 'stopped';
          continue;
        }
        st.status.state = 'stopping';
        for (const ring of st.spec.outputs ?? []) setRingState(ring, RingState.DRAINING);
        // Stages without rings (demo market, pools) stop on a message; ring stages ignore it.
        st.worker.postMessage({ code: 'STOP' });
        const done = st.stopped ?? Promise.resolve();
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          done.then(() => false),
          new Promise<boolean>((r) => { timer = setTimeout(() => r(true), timeoutMs); }),
        ]);
        clearTimeout(timer);
        if (timedOut && st.worker) {
          this.#setError(st, `did not stop within ${timeoutMs} ms; terminated`);
          await st.worker.terminate();
        }
        for (const ring of st.spec.outputs ?? []) setRingState(ring, RingState.STOPPED);
        st.status.state = 'stopped';
      }
    })();
    return this.#closing;
  }

  /** Terminate every worker now. */
  async destroy(): Promise<void> {
    this.#closing ??= Promise.resolve();
    await Promise.all(this.#stages.map(async (st) => { if (st.worker) await st.worker.terminate(); st.status.state = 'stopped'; }));
  }
}
