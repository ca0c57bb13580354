/**
 * Tap devices for VMs on hull networks, the way Kata Containers wires them: the engine's network namespace
 * holds the CNI veth (addressed by the plugins); the VM driver adds a tap device next to it and two tc
 * redirects (u32 match-all + mirred), veth ingress → tap egress and tap ingress → veth egress, so frames
 * pass between the bridge and the guest's NIC untouched. The guest takes the veth's MAC and address, so
 * the bridge, ARP, IPAM, port forwarding and DNS see the VM exactly as they would see a container.
 *
 * u32, not matchall: this host's kernel has no matchall classifier built in, and u32 is everywhere.
 * QEMU opens the tap by name, so it runs inside the namespace (see {@link inNetns}).
 */
import { runProgram } from './proc.js';

/** argv that runs `argv` inside the network namespace pinned at `netnsPath`. */
export function inNetns(netnsPath: string, argv: string[]): string[] {
  return ['nsenter', `--net=${netnsPath}`, '--', ...argv];
}

/**
 * In the namespace at `netnsPath`, create tap `tap` (persistent, so QEMU can open it later by name) and
 * redirect all traffic between it and `peer` (the CNI interface, e.g. eth0). Removing the namespace removes
 * the tap and the filters with it; {@link removeTap} is for undoing one attachment early.
 */
export async function createRedirectedTap(netnsPath: string, tap: string, peer: string, mtu?: number): Promise<void> {
  const hint = 'hull needs tun/tap and tc (iproute2) to attach VMs to networks';
  await runProgram('nsenter', [`--net=${netnsPath}`, '--', 'ip', '-batch', '-'], {
    input:
      [
        `tuntap add dev ${tap} mode tap`,
        `link set dev ${tap}${mtu ? ` mtu ${mtu}` : ''} up`,
        // the peer keeps its address for the namespace's own view, but never answers: the redirect takes
        // every frame before the namespace's IP stack sees it
        `link set dev ${peer} up`,
      ].join('\n') + '\n',
    hint,
  });
  const redirect = (from: string, to: string) => [
    `qdisc add dev ${from} ingress`,
    `filter add dev ${from} parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev ${to}`,
  ];
  await runProgram('nsenter', [`--net=${netnsPath}`, '--', 'tc', '-batch', '-'], {
    input: [...redirect(peer, tap), ...redirect(tap, peer)].join('\n') + '\n',
    hint,
  });
}

/** Remove a tap made by {@link createRedirectedTap} (its filters go with it; the peer's ingress qdisc too). */
export async function removeTap(netnsPath: string, tap: string, peer: string): Promise<void> {
  await runProgram('nsenter', [`--net=${netnsPath}`, '--', 'tc', 'qdisc', 'del', 'dev', peer, 'ingress'], {
    allowFailure: true,
  });
  await runProgram('nsenter', [`--net=${netnsPath}`, '--', 'ip', 'link', 'del', 'dev', tap], { allowFailure: true });
}
