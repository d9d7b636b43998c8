/**
 * API keys (issue 5): the spec's "AI model" entity — id, name, permissions (scopes, symbols, rate) — kept in
 * `<data-dir>/keys.json`. Only a SHA-256 hash of each key's secret is stored; the key itself is shown once,
 * when it is created, and never logged.
 *
 * Key format: `tpk_<id>_<secret>`: `id` is 12 hex characters (the lookup handle, also shown by `keys list`),
 * `secret` is 32 random bytes in base64url (256 bits: a plain SHA-256 is enough, no slow KDF is needed for
 * a random secret of that size). `authenticate` finds the record by id (a Map, no scan), hashes the
 * presented secret and compares the two digests with `crypto.timingSafeEqual`; an unknown id is compared
 * against a dummy digest so both paths do the same work. A key that has matched its hash once is kept in
 * memory (never written) and later requests compare the presented text with it in constant time (`diffKey`,
 * an XOR-accumulate loop over all 60 characters) instead of hashing: about 0.5 µs per request instead of 1.
 *
 * The file is written atomically (temporary file, fsync, rename, mode 0600) after re-reading it, so the
 * CLI and a running server can both change it. A running server notices changes made by the CLI
 * (`watch: true`: fs.watchFile polling, then an async re-read).
 */
import { createHash, hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unwatchFile, watchFile, writeSync } from 'node:fs';
import { mkdir, open as openFile, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { engineError } from '../../engine/errors.ts';
import type { KeyAdmin, KeyInfo, KeySpec } from '../deps.ts';
import { SCOPES, type Principal, type Scope } from '../types.ts';

export const KEYS_FILE = 'keys.json';
/** The key format (what `isKeyText` checks). */
export const KEY_RE = /^tpk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
const ID_CHARS = 12;
const SECRET_CHARS = 43;
/** `tpk_` + id + `_` + secret. */
const KEY_CHARS = 4 + ID_CHARS + 1 + SECRET_CHARS;

/** Byte classes of the key format: bit 1 = lower-case hex digit (the id), bit 2 = base64url character (the secret). */
const KEY_CLASS = (() => {
  const t = new Uint8Array(256);
  for (const c of '0123456789abcdef') t[c.charCodeAt(0)] = (t[c.charCodeAt(0)] as number) | 1;
  for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') t[c.charCodeAt(0)] = (t[c.charCodeAt(0)] as number) | 2;
  return t;
})();

/**
 * Copy `t` into `buf` (KEY_CHARS bytes) and check the key format there: what KEY_RE.test(t) says, without
 * the regex engine's match objects and without reading a sliced string char by char (this runs for every
 * request). A character outside ASCII takes more than one UTF-8 byte, so such a text never fills the buffer.
 */
function keyBytes(t: string, buf: Buffer): boolean {
  if (t.length !== KEY_CHARS || buf.write(t, 0, KEY_CHARS, 'utf8') !== KEY_CHARS) return false;
  if (buf[0] !== 0x74 || buf[1] !== 0x70 || buf[2] !== 0x6b || buf[3] !== 0x5f || buf[4 + ID_CHARS] !== 0x5f) return false;
  for (let i = 4; i < 4 + ID_CHARS; i++) if (((KEY_CLASS[buf[i] as number] as number) & 1) === 0) return false;
  for (let i = 5 + ID_CHARS; i < KEY_CHARS; i++) if (((KEY_CLASS[buf[i] as number] as number) & 2) === 0) return false;
  return true;
}

/**
 * The key id of a key text (its 12 lower-case hex digits at 4..15) as a number (< 2^48: exact), for a map
 * lookup without a substring; -1 when those characters are not lower-case hex.
 */
function idNumber(t: string): number {
  let n = 0;
  for (let i = 4; i < 4 + ID_CHARS; i++) {
    const c = t.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) n = n * 16 + (c - 0x30);
    else if (c >= 0x61 && c <= 0x66) n = n * 16 + (c - 0x57);
    else return -1;
  }
  return n;
}

/**
 * 0 when the text equals the key bytes (one UTF-16 unit against one byte each; a unit above 0xff never
 * equals), else not 0. Constant time: every unit is compared, whatever differs, with no branch on the
 * data (the XOR-accumulate loop of constant-time comparisons), so the time tells nothing about how much
 * of the secret matched.
 */
function diffKey(t: string, key: Uint8Array): number {
  let d = 0;
  for (let i = 0; i < KEY_CHARS; i++) d |= t.charCodeAt(i) ^ (key[i] as number);
  return d;
}

