/**
 * The QEMU command line of a hull VM, and the settings file (vm.json) the driver hands to the monitor.
 *
 * Machine types, measured here under TCG (Debian cloud kernel 6.1, launch to the agent's READY):
 *   virtio (default): `-M microvm` without the legacy PIT and PIC (2.6–3.0 s): no PCI, no firmware, devices
 *     on virtio-mmio announced through ACPI (the cloud kernel has VIRTIO_MMIO_CMDLINE_DEVICES off);
 *     `-M pc` with virtio-pci took 3.3–4.6 s (SeaBIOS, PCI enumeration). rtc=off cost 1.7 s more (the
 *     kernel waits for a clock that never answers), so the RTC stays.
 *   emulated: `-M pc` with its built-in IDE controller (ata_piix), the root disk on IDE, the agent on the
 *     second UART (ttyS1): full emulation, for comparison with the para-virtualized model.
 *   disk images (`hull vm create --disk`): `-M pc` booting the disk through SeaBIOS and the disk's own boot
 *     loader (virtio-blk-pci, or IDE with the emulated model); no agent, the serial console is the interface.
 * Under TCG microvm's ACPI timer calibration hangs without `tsc_early_khz=`; microvm has no keyboard
 * controller, so the kernel reboots/powers off with `reboot=t` (triple fault), which -no-reboot turns into
 * QEMU exiting. `panic=-1` makes a kernel panic end QEMU at once (the monitor reports it from the console).
 */
import { basename, join } from 'node:path';
import type { Accel } from '../host/qemu.js';
import type { LogConfig } from '../common/instance.js';
import type { ProcessSpec } from './protocol.js';
import type { RestorePlan } from './template.js';
import { fullOsArgs, type Firmware, type FullOsDevices } from './fullos.js';

export type DeviceModel = 'virtio' | 'emulated';

/** 'agent': an OCI image with hull's kernel and agent; 'disk': a full OS disk image that boots itself. */
export type VmMode = 'agent' | 'disk';

/** Everything the monitor needs, written by the driver's create as <dir>/vm.json. */
export interface MonitorConfig {
  id: string;
  name: string;
  qemu: string;
  argv: string[];
  /** k8s-file log of the main process */
  logPath: string;
  /** --log-driver/--log-opt: json-file lines instead of k8s-file records, rotation, or no log */
  log?: LogConfig;
  /** exit file (code), as conmon's exits/<id> */
  exitFile: string;
  /** why it exited, when there is more to say than the code */
  reasonFile: string;
  /** the guest's serial console */
  consolePath: string;
  exitCommand: string[];
  /** how long start waits for the agent */
  bootTimeoutMs: number;
  main: ProcessSpec;
  deviceModel: DeviceModel;
  mode: VmMode;
  accel: Accel;
  /** guest RAM in bytes (the balloon's ceiling) */
  memory: number;
  cpus: number;
  /** the guest kernel's version, for messages */
  kernel: string;
  /** the network namespace QEMU runs in (its taps live there), when the VM is on hull networks */
  netns?: string;
  /** bind volumes: one virtiofsd each, started by the monitor before QEMU (which connects to `socket`) */
  volumes?: VolumeShare[];
  /** the virtiofsd binary */
  virtiofsd?: string;
  /** start by restoring a VM template (template.ts) instead of booting; `argv` is the cold boot, the fallback */
  restore?: RestorePlan;
  /** disk mode: the QEMU guest agent's channel is there (qga.sock), and the firmware it boots with */
  guestAgent?: boolean;
  firmware?: Firmware;
}

/** A host directory shared with the guest through virtiofs. */
export interface VolumeShare {
  source: string;
  /** vhost-user socket, relative to the instance dir (QEMU's and the monitor's cwd) */
  socket: string;
  /** the virtiofs tag the guest mounts */
  tag: string;
  /** the host side refuses writes too (virtiofsd serves a read-only bind mount of the source) */
  readonly: boolean;
}

/** sun_path of struct sockaddr_un: a socket path must be shorter (with its NUL). */
const SUN_PATH_MAX = 108;

