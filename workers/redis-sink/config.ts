/**
 * `REDIS_URL`: unset or empty disables the sink (status 'disabled'); anything else must be a
 * `redis://` or `rediss://` URL with a host, an optional port 1..65535 and an optional database number
 * path (`/0` .. `/15` by default; Redis may be configured with more). A malformed value is a coded
 * ENGINE_ERR_CONFIG naming the variable; the password is never echoed.
 */
import { engineError } from '../../engine/errors.ts';

export interface RedisTarget {
  /** The URL as given (contains the password, if any: do not log it). */
  url: string;
  /** The URL with the password replaced by `***`, for logs and status. */
  redacted: string;
  host: string;
  port: number;
  db: number;
  tls: boolean;
}

function redact(raw: string): string {
  return raw.replace(/^(rediss?:\/\/)([^@/]*)@/i, (_m, scheme: string, cred: string) => `${scheme}${cred.includes(':') ? `${cred.split(':')[0]}:***` : '***'}@`);
}

/** Parse REDIS_URL. Returns null when unset/empty (sink disabled). Throws ENGINE_ERR_CONFIG when malformed. */
export function parseRedisUrl(raw: unknown, variable = 'REDIS_URL'): RedisTarget | null {
  if (raw === undefined || raw === null || raw === '') return null;
  const bad = (why: string): never => {
    throw engineError('ENGINE_ERR_CONFIG', `${variable} is invalid: ${why} (expected redis://[user:password@]host[:port][/db])`, { variable });
  };
  if (typeof raw !== 'string') return bad(`expected a string, got ${typeof raw}`);
  const text = raw.trim();
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return bad(`not a URL: ${JSON.stringify(redact(text).slice(0, 80))}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') bad(`scheme must be redis:// or rediss://, got ${u.protocol}//`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (host === '') bad('no host');
  let port = 6379;
  if (u.port !== '') {
    port = Number(u.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) bad(`port ${u.port} out of range`);
  }
  let db = 0;
  const path = u.pathname.replace(/^\//, '');
  if (path !== '') {
    if (!/^\d{1,5}$/.test(path)) bad(`database must be a number, got ${JSON.stringify(path.slice(0, 20))}`);
    db = Number(path);
  }
  if (u.search !== '' || u.hash !== '') bad('query strings and fragments are not supported');
  return { url: text, redacted: redact(text), host, port, db, tls: u.protocol === 'rediss:' };
}