const formatScratch = Buffer.alloc(KEY_CHARS);
/** KEY_RE.test(t), the way `authenticate` checks it. */
export function isKeyText(t: string): boolean {
  return keyBytes(t, formatScratch);
}

const NAME_RE = /^[\x20-\x7e]{1,64}$/;
const SYMBOL_RE = /^[A-Z0-9$^/.#][A-Z0-9_.\-/:$^#]{0,30}$/;
const MAX_RATE = 1_000_000;
const DUMMY_DIGEST = createHash('sha256').update('tickpipe-dummy').digest();

interface StoredKey {
  id: string;
  name: string;
  /** hex SHA-256 of the secret part */
  hash: string;
  scopes: Scope[];
  symbols: string[] | null;
  ratePerSec: number;
  createdAt: string;
  revokedAt: string | null;
}

interface KeysFile { version: 1; keys: StoredKey[] }

interface Entry {
  stored: StoredKey;
  digest: Buffer;
  principal: Principal;
  /**
   * The whole key text (bytes) once its secret has matched the stored hash (memory only, never written;
   * dropped on every reload): later requests compare with it (`diffKey`, constant time) instead of hashing.
   */
  verified: Uint8Array | null;
}

export interface KeyStoreOptions {
  /** Re-read the file when another process changes it (server); default false (CLI). */
  watch?: boolean;
  /** Polling interval of the watch, ms (default 1000). */
  watchIntervalMs?: number;
}

/** SHA-256 (one-shot `crypto.hash`: about a third cheaper per request than a Hash object). */
function sha256(s: string): Buffer {
  return hash('sha256', s, 'buffer');
}

function badSpec(msg: string): never {
  throw engineError('ENGINE_ERR_INVALID_ARG', msg);
}

/** Validate and normalise a key spec (names, scopes, symbols, rate): ENGINE_ERR_INVALID_ARG on a problem. */
export function normalizeSpec(spec: KeySpec): Omit<StoredKey, 'id' | 'hash' | 'createdAt' | 'revokedAt'> {
  if (typeof spec !== 'object' || spec === null) badSpec('key spec must be an object');
  const name = typeof spec.name === 'string' ? spec.name.trim() : '';
  if (!NAME_RE.test(name)) badSpec('key name must be 1-64 printable ASCII characters');
  if (!Array.isArray(spec.scopes) || spec.scopes.length === 0) badSpec(`scopes must be a non-empty list of ${SCOPES.join(', ')}`);
  const scopes: Scope[] = [];
  for (const s of spec.scopes) {
    const v = typeof s === 'string' ? s.trim() : '';
    if (!(SCOPES as readonly string[]).includes(v)) badSpec(`unknown scope ${JSON.stringify(s)} (known: ${SCOPES.join(', ')})`);
    if (!scopes.includes(v as Scope)) scopes.push(v as Scope);
  }
  let symbols: string[] | null = null;
  if (spec.symbols !== undefined && spec.symbols !== null) {
    if (!Array.isArray(spec.symbols)) badSpec('symbols must be a list');
    const list = spec.symbols.map((s) => (typeof s === 'string' ? s.trim().toUpperCase() : '')).filter((s) => s !== '');
    for (const s of list) if (!SYMBOL_RE.test(s)) badSpec(`bad symbol ${JSON.stringify(s)}`);
    symbols = list.length === 0 ? null : [...new Set(list)];
  }
  const rate = spec.ratePerSec ?? 0;
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0 || rate > MAX_RATE) badSpec(`rate must be a number of requests per second in 0..${MAX_RATE} (0 = unlimited)`);
  return { name, scopes, symbols, ratePerSec: rate };
}

function parseFile(text: string, path: string): KeysFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw engineError('ENGINE_ERR_CONFIG', `${path} is not valid JSON: ${(err as Error).message}`, { file: path });
  }
  const f = data as Partial<KeysFile> | null;
  if (typeof f !== 'object' || f === null || f.version !== 1 || !Array.isArray(f.keys)) {
    throw engineError('ENGINE_ERR_CONFIG', `${path} is not a tickpipe keys file (want {"version":1,"keys":[...]})`, { file: path });
  }
  for (const k of f.keys) {
    if (typeof k !== 'object' || k === null || typeof k.id !== 'string' || !/^[0-9a-f]{12}$/.test(k.id) || typeof k.hash !== 'string' || !/^[0-9a-f]{64}$/.test(k.hash)
      || !Array.isArray(k.scopes) || typeof k.name !== 'string') {
      throw engineError('ENGINE_ERR_CONFIG', `${path} holds a malformed key record`, { file: path });
    }
  }
  return f as KeysFile;
}

