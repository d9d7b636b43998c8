/**
 * The request guard: address bad-key budget → key check (401) → scope (403) → the key's rate (429). Symbol
 * grants are checked per symbol by the routes with `checkSymbol`.
 */
import type { SymbolMeta } from '../../engine/symbols/registry.ts';
import { ApiError } from '../http/respond.ts';
import type { Authenticator, Principal, Scope } from '../types.ts';
import { BadKeyLimiter, KeyRateLimiter } from './limits.ts';

export class Guard {
  readonly #auth: Authenticator;
  readonly #now: () => number;
  readonly badKeys: BadKeyLimiter;
  readonly rates = new KeyRateLimiter();
  /** Counters for /metrics. */
  readonly counts = { unauthorized: 0, forbidden: 0, rateLimited: 0, badKeyBlocked: 0 };

  constructor(auth: Authenticator, now: () => number, badKeyLimitPerMinute: number) {
    this.#auth = auth;
    this.#now = now;
    this.badKeys = new BadKeyLimiter(badKeyLimitPerMinute);
  }

  /**
   * `addr` may be a function: it is then called only when the address matters (some address is being
   * tracked for bad keys, or this key is bad), which keeps the common path free of the address lookup.
   * Call synchronously in the handler (a uWS response is only valid there).
   */
  authorize(token: string | undefined, addrIn: AddressSource, scope: Scope): Principal {
    const now = this.#now();
    const blocked = this.badKeys.tracking ? this.badKeys.blockedFor(addressOf(addrIn), now) : 0;
    if (blocked > 0) {
      this.counts.badKeyBlocked++;
      throw new ApiError(429, 'TOO_MANY_BAD_KEYS', `too many requests with a bad API key from this address; retry in ${blocked} s`, { 'retry-after': String(blocked) });
    }
    if (token === undefined || token === '') {
      this.counts.unauthorized++;
      throw new ApiError(401, 'MISSING_KEY', 'an API key is required: Authorization: Bearer <key>', { 'www-authenticate': 'Bearer' });
    }
    const p = this.#auth.authenticate(token);
    if (p === null) {
      this.counts.unauthorized++;
      this.badKeys.fail(addressOf(addrIn), now);
      throw new ApiError(401, 'UNKNOWN_KEY', 'the API key is unknown or revoked', { 'www-authenticate': 'Bearer error="invalid_token"' });
    }
    if (!hasScope(p, scope)) {
      this.counts.forbidden++;
      throw new ApiError(403, 'SCOPE_NOT_GRANTED', `this key does not have the ${scope} scope`);
    }
    const wait = this.rates.take(p.keyId, p.ratePerSec, now);
    if (wait > 0) {
      this.counts.rateLimited++;
      throw new ApiError(429, 'RATE_LIMITED', `rate limit of ${p.ratePerSec} requests/s exceeded; retry in ${wait} s`, { 'retry-after': String(wait) });
    }
    return p;
  }
}

/**
 * Where the peer address comes from: the text itself, a function, or an object that looks it up (and keeps
 * it) on demand; the last two are asked only when the address matters, at most twice per request.
 */
export type AddressSource = string | (() => string) | { address(): string };

function addressOf(a: AddressSource): string {
  return typeof a === 'string' ? a : typeof a === 'function' ? a() : a.address();
}

export function hasScope(p: Principal, scope: Scope): boolean {
  return p.scopes.has(scope) || p.scopes.has('admin');
}

/** 403 unless the key may read this symbol (its contract name or its root is granted). */
export function checkSymbol(p: Principal, meta: SymbolMeta): void {
  const s = p.symbols;
  if (s === null || s.has(meta.symbol) || s.has(meta.root)) return;
  throw new ApiError(403, 'SYMBOL_NOT_GRANTED', `this key may not read ${meta.symbol}`);
}

/** True when the key may read this symbol. */
export function symbolGranted(p: Principal, meta: SymbolMeta): boolean {
  const s = p.symbols;
  return s === null || s.has(meta.symbol) || s.has(meta.root);
}
