/**
 * `tickpipe keys create|list|revoke`: API keys in `<data-dir>/keys.json` (api/auth/keystore.ts). The key is
 * printed once, by `create`; only its SHA-256 hash is stored. A running server picks up changes within
 * about a second.
 *
 *   tickpipe keys create --name bot1 --scopes realtime,historical [--symbols MNQ,NQZ25] [--rate 50] [--json]
 *   tickpipe keys list [--json]
 *   tickpipe keys revoke <id>
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { engineError } from '../../engine/errors.ts';
import { KeyStore } from '../../api/auth/keystore.ts';
import { SCOPES } from '../../api/types.ts';

function dataDirOf(opts: { dataDir?: string }): string {
  return resolve(opts.dataDir ?? process.env.TICKPIPE_DATA_DIR ?? './data');
}

const list = (v: string | undefined): string[] | undefined => v?.split(',').map((s) => s.trim()).filter((s) => s !== '');

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('manage API keys (stored hashed in <data-dir>/keys.json)');
  keys
    .command('create')
    .description('create an API key and print it once')
    .requiredOption('--name <name>', 'who or what uses the key (e.g. the AI model or bot name)')
    .requiredOption('--scopes <list>', `comma-separated: ${SCOPES.join(',')}`)
    .option('--symbols <list>', 'restrict to these contracts or roots (e.g. MNQ,ESZ25); default: all')
    .option('--rate <n>', 'requests per second allowed (token bucket); 0 or absent: unlimited')
    .option('--data-dir <dir>', 'data directory (env TICKPIPE_DATA_DIR, default ./data)')
    .option('--json', 'print {key, info} as JSON')
    .action((opts: { name: string; scopes: string; symbols?: string; rate?: string; dataDir?: string; json?: boolean }) => {
      const rate = opts.rate === undefined ? 0 : Number(opts.rate);
      if (opts.rate !== undefined && !/^\d+(\.\d+)?$/.test(opts.rate)) throw engineError('ENGINE_ERR_INVALID_ARG', `--rate must be a number >= 0, got ${JSON.stringify(opts.rate)}`);
      const ks = KeyStore.open(dataDirOf(opts));
      try {
        const { key, info } = ks.createSync({ name: opts.name, scopes: list(opts.scopes) ?? [], symbols: list(opts.symbols) ?? null, ratePerSec: rate });
        if (opts.json === true) {
          process.stdout.write(`${JSON.stringify({ key, info })}\n`);
          return;
        }
        process.stdout.write(`${key}\n`);
        process.stderr.write(`created key ${info.id} (${info.name}; scopes ${info.scopes.join(',')}; symbols ${info.symbols?.join(',') ?? 'all'}; rate ${info.ratePerSec || 'unlimited'})\n` +
          'this is the only time the key is shown: store it now. Use it as: Authorization: Bearer <key>\n');
      } finally {
        ks.close();
      }
    });
  keys
    .command('list')
    .description('list keys (ids, names, scopes; never the secrets)')
    .option('--data-dir <dir>', 'data directory (env TICKPIPE_DATA_DIR, default ./data)')
    .option('--json', 'print a JSON array')
    .action((opts: { dataDir?: string; json?: boolean }) => {
      const ks = KeyStore.open(dataDirOf(opts));
      try {
        const all = ks.list();
        if (opts.json === true) {
          process.stdout.write(`${JSON.stringify(all)}\n`);
          return;
        }
        if (all.length === 0) { process.stdout.write('no keys\n'); return; }
        for (const k of all) {
          process.stdout.write(`${k.id}  ${k.revokedAt === null ? 'active ' : 'revoked'}  ${k.name.padEnd(20)}  scopes=${k.scopes.join(',')}  symbols=${k.symbols?.join(',') ?? 'all'}  rate=${k.ratePerSec || 'unlimited'}  created=${k.createdAt}\n`);
        }
      } finally {
        ks.close();
      }
    });
  keys
    .command('revoke')
    .description('revoke a key by id (see keys list)')
    .argument('<id>', 'key id (12 hex characters)')
    .option('--data-dir <dir>', 'data directory (env TICKPIPE_DATA_DIR, default ./data)')
    .action((id: string, opts: { dataDir?: string }) => {
      const ks = KeyStore.open(dataDirOf(opts));
      try {
        if (!ks.revokeSync(id)) throw engineError('ENGINE_ERR_INVALID_ARG', `no active key with id ${JSON.stringify(id)}`);
        process.stdout.write(`revoked ${id}\n`);
      } finally {
        ks.close();
      }
    });
}
