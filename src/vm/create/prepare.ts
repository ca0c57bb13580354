/**
 * VmDriver.create, phase 2 of 3: prepare. Lays out on disk everything the monitor needs, from the plan
 * validate (./validate.ts) made: the instance dir cleared of a previous run's pidfiles, exit records and
 * sockets (the disk and the log are kept: a start after an exit re-creates), a tap next to each network
 * interface, the guest kernel and initramfs (cached under the root), the instance's qcow2 overlay, the
 * combined --initrd archive, and vm.json, the monitor's settings.
 *
 * Undone on failure by the engine, as for every driver: a new instance's dir is removed whole
 * (VmDriver.delete), a re-created one is cleaned up (VmDriver.cleanupAfterExit) and keeps its disk.
 */
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InstanceContext } from '../../common/instance.js';
import { hullEnvNumber } from '../../common/env.js';
import { hostsFile, resolvConfFile } from '../../host/etcfiles.js';
import { createRedirectedTap } from '../../host/tap.js';
import { ensureImageDisk, ensureInstanceDisk, ensureSizedImageDisk, importDiskImage } from '../disk.js';
import { ensureInitramfs } from '../initramfs.js';
import { ensureDefaultKernel, vmCacheDir, type KernelInfo } from '../kernel.js';
import { qemuArgs, type MonitorConfig } from '../machine.js';
import { ensureTemplate, restoreArgv, templateMac, templatesEnabled } from '../template.js';

import type { GuestNic, ProcessSpec } from '../protocol.js';
import { MiB, rootDiskPath, type VmPlan } from './validate.js';
import { prepareFullOs } from './fullos-prepare.js';
import { instancePaths, rootPaths, VM_SOCKETS, VNC_SOCKET } from '../../common/paths.js';

/** Boot timeout: TCG boots in seconds, but a loaded CI host can take much longer. */
function bootTimeoutMs(): number {
  const env = hullEnvNumber('HULL_VM_BOOT_TIMEOUT');
  return env !== undefined ? env * 1000 : 60_000;
}

