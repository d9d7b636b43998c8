/**
 * The symbol registry shared by every thread: symbol <-> small integer id (u16, 0 = none), with
 * per-symbol metadata in fixed binary slots of one SharedArrayBuffer (layout in `layout.ts`).
 *
 * - The main thread calls `SymbolRegistry.create({ capacity })` and passes `.buffer` in `workerData`;
 *   workers call `SymbolRegistry.attach(sab)`. A wrong, short or foreign buffer is ENGINE_ERR_LAYOUT.
 * - `register(meta)` may run on any thread at any time. Registrants serialise on a spin lock word
 *   (Atomics.compareExchange); the registrant writes the whole slot, then publishes it by storing the new
 *   count (publish-after-write). Registering a symbol that exists returns its id (same metadata) or
 *   throws ENGINE_ERR_BAD_SYMBOL (different metadata), so two threads racing to register the same symbol
 *   get the same id and never a duplicate.
 * - Reads are lock-free: `idOf`, `metaOf`, `list` look in a per-thread cache (a Map and an array of
 *   frozen metadata objects), and refresh it from the SAB only when the published count moved. After
 *   warm-up `idOf` is one Map lookup, `metaOf` one array index: neither allocates.
 * - Roots resolve to their front-month contract (`resolveFrontMonth`, `resolve`), see `contracts.ts`.
 *
 * Failure mode worth knowing: a thread terminated *inside* `register` (worker.terminate() does not run
 * `finally`) leaves the lock taken. Other registrants then fail after `lockTimeoutMs` with
 * ENGINE_ERR_TIMEOUT naming the holder's threadId; the supervisor, which sees that worker exit, can call
 * `recoverLock(threadId)`. A slot written but not published by the dead thread is simply overwritten.
 */
import { threadId } from 'node:worker_threads';
import { engineError } from '../errors.ts';
import {
  CONTRACT_MONTH_BYTE, CONTRACT_YEAR_BYTE, COUNT_I32, CAPACITY_I32, DEFAULT_CAPACITY, EXCHANGE_CHARS_BYTE,
  EXCHANGE_LEN_BYTE, EXCHANGE_MAX_CHARS, EXPIRY_MICROS_BYTE, HEADER_BYTES, HEADER_I32, KIND_BYTE, LAYOUT_VERSION_I32,
  LOCK_CONTENDED_I32, LOCK_I32, MAGIC_I32, MAX_CAPACITY, PRICE_MULTIPLIER_BYTE, REGISTRY_LAYOUT_VERSION, REGISTRY_MAGIC,
  ROLL_MICROS_BYTE, ROOT_CHARS_BYTE, ROOT_LEN_BYTE, ROOT_MAX_CHARS, SESSION_CHARS_BYTE, SESSION_LEN_BYTE,
  SESSION_MAX_CHARS, SLOT_BYTES, SLOT_BYTES_I32, SLOT_ID_BYTE, SYMBOL_CHARS_BYTE, SYMBOL_KINDS, SYMBOL_LEN_BYTE,
  SYMBOL_MAX_CHARS, SymbolKindCode, TICK_SIZE_BYTE, registryBytes, slotByteOf, type SymbolKind,
} from './layout.ts';
import {
  codeOfMonth, deriveFrontMonth, equityIndexExpiryMicros, isQuarterlyMonth, parseFuturesContract,
  rollMicrosForExpiry, type MonthCode,
} from './contracts.ts';
import { rootDefaults } from './defaults.ts';

