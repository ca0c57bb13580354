/**
 * Every path hull keeps under its root (`hull --root`, /var/lib/hull by default) and under an instance's
 * directory, named in one place. Code asks {@link rootPaths} and {@link instancePaths} for a path instead of
 * joining a literal name (test/architecture.test.ts holds src/ to that for the names below).
 *
 * Under the root:
 *
 * | path                          | what                                                          | kept by                      |
 * |-------------------------------|---------------------------------------------------------------|------------------------------|
 * | hull.db (-wal, -shm)          | the state database (SQLite): instances, events                | engine/store.ts              |
 * | hull.db.corrupt-<time>        | a damaged database moved aside by `hull system recover`       | engine/recover.ts            |
 * | build-cache.db                | `hull build`'s step cache                                     | engine/build/cache.ts        |
 * | auth.json                     | registry logins (`hull login`)                                | engine/transfer.ts           |
 * | containers/<id>/              | an instance's directory, either kind (the table below)        | engine, the drivers          |
 * | images/                       | the OCI image layout: oci-layout, index.json, blobs/sha256/,  | image/store/                 |
 * |                               | .tmp/ (temp blobs), .leases/, .downloads/ (partial pulls)     |                              |
 * | layers/<diffID hex>/          | extracted layers; layers/.tmp/ extractions and GC leftovers   | image/store/layers.ts, gc.ts |
 * | run/runc/, run/crun/          | the OCI runtimes' state (their --root)                        | host/runtime.ts              |
 * | run/bin/                      | the runtime wrappers and hull's private null device (null)    | host/runtime.ts              |
 * | netns/<id>                    | instances' pinned network namespaces                          | engine/networking.ts         |
 * | networks/                     | network definitions (<name>.json, .lock.db), attachments/<id>,| network/                     |
 * |                               | ipam/ (host-local's leases), aardvark/ (DNS)                  |                              |
 * | vm/                           | VM caches: disks/ (an image's ext4 root disk), kernels/ and   | vm/                          |
 * |                               | initramfs/ (these two in $HULL_VM_CACHE when it is set),      |                              |
 * |                               | templates/<key>/ (saved VMs restored instead of booting)      | vm/template.ts               |
 * | space-reserve                 | written blocks given back when the disk is full (Full disks)  | host/reserve.ts              |
 * | volumes/<name>/volume.json,   | named and anonymous volumes (docker's local driver): the      | engine/volumes.ts            |
 * | volumes/<name>/_data/         | record, and the directory bind-mounted into instances         |                              |
 * |                               | (the default pool's data; other pools keep theirs in the pool)|                              |
 * | volumes/<name>/snapshots/     | the default pool's snapshots of a volume                      | storage/                     |
 * | volumes/.vm-disks/<id>.*      | the default pool's VM root disks (other pools: vm-disks/)     | engine/vm-disks.ts           |
 * | storage/pools/<name>.json     | storage pools: records, mount points (mnt/<name>), loop-backed| storage/pools.ts             |
 * | storage/mnt/ storage/images/  | pools' image files (images/<name>.img), the journal of volume |                              |
 * | storage/journal/              | operations in progress (finished or rolled back on next use)  |                              |
 * | daemon/tls/cert.pem, key.pem  | the daemon's self-signed TLS certificate for --listen         | engine/console.ts            |
 * | daemon/listen                 | the address a daemon listens on (HOST:PORT), for hull console | engine/console.ts            |
 *
 * Outside the root, on the host (kept off the root on purpose: what must survive a full root):
 *
 * | path                               | what                                                                           |
 * |------------------------------------|--------------------------------------------------------------------------------|
 * | /run/hull/exits/<root hash>/<id>/  | conmon's persist dir (exit, oom), written before exits/<id> (container/driver)  |
 * | /run/hull/network.lock.db          | the host-wide network lock ($HULL_NETWORK_LOCK; network/manager.ts)            |
 * | /run/hull/runtime-versions.json    | cached versions of the OCI runtimes (host/probe.ts)                            |
 * | /run/hull/hull.sock, hull.pid      | the daemon's socket ($HULL_SOCKET, --socket) and its pid file (api/daemon.ts)    |
 *
 * Under an instance's directory (`containers/<id>/`):
 *
 * | path                          | what                                                          | kind                         |
 * |-------------------------------|---------------------------------------------------------------|------------------------------|
 * | instance.json                 | the instance's own copy of its record (for `system recover`)  | both (engine/instance-file)  |
 * | ctr.log                       | the main process's output (k8s-file)                          | both                         |
 * | exits/<id>, exits/reason,     | the exit code, why (when the code does not say it all), the   | both                         |
 * | exits/oom                     | OOM killer's marker                                           |                              |
 * | config.json                   | the OCI runtime spec (the bundle is the instance dir)         | container                    |
 * | rootfs/ upper/ work/ empty/   | the overlay root: mount point, upper and work dirs, an empty  | container                    |
 * |                               | lower layer for an image without layers                       |                              |
 * | hosts hostname resolv.conf    | the container's /etc files                                    | container                    |
 * | idshift.json                  | marker: ownership shifted for this user namespace mapping     | container                    |
 * | pidfile conmon.pid            | the main process's and conmon's pids                          | container                    |
 * | attach ctl winsz oom          | conmon's sockets and files                                    | container                    |
 * | exec/<session>/               | an exec's process.json, pid and conmon files                  | container                    |
 * | vm.json                       | the VM monitor's settings (QEMU argv, main process, paths)    | vm                           |
 * | disk.qcow2                    | a VM's root disk, when made before disks lived in pools       | vm                           |
 * | initrd.cpio                   | only with --initrd: the user's archive followed by hull's     | vm                           |
 * | monitor.pid qemu.pid          | the monitor's and QEMU's pids                                 | vm                           |
 * | console.log qemu.log          | the guest's serial console, QEMU's stderr, the monitor's and  | vm                           |
 * | monitor.log virtiofsd.log     | the volumes' virtiofsd's logs                                 |                              |
 * | seed.iso efivars.fd           | a disk VM's cloud-init seed; its UEFI variable store          | vm                           |
 * | guest-net.json                | a disk VM's addresses, as its guest agent reported them       | vm                           |
 * | qmp.sock agent.sock qga.sock  | the monitor's sockets (relative names: a socket path must fit | vm                           |
 * | console.sock ctl.sock         | in 108 bytes, so the monitor works in the instance dir);      |                              |
 * | vfs-<n>.sock                  | a volume's virtiofsd socket                                   |                              |
 * | vnc.sock                      | the display's VNC server (--display): QEMU's, or the Xvnc of  | both                         |
 * |                               | a graphical container (relative name, as the sockets above)   |                              |
 * | x11/ xvnc.pid xvnc.log        | a graphical container's X socket dir (bound over the Xvnc's   | container                    |
 * |                               | and the container's /tmp/.X11-unix), the Xvnc's pid and log   |                              |
 */
