import { basename, resolve } from 'node:path';
import { InvalidArgumentError } from '../common/errors.js';
import type { DiskFormat } from '../common/instance.js';
import type { Engine } from './engine.js';
import type { CreateRequest } from './config.js';
import type { InstanceRecord } from './store.js';
import { createInstance } from './lifecycle/create.js';
import { isValidName } from './names.js';
import { checkRootDisk } from './vm-disks.js';

/**
 * `hull vm create --disk`: an instance that boots a full OS disk image (qcow2 or raw) instead of an OCI
 * image. The driver of the kind checks the disk (capabilities.diskImages); the disk is then entered into
 * the image store as a layerless image whose labels name it (as Incus imports VM disks as images), so
 * start, restart, inspect and rm work unchanged. The disk itself is never written: the instance boots its own
 * copy of it in a storage pool (--pool; engine/vm-disks.ts), made when the VM is created, unless --disk-in-place
 * asks to boot the file itself.
 */
export async function createFromDiskImage(
  engine: Engine,
  req: Omit<CreateRequest, 'image' | 'disk'>,
  disk: { path: string; format?: DiskFormat },
): Promise<InstanceRecord> {
  const driver = engine.driver(req.kind);
  if (!driver.capabilities.diskImages || !driver.checkDiskImage) {
    throw new InvalidArgumentError(`instances of kind ${req.kind} cannot boot disk images: use an OCI image`);
  }
  // checked before the image is entered, so that bad input leaves nothing behind
  if (req.name !== undefined && !isValidName(req.name)) {
    throw new InvalidArgumentError(
      `invalid name "${req.name}": use letters, digits, _ . - (starting with a letter or digit)`,
    );
  }
  // and the root disk's pool, size and in-place (the image is entered before the instance places its disk)
  checkRootDisk(engine, { ...req.vm, disk: disk.path });
  const path = resolve(disk.path);
  const format = await driver.checkDiskImage(path, disk.format);
  const image = await engine.images.commitBuilt(
    {
      architecture: 'amd64',
      os: 'linux',
      created: new Date().toISOString(),
      // what runs is the disk's own OS; the command is for display
      config: { Cmd: ['/sbin/init'], Labels: { 'org.hull.vm.disk': path, 'org.hull.vm.disk-format': format } },
      rootfs: { type: 'layers', diff_ids: [] },
    },
    [],
    [],
  );
  return createInstance(engine, { ...req, image: basename(path), disk: { path, format } }, { image });
}
