/**
 * Built-in metadata for the roots tickpipe knows out of the box. `register({ symbol: 'MNQZ25' })` or
 * `register({ symbol: 'SPY' })` needs nothing else; anything given explicitly wins over these.
 *
 * Session calendar names are string ids resolved by the clock module: `cme-globex` (Sun–Fri 17:00–16:00
 * Chicago), `us-equity-rth` (09:30–16:00 New York), `24x7`. VIX is given `us-equity-rth` as a
 * simplification: Cboe also disseminates it during its global trading hours.
 */
import type { SymbolKind } from './layout.ts';

export interface RootDefaults {
  readonly kind: SymbolKind;
  readonly exchange: string;
  readonly tickSize: number;
  readonly priceMultiplier: number;
  readonly sessionCalendar: string;
}

const CME_EQUITY_INDEX_FUTURE: RootDefaults = Object.freeze({
  kind: 'future', exchange: 'CME', tickSize: 0.25, priceMultiplier: 1, sessionCalendar: 'cme-globex',
});

export const ROOT_DEFAULTS: Readonly<Record<string, RootDefaults>> = Object.freeze({
  MNQ: CME_EQUITY_INDEX_FUTURE,
  NQ: CME_EQUITY_INDEX_FUTURE,
  MES: CME_EQUITY_INDEX_FUTURE,
  ES: CME_EQUITY_INDEX_FUTURE,
  SPY: Object.freeze({ kind: 'etf', exchange: 'ARCA', tickSize: 0.01, priceMultiplier: 1, sessionCalendar: 'us-equity-rth' }),
  QQQ: Object.freeze({ kind: 'etf', exchange: 'NASDAQ', tickSize: 0.01, priceMultiplier: 1, sessionCalendar: 'us-equity-rth' }),
  VIX: Object.freeze({ kind: 'index', exchange: 'CBOE', tickSize: 0.01, priceMultiplier: 1, sessionCalendar: 'us-equity-rth' }),
});

/** Defaults of `root`, or undefined (own-property lookup: `constructor` is not a root). */
export function rootDefaults(root: string): RootDefaults | undefined {
  return Object.hasOwn(ROOT_DEFAULTS, root) ? ROOT_DEFAULTS[root] : undefined;
}