import { join } from 'node:path';

/** The state database's file name in the root (its -wal/-shm and set-aside copies are named after it). */
export const DATABASE_FILE = 'hull.db';

/** The instance file's name in an instance's directory. */
export const INSTANCE_FILE = 'instance.json';

/** A volume's record and data directory names, inside volumes/<name>/. */
export const VOLUME_FILE = 'volume.json';
export const VOLUME_DATA = '_data';

/** The VM monitor's sockets, relative to the instance dir (the monitor's working directory). */
export const VM_SOCKETS = {
  qmp: 'qmp.sock',
  agent: 'agent.sock',
  console: 'console.sock',
  ctl: 'ctl.sock',
  /** a disk VM's QEMU guest agent channel (src/vm/guest-agent.ts) */
  qga: 'qga.sock',
} as const;

/** The VNC server's socket of an instance with a display, relative to the instance dir (QEMU's and Xvnc's cwd). */
export const VNC_SOCKET = 'vnc.sock';

/** The paths under hull's root (see the file comment). */
export function rootPaths(root: string) {
  return {
    root,
    db: join(root, DATABASE_FILE),
    buildCache: join(root, 'build-cache.db'),
    auth: join(root, 'auth.json'),
    containers: join(root, 'containers'),
    /** an instance's directory */
    instanceDir: (id: string): string => join(root, 'containers', id),
    images: join(root, 'images'),
    layers: join(root, 'layers'),
    run: join(root, 'run'),
    /** an OCI runtime's state directory (its --root) */
    runtimeState: (runtime: string): string => join(root, 'run', runtime),
    runBin: join(root, 'run', 'bin'),
    /** the lease of the daemon that supervises this root's instances (restart policies, healthchecks) */
    daemonLease: join(root, 'run', 'daemon.lease'),
    netns: join(root, 'netns'),
    /** an instance's pinned network namespace */
    netnsPath: (id: string): string => join(root, 'netns', id),
    networks: join(root, 'networks'),
    networkAttachments: join(root, 'networks', 'attachments'),
    /** the VM caches (disks/ always; kernels/ and initramfs/ unless $HULL_VM_CACHE moves them) */
    vm: join(root, 'vm'),
    /** VM templates (vm/template.ts): <key>/state.bin and template.json each, .lock */
    vmTemplates: join(root, 'vm', 'templates'),
    spaceReserve: join(root, 'space-reserve'),
    volumes: join(root, 'volumes'),
    /** a volume's directory: its record (volume.json) and its data (_data, the mount point) */
    volumeDir: (name: string): string => join(root, 'volumes', name),
    /** the daemon's own files: its self-signed certificate, the TCP address it listens on */
    daemon: join(root, 'daemon'),
    daemonTls: join(root, 'daemon', 'tls'),
    daemonTlsCert: join(root, 'daemon', 'tls', 'cert.pem'),
    daemonTlsKey: join(root, 'daemon', 'tls', 'key.pem'),
    daemonListen: join(root, 'daemon', 'listen'),
    /** storage pools (storage/pools.ts): records, mount points, loop images, the journal */
    storage: join(root, 'storage'),
  };
}