function addKey(f: KeysFile, n: ReturnType<typeof normalizeSpec>): { key: string; info: KeyInfo } {
  let id = randomBytes(6).toString('hex');
  while (f.keys.some((k) => k.id === id)) id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const stored: StoredKey = { id, ...n, hash: sha256(secret).toString('hex'), createdAt: new Date().toISOString(), revokedAt: null };
  f.keys.push(stored);
  return { key: `tpk_${id}_${secret}`, info: toInfo(stored) };
}

function markRevoked(f: KeysFile, id: string): boolean {
  const k = f.keys.find((x) => x.id === id);
  if (k === undefined || k.revokedAt !== null) return false;
  k.revokedAt = new Date().toISOString();
  return true;
}

function toInfo(k: StoredKey): KeyInfo {
  return { id: k.id, name: k.name, scopes: [...k.scopes], symbols: k.symbols === null ? null : [...k.symbols], ratePerSec: k.ratePerSec, createdAt: k.createdAt, revokedAt: k.revokedAt };
}

export class KeyStore implements KeyAdmin {
  readonly path: string;
  #byId = new Map<string, Entry>();
  /** The same entries by the id's numeric value (12 hex digits), for the per-request lookup. */
  #byNumber = new Map<number, Entry>();
  #watching = false;
  /** The presented key text, for the constant-time compare of the fast path. */
  readonly #scratch = Buffer.alloc(KEY_CHARS);
  #reloading: Promise<void> | null = null;
  #reloadAgain: Promise<void> | null = null;
  /** Failed authentications (unknown id, bad secret, malformed, revoked). */
  failures = 0;

  private constructor(path: string) {
    this.path = path;
  }

  /** Open (or start empty) `<dataDir>/keys.json`. A corrupt file is ENGINE_ERR_CONFIG naming it. */
  static open(dataDir: string, opts: KeyStoreOptions = {}): KeyStore {
    const ks = new KeyStore(join(dataDir, KEYS_FILE));
    ks.#load(ks.#readSync());
    if (opts.watch === true) {
      ks.#watching = true;
      const interval = opts.watchIntervalMs ?? 1000;
      watchFile(ks.path, { interval, persistent: false }, () => { void ks.reload().catch(() => undefined); });
      // watchFile takes its baseline stat asynchronously: a write between the synchronous load above and that first
      // stat would never show as a change. One re-read after the first poll closes that window.
      setTimeout(() => { if (ks.#watching) void ks.reload().catch(() => undefined); }, interval * 2).unref();
    }
    return ks;
  }

  #readSync(): KeysFile {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, keys: [] };
      throw engineError('ENGINE_ERR_FILE_IO', `cannot read ${this.path}: ${(err as Error).message}`, { file: this.path }, err);
    }
    return parseFile(text, this.path);
  }

  #load(f: KeysFile): void {
    const m = new Map<string, Entry>();
    for (const k of f.keys) {
      const principal: Principal = Object.freeze({
        keyId: k.id, name: k.name, scopes: new Set(k.scopes), symbols: k.symbols === null || k.symbols.length === 0 ? null : new Set(k.symbols),
        ratePerSec: k.ratePerSec,
      });
      m.set(k.id, { stored: k, digest: Buffer.from(k.hash, 'hex'), principal, verified: null });
    }
    this.#byId = m;
    const byNumber = new Map<number, Entry>();
    for (const [id, e] of m) if (/^[0-9a-f]{12}$/.test(id)) byNumber.set(Number.parseInt(id, 16), e);
    this.#byNumber = byNumber;
  }