/** What `register` accepts. Only `symbol` is required for roots with built-in defaults (defaults.ts). */
export interface SymbolInput {
  /** ASCII, 1–31 chars: A–Z 0–9 and `_ . - / : $ ^ #` (`MNQZ25`, `NQ_NDX`, `SPY`). Case-sensitive, upper case. */
  symbol: string;
  /** Product root (`MNQ`, `SPY`); parsed from a futures contract name, else defaults to the symbol. */
  root?: string;
  /** Listing exchange, 1–15 chars A–Z 0–9 `_` (`CME`, `CBOE`, `ARCA`). */
  exchange?: string;
  kind?: SymbolKind;
  /** Minimum price increment in real price units (> 0). */
  tickSize?: number;
  /** Real price = feed price × multiplier (> 0, default 1; 0.01 for feeds that store prices ×100). */
  priceMultiplier?: number;
  /** Session calendar id, 1–23 chars a–z 0–9 `_ -` (`cme-globex`, `us-equity-rth`, `24x7`). */
  sessionCalendar?: string;
  /** Futures only, when the symbol is not a parseable contract name: 1..12. */
  contractMonth?: number;
  /** Futures only, when the symbol is not a parseable contract name: e.g. 2025. */
  contractYear?: number;
  /** Futures only: last trading instant (Unix µs), when it is not the equity-index third-Friday rule. */
  expiryMicros?: number;
}

export interface FuturesContractMeta {
  readonly monthCode: MonthCode;
  /** 1..12 */
  readonly month: number;
  readonly year: number;
  readonly expiryMicros: number;
  readonly rollMicros: number;
}

/** Metadata of a registered symbol. Instances are frozen and cached per thread: compare ids, not objects. */
export interface SymbolMeta {
  readonly id: number;
  readonly symbol: string;
  readonly root: string;
  readonly exchange: string;
  readonly kind: SymbolKind;
  readonly tickSize: number;
  readonly priceMultiplier: number;
  readonly sessionCalendar: string;
  /** Contract month/year, expiry and roll for futures; null otherwise. */
  readonly contract: FuturesContractMeta | null;
}

export interface RegistryOptions {
  /** Largest number of symbols (1..65535, default 4096). Fixed for the life of the buffer. */
  capacity?: number;
  /** How long `register` waits for the lock before ENGINE_ERR_TIMEOUT (default 2000 ms). */
  lockTimeoutMs?: number;
}

