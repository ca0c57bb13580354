/**
 * Every environment variable hull reads, in one place: what it does, and nothing else reads `process.env` for a
 * HULL_* name (test/architecture.test.ts checks). Each is read when asked for, not at import, so a long-lived
 * process (a daemon) and tests that set a variable see the current value.
 *
 * Settings a user may set:
 *   HULL_ROOT                    hull's state directory when --root is not given (default /var/lib/hull)
 *   HULL_RUNTIME                 the OCI runtime for containers (runc, crun, or a path), over hull's choice
 *   HULL_INSECURE_REGISTRIES     registries reached over plain HTTP, comma or space separated (as --tls-verify=false)
 *   HULL_REGISTRY_STALL_TIMEOUT  give up on a registry transfer attempt when no byte moves this long (30, 500ms, 2m; 0: never)
 *   HULL_REGISTRY_ATTEMPTS       attempts per registry request and per blob (default 4)
 *   HULL_PUSH_CHUNK_SIZE         bytes per PATCH of a chunked blob upload (default: the whole blob in one request)
 *   HULL_CNI_PATH                where the CNI plugins are, colon separated (default /usr/lib/cni:/opt/cni/bin)
 *   HULL_AARDVARK                the aardvark-dns binary (default: found on PATH or in /usr/lib/podman)
 *   HULL_NETWORK_LOCK            the host-wide network lock file (default /run/hull/network.lock.db)
 *   HULL_NETWORK_BACKEND         how instances join networks: native (hull's own set-up, the default) or cni (the
 *                                CNI plugin chain); attachments made by either are undone by the same one
 *   HULL_QEMU                    the qemu-system-x86_64 binary
 *   HULL_VIRTIOFSD               the virtiofsd binary
 *   HULL_VM_AGENT                the guest agent binary packed into VMs' initramfs (default guest/hull-agent)
 *   HULL_TTYWAIT                 the helper `exec -t` runs first with crun (default guest/hull-ttywait; container/ttywait.ts)
 *   HULL_VM_BOOT_TIMEOUT         seconds a VM's agent may take to answer after QEMU starts
 *   HULL_VM_CACHE                where guest kernels and VM root disks are cached (default <root>/vm)
 *   HULL_VM_TEMPLATES            0: image VMs boot cold instead of restoring a saved template (as --no-template)
 *   HULL_SOCKET                  the daemon's socket when --socket is not given (default /run/hull/hull.sock)
 *   HULL_CONSOLE_DIR             the web console's built files the daemon serves (default dist/console beside hull's bundle)
 *   HULL_SPACE_RESERVE           bytes of the root's space reserve for a full disk (default 4 MiB; 0: none; host/reserve.ts)
 *
 * Diagnostics:
 *   HULL_DEBUG                   print the stack of an error, not just its one line
 *   HULL_TRACE                   print timings at named points of hot paths (common/trace.ts)
 *
 * Test hooks (not for production use):
 *   HULL_BOOT_ID                 pretend the host's boot id is this (a changed value simulates a host restart)
 *   HULL_STORAGE_FAULT           SIGKILL hull itself at this named step of a volume operation (storage/journal.ts)
 */

type Name =
  | 'HULL_ROOT'
  | 'HULL_RUNTIME'
  | 'HULL_INSECURE_REGISTRIES'
  | 'HULL_REGISTRY_STALL_TIMEOUT'
  | 'HULL_REGISTRY_ATTEMPTS'
  | 'HULL_PUSH_CHUNK_SIZE'
  | 'HULL_CNI_PATH'
  | 'HULL_AARDVARK'
  | 'HULL_NETWORK_LOCK'
  | 'HULL_NETWORK_BACKEND'
  | 'HULL_QEMU'
  | 'HULL_VIRTIOFSD'
  | 'HULL_VM_AGENT'
  | 'HULL_TTYWAIT'
  | 'HULL_VM_BOOT_TIMEOUT'
  | 'HULL_VM_CACHE'
  | 'HULL_VM_TEMPLATES'
  | 'HULL_SPACE_RESERVE'
  | 'HULL_SOCKET'
  | 'HULL_CONSOLE_DIR'
  | 'HULL_DEBUG'
  | 'HULL_TRACE'
  | 'HULL_BOOT_ID'
  | 'HULL_STORAGE_FAULT';

/** The variable's value; empty counts as unset. */
export function hullEnv(name: Name): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** A numeric variable, or undefined when unset or not a positive number. */
export function hullEnvNumber(name: Name): number | undefined {
  const v = Number(hullEnv(name));
  return Number.isFinite(v) && v > 0 ? v : undefined;
}