/** hull's host-wide run directory and what is in it (see the file comment). */
export const HOST_RUN_DIR = '/run/hull';
export const hostPaths = {
  /** conmon's persist dirs of one root's containers */
  exitsOf: (rootHash: string): string => join(HOST_RUN_DIR, 'exits', rootHash),
  networkLock: join(HOST_RUN_DIR, 'network.lock.db'),
  runtimeVersions: join(HOST_RUN_DIR, 'runtime-versions.json'),
  /** the daemon's default socket (hull daemon; $HULL_SOCKET) */
  daemonSocket: join(HOST_RUN_DIR, 'hull.sock'),
  /** the pid file next to a daemon's socket: one daemon per socket */
  daemonPidFile: (socket: string): string => `${socket.replace(/\.sock$/, '')}.pid`,
};

export type RootPaths = ReturnType<typeof rootPaths>;

/** The paths under an instance's directory (see the file comment). */
export function instancePaths(dir: string) {
  const exits = join(dir, 'exits');
  return {
    dir,
    instanceFile: join(dir, INSTANCE_FILE),
    log: join(dir, 'ctr.log'),
    exits,
    /** the exit record of process `id` (the instance's own id for the main process) */
    exitFile: (id: string): string => join(exits, id),
    exitReason: join(exits, 'reason'),
    exitOom: join(exits, 'oom'),
    // container
    config: join(dir, 'config.json'),
    rootfs: join(dir, 'rootfs'),
    upper: join(dir, 'upper'),
    work: join(dir, 'work'),
    empty: join(dir, 'empty'),
    hosts: join(dir, 'hosts'),
    hostname: join(dir, 'hostname'),
    resolvConf: join(dir, 'resolv.conf'),
    idShiftMarker: join(dir, 'idshift.json'),
    /** --ipc shareable: the container's /dev/shm, a tmpfs mounted on the host so that joiners can share it */
    shm: join(dir, 'shm'),
    pidfile: join(dir, 'pidfile'),
    conmonPid: join(dir, 'conmon.pid'),
    /** conmon's files in the instance dir, removed before a re-create */
    conmonFiles: ['pidfile', 'conmon.pid', 'oom', 'attach', 'ctl', 'winsz'].map((f) => join(dir, f)),
    /** conmon's control fifo (resize, reopen log) */
    conmonCtl: join(dir, 'ctl'),
    /** an exec session's directory */
    execDir: (session: string): string => join(dir, 'exec', session),
    /** the display's VNC server socket (--display; a VM's QEMU or a graphical container's Xvnc) */
    vncSocket: join(dir, VNC_SOCKET),
    /** a graphical container's private X socket dir, its Xvnc's pid and log */
    x11Dir: join(dir, 'x11'),
    xvncPid: join(dir, 'xvnc.pid'),
    xvncLog: join(dir, 'xvnc.log'),
    // vm
    vmConfig: join(dir, 'vm.json'),
    disk: join(dir, 'disk.qcow2'),
    initrd: join(dir, 'initrd.cpio'),
    monitorPid: join(dir, 'monitor.pid'),
    qemuPid: join(dir, 'qemu.pid'),
    monitorLog: join(dir, 'monitor.log'),
    qemuLog: join(dir, 'qemu.log'),
    virtiofsdLog: join(dir, 'virtiofsd.log'),
    console: join(dir, 'console.log'),
    /** a disk VM's cloud-init NoCloud seed (src/vm/cloudinit.ts), remade at each create */
    seed: join(dir, 'seed.iso'),
    /** a UEFI disk VM's variable store (a copy of OVMF_VARS made once: its boot entries persist) */
    efiVars: join(dir, 'efivars.fd'),
    /** a disk VM's addresses as its guest agent last reported them (the monitor writes it) */
    guestNet: join(dir, 'guest-net.json'),
    /** the monitor's sockets, as paths (the monitor itself uses the relative names, VM_SOCKETS) */
    vmSockets: Object.values(VM_SOCKETS).map((s) => join(dir, s)),
  };
}

export type InstancePaths = ReturnType<typeof instancePaths>;
