/**
 * QEMU on this host: where the binaries are, which accelerator works, and qemu-img.
 *
 * The accelerator probe decides between KVM and TCG from what the host really offers: /dev/kvm alone is
 * not enough (kvm_pvm serves /dev/kvm on some cloud hosts but runs only PVM-built guest kernels; a stock
 * kernel crawls through instruction emulation and dies). Hardware KVM means kvm_intel or kvm_amd is loaded
 * (or the CPU flags show vmx/svm with KVM built in) and /dev/kvm opens read-write.
 */
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { HostCommandError, HostSupportError, InvalidArgumentError } from '../common/errors.js';
import { findExecutable } from './probe.js';
import { runProgram } from './proc.js';
import { hullEnv } from '../common/env.js';

export type Accel = 'kvm' | 'tcg';

export interface AccelProbe {
  /** what hull uses unless told otherwise */
  accel: Accel;
  /** why, in words (shown by hull system info) */
  reason: string;
  /** whether hardware KVM is usable */
  kvmUsable: boolean;
}

let accelCache: AccelProbe | null = null;

function cpuFlags(): Set<string> {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const line = /^flags\s*:(.*)$/m.exec(text);
    return new Set((line?.[1] ?? '').trim().split(/\s+/));
  } catch {
    return new Set();
  }
}

/** Probe once per process: hardware KVM, else TCG, with the reason. */
export function probeAccel(): AccelProbe {
  if (accelCache) return accelCache;
  const tcg = (reason: string): AccelProbe => ({
    accel: 'tcg',
    reason: `${reason}; using TCG (software emulation)`,
    kvmUsable: false,
  });
  const flags = cpuFlags();
  const vendorModule = existsSync('/sys/module/kvm_intel') || existsSync('/sys/module/kvm_amd');
  const hw = flags.has('vmx') || flags.has('svm');
  if (!existsSync('/dev/kvm')) accelCache = tcg('/dev/kvm is missing');
  else if (existsSync('/sys/module/kvm_pvm') && !vendorModule)
    accelCache = tcg('/dev/kvm is served by kvm_pvm, which runs only PVM guest kernels');
  else if (!vendorModule && !hw)
    accelCache = tcg('no hardware virtualization (no vmx/svm CPU flag, neither kvm_intel nor kvm_amd loaded)');
  else {
    try {
      closeSync(openSync('/dev/kvm', 'r+'));
      accelCache = {
        accel: 'kvm',
        reason: `hardware virtualization (${existsSync('/sys/module/kvm_amd') ? 'kvm_amd' : 'kvm_intel'})`,
        kvmUsable: true,
      };
    } catch (e) {
      accelCache = tcg(`/dev/kvm cannot be opened (${(e as NodeJS.ErrnoException).code})`);
    }
  }
  return accelCache;
}

/** The accelerator for a request: 'auto' (or nothing) follows the probe; 'kvm' fails clearly where it cannot work. */
export function chooseAccel(requested: string | undefined): Accel {
  const p = probeAccel();
  if (!requested || requested === 'auto') return p.accel;
  if (requested === 'tcg') return 'tcg';
  if (requested === 'kvm') {
    if (!p.kvmUsable)
      throw new HostSupportError(
        `--accel kvm: KVM is not usable on this host (${p.reason.replace(/; using TCG.*$/, '')}); use --accel tcg or auto`,
      );
    return 'kvm';
  }
  throw new InvalidArgumentError(`invalid --accel "${requested}": use auto, kvm or tcg`);
}

/** The x86-64 system emulator, or a clear error. */
export function qemuBinary(): string {
  const p = hullEnv('HULL_QEMU') || findExecutable('qemu-system-x86_64');
  if (!p)
    throw new HostSupportError(
      'qemu-system-x86_64 is not installed; install the qemu-system-x86 package (scripts/setup.sh does) to run VMs',
    );
  return p;
}

/** QEMU's virtiofsd (VM volumes), or a clear error. */
export function virtiofsdBinary(): string {
  const p =
    hullEnv('HULL_VIRTIOFSD') ||
    ['/usr/lib/qemu/virtiofsd', '/usr/libexec/virtiofsd', '/usr/lib/virtiofsd'].find((c) => existsSync(c)) ||
    findExecutable('virtiofsd');
  if (!p)
    throw new HostSupportError(
      'virtiofsd is not installed (VM volumes need it); install the qemu-system-common or virtiofsd package, or drop -v',
    );
  return p;
}

export function qemuImgBinary(): string {
  const p = findExecutable('qemu-img');
  if (!p) throw new HostSupportError('qemu-img is not installed; install the qemu-utils package to use VM disks');
  return p;
}

/** What qemu-img info says about an image. */
export interface DiskImageInfo {
  format: string;
  virtualSize: number;
  backingFile?: string;
}

export async function qemuImgInfo(path: string, format?: string): Promise<DiskImageInfo> {
  const args = ['info', '--output=json', ...(format ? ['-f', format] : []), path];
  const r = await runProgram(qemuImgBinary(), args, { allowFailure: true });
  if (r.status !== 0) throw new HostCommandError('qemu-img', ['info', path], r.status, r.stderr);
  const j = JSON.parse(r.stdout) as { format: string; 'virtual-size': number; 'backing-filename'?: string };
  return {
    format: j.format,
    virtualSize: j['virtual-size'],
    ...(j['backing-filename'] ? { backingFile: j['backing-filename'] } : {}),
  };
}

/** A qcow2 overlay at `path` over `base` (which is only read, never written). */
export async function qemuImgCreateOverlay(path: string, base: string, baseFormat: string): Promise<void> {
  const r = await runProgram(qemuImgBinary(), ['create', '-q', '-f', 'qcow2', '-F', baseFormat, '-b', base, path], {
    allowFailure: true,
  });
  if (r.status !== 0) throw new HostCommandError('qemu-img', ['create', path], r.status, r.stderr);
}