/** Everything on disk for the monitor; returns the settings written to vm.json. */
export async function prepareCreate(ctx: InstanceContext, plan: VmPlan, logPath: string): Promise<MonitorConfig> {
  const cfg = ctx.config;
  const { shares, guestMounts, model, accel } = plan;
  const p = instancePaths(ctx.dir);
  const exits = p.exits;
  mkdirSync(ctx.dir, { recursive: true, mode: 0o700 });
  // a previous run's leftovers (start after exit re-creates): keep the disk and the log
  rmSync(exits, { recursive: true, force: true });
  mkdirSync(exits);
  for (const f of [
    p.monitorPid,
    p.qemuPid,
    p.console,
    p.qemuLog,
    p.vncSocket,
    ...p.vmSockets,
    ...shares.map((v) => join(ctx.dir, v.socket)),
  ])
    rmSync(f, { force: true });

  const status = (s: string): void => {
    process.stderr.write(s + '\n');
  };
  const disk = rootDiskPath(ctx);
  // an image VM's disk is a qcow2 overlay; a full OS disk is in its own format (legacy: an overlay over it)
  const diskFormat = cfg.vm?.disk && (cfg.vm.rootDisk || cfg.vm.diskInPlace) ? (cfg.vm.diskFormat ?? 'qcow2') : 'qcow2';
  const common = {
    id: ctx.id,
    name: ctx.name,
    qemu: plan.qemu,
    logPath,
    ...(cfg.log ? { log: cfg.log } : {}),
    exitFile: p.exitFile(ctx.id),
    reasonFile: p.exitReason,
    consolePath: p.console,
    exitCommand: ctx.exitCommand,
    bootTimeoutMs: bootTimeoutMs(),
    deviceModel: model,
    accel,
    memory: plan.memory,
    cpus: plan.cpus,
  };
  // hull networks: a tap next to each CNI interface in the instance's namespace, frames redirected both
  // ways (Kata's way); the guest NIC takes the interface's MAC (validate checked there is one) and the agent its address
  const net = ctx.network;
  const nics: { tap: string; mac: string }[] = [];
  const guestNics: GuestNic[] = [];
  for (const [i, a] of (net?.attachments ?? []).entries()) {
    const tap = `tap${i}`;
    await createRedirectedTap(net!.netnsPath, tap, a.interface);
    nics.push({ tap, mac: a.mac! });
    guestNics.push({
      mac: a.mac!,
      name: a.interface,
      address: a.address,
      ...(a.gateway ? { gateway: a.gateway } : {}),
    });
  }
  const machine = {
    accel,
    deviceModel: model,
    disk,
    diskFormat,
    memoryMiB: plan.memory / MiB,
    cpus: plan.cpus,
    name: ctx.name,
    qmpSocket: VM_SOCKETS.qmp,
    agentSocket: VM_SOCKETS.agent,
    consoleSocket: VM_SOCKETS.console,
    readOnly: cfg.readOnly,
    nics,
    shares: shares.map((v) => ({ socket: v.socket, tag: v.tag })),
    ...(cfg.vm?.display === 'vnc' ? { vncSocket: VNC_SOCKET } : {}),
  };
  let mc: MonitorConfig;
  if (plan.diskImage) {
    // a full OS disk: imported into the pool (the user's file is only read), booted in place (--disk-in-place), or
    // (VMs made before pools) a qcow2 overlay over it in the instance dir; validate checked the image's format
    // when the disk was still to be made
    if (plan.diskImage.format && !cfg.vm?.diskInPlace) {
      if (cfg.vm?.rootDisk)
        await importDiskImage(plan.diskImage.path, disk, plan.diskImage.format, cfg.vm.diskSize, status);
      else await ensureInstanceDisk(disk, plan.diskImage.path, plan.diskImage.format);
    }
    const fullOs = prepareFullOs(ctx, plan.diskImage);
    mc = {
      ...common,
      mode: 'disk',
      main: { args: [], env: [] },
      kernel: 'its own',
      guestAgent: true,
      firmware: plan.diskImage.uefi ? 'uefi' : 'bios',
      argv: qemuArgs({ ...machine, mode: 'disk', kernel: '', initrd: '', fullOs }),
    };
  } else {
    const agent = plan.agent!;
    const cache = vmCacheDir(ctx.root);
    const kernel: KernelInfo = agent.kernel ?? (await ensureDefaultKernel(cache, status));
    let initrd = kernel.modulesDir
      ? ensureInitramfs(cache, kernel, model === 'virtio' ? 'virtio-mmio' : 'emulated', agent.binary)
      : ensureInitramfs(cache, kernel, 'none', agent.binary);
    if (agent.initrd) {
      // the kernel unpacks concatenated archives in order: the user's first, hull's /init last
      const combined = p.initrd;
      copyFileSync(agent.initrd, combined);
      appendFileSync(combined, readFileSync(initrd));
      initrd = combined;
    }
    if (!existsSync(disk)) {
      let base = await ensureImageDisk(rootPaths(ctx.root).vm, cfg.imageId, ctx.layers, status);
      if (cfg.vm?.diskSize !== undefined) base = await ensureSizedImageDisk(base, cfg.vm.diskSize, status);
      await ensureInstanceDisk(disk, base, 'raw');
    }
    const hostname = cfg.hostname || ctx.id.slice(0, 12);
    const main: ProcessSpec = {
      args: cfg.command,
      env: cfg.env,
      cwd: cfg.workdir || '/',
      user: cfg.user,
      hostname,
      tty: cfg.tty,
      stdin: cfg.stdin,
      nics: guestNics,
      hosts: hostsFile(hostname, cfg.network, net, ctx.name),
      resolv: resolvConfFile(cfg.network, net),
      mounts: guestMounts,
      ...(cfg.vm?.sysctls ? { sysctls: Object.entries(cfg.vm.sysctls).map(([k, v]) => `${k}=${v}`) } : {}),
    };
    mc = {
      ...common,
      mode: 'agent',
      main,
      ...(agent.virtiofsd ? { volumes: shares, virtiofsd: agent.virtiofsd } : {}),
      kernel: kernel.version,
      argv: qemuArgs({ ...machine, mode: 'agent', kernel: kernel.image, initrd }),
    };
    // start from a template where one fits (template.ts says which VMs can); making it may fail: boot cold
    if (
      templatesEnabled(cfg.vm?.template) &&
      model === 'virtio' &&
      kernel.modulesDir &&
      !agent.initrd &&
      shares.length === 0
    ) {
      try {
        const t = await ensureTemplate(
          ctx.root,
          {
            qemu: plan.qemu,
            accel,
            kernelImage: kernel.image,
            kernelVersion: kernel.version,
            initrd,
            memoryMiB: plan.memory / MiB,
            cpus: plan.cpus,
            nics: nics.length,
            bootTimeoutMs: bootTimeoutMs(),
          },
          status,
        );
        mc.restore = {
          template: t.key,
          state: t.state,
          argv: restoreArgv(mc.argv),
          root: '/dev/vda',
          readOnly: !!cfg.readOnly,
          macs: nics.map((n, i) => [templateMac(i), n.mac]),
        };
      } catch (e) {
        status(`hull: warning: no VM template (${(e as Error).message}); booting cold`);
      }
    }
  }
  if (net && nics.length > 0) mc.netns = net.netnsPath;
  // regenerated on every create (like the container's config.json): no durable write needed
  writeFileSync(p.vmConfig, JSON.stringify(mc));
  return mc;
}
