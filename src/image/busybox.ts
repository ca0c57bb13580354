/**
 * The built-in `busybox` image, made from the host's statically linked /bin/busybox (Debian's
 * busybox-static), so that `hull run busybox ...` works without a registry.
 *
 * The layer is reproducible: entries are sorted, owned by 0:0, and carry mtime/atime/ctime 0;
 * the config's dates are 0 too. The same busybox binary therefore always gives the same layer,
 * config, manifest and image id, on any host and in any process that builds it.
 *
 * The layer is stored as an uncompressed tar (media type ...layer.v1.tar): its bytes then
 * depend on nothing but the binary (gzip output can change with the zlib version, which would
 * change the digest), it is extracted without a decompression pass, and it is small (~2 MB).
 * A future push can compress it on the way out.
 */
import { chmodSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { create as createTar, type WriteEntry } from 'tar';
import { HostSupportError } from '../common/errors.js';
import { runProgram } from '../host/proc.js';
import { layerPathParts } from './unpack.js';
import type { OciImageConfigFile } from './types.js';

/** Where the host's busybox lives (Debian's busybox-static installs it here). */
export const HOST_BUSYBOX = '/bin/busybox';

const EPOCH = new Date(0);
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** What the image is built from. */
export interface BusyboxBinary {
  path: string;
  content: Buffer;
  /** the binary's modification time (its package's build), ISO: the image's creation date, stable per binary */
  modified: string;
  /** OCI architecture name of the binary (amd64, arm64, ...) */
  architecture: string;
  /** e.g. `1.35.0`, when the binary says */
  version: string | null;
  /** applet paths relative to /, e.g. `usr/bin/wget` */
  applets: string[];
}

/** ELF e_machine values → OCI architecture names. */
const ELF_MACHINES: Record<number, string> = {
  3: '386',
  8: 'mips',
  20: 'ppc',
  21: 'ppc64le',
  22: 's390x',
  40: 'arm',
  62: 'amd64',
  183: 'arm64',
  243: 'riscv64',
  258: 'loong64',
};

/** The facts of an ELF executable that matter here: its machine, and whether it asks for an interpreter. */
export function readElf(buf: Buffer): { machine: number; dynamic: boolean } | null {
  if (buf.length < 52 || buf.readUInt32BE(0) !== 0x7f454c46) return null;
  const is64 = buf[4] === 2;
  const le = buf[5] === 1;
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const u64 = (o: number) => Number(le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o));
  const machine = u16(18);
  const phoff = is64 ? u64(32) : u32(28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  const PT_INTERP = 3;
  let dynamic = false;
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > buf.length) return null;
    if (u32(off) === PT_INTERP) dynamic = true;
  }
  return { machine, dynamic };
}

/**
 * Read the host busybox and check that it can run alone in an empty root filesystem:
 * an ELF executable without a program interpreter (statically linked).
 */
export async function inspectBusybox(path = HOST_BUSYBOX): Promise<BusyboxBinary> {
  const hint = 'install the busybox-static package (apt-get install busybox-static)';
  let content: Buffer;
  try {
    content = readFileSync(path);
  } catch {
    throw new HostSupportError(`cannot build the built-in busybox image: ${path} is missing; ${hint}`);
  }
  const elf = readElf(content);
  if (!elf)
    throw new HostSupportError(`cannot build the built-in busybox image: ${path} is not an ELF executable; ${hint}`);
  if (elf.dynamic)
    throw new HostSupportError(`cannot build the built-in busybox image: ${path} is dynamically linked; ${hint}`);
  const architecture = ELF_MACHINES[elf.machine];
  if (!architecture)
    throw new HostSupportError(
      `cannot build the built-in busybox image: ${path} is for an unknown machine type ${elf.machine}`,
    );
  const list = await runProgram(path, ['--list-full']);
  const applets = list.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && l !== 'bin/busybox' && (layerPathParts(l)?.length ?? 0) > 0);
  const version = /BusyBox v(\d+\.\d+(?:\.\d+)?)/.exec(content.toString('latin1'))?.[1] ?? null;
  return {
    path,
    content,
    modified: new Date(Math.floor(statSync(path).mtimeMs / 1000) * 1000).toISOString().replace('.000Z', 'Z'),
    architecture,
    version,
    applets,
  };
}