const SYMBOL_RE = /^[A-Z0-9$^/.#][A-Z0-9_.\-/:$^#]{0,30}$/;
const ROOT_RE = /^[A-Z0-9$^/.#][A-Z0-9_.\-/$^#]{0,14}$/;
const EXCHANGE_RE = /^[A-Z0-9][A-Z0-9_]{0,14}$/;
const SESSION_RE = /^[a-z0-9][a-z0-9_-]{0,22}$/;
const KIND_BY_CODE: readonly (SymbolKind | undefined)[] = [undefined, ...SYMBOL_KINDS];
const LOCK_SPINS_BEFORE_WAIT = 64;
const DEFAULT_LOCK_TIMEOUT_MS = 2000;

type Normalized = Omit<SymbolMeta, 'id'>;

function badSymbol(symbol: unknown, message: string, detail: Record<string, string | number | boolean | null> = {}): never {
  throw engineError('ENGINE_ERR_BAD_SYMBOL', message, { symbol: typeof symbol === 'string' ? symbol : String(symbol), ...detail });
}

function optString(input: Record<string, unknown>, key: string, symbol: string): string | undefined {
  const v = input[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') badSymbol(symbol, `${symbol}: ${key} must be a string`, { field: key });
  return v;
}

function optNumber(input: Record<string, unknown>, key: string, symbol: string): number | undefined {
  const v = input[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) badSymbol(symbol, `${symbol}: ${key} must be a finite number`, { field: key });
  return v;
}

/** Validate `input` and fill in defaults. Throws ENGINE_ERR_BAD_SYMBOL naming what is wrong or missing. */
export function normalizeSymbolInput(input: SymbolInput | string): Normalized {
  const o: Record<string, unknown> = typeof input === 'string' ? { symbol: input } : (input as unknown as Record<string, unknown>);
  if (typeof o !== 'object' || o === null) badSymbol(input, 'symbol metadata must be an object or a symbol string');
  const symbol = o['symbol'];
  if (typeof symbol !== 'string' || !SYMBOL_RE.test(symbol)) {
    badSymbol(symbol, `bad symbol name ${JSON.stringify(symbol)}: 1-${SYMBOL_MAX_CHARS} chars, upper-case A-Z 0-9 and _ . - / : $ ^ #`);
  }
  const kindIn = optString(o, 'kind', symbol);
  if (kindIn !== undefined && !(SYMBOL_KINDS as readonly string[]).includes(kindIn)) {
    badSymbol(symbol, `${symbol}: kind must be one of ${SYMBOL_KINDS.join('/')}, got ${JSON.stringify(kindIn)}`, { field: 'kind' });
  }
  const rootIn = optString(o, 'root', symbol);
  if (rootIn !== undefined && !ROOT_RE.test(rootIn)) badSymbol(symbol, `${symbol}: bad root ${JSON.stringify(rootIn)}`, { field: 'root' });
  const monthIn = optNumber(o, 'contractMonth', symbol);
  const yearIn = optNumber(o, 'contractYear', symbol);
  const expiryIn = optNumber(o, 'expiryMicros', symbol);

  // Is it a future? Explicit kind wins; otherwise a parseable contract name of a known (or given) root.
  const parsed = kindIn === undefined || kindIn === 'future' ? parseFuturesContract(symbol) : null;
  const isFuture = kindIn !== undefined
    ? kindIn === 'future'
    : parsed !== null && (rootIn === parsed.root || rootDefaults(parsed.root)?.kind === 'future');

  let root: string;
  let contract: FuturesContractMeta | null = null;
  if (isFuture) {
    if (parsed && rootIn !== undefined && rootIn !== parsed.root) {
      badSymbol(symbol, `${symbol}: root ${rootIn} does not match the contract name (root ${parsed.root})`, { field: 'root' });
    }
    const r = rootIn ?? parsed?.root;
    if (r === undefined) badSymbol(symbol, `${symbol}: a future needs a root (the name is not ROOT + month code + 2-digit year)`, { field: 'root' });
    root = r;
    if (parsed && ((monthIn !== undefined && monthIn !== parsed.month) || (yearIn !== undefined && yearIn !== parsed.year))) {
      badSymbol(symbol, `${symbol}: contractMonth/contractYear contradict the contract name`, { field: 'contractMonth' });
    }
    const month = parsed?.month ?? monthIn;
    const year = parsed?.year ?? yearIn;
    if (month === undefined || year === undefined) badSymbol(symbol, `${symbol}: a future needs a contract month and year`, { field: 'contractMonth' });
    if (!Number.isInteger(month) || month < 1 || month > 12) badSymbol(symbol, `${symbol}: contract month must be 1..12, got ${month}`, { field: 'contractMonth' });
    if (!Number.isInteger(year) || year < 1970 || year > 2199) badSymbol(symbol, `${symbol}: contract year must be 1970..2199, got ${year}`, { field: 'contractYear' });
    const expiryMicros = expiryIn ?? equityIndexExpiryMicros(year, month);
    contract = Object.freeze({ monthCode: codeOfMonth(month), month, year, expiryMicros, rollMicros: rollMicrosForExpiry(expiryMicros) });
  } else {
    if (monthIn !== undefined || yearIn !== undefined || expiryIn !== undefined) {
      badSymbol(symbol, `${symbol}: contract month/year/expiry are only for futures`, { field: 'contractMonth' });
    }
    const r = rootIn ?? symbol;
    if (!ROOT_RE.test(r)) badSymbol(symbol, `${symbol}: give a root of at most ${ROOT_MAX_CHARS} chars`, { field: 'root' });
    root = r;
  }

  const d = rootDefaults(root);
  const defaults = d !== undefined && (kindIn === undefined || kindIn === d.kind) && (d.kind === 'future') === isFuture ? d : undefined;
  const kind = (kindIn as SymbolKind | undefined) ?? defaults?.kind ?? (isFuture ? 'future' : undefined);
  const exchange = optString(o, 'exchange', symbol) ?? defaults?.exchange;
  const tickSize = optNumber(o, 'tickSize', symbol) ?? defaults?.tickSize;
  const priceMultiplier = optNumber(o, 'priceMultiplier', symbol) ?? defaults?.priceMultiplier ?? 1;
  const sessionCalendar = optString(o, 'sessionCalendar', symbol) ?? defaults?.sessionCalendar;
  const missing: string[] = [];
  if (kind === undefined) missing.push('kind');
  if (exchange === undefined) missing.push('exchange');
  if (tickSize === undefined) missing.push('tickSize');
  if (sessionCalendar === undefined) missing.push('sessionCalendar');
  if (kind === undefined || exchange === undefined || tickSize === undefined || sessionCalendar === undefined) {
    badSymbol(symbol, `${symbol}: missing ${missing.join(', ')} (no built-in defaults apply to root ${root})`, { field: missing[0] ?? null });
  }
  if (!EXCHANGE_RE.test(exchange)) badSymbol(symbol, `${symbol}: bad exchange ${JSON.stringify(exchange)}`, { field: 'exchange' });
  if (!SESSION_RE.test(sessionCalendar)) badSymbol(symbol, `${symbol}: bad session calendar ${JSON.stringify(sessionCalendar)}`, { field: 'sessionCalendar' });
  if (!(tickSize > 0)) badSymbol(symbol, `${symbol}: tick size must be > 0, got ${tickSize}`, { field: 'tickSize' });
  if (!(priceMultiplier > 0)) badSymbol(symbol, `${symbol}: price multiplier must be > 0, got ${priceMultiplier}`, { field: 'priceMultiplier' });
  return { symbol, root, exchange, kind, tickSize, priceMultiplier, sessionCalendar, contract };
}

/** Name of the first field where two metadata records differ, or null when they are the same. */
function firstDifference(a: Normalized, b: Normalized): string | null {
  for (const k of ['root', 'exchange', 'kind', 'tickSize', 'priceMultiplier', 'sessionCalendar'] as const) {
    if (!Object.is(a[k], b[k])) return k;
  }
  const ca = a.contract, cb = b.contract;
  if (ca === null || cb === null) return ca === cb ? null : 'contract';
  if (ca.month !== cb.month || ca.year !== cb.year) return 'contract';
  if (!Object.is(ca.expiryMicros, cb.expiryMicros)) return 'expiryMicros';
  return null;
}

/** ASCII string field: a u8 length at `lenByte`, the bytes from `charsByte` (validated before: ASCII, fits). */
function writeAscii(u8: Uint8Array, lenByte: number, charsByte: number, s: string): void {
  u8[lenByte] = s.length;
  for (let i = 0; i < s.length; i++) u8[charsByte + i] = s.charCodeAt(i);
}

function readAscii(u8: Uint8Array, lenByte: number, charsByte: number, maxChars: number): string | null {
  const n = u8[lenByte] ?? 0;
  if (n === 0 || n > maxChars) return null;
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(u8[charsByte + i] ?? 0);
  return s;
}

interface Validated { ctrl: Int32Array; capacity: number }

function validate(sab: unknown): Validated {
  if (!(sab instanceof SharedArrayBuffer)) {
    throw engineError('ENGINE_ERR_LAYOUT', 'symbol registry attach needs a SharedArrayBuffer', { got: Object.prototype.toString.call(sab) });
  }
  if (sab.byteLength < HEADER_BYTES) {
    throw engineError('ENGINE_ERR_LAYOUT', `buffer of ${sab.byteLength} bytes is shorter than a symbol registry header (${HEADER_BYTES})`, { byteLength: sab.byteLength });
  }
  const ctrl = new Int32Array(sab, 0, HEADER_I32);
  const magic = Atomics.load(ctrl, MAGIC_I32);
  if (magic !== REGISTRY_MAGIC) {
    throw engineError('ENGINE_ERR_LAYOUT', 'buffer is not a tickpipe symbol registry (bad magic)', { magic });
  }
  if (ctrl[LAYOUT_VERSION_I32] !== REGISTRY_LAYOUT_VERSION) {
    throw engineError('ENGINE_ERR_LAYOUT', `symbol registry layout version ${String(ctrl[LAYOUT_VERSION_I32])} is not ${REGISTRY_LAYOUT_VERSION}`);
  }
  const capacity = ctrl[CAPACITY_I32] ?? 0;
  const slotBytes = ctrl[SLOT_BYTES_I32] ?? 0;
  if (capacity < 1 || capacity > MAX_CAPACITY || slotBytes !== SLOT_BYTES || sab.byteLength !== registryBytes(capacity)) {
    throw engineError('ENGINE_ERR_LAYOUT', `symbol registry header (capacity ${capacity}, slot bytes ${slotBytes}) does not match a buffer of ${sab.byteLength} bytes`, { capacity, slotBytes, byteLength: sab.byteLength });
  }
  return { ctrl, capacity };
}

/** A character that trim() or toUpperCase() could change: blanks, controls, lower-case ASCII letters, anything outside ASCII. */
const NOT_PLAIN_UPPER = /[^\x21-\x60\x7b-\x7e]/;

/**
 * `query.trim().toUpperCase()`, without the call into ICU for a query that is already upper-case ASCII with
 * no blanks (MNQ, NQZ25: nearly every query; `resolve` runs for every latest-route request).
 */
export function normalizeQuery(query: string): string {
  return NOT_PLAIN_UPPER.test(query) ? query.trim().toUpperCase() : query;
}

export class SymbolRegistry {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  readonly #ctrl: Int32Array;
  readonly #u8: Uint8Array;
  readonly #u16: Uint16Array;
  readonly #f64: Float64Array;
  readonly #lockTimeoutMs: number;
  // per-thread cache of published slots 1..#seen (slots never change once published)
  #seen = 0;
  readonly #byName = new Map<string, number>();
  readonly #metas: (SymbolMeta | undefined)[] = [undefined];
  readonly #futuresByRoot = new Map<string, number[]>();

  private constructor(sab: SharedArrayBuffer, v: Validated, lockTimeoutMs: number) {
    this.buffer = sab;
    this.capacity = v.capacity;
    this.#ctrl = v.ctrl;
    this.#u8 = new Uint8Array(sab);
    this.#u16 = new Uint16Array(sab);
    this.#f64 = new Float64Array(sab);
    this.#lockTimeoutMs = lockTimeoutMs;
  }

  /** Allocate an empty registry (main thread). Pass `.buffer` to workers. */
  static create(opts: RegistryOptions = {}): SymbolRegistry {
    const capacity = opts.capacity ?? DEFAULT_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `symbol registry capacity must be an integer 1..${MAX_CAPACITY}, got ${String(capacity)}`);
    }
    const sab = new SharedArrayBuffer(registryBytes(capacity));
    const ctrl = new Int32Array(sab, 0, HEADER_I32);
    ctrl[LAYOUT_VERSION_I32] = REGISTRY_LAYOUT_VERSION;
    ctrl[CAPACITY_I32] = capacity;
    ctrl[SLOT_BYTES_I32] = SLOT_BYTES;
    Atomics.store(ctrl, MAGIC_I32, REGISTRY_MAGIC); // last: a half-initialised buffer never validates
    return new SymbolRegistry(sab, validate(sab), lockTimeoutOf(opts));
  }

  /** Attach to a registry created elsewhere (any thread). Wrong, short or foreign buffer: ENGINE_ERR_LAYOUT. */
  static attach(sab: SharedArrayBuffer, opts: Pick<RegistryOptions, 'lockTimeoutMs'> = {}): SymbolRegistry {
    return new SymbolRegistry(sab, validate(sab), lockTimeoutOf(opts));
  }

  /** Number of registered symbols (ids 1..size), as published now. */
  get size(): number {
    return Atomics.load(this.#ctrl, COUNT_I32);
  }

  /** Times any registrant found the lock taken (diagnostics). */
  get lockContentions(): number {
    return Atomics.load(this.#ctrl, LOCK_CONTENDED_I32);
  }

  /**
   * Register a symbol (any thread) and return its id. Idempotent: the same symbol with the same
   * metadata returns the existing id; with different metadata it is ENGINE_ERR_BAD_SYMBOL, as is a
   * malformed name or missing metadata. A full table is ENGINE_ERR_SYMBOL_TABLE_FULL. Cold path.
   */
  register(input: SymbolInput | string): number {
    const m = normalizeSymbolInput(input);
    const known = this.idOf(m.symbol);
    if (known !== 0) return this.#same(known, m);
    this.#lock();
    try {
      this.#refresh(); // under the lock nobody publishes: the cache is now complete
      const raced = this.#byName.get(m.symbol);
      if (raced !== undefined) return this.#same(raced, m);
      const count = Atomics.load(this.#ctrl, COUNT_I32);
      if (count >= this.capacity) {
        throw engineError('ENGINE_ERR_SYMBOL_TABLE_FULL', `symbol registry is full (${this.capacity} symbols); cannot add ${m.symbol}`, { symbol: m.symbol, capacity: this.capacity });
      }
      const id = count + 1;
      this.#writeSlot(id, m);
      // Publish after write: the slot's plain writes happen-before this seq-cst store, and a reader
      // that loads the new count (Atomics.load, seq-cst) is guaranteed to see them. Slots are never
      // written again, so readers need no lock and no retry.
      Atomics.store(this.#ctrl, COUNT_I32, id);
      this.#refresh();
      return id;
    } finally {
      this.#unlock();
    }
  }

  /** Id of `symbol` (exact name), or 0 when it is not registered. Hot-path safe: no allocation. */
  idOf(symbol: string): number {
    const id = this.#byName.get(symbol);
    if (id !== undefined) return id;
    if (Atomics.load(this.#ctrl, COUNT_I32) === this.#seen) return 0;
    this.#refresh();
    return this.#byName.get(symbol) ?? 0;
  }

  /** Id of `symbol`, or ENGINE_ERR_UNKNOWN_SYMBOL. */
  requireId(symbol: string): number {
    const id = typeof symbol === 'string' ? this.idOf(symbol) : 0;
    if (id === 0) throw engineError('ENGINE_ERR_UNKNOWN_SYMBOL', `unknown symbol ${JSON.stringify(symbol)}`, { symbol: String(symbol) });
    return id;
  }

  /** Metadata of `id` (frozen, cached per thread). An id not registered is ENGINE_ERR_UNKNOWN_SYMBOL. */
  metaOf(id: number): SymbolMeta {
    const m = this.#metas[id];
    if (m !== undefined) return m;
    if (Number.isInteger(id) && id > this.#seen) {
      this.#refresh();
      const again = this.#metas[id];
      if (again !== undefined) return again;
    }
    throw engineError('ENGINE_ERR_UNKNOWN_SYMBOL', `no symbol with id ${String(id)} (registered: ${this.#seen})`, { id: Number(id) });
  }

  /** Every registered symbol in id order (allocates the array; not for the hot path). */
  list(): SymbolMeta[] {
    this.#refresh();
    return this.#metas.slice(1) as SymbolMeta[];
  }

  /**
   * Front-month contract name of a futures `root` at `nowMicros` (Unix µs). Among the registered
   * quarterly (H/M/U/Z) contracts of the root, the one with the nearest expiry whose roll instant is
   * still ahead; when none qualifies, the contract the rule gives (`deriveFrontMonth`), which may not be
   * registered. A root that is neither registered as a future nor a built-in futures root is
   * ENGINE_ERR_UNKNOWN_SYMBOL. Expiry/roll rule: contracts.ts.
   */
  resolveFrontMonth(root: string, nowMicros: number): string {
    const id = this.#registeredFront(root, nowMicros);
    if (id !== 0) return this.metaOf(id).symbol;
    if (this.#futuresByRoot.has(root) || rootDefaults(root)?.kind === 'future') return deriveFrontMonth(root, nowMicros).symbol;
    throw engineError('ENGINE_ERR_UNKNOWN_SYMBOL', `${JSON.stringify(root)} is not a known futures root`, { symbol: String(root) });
  }

  /**
   * Id for a user query (DESIGN.md §6): an exact symbol name first (`MNQZ25`, `SPY`), then the query
   * trimmed and upper-cased, then a futures root (`MNQ`, `mnq`) resolved to its front-month contract.
   * 0 when nothing matches, including a root whose front month is not registered.
   */
  resolve(query: string, nowMicros: number): number {
    if (typeof query !== 'string') return 0;
    const exact = this.idOf(query);
    if (exact !== 0) return exact;
    const q = normalizeQuery(query);
    if (q !== query) {
      const id = this.idOf(q);
      if (id !== 0) return id;
    }
    const front = this.#registeredFront(q, nowMicros);
    if (front !== 0) return front;
    if (this.#futuresByRoot.has(q) || rootDefaults(q)?.kind === 'future') return this.idOf(deriveFrontMonth(q, nowMicros).symbol);
    return 0;
  }

  /** Like `resolve`, but an unmatched query is ENGINE_ERR_UNKNOWN_SYMBOL. */
  requireResolve(query: string, nowMicros: number): number {
    const id = this.resolve(query, nowMicros);
    if (id === 0) throw engineError('ENGINE_ERR_UNKNOWN_SYMBOL', `unknown symbol or root ${JSON.stringify(query)}`, { symbol: String(query) });
    return id;
  }

  /**
   * Supervisor: release the lock if the thread `deadThreadId` died holding it (see the module comment).
   * Returns true when the lock was held by that thread and is now free. Only call it for a thread that
   * has exited.
   */
  recoverLock(deadThreadId: number): boolean {
    const released = Atomics.compareExchange(this.#ctrl, LOCK_I32, deadThreadId + 1, 0) === deadThreadId + 1;
    if (released) Atomics.notify(this.#ctrl, LOCK_I32);
    return released;
  }

  #registeredFront(root: string, nowMicros: number): number {
    if (Atomics.load(this.#ctrl, COUNT_I32) !== this.#seen) this.#refresh();
    const ids = this.#futuresByRoot.get(root);
    if (ids === undefined) return 0;
    let best = 0;
    let bestExpiry = Infinity;
    for (const id of ids) {
      const c = (this.#metas[id] as SymbolMeta).contract as FuturesContractMeta;
      if (isQuarterlyMonth(c.month) && c.rollMicros > nowMicros && c.expiryMicros < bestExpiry) {
        best = id;
        bestExpiry = c.expiryMicros;
      }
    }
    return best;
  }

  #same(id: number, m: Normalized): number {
    const existing = this.metaOf(id);
    const diff = firstDifference(existing, m);
    if (diff !== null) {
      badSymbol(m.symbol, `${m.symbol} is already registered (id ${id}) with different metadata (${diff})`, { id, field: diff });
    }
    return id;
  }

  #lock(): void {
    const me = threadId + 1;
    const c = this.#ctrl;
    if (Atomics.compareExchange(c, LOCK_I32, 0, me) === 0) return;
    Atomics.add(c, LOCK_CONTENDED_I32, 1);
    const deadline = performance.now() + this.#lockTimeoutMs;
    for (let spins = 0; ; spins++) {
      const holder = Atomics.compareExchange(c, LOCK_I32, 0, me);
      if (holder === 0) return;
      if (holder === me) throw engineError('ENGINE_ERR_INTERNAL', 'symbol registry lock is already held by this thread');
      // why: the critical section is a few microseconds, so spin first; after that, park on the lock
      // word with Atomics.wait (allowed on Node's main thread too). The 1 ms timeout bounds a lost
      // notify, and the deadline turns a holder that died into a coded error instead of a hang.
      if (spins >= LOCK_SPINS_BEFORE_WAIT) Atomics.wait(c, LOCK_I32, holder, 1);
      if (performance.now() > deadline) {
        throw engineError('ENGINE_ERR_TIMEOUT', `symbol registry lock held by thread ${holder - 1} for more than ${this.#lockTimeoutMs} ms (did it die while registering? see recoverLock)`, { holderThreadId: holder - 1, timeoutMs: this.#lockTimeoutMs });
      }
    }
  }

  #unlock(): void {
    Atomics.store(this.#ctrl, LOCK_I32, 0);
    Atomics.notify(this.#ctrl, LOCK_I32, 1);
  }

  #writeSlot(id: number, m: Normalized): void {
    const b = slotByteOf(id);
    const u8 = this.#u8;
    u8.fill(0, b, b + SLOT_BYTES); // a dead registrant may have left a half-written slot here
    writeAscii(u8, b + SYMBOL_LEN_BYTE, b + SYMBOL_CHARS_BYTE, m.symbol);
    writeAscii(u8, b + ROOT_LEN_BYTE, b + ROOT_CHARS_BYTE, m.root);
    writeAscii(u8, b + EXCHANGE_LEN_BYTE, b + EXCHANGE_CHARS_BYTE, m.exchange);
    writeAscii(u8, b + SESSION_LEN_BYTE, b + SESSION_CHARS_BYTE, m.sessionCalendar);
    this.#f64[(b + TICK_SIZE_BYTE) >> 3] = m.tickSize;
    this.#f64[(b + PRICE_MULTIPLIER_BYTE) >> 3] = m.priceMultiplier;
    this.#f64[(b + EXPIRY_MICROS_BYTE) >> 3] = m.contract ? m.contract.expiryMicros : NaN;
    this.#f64[(b + ROLL_MICROS_BYTE) >> 3] = m.contract ? m.contract.rollMicros : NaN;
    u8[b + KIND_BYTE] = SymbolKindCode[m.kind];
    u8[b + CONTRACT_MONTH_BYTE] = m.contract ? m.contract.month : 0;
    this.#u16[(b + CONTRACT_YEAR_BYTE) >> 1] = m.contract ? m.contract.year : 0;
    this.#u16[(b + SLOT_ID_BYTE) >> 1] = id;
  }

  #readSlot(id: number): SymbolMeta {
    const b = slotByteOf(id);
    const u8 = this.#u8;
    const symbol = readAscii(u8, b + SYMBOL_LEN_BYTE, b + SYMBOL_CHARS_BYTE, SYMBOL_MAX_CHARS);
    const root = readAscii(u8, b + ROOT_LEN_BYTE, b + ROOT_CHARS_BYTE, ROOT_MAX_CHARS);
    const exchange = readAscii(u8, b + EXCHANGE_LEN_BYTE, b + EXCHANGE_CHARS_BYTE, EXCHANGE_MAX_CHARS);
    const sessionCalendar = readAscii(u8, b + SESSION_LEN_BYTE, b + SESSION_CHARS_BYTE, SESSION_MAX_CHARS);
    const kind = KIND_BY_CODE[u8[b + KIND_BYTE] ?? 0];
    if (symbol === null || root === null || exchange === null || sessionCalendar === null || kind === undefined || this.#u16[(b + SLOT_ID_BYTE) >> 1] !== id) {
      throw engineError('ENGINE_ERR_LAYOUT', `symbol registry slot ${id} is corrupt`, { id });
    }
    const month = u8[b + CONTRACT_MONTH_BYTE] ?? 0;
    const contract: FuturesContractMeta | null = kind === 'future' && month >= 1 && month <= 12
      ? Object.freeze({
        monthCode: codeOfMonth(month), month, year: this.#u16[(b + CONTRACT_YEAR_BYTE) >> 1] ?? 0,
        expiryMicros: this.#f64[(b + EXPIRY_MICROS_BYTE) >> 3] ?? NaN, rollMicros: this.#f64[(b + ROLL_MICROS_BYTE) >> 3] ?? NaN,
      })
      : null;
    return Object.freeze({
      id, symbol, root, exchange, kind, sessionCalendar, contract,
      tickSize: this.#f64[(b + TICK_SIZE_BYTE) >> 3] ?? NaN,
      priceMultiplier: this.#f64[(b + PRICE_MULTIPLIER_BYTE) >> 3] ?? NaN,
    });
  }

  /** Bring the per-thread cache up to the published count (cold: runs only when the count moved). */
  #refresh(): void {
    const count = Atomics.load(this.#ctrl, COUNT_I32);
    for (let id = this.#seen + 1; id <= count; id++) {
      const m = this.#readSlot(id);
      this.#metas[id] = m;
      this.#byName.set(m.symbol, id);
      if (m.contract !== null) {
        const ids = this.#futuresByRoot.get(m.root);
        if (ids === undefined) this.#futuresByRoot.set(m.root, [id]);
        else ids.push(id);
      }
    }
    if (count > this.#seen) this.#seen = count;
  }
}

function lockTimeoutOf(opts: Pick<RegistryOptions, 'lockTimeoutMs'>): number {
  const t = opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  if (typeof t !== 'number' || !(t > 0)) throw engineError('ENGINE_ERR_INVALID_ARG', `lockTimeoutMs must be > 0, got ${String(t)}`);
  return t;
}
