/**
 * VmDriver.create's prepare, for a full OS disk VM: the cloud-init seed (remade at every create: the
 * instance's name, addresses and the user's files as they are now) and, with UEFI, the instance's own copy of
 * OVMF's variable store (made once, so the guest's boot entries persist across restarts).
 */
import { copyFileSync, existsSync } from 'node:fs';
import type { InstanceContext } from '../../common/instance.js';
import { instancePaths, VM_SOCKETS } from '../../common/paths.js';
import { seedFiles, writeSeed } from '../cloudinit.js';
import type { FullOsDevices } from '../fullos.js';
import type { VmPlan } from './validate.js';

/** A hostname from an instance name: hull's names allow _ and ., a hostname label neither. */
export function hostnameOf(name: string): string {
  const h = name
    .replace(/[^A-Za-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
  return h || 'hull';
}

export function prepareFullOs(ctx: InstanceContext, d: NonNullable<VmPlan['diskImage']>): FullOsDevices {
  const p = instancePaths(ctx.dir);
  // --hostname, else the instance's name (the engine's default, the short id, is a container's habit)
  const given = ctx.config.hostname && ctx.config.hostname !== ctx.id.slice(0, 12) ? ctx.config.hostname : '';
  const hostname = given || hostnameOf(ctx.name);
  writeSeed(
    p.seed,
    seedFiles({
      id: ctx.id,
      hostname,
      ...(ctx.config.vm?.cloudInit ? { cloudInit: ctx.config.vm.cloudInit } : {}),
      ...(ctx.network ? { network: ctx.network } : {}),
    }),
    d.seedTool,
  );
  let uefi: FullOsDevices['uefi'];
  if (d.uefi) {
    if (!existsSync(p.efiVars)) copyFileSync(d.uefi.vars, p.efiVars);
    uefi = { code: d.uefi.code, vars: 'efivars.fd' };
  }
  return { guestAgentSocket: VM_SOCKETS.qga, seed: 'seed.iso', ...(uefi ? { uefi } : {}) };
}
