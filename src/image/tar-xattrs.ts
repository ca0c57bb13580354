/**
 * Extended attributes in layer tars, as GNU tar, docker and BuildKit write them: pax extended header
 * records `SCHILY.xattr.<name>=<value>`, values binary (a file capability is a 20-byte struct). node-tar
 * decodes pax records as UTF-8 text and keeps only the fields it knows, so hull reads and writes these
 * records itself (node-tar still parses the entries; hull only adds what it drops):
 *
 *  - {@link XattrScanner} follows the tar structure of a stream that is parsed elsewhere (it sees the same
 *    bytes) and collects each entry's xattrs, binary-safe, under the entry's path;
 *  - {@link paxXattrHeader} makes the pax header (with the path, size and id fields a ustar header cannot
 *    hold) that precedes an entry with xattrs.
 *
 * Which attributes hull carries: `security.capability` (file capabilities, e.g. ping's cap_net_raw) and
 * `user.*` (but not user.overlay.*). `trusted.*` is never taken from a layer: trusted.overlay.* would steer overlayfs (redirects,
 * opaque directories) from inside an image. Other security.* labels belong to the host's policy.
 */
import { Header } from 'tar';

export type Xattrs = Record<string, Buffer>;

const BLOCK = 512;

/** Whether hull keeps an attribute of this name from (and puts it into) a layer. */
export function carriedXattr(name: string): boolean {
  // user.overlay.* steers overlayfs when it is mounted with userxattr (rootless): never from a layer
  return (
    name === 'security.capability' || (name.startsWith('user.') && name.length > 5 && !name.startsWith('user.overlay.'))
  );
}

/** Parse pax records (`LEN KEY=VALUE\n`, LEN counting the whole record in bytes), values as raw bytes. */
export function parsePaxRecords(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < data.length) {
    const space = data.indexOf(0x20, off);
    if (space < 0) break;
    const len = Number(data.toString('latin1', off, space));
    if (!Number.isInteger(len) || len <= space - off || off + len > data.length) break;
    const rec = data.subarray(space + 1, off + len - 1); // without the trailing \n
    const eq = rec.indexOf(0x3d);
    if (eq > 0) out.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1)));
    off += len;
  }
  return out;
}

/** One pax record, its length prefix included. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/**
 * The pax extended header (header block + records, padded) for an entry with xattrs. It also carries the
 * entry's path, link path, size and ids, so that the ustar header after it may truncate them.
 */
export function paxXattrHeader(
  entry: { path: string; linkpath?: string; size?: number; uid: number; gid: number; mtime: Date },
  xattrs: Xattrs,
): Buffer {
  const records: Buffer[] = [paxRecord('path', Buffer.from(entry.path))];
  if (entry.linkpath) records.push(paxRecord('linkpath', Buffer.from(entry.linkpath)));
  if (entry.size !== undefined && entry.size > 0o77777777777)
    records.push(paxRecord('size', Buffer.from(String(entry.size))));
  if (entry.uid > 0o7777777) records.push(paxRecord('uid', Buffer.from(String(entry.uid))));
  if (entry.gid > 0o7777777) records.push(paxRecord('gid', Buffer.from(String(entry.gid))));
  for (const [name, value] of Object.entries(xattrs)) records.push(paxRecord(`SCHILY.xattr.${name}`, value));
  const data = Buffer.concat(records);
  const base = entry.path.split('/').filter(Boolean).pop() ?? 'entry';
  const h = new Header({
    path: `PaxHeader/${base}`.slice(0, 99),
    type: 'ExtendedHeader',
    size: data.length,
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: entry.mtime,
  });
  h.encode();
  const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return Buffer.concat([h.block!, data, Buffer.alloc(pad)]);
}

/** A tar header's numeric field: octal text, or base-256 when the top bit of the first byte is set. */
function numeric(block: Buffer, off: number, len: number): number {
  if (block[off]! & 0x80) {
    let n = 0;
    for (let i = off + 1; i < off + len; i++) n = n * 256 + block[i]!;
    return n;
  }
  const text = block
    .toString('latin1', off, off + len)
    .replace(/[\0 ]+$/g, '')
    .trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function cstring(block: Buffer, off: number, len: number): string {
  const end = block.indexOf(0, off);
  return block.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

/**
 * Follows a (decompressed) tar stream block by block and collects the carried xattrs of each entry by
 * its path as written (pax `path`, GNU long name, or ustar prefix + name). Feed it every chunk in order.
 */
export class XattrScanner {
  readonly found = new Map<string, Xattrs>();
  private buf = Buffer.alloc(0);
  /** bytes of entry data still to skip */
  private skip = 0;
  /** collecting the data of a pax ('x') or GNU long-name ('L') entry */
  private collect: { kind: 'x' | 'L'; left: number; parts: Buffer[]; size: number } | null = null;
  private pending: { pax?: Map<string, Buffer>; longName?: string } = {};
  private done = false;

  write(chunk: Buffer): void {
    if (this.done) return;
    let data = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = Buffer.alloc(0);
    while (data.length > 0 && !this.done) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, data.length);
        if (this.collect) this.collect.parts.push(Buffer.from(data.subarray(0, Math.min(n, this.collect.left))));
        if (this.collect) this.collect.left -= Math.min(n, this.collect.left);
        this.skip -= n;
        data = data.subarray(n);
        if (this.skip === 0 && this.collect) this.finishCollect();
        continue;
      }
      if (data.length < BLOCK) {
        this.buf = Buffer.from(data);
        return;
      }
      this.header(data.subarray(0, BLOCK));
      data = data.subarray(BLOCK);
    }
  }

  private header(block: Buffer): void {
    if (block.every((b) => b === 0)) return; // end-of-archive blocks (or padding)
    const type = String.fromCharCode(block[156]!);
    const size = numeric(block, 124, 12);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'x' || type === 'X' || type === 'L') {
      this.collect = { kind: type === 'L' ? 'L' : 'x', left: size, parts: [], size };
      this.skip = padded;
      if (padded === 0) this.finishCollect();
      return;
    }
    if (type === 'g' || type === 'K') {
      this.skip = padded; // global headers and long link names carry no xattrs hull keeps
      return;
    }
    const pax = this.pending.pax;
    const magic = block.toString('latin1', 257, 262);
    const prefix = magic === 'ustar' ? cstring(block, 345, 155) : '';
    const name = cstring(block, 0, 100);
    const path = pax?.get('path')?.toString('utf8') ?? this.pending.longName ?? (prefix ? `${prefix}/${name}` : name);
    if (pax) {
      const xattrs: Xattrs = {};
      for (const [k, v] of pax) {
        if (k.startsWith('SCHILY.xattr.') && carriedXattr(k.slice(13))) xattrs[k.slice(13)] = v;
      }
      if (Object.keys(xattrs).length) this.found.set(path, xattrs);
    }
    const realSize = pax?.has('size') ? Number(pax.get('size')!.toString('latin1')) : size;
    this.pending = {};
    // data follows whatever the type, as node-tar reads it (a directory with a size has data too)
    this.skip = Math.ceil(realSize / BLOCK) * BLOCK;
  }

  private finishCollect(): void {
    const c = this.collect!;
    this.collect = null;
    const data = Buffer.concat(c.parts).subarray(0, c.size);
    if (c.kind === 'x') this.pending.pax = parsePaxRecords(data);
    else this.pending.longName = data.toString('utf8').replace(/\0+$/, '');
  }
}
