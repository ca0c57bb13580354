import { release } from 'node:os';
import type { Engine } from './engine.js';
import { availableRuntimes, findExecutable, probeHost } from '../host/probe.js';
import { probeAccel } from '../host/qemu.js';
import { defaultRuntime } from '../container/runtime-choice.js';

/** `hull system info` (and the API's /info later): what hull finds on this host, and what the root holds. */
export async function systemInfo(engine: Engine, version: string) {
  const host = probeHost();
  const runtimes = availableRuntimes();
  let defRuntime = '';
  try {
    defRuntime = defaultRuntime();
  } catch (e) {
    defRuntime = `none (${(e as Error).message})`;
  }
  const recs = engine.store.list();
  const images = await engine.images.list();
  const accel = probeAccel();
  return {
    version,
    root: engine.root,
    instances: {
      total: recs.length,
      running: recs.filter((r) => r.state === 'running').length,
      paused: recs.filter((r) => r.state === 'paused').length,
      stopped: recs.filter((r) => r.state === 'exited' || r.state === 'created').length,
    },
    images: images.length,
    defaultRuntime: defRuntime,
    runtimes: runtimes.map((r) => ({
      name: r.name,
      path: r.path,
      version: r.version,
      usable: r.usable,
      ...(r.reason ? { reason: r.reason } : {}),
      ...(r.needsPureV1View ? { note: 'runs in a private mount namespace with a pure cgroup v1 view' } : {}),
    })),
    cgroups: host.cgroupLayout,
    cgroupNamespace: host.cgroupNamespace,
    userNamespaces: host.userNamespace,
    seccomp: host.seccomp,
    // the VM driver's accelerator probe (hardware KVM, else TCG); --accel overrides it per VM
    virtualization: { accelerator: accel.accel, reason: accel.reason, qemu: findExecutable('qemu-system-x86_64') },
    nofileHardLimit: host.nofileHard,
    capSysResource: host.capSysResource,
    kernel: release(),
  };
}
