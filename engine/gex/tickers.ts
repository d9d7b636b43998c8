/**
 * GEX tickers (GEXBot names: NQ_NDX, ES_SPX, SPX, NDX, ...) and the futures roots they describe.
 *
 * A GEX snapshot of NQ_NDX is gamma exposure of the Nasdaq-100 options, expressed in NQ futures prices:
 * it applies to NQ and MNQ (same underlying, same price scale). Likewise ES_SPX -> ES and MES. A query for
 * a root (NQ, MNQ) or a contract (MNQZ25) finds the ticker(s) that map to its root.
 */

/** GEX ticker -> futures roots it applies to (upper case). */
export const GEX_TICKER_ROOTS: Readonly<Record<string, readonly string[]>> = {
  NQ_NDX: ['NQ', 'MNQ'],
  ES_SPX: ['ES', 'MES'],
};

const ROOT_TO_TICKERS = new Map<string, string[]>();
for (const [ticker, roots] of Object.entries(GEX_TICKER_ROOTS)) {
  for (const r of roots) {
    const l = ROOT_TO_TICKERS.get(r) ?? [];
    l.push(ticker);
    ROOT_TO_TICKERS.set(r, l);
  }
}

/** Normalise a ticker as users type it (`nq_ndx ` -> `NQ_NDX`); null when it is not a plausible ticker. */
export function normalizeTicker(t: unknown): string | null {
  if (typeof t !== 'string') return null;
  const u = t.trim().toUpperCase();
  return /^[A-Z0-9_]{1,20}$/.test(u) ? u : null;
}

/** Subscription keys a snapshot of `ticker` is delivered to: the ticker itself and its roots. */
export function gexKeysForTicker(ticker: string): string[] {
  const t = ticker.toUpperCase();
  return [t, ...(GEX_TICKER_ROOTS[t] ?? [])];
}

/** Subscription keys of a registered symbol: its root (snapshots of NQ_NDX reach NQ and MNQ contracts). */
export function gexKeysForSymbol(_symbol: string, root: string): string[] {
  return [root.toUpperCase()];
}

/**
 * Tickers whose snapshots answer a query: the query itself when it is a ticker, and every ticker that maps
 * to it as a root (NQ -> NQ_NDX, MNQ -> NQ_NDX). A futures contract (MNQZ25) is reduced to its root by the
 * caller. Order: the query first.
 */
export function tickersForQuery(query: string): string[] {
  const q = query.trim().toUpperCase();
  const out = [q];
  for (const t of ROOT_TO_TICKERS.get(q) ?? []) if (!out.includes(t)) out.push(t);
  return out;
}

/** Futures roots a ticker applies to (empty when none is known). */
export function rootsOfTicker(ticker: string): readonly string[] {
  return GEX_TICKER_ROOTS[ticker.toUpperCase()] ?? [];
}
