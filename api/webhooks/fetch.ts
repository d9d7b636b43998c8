/**
 * A download that cannot be turned against the machine it runs on (SSRF rules for `/gex_history_url`):
 *
 * - the URL's scheme is https (http only with `allowHttp`), its host is on the allowlist (`host` = that
 *   host on the scheme's default port, `host:port` = exactly that port), no user:password part;
 * - the host name is resolved (every address) and the download refused if ANY address is private,
 *   loopback, link-local, unique-local, multicast, reserved or unspecified (IPv4 and IPv6, including
 *   IPv4-mapped IPv6); the connection then goes to the vetted address itself (no second DNS lookup that
 *   a rebinding DNS server could answer differently);
 * - redirects are not followed by the HTTP client: each Location is checked by the same rules (allowlist,
 *   addresses) before the next request, at most `maxRedirects` hops;
 * - a size limit on the bytes received (Content-Length checked first, then counted while streaming) and
 *   on the decompressed size (gzip, detected by its magic bytes 1f 8b, as GEXBot's blob host serves plain
 *   JSON under `.json.gz` too), and one time limit for the whole download including redirects.
 *
 * Tests need a fake host on loopback: `testAllowLoopback: ['localhost:PORT']` lets exactly those host:port
 * pairs resolve to a loopback address. It exists for tests only; nothing in the engine's configuration sets it.
 */
import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';
import type { LookupFunction } from 'node:net';

export type FetchRefusalCode =
  | 'URL_INVALID' | 'URL_NOT_ALLOWED' | 'ADDRESS_REFUSED' | 'DNS_FAILED' | 'TOO_LARGE' | 'TIMEOUT' | 'TOO_MANY_REDIRECTS'
  | 'HTTP_STATUS' | 'DOWNLOAD_FAILED';

export class FetchRefused extends Error {
  readonly code: FetchRefusalCode;
  constructor(code: FetchRefusalCode, message: string) {
    super(message);
    this.code = code;
  }
}

export interface FetchPolicy {
  /** `host` or `host:port` (lower case); `*.example.com` matches subdomains. */
  allowedHosts: readonly string[];
  /** Allow plain http (default false). */
  allowHttp?: boolean;
  /** Bytes received at most (default 64 MiB). */
  maxBytes?: number;
  /** Whole download, redirects included (default 60 s). */
  timeoutMs?: number;
  /** Default 3. */
  maxRedirects?: number;
  /** TESTS ONLY: `host:port` pairs allowed to resolve to loopback addresses. */
  testAllowLoopback?: readonly string[];
}

const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24],
  ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) BLOCKED.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 23], ['2001:db8::', 32], ['2002::', 16],
  ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) BLOCKED.addSubnet(net, prefix, 'ipv6');
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** The IPv4 address inside an IPv4-mapped/compatible IPv6 address (::ffff:a.b.c.d), or null. */
function mappedV4(addr: string): string | null {
  const m = /^::(ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  if (m) return m[2]!;
  const h = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(addr);
  if (h) {
    const a = parseInt(h[1]!, 16), b = parseInt(h[2]!, 16);
    return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
  }
  return null;
}

/** True when `addr` is not a public unicast address (private, loopback, link-local, reserved...). */
export function isBlockedAddress(addr: string): boolean {
  const fam = isIP(addr);
  if (fam === 0) return true;
  if (fam === 6) {
    const v4 = mappedV4(addr);
    if (v4 !== null) return BLOCKED.check(v4, 'ipv4');
    return BLOCKED.check(addr, 'ipv6');
  }
  return BLOCKED.check(addr, 'ipv4');
}

function isLoopback(addr: string): boolean {
  const fam = isIP(addr);
  if (fam === 6) {
    const v4 = mappedV4(addr);
    return v4 !== null ? LOOPBACK.check(v4, 'ipv4') : LOOPBACK.check(addr, 'ipv6');
  }
  return fam === 4 && LOOPBACK.check(addr, 'ipv4');
}

function hostKey(u: URL): { host: string; port: number; key: string } {
  const host = u.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const port = u.port !== '' ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  return { host, port, key: `${host}:${port}` };
}

/** Check scheme, credentials and allowlist (no I/O). Throws FetchRefused. */
export function checkUrl(raw: string | URL, policy: FetchPolicy): URL {
  let u: URL;
  try {
    u = typeof raw === 'string' ? new URL(raw) : raw;
  } catch {
    throw new FetchRefused('URL_INVALID', `not a URL: ${JSON.stringify(String(raw).slice(0, 200))}`);
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && policy.allowHttp === true)) {
    throw new FetchRefused('URL_NOT_ALLOWED', `scheme ${u.protocol.replace(':', '')} is not allowed (https${policy.allowHttp ? ' or http' : ''} only)`);
  }
  if (u.username !== '' || u.password !== '') throw new FetchRefused('URL_NOT_ALLOWED', 'URLs with credentials are not allowed');
  const { host, port, key } = hostKey(u);
  const defaultPort = u.protocol === 'https:' ? 443 : 80;
  const ok = policy.allowedHosts.some((raw2) => {
    const e = raw2.toLowerCase().trim();
    const m = /^(.*?)(?::(\d+))?$/.exec(e)!;
    const eh = m[1]!.replace(/^\[|\]$/g, '');
    const ep = m[2] !== undefined ? Number(m[2]) : defaultPort;
    if (ep !== port) return false;
    if (eh.startsWith('*.')) return host.endsWith(eh.slice(1)) && host.length > eh.length - 1;
    return eh === host;
  });
  if (!ok) throw new FetchRefused('URL_NOT_ALLOWED', `host ${key} is not on the allowlist`);
  return u;
}

