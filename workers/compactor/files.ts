/**
 * File-system steps of the compactor, each failing with a coded ENGINE_ERR_FILE_IO that names the path
 * and the errno code. Durability: a file is fsynced before it is renamed into place, and the directory
 * is fsynced after a rename or unlink, so a journal deleted after `writeHourParquet` returns can never
 * be the only copy of its rows.
 */
import { constants as fsc } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { engineError } from '../../engine/errors.ts';

function ioError(what: string, path: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'EUNKNOWN';
  const msg = err instanceof Error ? err.message : String(err);
  return engineError('ENGINE_ERR_FILE_IO', `compactor: cannot ${what} ${path} (${code}): ${msg}`, { path, errno: code }, err);
}

export async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw ioError('create directory', dir, err);
  }
}

/**
 * fsync a file, or a directory (to make a rename or unlink durable). Some file systems (e.g. drvfs under
 * WSL) refuse fsync on a directory with EINVAL/ENOTSUP: that is not an error here, the rename itself
 * is already done.
 */
export async function fsyncPath(path: string, isDir: boolean): Promise<void> {
  let fh;
  try {
    fh = await open(path, isDir ? fsc.O_RDONLY | fsc.O_DIRECTORY : fsc.O_RDONLY);
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (isDir && (code === 'EINVAL' || code === 'ENOTSUP')) return;
    throw ioError('fsync', path, err);
  } finally {
    await fh?.close();
  }
}

export async function renameInto(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    throw ioError('rename into place', to, err);
  }
}

export async function removeFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError('remove', path, err);
  }
}

/** Best-effort removal of a temporary file or directory on an error path (never throws). */
export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { force: true, recursive: true }).catch(() => undefined);
}

export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (err) {
    throw ioError('remove', path, err);
  }
}

export async function fileBytes(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    throw ioError('stat', path, err);
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError('stat', path, err);
  }
}

/** Entries of a directory; a missing directory is empty. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    throw ioError('list', dir, err);
  }
}