/**
 * The --socket-path the monitor gives a volume's virtiofsd. virtiofsd names its pid file after it,
 * `/run/virtiofsd/<the path with each / as .>.pid`, and refuses to start while another daemon holds that
 * file's lock ("Cannot lock pid file"), so the path must differ from every other VM's on the host. The
 * absolute path (so that the daemon's argv names its instance directory) when it fits in sun_path;
 * otherwise one relative to the instance dir (virtiofsd's cwd) through the instance's own name,
 * `../<id>/vfs-N.sock` (78 bytes for a 64-hex id), never the bare `vfs-N.sock` every VM would share.
 */
export function virtiofsdSocketPath(dir: string, socket: string): string {
  const abs = join(dir, socket);
  return Buffer.byteLength(abs) < SUN_PATH_MAX ? abs : join('..', basename(dir), socket);
}

export interface MachineOptions {
  accel: Accel;
  deviceModel: DeviceModel;
  /** default 'agent' */
  mode?: VmMode;
  /** kernel and initramfs (agent mode) */
  kernel: string;
  initrd: string;
  disk: string;
  diskFormat: 'qcow2' | 'raw';
  memoryMiB: number;
  cpus: number;
  name: string;
  /** socket paths relative to QEMU's cwd (the instance dir): sun_path is short */
  qmpSocket: string;
  agentSocket: string;
  /** the serial console's socket (the monitor listens; it keeps console.log and serves hull console) */
  consoleSocket: string;
  /** --read-only: the agent remounts the root disk read-only once its mount points exist */
  readOnly?: boolean;
  /**
   * Network interfaces: tap devices that exist in the namespace QEMU runs in (see src/host/tap.ts), each
   * with the MAC of the CNI interface it stands in for.
   */
  nics?: { tap: string; mac: string }[];
  /** virtiofs shares (vhost-user sockets relative to QEMU's cwd); guest RAM then is a shared memfd */
  shares?: { socket: string; tag: string }[];
  /** disk mode: the guest agent's channel, the cloud-init seed, UEFI (src/vm/fullos.ts) */
  fullOs?: FullOsDevices;
  /**
   * --display vnc: a graphics card (virtio-vga with the virtio model: the guest can follow a VNC client's
   * resize; std VGA with the emulated one) and a USB tablet (absolute pointer), the screen served by QEMU's
   * VNC server on this unix socket (relative to QEMU's cwd). PC machines only: microvm has no display.
   */
  vncSocket?: string;
}

/** The display's devices and QEMU's VNC server (see MachineOptions.vncSocket); none without a socket. */
export function displayArgs(o: Pick<MachineOptions, 'vncSocket' | 'deviceModel'>): string[] {
  if (!o.vncSocket) return [];
  return [
    '-vnc',
    `unix:${o.vncSocket}`,
    '-device',
    o.deviceModel === 'virtio' ? 'virtio-vga' : 'VGA',
    '-usb',
    '-device',
    'usb-tablet',
  ];
}

/**
 * TCG's translation cache (MiB): QEMU 7.2 reserves 1 GiB by default and fills it as the guest runs new code, all
 * of it host memory that stays; a bounded cache is flushed and refilled instead (an idle VM's RSS measured here:
 * bench/vm.ts).
 */
export const TCG_TB_MIB = 64;

/**
 * The balloon of virtio machines: free page reporting (the guest hands its free 2 MiB blocks back, QEMU drops
 * them from its RSS, so host memory follows what the guest uses) and deflate-on-oom (a guest that runs out
 * takes balloon pages back before its OOM killer acts).
 */
export const BALLOON_OPTIONS = 'free-page-reporting=on,deflate-on-oom=on';

/** TSC frequency the guest assumes under TCG (only timekeeping precision depends on it there). */
const TCG_TSC_KHZ = 2_000_000;

