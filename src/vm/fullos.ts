/**
 * What a full OS disk VM (`hull vm create --disk`) gets besides its disk, as Incus, Proxmox and multipass give
 * it: the QEMU guest agent's channel (a virtio-serial port named org.qemu.guest_agent.0, joined to the
 * monitor's qga.sock), the cloud-init NoCloud seed as a CD-ROM on the second IDE bus, and the firmware: SeaBIOS
 * (QEMU's default) or UEFI (Debian's ovmf: the read-only OVMF_CODE as the first pflash, a per-instance copy of
 * OVMF_VARS, where the guest keeps its boot entries, as the second).
 */
import { existsSync } from 'node:fs';
import { HostSupportError, InvalidArgumentError } from '../common/errors.js';

export type Firmware = 'bios' | 'uefi';

/** The guest agent's virtio-serial port name, as qemu-guest-agent's udev rule and unit expect it. */
export const GUEST_AGENT_PORT = 'org.qemu.guest_agent.0';
/** The port's QEMU device id (QMP's VSERPORT_CHANGE events name it). */
export const GUEST_AGENT_DEVICE = 'qga0';

/** OVMF's code and variable store templates (Debian's ovmf: the 4 MiB builds first, as libvirt prefers). */
const OVMF_PAIRS: [string, string][] = [
  ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'],
  ['/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/OVMF/OVMF_VARS.fd'],
];

export function parseFirmware(v: string | undefined): Firmware | undefined {
  if (v === undefined) return undefined;
  if (v !== 'bios' && v !== 'uefi')
    throw new InvalidArgumentError(`--firmware ${v}: give bios (SeaBIOS, the default) or uefi (OVMF)`);
  return v;
}

/** The host's OVMF, or why there is none. */
export function ovmfFiles(): { code: string; vars: string } {
  for (const [code, vars] of OVMF_PAIRS) if (existsSync(code) && existsSync(vars)) return { code, vars };
  throw new HostSupportError('--firmware uefi needs OVMF, which is not installed (apt-get install ovmf)');
}

export interface FullOsDevices {
  /** the guest agent's socket, relative to QEMU's cwd (the monitor listens on it) */
  guestAgentSocket: string;
  /** the cloud-init seed (an ISO 9660 volume), when there is one */
  seed?: string;
  /** UEFI: OVMF's code (read-only) and this instance's variable store */
  uefi?: { code: string; vars: string };
}

/** QEMU arguments for a disk VM's guest agent channel, seed and firmware (machine `pc`). */
export function fullOsArgs(d: FullOsDevices): string[] {
  return [
    ...(d.uefi
      ? [
          '-drive',
          `if=pflash,format=raw,unit=0,readonly=on,file=${d.uefi.code}`,
          '-drive',
          `if=pflash,format=raw,unit=1,file=${d.uefi.vars}`,
        ]
      : []),
    '-chardev',
    `socket,id=qga,path=${d.guestAgentSocket}`,
    '-device',
    'virtio-serial-pci,id=vser0',
    '-device',
    `virtserialport,chardev=qga,name=${GUEST_AGENT_PORT},id=${GUEST_AGENT_DEVICE}`,
    ...(d.seed
      ? [
          '-drive',
          `file=${d.seed},format=raw,if=none,id=seed,readonly=on,media=cdrom`,
          '-device',
          'ide-cd,drive=seed,bus=ide.1',
        ]
      : []),
  ];
}