  /** Re-read the file (async; the server calls it when the file changes). A bad file keeps the old keys. */
  reload(): Promise<void> {
    // A change seen while a read is in flight may have landed after that read: read once more when it ends.
    if (this.#reloading !== null) {
      this.#reloadAgain ??= this.#reloading.catch(() => undefined).then(() => { this.#reloadAgain = null; return this.reload(); });
      return this.#reloadAgain;
    }
    this.#reloading = (async () => {
      try {
        let text: string;
        try {
          text = await readFile(this.path, 'utf8');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') { this.#load({ version: 1, keys: [] }); return; }
          throw err;
        }
        this.#load(parseFile(text, this.path));
      } finally {
        this.#reloading = null;
      }
    })();
    return this.#reloading;
  }

  authenticate(token: string | undefined): Principal | null {
    if (typeof token !== 'string' || token.length !== KEY_CHARS) { this.failures++; return null; }
    const id = idNumber(token);
    const e = id < 0 ? undefined : this.#byNumber.get(id);
    if (e !== undefined && e.verified !== null) {
      // fast path: this key was verified against its hash before; compare the whole key text with it in
      // constant time (diffKey) instead of hashing again. Equal means it is that well-formed key.
      if (diffKey(token, e.verified) === 0 && e.stored.revokedAt === null) return e.principal;
    }
    const key = this.#scratch;
    if (!keyBytes(token, key)) { this.failures++; return null; }
    const digest = sha256(token.substring(KEY_CHARS - SECRET_CHARS));
    // constant time in the secret; the same work for a known and an unknown id
    const ok = timingSafeEqual(digest, e === undefined ? DUMMY_DIGEST : e.digest);
    if (!ok || e === undefined || e.stored.revokedAt !== null) { this.failures++; return null; }
    e.verified = new Uint8Array(key); // a copy (a plain Uint8Array: the per-request compare reads it): the scratch is overwritten by the next check
    return e.principal;
  }

  list(): KeyInfo[] {
    return [...this.#byId.values()].map((e) => toInfo(e.stored));
  }

  get(id: string): KeyInfo | null {
    const e = this.#byId.get(id);
    return e === undefined ? null : toInfo(e.stored);
  }

  /** Create a key (async file I/O: for the server); returns the key text (show it once) and its public record. */
  create(spec: KeySpec): Promise<{ key: string; info: KeyInfo }> {
    const n = normalizeSpec(spec);
    return this.#serial(async () => {
      const f = await this.#readAsync();
      const r = addKey(f, n);
      await this.#writeAsync(f);
      this.#load(f);
      return r;
    });
  }

  /** Create a key (sync file I/O: for the CLI and start-up). */
  createSync(spec: KeySpec): { key: string; info: KeyInfo } {
    const n = normalizeSpec(spec);
    const f = this.#readSync();
    const r = addKey(f, n);
    this.#write(f);
    this.#load(f);
    return r;
  }

  /** Revoke by id (async file I/O); false when there is no such (unrevoked) key. */
  revoke(id: string): Promise<boolean> {
    return this.#serial(async () => {
      const f = await this.#readAsync();
      if (!markRevoked(f, id)) return false;
      await this.#writeAsync(f);
      this.#load(f);
      return true;
    });
  }

  /** Revoke by id (sync file I/O: for the CLI); false when there is no such (unrevoked) key. */
  revokeSync(id: string): boolean {
    const f = this.#readSync();
    if (!markRevoked(f, id)) return false;
    this.#write(f);
    this.#load(f);
    return true;
  }

  #tail: Promise<unknown> = Promise.resolve();
  /** One file update at a time from this process. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #readAsync(): Promise<KeysFile> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, keys: [] };
      throw engineError('ENGINE_ERR_FILE_IO', `cannot read ${this.path}: ${(err as Error).message}`, { file: this.path }, err);
    }
    return parseFile(text, this.path);
  }

  async #writeAsync(f: KeysFile): Promise<void> {
    const tmp = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await mkdir(dirname(this.path), { recursive: true });
      const fh = await openFile(tmp, 'w', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(f, null, 2)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw engineError('ENGINE_ERR_FILE_IO', `cannot write ${this.path}: ${(err as Error).message}`, { file: this.path }, err);
    }
  }

  #write(f: KeysFile): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, `${JSON.stringify(f, null, 2)}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
    } catch (err) {
      throw engineError('ENGINE_ERR_FILE_IO', `cannot write ${this.path}: ${(err as Error).message}`, { file: this.path }, err);
    }
  }

  close(): void {
    if (this.#watching) unwatchFile(this.path);
    this.#watching = false;
  }
}

/**
 * At `tickpipe start`: when no usable admin key exists, create one named `local-admin` with every scope and
 * return its key text (print it once); otherwise null.
 */
export function ensureLocalKey(dataDir: string): { key: string; info: KeyInfo } | null {
  const ks = KeyStore.open(dataDir);
  try {
    if (ks.list().some((k) => k.revokedAt === null && k.scopes.includes('admin'))) return null;
    return ks.createSync({ name: 'local-admin', scopes: [...SCOPES] });
  } finally {
    ks.close();
  }
}