const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:65534:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`;

const GROUP = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
mail:x:8:
wheel:x:10:root
www-data:x:33:
users:x:100:
nogroup:x:65534:
`;

const HOSTS = `127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
`;

/** Directories of the root filesystem and their modes (applet directories are added as needed). */
const DIRS: Record<string, number> = {
  bin: 0o755,
  dev: 0o755,
  etc: 0o755,
  home: 0o755,
  mnt: 0o755,
  proc: 0o555,
  root: 0o700,
  run: 0o755,
  sbin: 0o755,
  sys: 0o555,
  tmp: 0o1777,
  usr: 0o755,
  'usr/bin': 0o755,
  'usr/sbin': 0o755,
  var: 0o755,
  'var/spool': 0o755,
  'var/spool/mail': 0o755,
  'var/tmp': 0o1777,
  'var/www': 0o755,
};

/** Files of the root filesystem: content and mode. */
function files(bin: BusyboxBinary): Record<string, [Buffer | string, number]> {
  const shadow =
    PASSWD.split('\n')
      .filter(Boolean)
      .map((l) => `${l.split(':')[0]}:*:0:0:99999:7:::`)
      .join('\n') + '\n';
  return {
    'bin/busybox': [bin.content, 0o755],
    'etc/passwd': [PASSWD, 0o644],
    'etc/group': [GROUP, 0o644],
    'etc/shadow': [shadow, 0o600],
    'etc/hostname': ['', 0o644],
    'etc/hosts': [HOSTS, 0o644],
    'etc/resolv.conf': ['', 0o644],
  };
}

/**
 * Lay out the root filesystem in `dir` (which must not exist) and return every path in it,
 * relative and sorted so that directories come before their contents.
 */
export function writeBusyboxRootfs(dir: string, bin: BusyboxBinary): string[] {
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  const paths = new Set<string>();
  const ensureDir = (rel: string, mode = 0o755): void => {
    if (rel === '.' || rel === '' || paths.has(rel)) return;
    ensureDir(dirname(rel));
    mkdirSync(join(dir, rel));
    chmodSync(join(dir, rel), DIRS[rel] ?? mode);
    paths.add(rel);
  };
  for (const rel of Object.keys(DIRS)) ensureDir(rel);
  for (const [rel, [content, mode]] of Object.entries(files(bin))) {
    ensureDir(dirname(rel));
    writeFileSync(join(dir, rel), content);
    chmodSync(join(dir, rel), mode);
    paths.add(rel);
  }
  for (const rel of bin.applets) {
    if (paths.has(rel)) continue;
    ensureDir(dirname(rel));
    symlinkSync('/bin/busybox', join(dir, rel));
    paths.add(rel);
  }
  return [...paths].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Tar `paths` of `dir` (in that order, no recursion) as a reproducible stream: owner 0:0,
 * no user names, every time 0, no device/inode numbers.
 */
export function packRootfs(dir: string, paths: string[]): AsyncIterable<Buffer> {
  return createTar(
    {
      cwd: dir,
      portable: false,
      noDirRecurse: true,
      mtime: EPOCH,
      onWriteEntry: (entry: WriteEntry) => {
        entry.myuser = '';
        const st = entry.stat;
        if (st) {
          st.uid = 0;
          st.gid = 0;
          st.atime = EPOCH;
          st.ctime = EPOCH;
          st.mtime = EPOCH;
          st.dev = 0;
          st.ino = 0;
          st.nlink = 1;
        }
      },
    },
    paths,
  ) as unknown as AsyncIterable<Buffer>;
}

/** The image config of the built-in image, for a layer with the given diffID. */
export function busyboxConfig(diffId: string, bin: BusyboxBinary): OciImageConfigFile {
  return {
    created: bin.modified,
    architecture: bin.architecture,
    os: 'linux',
    config: { Env: [DEFAULT_PATH], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [
      {
        created: bin.modified,
        created_by: `hull built-in image: BusyBox${bin.version ? ` ${bin.version}` : ''} from the host's ${bin.path}`,
      },
    ],
  };
}
