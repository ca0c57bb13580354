/**
 * VmDriver.create, phase 1 of 3: validate. Checks the request and the host before anything is made: QEMU
 * and the accelerator, the memory and CPU counts, the volumes (bind sources exist and are directories),
 * the network mode and the interfaces' MAC addresses, a user's kernel and --initrd, and a disk image's
 * format (the first time only: once the instance's overlay exists it is what boots). Returns the plan
 * that prepare (./prepare.ts) lays out on disk. Nothing here writes anything.
 */
import { existsSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { HostSupportError, InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import type { DiskFormat, InstanceContext, MountSpec } from '../../common/instance.js';
import { chooseAccel, qemuBinary, qemuImgInfo, virtiofsdBinary, type Accel } from '../../host/qemu.js';
import { userKernel, type KernelInfo } from '../kernel.js';
import type { DeviceModel, VolumeShare } from '../machine.js';
import type { GuestMount } from '../protocol.js';
import { agentBinary } from '../programs.js';
import { seedTool } from '../cloudinit.js';
import { ovmfFiles } from '../fullos.js';
import { instancePaths } from '../../common/paths.js';

/** Guest RAM when --memory is not given. */
export const DEFAULT_VM_MEMORY = 512 * 1024 * 1024;
export const MiB = 1024 * 1024;

/** What validate found: everything prepare needs to know about the request, checked. */
export interface VmPlan {
  qemu: string;
  accel: Accel;
  model: DeviceModel;
  /** guest RAM in bytes (a whole number of MiB) */
  memory: number;
  cpus: number;
  shares: VolumeShare[];
  guestMounts: GuestMount[];
  /**
   * a full OS disk image (--disk): the path and, when the instance's overlay is still to be made, its checked
   * format; the tool that writes the cloud-init seed; OVMF for --firmware uefi
   */
  diskImage?: { path: string; format?: DiskFormat; seedTool: string; uefi?: { code: string; vars: string } };
  /** an agent VM: hull's agent binary and the user's kernel when --kernel was given (else the default one, fetched by prepare) */
  agent?: { binary: string; kernel?: KernelInfo; initrd?: string; virtiofsd?: string };
}

/**
 * -v and --tmpfs of a VM: each bind volume a virtiofs share (its own virtiofsd, socket vfs-N.sock in the
 * instance dir, tag hullvolN), mounted by the agent with the tmpfs volumes, parents before children (the
 * container's rules: absolute paths, a later mount at the same target replaces an earlier one).
 */
export function vmVolumes(mounts: readonly MountSpec[]): { shares: VolumeShare[]; guestMounts: GuestMount[] } {
  const latest = new Map<string, MountSpec>();
  for (const m of mounts) {
    if (!m.target.startsWith('/'))
      throw new InvalidArgumentError(`invalid mount target ${JSON.stringify(m.target)}: it must be an absolute path`);
    const target = posix.normalize(m.target).replace(/(.)\/+$/, '$1');
    if (target === '/')
      throw new InvalidArgumentError('invalid mount target /: the root filesystem cannot be a mount target');
    if (m.type === 'bind') {
      if (!m.source.startsWith('/'))
        throw new InvalidArgumentError(
          `invalid bind mount source ${JSON.stringify(m.source)}: it must be an absolute path`,
        );
      let st;
      try {
        st = statSync(m.source);
      } catch {
        throw new NotFoundError(`invalid mount config for type "bind": bind source path does not exist: ${m.source}`);
      }
      if (!st.isDirectory())
        throw new InvalidArgumentError(
          `-v ${m.source}: a VM can mount host directories only (virtiofs shares a directory); mount its parent directory, or use --isolation container`,
        );
    }
    latest.delete(target);
    latest.set(target, { ...m, target });
  }
  const depth = (t: string) => t.split('/').filter(Boolean).length;
  const ordered = [...latest.values()]
    .map((m, i) => ({ m, i }))
    .sort((a, b) => depth(a.m.target) - depth(b.m.target) || a.i - b.i)
    .map((x) => x.m);
  const shares: VolumeShare[] = [];
  const guestMounts: GuestMount[] = [];
  for (const m of ordered) {
    if (m.type === 'bind') {
      const n = shares.length;
      shares.push({ source: m.source, socket: `vfs-${n}.sock`, tag: `hullvol${n}`, readonly: m.readonly });
      guestMounts.push({ type: 'virtiofs', tag: `hullvol${n}`, target: m.target, readonly: m.readonly });
    } else {
      guestMounts.push({ type: 'tmpfs', target: m.target, options: m.options });
    }
  }
  return { shares, guestMounts };
}

/**
 * Check a disk image before a VM boots it: it exists, qemu-img can read it, and it is in the format the user
 * said (a qcow2 file given as raw would boot garbage, a raw file given as qcow2 would fail obscurely).
 * Returns the format to open it with.
 */
export async function checkDiskImage(path: string, stated?: DiskFormat): Promise<DiskFormat> {
  if (!existsSync(path)) throw new NotFoundError(`disk image ${path} does not exist`);
  const found = await qemuImgInfo(path).catch((e: Error) => {
    throw new InvalidArgumentError(`disk image ${path} cannot be read by qemu-img: ${e.message}`);
  });
  if (found.format !== 'qcow2' && found.format !== 'raw') {
    throw new InvalidArgumentError(
      `disk image ${path} is in ${found.format} format; hull boots qcow2 and raw images (convert it with qemu-img convert -O qcow2)`,
    );
  }
  if (stated && stated !== found.format) {
    throw new InvalidArgumentError(
      `disk image ${path} is not ${stated} as --disk-format says: qemu-img finds ${found.format}; give --disk-format ${found.format} or the right file`,
    );
  }
  // and it opens as that format (a truncated or corrupt qcow2 fails here)
  await qemuImgInfo(path, found.format).catch((e: Error) => {
    throw new InvalidArgumentError(`disk image ${path} is damaged: ${e.message}`);
  });
  return found.format;
}

/**
 * Where the VM's writable root disk is: in its storage pool (vm.rootDisk, placed by the engine), the user's own file
 * (--disk-in-place), or disk.qcow2 in the instance dir (VMs made before root disks lived in pools).
 */
export function rootDiskPath(ctx: Pick<InstanceContext, 'config' | 'dir'>): string {
  const vm = ctx.config.vm;
  if (vm?.disk && vm.diskInPlace) return vm.disk;
  return vm?.rootDisk ?? instancePaths(ctx.dir).disk;
}

/** Check the request and the host; nothing is made. */
export async function validateCreate(ctx: InstanceContext): Promise<VmPlan> {
  const cfg = ctx.config;
  const qemu = qemuBinary();
  const accel = chooseAccel(cfg.vm?.accel);
  const model = cfg.vm?.deviceModel ?? 'virtio';
  if (cfg.mounts.length > 0 && cfg.vm?.disk) {
    throw new HostSupportError(
      'volumes (-v/--tmpfs) are not supported for disk-image VMs (hull has no agent in them to mount them); drop them, or mount a virtiofs share yourself',
    );
  }
  if (cfg.vm?.display === 'vnc' && !cfg.vm.disk && model === 'virtio')
    throw new InvalidArgumentError(
      '--display vnc needs a PC machine with a graphics card, and the virtio model boots a microvm, which has no display: add --device-model emulated, or use --display none',
    );
  const { shares, guestMounts } = vmVolumes(cfg.mounts);
  if (cfg.network.startsWith('container:'))
    throw new InvalidArgumentError(
      `--network ${cfg.network} is not possible for a VM: it has its own kernel and network stack; use a hull network`,
    );
  if (cfg.network === 'host') {
    throw new InvalidArgumentError(
      '--network host is not possible for a VM (it has its own kernel and network stack): use a hull network, or --network none',
    );
  }
  const memory = cfg.resources.memory ?? DEFAULT_VM_MEMORY;
  if (memory === 0)
    throw new InvalidArgumentError('a VM needs a RAM size, not an unlimited --memory: give one such as --memory 2g');
  if (memory < 64 * MiB)
    throw new InvalidArgumentError(`--memory ${Math.round(memory / MiB)}m is too small for a VM: give at least 64m`);
  const cpus = Math.max(1, Math.ceil(cfg.resources.cpus ?? 1));
  // each hull network's interface is taken over by the guest NIC, MAC and all
  for (const a of ctx.network?.attachments ?? []) {
    if (!a.mac)
      throw new HostSupportError(`network ${a.network} gave ${a.interface} no MAC address; the VM cannot take it over`);
  }
  const plan: VmPlan = { qemu, accel, model, memory: Math.floor(memory / MiB) * MiB, cpus, shares, guestMounts };
  if (cfg.vm?.disk) {
    // the image is checked when the instance's disk is made from it (a re-create boots that disk); a disk booted
    // in place at every create
    const made = !cfg.vm.diskInPlace && existsSync(rootDiskPath(ctx));
    plan.diskImage = {
      path: cfg.vm.disk,
      ...(made ? {} : { format: await checkDiskImage(cfg.vm.disk, cfg.vm.diskFormat) }),
      seedTool: seedTool(),
      ...(cfg.vm.firmware === 'uefi' ? { uefi: ovmfFiles() } : {}),
    };
  } else {
    const kernel = cfg.vm?.kernel ? userKernel(cfg.vm.kernel) : undefined;
    if (cfg.vm?.initrd && !existsSync(cfg.vm.initrd))
      throw new InvalidArgumentError(`--initrd ${cfg.vm.initrd} does not exist`);
    plan.agent = {
      binary: agentBinary(),
      ...(kernel ? { kernel } : {}),
      ...(cfg.vm?.initrd ? { initrd: cfg.vm.initrd } : {}),
      ...(shares.length > 0 ? { virtiofsd: virtiofsdBinary() } : {}),
    };
  }
  return plan;
}
