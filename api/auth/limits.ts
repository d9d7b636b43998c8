/**
 * Rate limits: a token bucket per key (the key's `ratePerSec`, burst of one second's worth) and a budget of
 * bad keys per client address (fixed one-minute windows) so that guessing keys is slow. Both return
 * "seconds to wait" instead of throwing; the guard turns that into 429 + Retry-After.
 */

interface Bucket { tokens: number; lastMs: number }

export class KeyRateLimiter {
  readonly #buckets = new Map<string, Bucket>();

  /** 0 when the request may go ahead (a token was taken), else seconds until the next token. */
  take(keyId: string, ratePerSec: number, nowMs: number): number {
    if (!(ratePerSec > 0)) return 0;
    const burst = Math.max(1, ratePerSec);
    let b = this.#buckets.get(keyId);
    if (b === undefined) {
      b = { tokens: burst, lastMs: nowMs };
      this.#buckets.set(keyId, b);
    } else {
      const dt = nowMs - b.lastMs;
      if (dt > 0) {
        b.tokens = Math.min(burst, b.tokens + (dt / 1000) * ratePerSec);
        b.lastMs = nowMs;
      }
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / ratePerSec));
  }
}

interface Window { startMs: number; count: number }

const WINDOW_MS = 60_000;
const MAX_TRACKED = 100_000;

export class BadKeyLimiter {
  readonly #limit: number;
  readonly #windows = new Map<string, Window>();
  /** Requests refused because their address spent its bad-key budget. */
  refused = 0;

  constructor(limitPerMinute: number) {
    this.#limit = limitPerMinute;
  }

  /** True while any address has a bad-key window open (else `blockedFor` is 0 for everyone). */
  get tracking(): boolean { return this.#windows.size > 0; }

  /** 0 when `addr` may try a key now, else seconds until its window ends. */
  blockedFor(addr: string, nowMs: number): number {
    const w = this.#windows.get(addr);
    if (w === undefined) return 0;
    if (nowMs - w.startMs >= WINDOW_MS) {
      this.#windows.delete(addr);
      return 0;
    }
    if (w.count < this.#limit) return 0;
    this.refused++;
    return Math.max(1, Math.ceil((w.startMs + WINDOW_MS - nowMs) / 1000));
  }

  fail(addr: string, nowMs: number): void {
    let w = this.#windows.get(addr);
    if (w === undefined || nowMs - w.startMs >= WINDOW_MS) {
      if (this.#windows.size >= MAX_TRACKED) this.#prune(nowMs);
      w = { startMs: nowMs, count: 0 };
      this.#windows.set(addr, w);
    }
    w.count++;
  }

  #prune(nowMs: number): void {
    for (const [k, w] of this.#windows) if (nowMs - w.startMs >= WINDOW_MS) this.#windows.delete(k);
    if (this.#windows.size >= MAX_TRACKED) this.#windows.clear(); // under a flood, forget rather than grow
  }
}
