/**
 * A container's root filesystem: an overlay of the image's layers (read-only, shared) under a
 * per-container writable layer kept in the instance dir, so that changes survive restarts (as
 * with docker) and vanish on delete. Also the per-container /etc/hosts, /etc/hostname and
 * /etc/resolv.conf, generated in the instance dir and bind-mounted by the runtime.
 *
 * User namespaces: the container's root is an unprivileged host uid, so the image's root-owned
 * files must appear owned by it. An idmapped mount would be the cheap way, but this host's
 * mount(8) (util-linux 2.38.1) has neither --map-users nor X-mount.idmap, and runc 1.1 cannot
 * idmap the rootfs itself. hull therefore shifts ownership once per container: the overlay is
 * mounted with metacopy=on (where the kernel has it), so chown copies up metadata only, never
 * file data, and every entry is chowned to its mapped id. A marker file records the mapping;
 * restarts skip the walk.
 */
import {
  existsSync,
  lchownSync,
  lstatSync,
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  chownSync,
} from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { HostSupportError } from '../common/errors.js';
import type { IdMapping, InstanceContext, UsernsConfig } from '../common/instance.js';
import { isMountpoint, mountOverlay, mountTmpfs, readMountInfo, unmountAll } from '../host/mount.js';
import type { OciMount } from './oci-spec.js';
import { containerOptions } from './options.js';

/** Paths of a container's filesystem pieces inside its instance dir. */
export interface RootfsLayout {
  /** the merged root (overlay mount point) */
  rootfs: string;
  /** the container's writable layer */
  upper: string;
  /** overlay's work dir (same filesystem as upper) */
  work: string;
  /** an empty lower layer for images without layers */
  empty: string;
  hosts: string;
  hostname: string;
  resolvConf: string;
  /** marker: ownership was shifted for this user namespace mapping */
  idShiftMarker: string;
}

/** Where the pieces live under `dir`. */
export function rootfsLayout(dir: string): RootfsLayout {
  const p = instancePaths(dir);
  return {
    rootfs: p.rootfs,
    upper: p.upper,
    work: p.work,
    empty: p.empty,
    hosts: p.hosts,
    hostname: p.hostname,
    resolvConf: p.resolvConf,
    idShiftMarker: p.idShiftMarker,
  };
}

/** The hostname a container gets (the same rule as the spec generator's). */
export function containerHostname(ctx: InstanceContext): string {
  return ctx.config.hostname || (ctx.config.network === 'host' ? osHostname() : ctx.id.slice(0, 12));
}

// /etc/hosts and /etc/resolv.conf contents are shared with the VM driver
export { hostsFile, resolvConfFile } from '../host/etcfiles.js';
import { hostsFile, resolvConfFile } from '../host/etcfiles.js';
import { instancePaths } from '../common/paths.js';

/** Map a container id to the host through the mappings; null when unmapped. */
export function mapId(mappings: readonly IdMapping[], id: number): number | null {
  for (const m of mappings)
    if (id >= m.containerID && id < m.containerID + m.size) return m.hostID + (id - m.containerID);
  return null;
}

/** The overlay supports metadata-only copy-up (metacopy) on this kernel. */
function metacopySupported(): boolean {
  return existsSync('/sys/module/overlay/parameters/metacopy');
}

/**
 * Chown every entry below `root` (which must be the overlay mount) from image ids to host ids
 * by the mappings. Set-id bits, which chown clears, are put back.
 */
function shiftOwnership(root: string, userns: UsernsConfig): void {
  const visit = (p: string): void => {
    const st = lstatSync(p);
    const uid = mapId(userns.uidMappings, st.uid);
    const gid = mapId(userns.gidMappings, st.gid);
    if ((uid !== null && uid !== st.uid) || (gid !== null && gid !== st.gid)) {
      lchownSync(p, uid ?? st.uid, gid ?? st.gid);
      if (!st.isSymbolicLink() && (st.mode & 0o6000) !== 0) chmodSync(p, st.mode & 0o7777);
    }
    if (st.isDirectory()) for (const name of readdirSync(p)) visit(join(p, name));
  };
  visit(root);
}

/**
 * The container's root (an unprivileged host uid with a user namespace) must be able to reach
 * the rootfs and the bind-mounted /etc files: every directory on the way needs search
 * permission. hull's own directories (from ctx.root down) get o+x where they lack it, and the
 * instance dir is group-owned by the container's root group with mode 0710 (docker's layout);
 * a directory above hull's root that others cannot search is reported.
 */
function ensureUsernsTraversal(ctx: InstanceContext, userns: UsernsConfig): void {
  const gid = mapId(userns.gidMappings, 0);
  if (gid !== null) {
    chownSync(ctx.dir, 0, gid);
    chmodSync(ctx.dir, 0o710);
  } else {
    chmodSync(ctx.dir, 0o711);
  }
  const rootDir = resolve(ctx.root);
  for (let d = dirname(resolve(ctx.dir)); ; d = dirname(d)) {
    const st = statSync(d);
    if ((st.mode & 0o001) === 0) {
      if (d === rootDir || d.startsWith(rootDir + sep)) {
        chmodSync(d, (st.mode & 0o7777) | 0o001);
      } else {
        throw new HostSupportError(
          `user namespaces need ${d} to be searchable by other users (chmod o+x ${d}), or choose a hull root elsewhere`,
        );
      }
    }
    if (d === dirname(d)) break;
  }
}