export function qemuArgs(o: MachineOptions): string[] {
  const common = [
    '-name',
    `hull-${o.name},debug-threads=on`,
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-accel',
    o.accel === 'kvm' ? 'kvm' : `tcg,tb-size=${TCG_TB_MIB}`,
    '-cpu',
    o.accel === 'kvm' ? 'host' : 'max',
    '-smp',
    String(o.cpus),
    '-m',
    `${o.memoryMiB}M`,
    '-chardev',
    `socket,id=qmp,path=${o.qmpSocket}`,
    '-mon',
    'chardev=qmp,mode=control',
    '-chardev',
    `socket,id=console,path=${o.consoleSocket}`,
    '-drive',
    `file=${o.disk},format=${o.diskFormat},if=none,id=root,cache=writeback,discard=unmap`,
  ];
  // vhost=off: no /dev/vhost-net on hosts like this one, and QEMU's own backend is what TCG needs anyway
  const netdevs = (nicDevice: string) =>
    (o.nics ?? []).flatMap((n, i) => [
      '-netdev',
      `tap,id=net${i},ifname=${n.tap},script=no,downscript=no,vhost=off`,
      '-device',
      `${nicDevice},netdev=net${i},mac=${n.mac}`,
    ]);
  // vhost-user (virtiofsd) maps guest RAM: it must be a shareable memfd, named as the machine's memory
  const shares = o.shares ?? [];
  const memBackend =
    shares.length > 0 && o.mode !== 'disk'
      ? {
          object: ['-object', `memory-backend-memfd,id=mem,size=${o.memoryMiB}M,share=on`],
          prop: ',memory-backend=mem',
        }
      : { object: [], prop: '' };
  const fsDevices = (device: string) =>
    shares.flatMap((v, i) => [
      '-chardev',
      `socket,id=vfs${i},path=${v.socket}`,
      '-device',
      `${device},chardev=vfs${i},tag=${v.tag}`,
    ]);
  if (o.mode === 'disk') {
    // a full OS: its own firmware boot, reboots stay reboots
    return [
      ...common,
      '-M',
      'pc',
      '-serial',
      'chardev:console',
      ...(o.deviceModel === 'virtio'
        ? [
            '-device',
            'virtio-blk-pci,drive=root,bootindex=0',
            '-device',
            'virtio-rng-pci',
            '-device',
            'virtio-balloon-pci,id=balloon0',
          ]
        : ['-device', 'ide-hd,drive=root,bus=ide.0,bootindex=0']),
      ...netdevs(o.deviceModel === 'virtio' ? 'virtio-net-pci' : 'e1000'),
      ...displayArgs(o),
      ...(o.fullOs ? fullOsArgs(o.fullOs) : []),
    ];
  }
  const cmdline = ['console=ttyS0', 'quiet', 'panic=-1', 'reboot=t', ...(o.readOnly ? ['hull.ro=1'] : [])];
  const a = [
    ...common,
    '-no-reboot',
    '-kernel',
    o.kernel,
    '-initrd',
    o.initrd,
    '-chardev',
    `socket,id=agent,path=${o.agentSocket}`,
    ...memBackend.object,
  ];
  if (o.deviceModel === 'virtio') {
    if (o.accel === 'tcg') cmdline.push(`tsc_early_khz=${TCG_TSC_KHZ}`);
    cmdline.push('hull.root=/dev/vda');
    a.push(
      '-M',
      `microvm,pit=off,pic=off,isa-serial=on${memBackend.prop}`,
      '-serial',
      'chardev:console',
      '-device',
      'virtio-blk-device,drive=root',
      '-device',
      'virtio-serial-device,max_ports=2',
      '-device',
      'virtserialport,chardev=agent,name=org.hull.agent',
      '-device',
      'virtio-rng-device',
      '-device',
      `virtio-balloon-device,id=balloon0,${BALLOON_OPTIONS}`,
      ...netdevs('virtio-net-device'),
      ...fsDevices('vhost-user-fs-device'),
      // virtio-mmio devices default to legacy virtio, which vhost-user backends (libvhost-user) refuse
      ...(shares.length > 0 ? ['-global', 'virtio-mmio.force-legacy=false'] : []),
    );
  } else {
    cmdline.push('hull.root=/dev/sda', 'hull.chan=/dev/ttyS1');
    a.push(
      '-M',
      `pc${memBackend.prop}`,
      '-serial',
      'chardev:console',
      '-serial',
      'chardev:agent',
      '-device',
      'ide-hd,drive=root,bus=ide.0',
      // a fully emulated PCI NIC the cloud kernel has a driver for (it has no e1000 or rtl8139)
      ...netdevs('vmxnet3'),
      // volumes: virtiofs has no emulated form; its PCI device is the one virtio device of this model
      ...fsDevices('vhost-user-fs-pci'),
      ...displayArgs(o),
    );
  }
  a.push('-append', cmdline.join(' '));
  return a;
}
