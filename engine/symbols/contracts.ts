/**
 * Futures contract names, expiry and front-month rules (pure functions, no registry state).
 *
 * Contract names are `ROOT + month code + two-digit year`, as Sierra Chart writes them: `MNQZ25` is root
 * `MNQ`, month code `Z` (December), year 2025. One-digit years (CME Globex's `MNQZ5`) are not accepted:
 * they are ambiguous across decades, and every feed we read spells the year with two digits.
 *
 * Expiry and roll rule (equity index futures: ES, MES, NQ, MNQ; DESIGN.md §6):
 * - **Expiry**: trading terminates at 09:30 America/New_York on the **third Friday** of the contract
 *   month. A third Friday falls on the 15th–21st, which is always inside US daylight time for March to
 *   October and outside it otherwise, so the instant is 13:30 UTC (Mar–Oct) or 14:30 UTC (Nov–Feb). No
 *   time-zone library is needed for that.
 * - **Roll**: the front month moves to the next contract at **00:00 UTC on the day 8 calendar days
 *   before expiry**, i.e. the Thursday of the week before expiration week (CME's published roll-date
 *   convention for equity index futures: volume moves to the next quarter about a week before expiry).
 *   From that instant the expiring contract is no longer the front month even though it still trades.
 * - Only the quarterly months H (Mar), M (Jun), U (Sep), Z (Dec) take part in front-month resolution:
 *   equity index futures list only those. Roots with monthly cycles (CL, GC…) would need their own rule.
 */

/** CME month codes, index = month - 1. */
export const MONTH_CODES = ['F', 'G', 'H', 'J', 'K', 'M', 'N', 'Q', 'U', 'V', 'X', 'Z'] as const;
export type MonthCode = (typeof MONTH_CODES)[number];
export const QUARTERLY_MONTHS: readonly number[] = [3, 6, 9, 12];

const MICROS_PER_DAY = 86_400_000_000;
/** Days between expiry day and roll day (see the module comment). */
export const ROLL_DAYS_BEFORE_EXPIRY = 8;

export interface ContractInfo {
  /** Contract name, e.g. `MNQZ25`. */
  readonly symbol: string;
  readonly root: string;
  readonly monthCode: MonthCode;
  /** 1..12 */
  readonly month: number;
  /** e.g. 2025 */
  readonly year: number;
  /** Last trading instant (Unix µs): 09:30 New York on the third Friday. */
  readonly expiryMicros: number;
  /** Instant the next contract becomes the front month (Unix µs). */
  readonly rollMicros: number;
}

const ROOT_CHARS_RE = /^[A-Z0-9]{1,15}$/;

/** Month (1..12) of a month code, or 0 when `c` is not one. */
export function monthOfCode(c: string): number {
  const i = (MONTH_CODES as readonly string[]).indexOf(c);
  return i + 1;
}

export function codeOfMonth(month: number): MonthCode {
  const c = MONTH_CODES[month - 1];
  if (c === undefined) throw new RangeError(`month must be 1..12, got ${month}`);
  return c;
}

/** Day of month (15..21) of the third Friday of `month` (1..12) in `year`. */
export function thirdFridayDay(year: number, month: number): number {
  const firstDow = new Date(Date.UTC(year, month - 1, 1)).getUTCDay(); // 0 = Sunday
  const firstFriday = 1 + ((5 - firstDow + 7) % 7);
  return firstFriday + 14;
}

/** Expiry instant (Unix µs) of an equity index future: 09:30 New York on the third Friday. */
export function equityIndexExpiryMicros(year: number, month: number): number {
  const utcHour = month >= 3 && month <= 10 ? 13 : 14; // 09:30 EDT = 13:30 UTC, 09:30 EST = 14:30 UTC
  return Date.UTC(year, month - 1, thirdFridayDay(year, month), utcHour, 30) * 1000;
}

/** Roll instant for a contract expiring at `expiryMicros`: 00:00 UTC, 8 days before the expiry day. */
export function rollMicrosForExpiry(expiryMicros: number): number {
  const expiryDay = Math.floor(expiryMicros / MICROS_PER_DAY);
  return (expiryDay - ROLL_DAYS_BEFORE_EXPIRY) * MICROS_PER_DAY;
}

/** Contract name from its parts: (`MNQ`, 12, 2025) -> `MNQZ25`. */
export function contractSymbol(root: string, month: number, year: number): string {
  return `${root}${codeOfMonth(month)}${String(year % 100).padStart(2, '0')}`;
}

function info(root: string, month: number, year: number): ContractInfo {
  const expiryMicros = equityIndexExpiryMicros(year, month);
  return {
    symbol: contractSymbol(root, month, year), root, monthCode: codeOfMonth(month), month, year,
    expiryMicros, rollMicros: rollMicrosForExpiry(expiryMicros),
  };
}

/**
 * Parse a futures contract name (`MNQZ25` -> root MNQ, Z, Dec 2025). Returns null when the name does not
 * have the shape ROOT + month code + 2-digit year (`SPY`, `NQ_NDX`, `ESZ5`). Years are 2000–2099.
 * Expiry and roll follow the equity index rule of this module.
 */
export function parseFuturesContract(symbol: string): ContractInfo | null {
  if (typeof symbol !== 'string' || symbol.length < 4 || symbol.length > 18) return null;
  const yy = symbol.slice(-2);
  const code = symbol.charAt(symbol.length - 3);
  const root = symbol.slice(0, -3);
  if (!/^\d\d$/.test(yy) || !ROOT_CHARS_RE.test(root)) return null;
  const month = monthOfCode(code);
  if (month === 0) return null;
  return info(root, month, 2000 + Number(yy));
}

/**
 * The contract that is the front month of `root` at `nowMicros` by the rule alone (nothing registered
 * needed): the first quarterly contract whose roll instant is after `nowMicros`.
 */
export function deriveFrontMonth(root: string, nowMicros: number): ContractInfo {
  if (!ROOT_CHARS_RE.test(root)) throw new RangeError(`not a futures root: ${JSON.stringify(root)}`);
  if (!Number.isFinite(nowMicros)) throw new RangeError(`nowMicros must be finite, got ${nowMicros}`);
  const now = new Date(Math.floor(nowMicros / 1000));
  let year = now.getUTCFullYear();
  let month = now.getUTCMonth() + 1;
  month = Math.ceil(month / 3) * 3; // the quarterly month of this quarter
  // At most two steps: a quarter's contract rolls in its own expiry month.
  for (;;) {
    const c = info(root, month, year);
    if (c.rollMicros > nowMicros) return c;
    month += 3;
    if (month > 12) { month -= 12; year += 1; }
  }
}

/** True for contracts that take part in front-month resolution (H, M, U, Z). */
export function isQuarterlyMonth(month: number): boolean {
  return month === 3 || month === 6 || month === 9 || month === 12;
}
