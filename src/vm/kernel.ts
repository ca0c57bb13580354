/**
 * Guest kernels: by default Debian's cloud kernel (small, built for virtual machines: ext4, 8250 serial,
 * PCI and kvm-clock built in, virtio as modules). hull fetches the package with `apt-get download` and
 * unpacks it with `dpkg-deb -x` into its cache, never installing it on the host:
 *
 *   <cache>/kernels/<version>/vmlinuz
 *   <cache>/kernels/<version>/lib/modules/<version>/…   (the package's modules, with depmod's modules.dep)
 *   <cache>/kernels/default                          the version the metapackage named (text)
 *
 * <cache> is $HULL_VM_CACHE, or <root>/vm. A version directory appears atomically (built under a temp name
 * and renamed), so concurrent first runs are safe: the loser of the rename discards its copy.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { HostCommandError, HostSupportError, NotFoundError } from '../common/errors.js';
import { writeFileAtomic } from '../common/fsutil.js';
import { runProgram } from '../host/proc.js';
import { hullEnv } from '../common/env.js';
import { rootPaths } from '../common/paths.js';

/** A guest kernel hull can boot. */
export interface KernelInfo {
  version: string;
  /** the kernel image (bzImage) */
  image: string;
  /** lib/modules/<version> with modules.dep; '' for a user's kernel (modules built in) */
  modulesDir: string;
}

/** The cache directory of VM artefacts for a hull root. */
export function vmCacheDir(root: string): string {
  return hullEnv('HULL_VM_CACHE') || rootPaths(root).vm;
}

export const KERNEL_METAPACKAGE = 'linux-image-cloud-amd64';

function kernelDir(cache: string, version: string): string {
  return join(cache, 'kernels', version);
}

function cached(cache: string, version: string): KernelInfo | null {
  const dir = kernelDir(cache, version);
  const image = join(dir, 'vmlinuz');
  const modulesDir = join(dir, 'lib', 'modules', version);
  if (!existsSync(image) || !existsSync(join(modulesDir, 'modules.dep'))) return null;
  return { version, image, modulesDir };
}

/** apt-get download in dir; on failure refresh the package lists once and retry (stale lists name old versions). */
async function aptDownload(pkg: string, dir: string, log: (s: string) => void): Promise<void> {
  const run = () => runProgram('apt-get', ['download', '-q', pkg], { cwd: dir, allowFailure: true });
  let r = await run();
  if (r.status === 0) return;
  log(`hull: apt-get download ${pkg} failed; refreshing the package lists (apt-get update)`);
  await runProgram('apt-get', ['update', '-qq'], { allowFailure: true });
  r = await run();
  if (r.status !== 0) {
    throw new HostCommandError(
      'apt-get',
      ['download', pkg],
      r.status,
      r.stderr,
      `hull needs Debian's ${KERNEL_METAPACKAGE} package for its VMs: check the host's apt sources and network, or give --kernel`,
    );
  }
}

function onlyDeb(dir: string): string {
  const debs = readdirSync(dir).filter((n) => n.endsWith('.deb'));
  if (debs.length !== 1) throw new HostSupportError(`expected one downloaded package in ${dir}, found ${debs.length}`);
  return join(dir, debs[0]!);
}

/**
 * The default guest kernel, fetched into the cache on first use. `log` gets status lines (the download is
 * about 27 MB). Later calls read the cache only: no apt, no network.
 */
export async function ensureDefaultKernel(
  cache: string,
  log: (s: string) => void = () => undefined,
): Promise<KernelInfo> {
  const pointer = join(cache, 'kernels', 'default');
  if (existsSync(pointer)) {
    const k = cached(cache, readFileSync(pointer, 'utf8').trim());
    if (k) return k;
  }
  mkdirSync(join(cache, 'kernels'), { recursive: true });
  const work = mkdtempSync(join(cache, 'kernels', '.fetch-'));
  try {
    // apt's sandbox user must be able to write the download directory
    await runProgram('chmod', ['0755', work]);
    log(`hull: fetching the guest kernel (${KERNEL_METAPACKAGE}) with apt-get download`);
    const meta = join(work, 'meta');
    mkdirSync(meta);
    await runProgram('chmod', ['0777', meta]);
    await aptDownload(KERNEL_METAPACKAGE, meta, log);
    const depends = (await runProgram('dpkg-deb', ['-f', onlyDeb(meta), 'Depends'])).stdout;
    const m = /(linux-image-(\d[^\s,()]*-cloud-amd64))/.exec(depends);
    if (!m)
      throw new HostSupportError(
        `${KERNEL_METAPACKAGE} names no versioned kernel package (Depends: ${depends.trim()})`,
      );
    const [, pkg, version] = m as unknown as [string, string, string];
    const have = cached(cache, version);
    if (have) {
      writeFileAtomic(pointer, version + '\n');
      return have;
    }
    const dl = join(work, 'pkg');
    mkdirSync(dl);
    await runProgram('chmod', ['0777', dl]);
    log(`hull: downloading ${pkg}`);
    await aptDownload(pkg, dl, log);
    const tree = join(work, 'tree');
    await runProgram('dpkg-deb', ['-x', onlyDeb(dl), tree]);
    const stage = join(work, 'kernel');
    mkdirSync(join(stage, 'lib', 'modules'), { recursive: true });
    renameSync(join(tree, 'boot', `vmlinuz-${version}`), join(stage, 'vmlinuz'));
    renameSync(join(tree, 'lib', 'modules', version), join(stage, 'lib', 'modules', version));
    // the package ships no modules.dep (the host's postinst would make it): make it for the cache copy
    log(`hull: indexing the guest kernel's modules (depmod)`);
    await runProgram('depmod', ['-b', stage, version]);
    try {
      renameSync(stage, kernelDir(cache, version));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e; // another hull cached it meanwhile
    }
    writeFileAtomic(pointer, version + '\n');
    const k = cached(cache, version);
    if (!k) throw new HostSupportError(`the guest kernel ${version} could not be cached under ${cache}`);
    log(`hull: guest kernel ${version} cached`);
    return k;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** A user's kernel (--kernel): its modules must be built in. */
export function userKernel(path: string): KernelInfo {
  if (!existsSync(path)) throw new NotFoundError(`kernel image ${path} does not exist`);
  return { version: 'custom', image: path, modulesDir: '' };
}