/** What {@link mountRootfs} prepared. */
export interface PreparedRootfs {
  rootfs: string;
  /** bind mounts of the generated /etc files, for the spec */
  mounts: OciMount[];
  /** the hostname when it comes from the instance whose network the container joins */
  hostname?: string;
  /** --ipc shareable: the host's tmpfs that is the container's /dev/shm */
  shm?: string;
}

/**
 * The overlay of a stopped container's root (its layers and its writable layer, with the options its runs use) at
 * `target`, a private mount point of the caller's, for docker cp into or out of it; the caller unmounts it. A start
 * meanwhile mounts the same writable layer again: overlay allows it (index=off) while the two are not written at
 * once, and docker cp is short.
 */
export async function mountStoppedRoot(ctx: InstanceContext, target: string): Promise<void> {
  const L = rootfsLayout(ctx.dir);
  for (const d of [L.upper, L.work]) mkdirSync(d, { recursive: true });
  let lower = [...ctx.layers].reverse();
  if (lower.length === 0) {
    mkdirSync(L.empty, { recursive: true });
    lower = [L.empty];
  }
  for (const l of lower)
    if (!existsSync(l)) throw new HostSupportError(`image layer ${l} is missing; pull the image again`);
  const extra = containerOptions(ctx.config).userns && metacopySupported() ? ['metacopy=on'] : [];
  await mountOverlay(target, { lower, upper: L.upper, work: L.work, extra });
}

/**
 * Mount the container's root filesystem at `<dir>/rootfs` (nothing to do when it is mounted
 * already) and write its /etc files (kept when present, so a container's edits survive restarts).
 * `ctx.layers` are the image layers lowest first; overlay wants them top first.
 */
export async function mountRootfs(ctx: InstanceContext): Promise<PreparedRootfs> {
  const L = rootfsLayout(ctx.dir);
  const userns = containerOptions(ctx.config).userns;
  for (const d of [L.rootfs, L.upper, L.work]) mkdirSync(d, { recursive: true });
  const table = readMountInfo();
  if (!isMountpoint(L.rootfs, table)) {
    let lower = [...ctx.layers].reverse();
    if (lower.length === 0) {
      mkdirSync(L.empty, { recursive: true });
      lower = [L.empty];
    }
    for (const l of lower) {
      if (!existsSync(l)) throw new HostSupportError(`image layer ${l} is missing; pull the image again`);
    }
    const extra = userns && metacopySupported() ? ['metacopy=on'] : [];
    await mountOverlay(L.rootfs, { lower, upper: L.upper, work: L.work, extra });
  }

  if (userns) {
    ensureUsernsTraversal(ctx, userns);
    const want = JSON.stringify(userns);
    let done = '';
    try {
      done = readFileSync(L.idShiftMarker, 'utf8');
    } catch {
      /* first start */
    }
    if (done !== want) {
      shiftOwnership(L.rootfs, userns);
      writeFileSync(L.idShiftMarker, want);
    }
  }

  // --ipc shareable (docker's): /dev/shm is a tmpfs on the host, so that --ipc container:X can share it
  let shm: string | undefined;
  if (containerOptions(ctx.config).ipcMode === 'shareable') {
    shm = instancePaths(ctx.dir).shm;
    mkdirSync(shm, { recursive: true });
    if (!isMountpoint(shm)) await mountTmpfs(shm, ['nosuid', 'nodev', 'noexec', 'mode=1777', 'size=65536k']);
  }
  const from = ctx.joined?.etcFrom;
  if (from) {
    // --network container:X: X's own files, as docker shares them (X's hostname, addresses and DNS settings)
    const x = rootfsLayout(from);
    const shared: [string, string][] = [
      [x.hosts, '/etc/hosts'],
      [x.hostname, '/etc/hostname'],
      [x.resolvConf, '/etc/resolv.conf'],
    ];
    return {
      rootfs: L.rootfs,
      mounts: shared.map(([source, destination]) => ({
        destination,
        type: 'bind',
        source,
        options: ['rbind', 'rprivate'],
      })),
      hostname: readFileSync(x.hostname, 'utf8').trim(),
      ...(shm ? { shm } : {}),
    };
  }
  const hostname = containerHostname(ctx);
  const files: [string, string, string][] = [
    [L.hosts, '/etc/hosts', hostsFile(hostname, ctx.config.network, ctx.network, ctx.name)],
    [L.hostname, '/etc/hostname', `${hostname}\n`],
    [L.resolvConf, '/etc/resolv.conf', resolvConfFile(ctx.config.network, ctx.network)],
  ];
  const mounts: OciMount[] = [];
  for (const [path, destination, content] of files) {
    // on hull networks the addresses change from start to start: hosts and resolv.conf are written anew
    if (!existsSync(path) || (ctx.network && destination !== '/etc/hostname')) {
      writeFileSync(path, content, { mode: 0o644 });
      if (userns) {
        const uid = mapId(userns.uidMappings, 0);
        const gid = mapId(userns.gidMappings, 0);
        if (uid !== null && gid !== null) chownSync(path, uid, gid);
      }
    }
    mounts.push({ destination, type: 'bind', source: path, options: ['rbind', 'rprivate'] });
  }
  return { rootfs: L.rootfs, mounts, ...(shm ? { shm } : {}) };
}

/** Unmount everything hull mounted under the instance dir (the rootfs). Idempotent. */
export async function unmountRootfs(dir: string): Promise<void> {
  await unmountAll(dir);
}