/** Resolve the URL's host and vet every address. Returns the address to connect to. */
export async function vetAddress(u: URL, policy: FetchPolicy): Promise<{ address: string; family: number }> {
  const { host, key } = hostKey(u);
  const testLoopback = (policy.testAllowLoopback ?? []).map((x) => x.toLowerCase()).includes(key);
  let addrs: { address: string; family: number }[];
  if (isIP(host) !== 0) addrs = [{ address: host, family: isIP(host) }];
  else {
    try {
      addrs = await lookup(host, { all: true, verbatim: true });
    } catch (e) {
      throw new FetchRefused('DNS_FAILED', `cannot resolve ${host}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (addrs.length === 0) throw new FetchRefused('DNS_FAILED', `${host} has no address`);
  for (const a of addrs) {
    if (testLoopback && isLoopback(a.address)) continue;
    if (isBlockedAddress(a.address)) {
      throw new FetchRefused('ADDRESS_REFUSED', `${host} resolves to ${a.address}, a private, loopback, link-local or reserved address`);
    }
  }
  return addrs[0]!;
}

export interface Downloaded {
  bytes: Buffer;
  finalUrl: string;
  redirects: number;
  contentType: string | null;
}

/**
 * Download `url` under `policy`. Rejects with FetchRefused (never anything else). `signal` aborts early
 * (reported as TIMEOUT).
 */
export async function safeDownload(url: string, policy: FetchPolicy, signal?: AbortSignal): Promise<Downloaded> {
  const maxBytes = policy.maxBytes ?? 64 * 1024 * 1024;
  const timeoutMs = policy.timeoutMs ?? 60_000;
  const maxRedirects = policy.maxRedirects ?? 3;
  const timeout = AbortSignal.timeout(timeoutMs);
  const sig = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let u = checkUrl(url, policy);
  for (let hop = 0; ; hop++) {
    if (sig.aborted) throw new FetchRefused('TIMEOUT', `download did not finish within ${timeoutMs} ms`);
    const addr = await vetAddress(u, policy);
    const r = await request(u, addr, maxBytes, sig, timeoutMs);
    if (r.location !== null) {
      if (hop >= maxRedirects) throw new FetchRefused('TOO_MANY_REDIRECTS', `more than ${maxRedirects} redirects`);
      let next: URL;
      try {
        next = new URL(r.location, u);
      } catch {
        throw new FetchRefused('URL_INVALID', `redirect to an invalid URL ${JSON.stringify(r.location.slice(0, 200))}`);
      }
      try {
        u = checkUrl(next, policy);
      } catch (e) {
        throw new FetchRefused((e as FetchRefused).code, `redirect refused: ${(e as Error).message}`);
      }
      continue;
    }
    return { bytes: r.body!, finalUrl: u.href, redirects: hop, contentType: r.contentType };
  }
}

interface Hop { location: string | null; body: Buffer | null; contentType: string | null }

function request(u: URL, addr: { address: string; family: number }, maxBytes: number, signal: AbortSignal, timeoutMs: number): Promise<Hop> {
  return new Promise<Hop>((resolve, reject) => {
    const pinned: LookupFunction = (_host, opts, cb) => {
      if ((opts as { all?: boolean }).all) (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [addr]);
      else cb(null, addr.address, addr.family);
    };
    const mod = u.protocol === 'https:' ? https : http;
    let settled = false;
    const settle = (f: () => void): void => { if (!settled) { settled = true; f(); } };
    const fail = (e: FetchRefused): void => { settle(() => reject(e)); req.destroy(); };
    const req = mod.request(u, {
      method: 'GET', lookup: pinned, signal, agent: false,
      headers: { 'user-agent': 'tickpipe/0.1 (gex history ingest)', accept: 'application/json, application/gzip, */*', 'accept-encoding': 'identity' },
    }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && status !== 304) {
        res.resume();
        const loc = res.headers.location;
        if (typeof loc !== 'string' || loc === '') { fail(new FetchRefused('HTTP_STATUS', `HTTP ${status} without a Location`)); return; }
        settle(() => resolve({ location: loc, body: null, contentType: null }));
        return;
      }
      if (status !== 200) { res.resume(); fail(new FetchRefused('HTTP_STATUS', `HTTP ${status} from ${u.host}`)); return; }
      const len = Number(res.headers['content-length'] ?? NaN);
      if (Number.isFinite(len) && len > maxBytes) { fail(new FetchRefused('TOO_LARGE', `Content-Length ${len} is above the limit of ${maxBytes} bytes`)); res.destroy(); return; }
      const chunks: Buffer[] = [];
      let total = 0;
      res.on('data', (c: Buffer) => {
        total += c.length;
        if (total > maxBytes) { fail(new FetchRefused('TOO_LARGE', `more than ${maxBytes} bytes received`)); res.destroy(); return; }
        chunks.push(c);
      });
      res.on('end', () => settle(() => resolve({ location: null, body: Buffer.concat(chunks, total), contentType: typeof res.headers['content-type'] === 'string' ? res.headers['content-type'] : null })));
      res.on('error', (e) => settle(() => reject(signal.aborted ? new FetchRefused('TIMEOUT', `download did not finish within ${timeoutMs} ms`) : new FetchRefused('DOWNLOAD_FAILED', e.message))));
      res.on('aborted', () => settle(() => reject(signal.aborted ? new FetchRefused('TIMEOUT', `download did not finish within ${timeoutMs} ms`) : new FetchRefused('DOWNLOAD_FAILED', 'connection closed mid-body'))));
    });
    req.on('error', (e) => settle(() => reject(signal.aborted ? new FetchRefused('TIMEOUT', `download did not finish within ${timeoutMs} ms`) : new FetchRefused('DOWNLOAD_FAILED', e.message))));
    req.end();
  });
}
