/**
 * A full disk, described for people, for the state store, builds and lifecycle: host/fserror.ts's LocalFsError
 * (the path, the file system it is on, its free space against what the work needed), extended to SQLite, whose
 * full disk is SQLITE_FULL ("database or disk is full") or an I/O error on extending its WAL or -shm.
 */
import { LocalFsError } from '../common/errors.js';
import { describeLocalFsError, type FsErrorContext } from './fserror.js';
import { isNoSpace } from './reserve.js';

/** Whether `e` is a described full disk (ENOSPC or EDQUOT). */
export function isNoSpaceError(e: unknown): e is LocalFsError {
  return e instanceof LocalFsError && (e.errno === 'ENOSPC' || e.errno === 'EDQUOT');
}

/** For a full-disk error (see isNoSpace, SQLite's included) a LocalFsError naming path, file system and space; any other error unchanged. */
export function describeNoSpace(e: unknown, ctx: FsErrorContext): unknown {
  if (e instanceof LocalFsError || !isNoSpace(e, ctx.path)) return e;
  const code = (e as { code?: unknown }).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return describeLocalFsError(e, ctx);
  // SQLite's codes: the same ENOSPC for the description, the original as the cause
  const d = describeLocalFsError(
    Object.assign(new Error((e as Error).message), { code: 'ENOSPC' }),
    ctx,
  ) as LocalFsError;
  return new LocalFsError(d.message, 'ENOSPC', ctx.path, { cause: e });
}
