#!/usr/bin/env node
// Keeps package-lock.json valid for `npm ci` when the registry this project installs from lacks some
// platform builds of @duckdb/node-bindings (macOS, Windows, Linux arm64). npm writes no lock entry for
// an optional dependency it could not fetch, and `npm ci` then refuses the lock as out of sync. An entry
// with the package's os/cpu/libc is enough: npm skips it on any other platform without fetching it.
// Run after `npm install` changes the lock: `node scripts/lock-platform-stubs.mjs`.
import { readFileSync, writeFileSync } from 'node:fs';

const LOCK = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(LOCK, 'utf8'));
const parent = lock.packages['node_modules/@duckdb/node-bindings'];
if (!parent) { console.error('no @duckdb/node-bindings in the lock'); process.exit(1); }
const PLATFORM = {
  'darwin-arm64': { os: ['darwin'], cpu: ['arm64'] },
  'darwin-x64': { os: ['darwin'], cpu: ['x64'] },
  'linux-arm64': { os: ['linux'], cpu: ['arm64'], libc: ['glibc'] },
  'linux-arm64-musl': { os: ['linux'], cpu: ['arm64'], libc: ['musl'] },
  'linux-x64': { os: ['linux'], cpu: ['x64'], libc: ['glibc'] },
  'linux-x64-musl': { os: ['linux'], cpu: ['x64'], libc: ['musl'] },
  'win32-arm64': { os: ['win32'], cpu: ['arm64'] },
  'win32-x64': { os: ['win32'], cpu: ['x64'] },
};
let added = 0;
for (const [name, version] of Object.entries(parent.optionalDependencies ?? {})) {
  const key = `node_modules/${name}`;
  if (lock.packages[key]) continue;
  const plat = PLATFORM[name.replace('@duckdb/node-bindings-', '')];
  if (!plat) { console.error(`unknown platform package ${name}`); process.exit(1); }
  lock.packages[key] = { version, ...plat, license: 'MIT', optional: true };
  added++;
}
const sorted = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0)));
lock.packages = sorted;
writeFileSync(LOCK, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`lock: ${added} platform entries added`);
