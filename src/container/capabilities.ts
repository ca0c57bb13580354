/**
 * Linux capabilities: the names, docker's default set, and the resolution of --cap-add, --cap-drop
 * and --privileged into the list a container gets.
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../common/errors.js';

/**
 * Every Linux capability, indexed by its number (capability.h). The kernel's highest known one is
 * in /proc/sys/kernel/cap_last_cap.
 */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', // 0
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL', // 5
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE', // 10
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', // 15
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', // 20
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME', // 25
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL', // 30
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM', // 35
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE', // 40
];

/** The capabilities a container gets by default: docker's set. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const capIndex = new Map(ALL_CAPABILITIES.map((name, i) => [name, i]));

/**
 * Normalise a capability name as users write it (`net_admin`, `CAP_NET_ADMIN`, `Net_Admin`) to the
 * kernel's spelling (`CAP_NET_ADMIN`). `ALL` is returned as `ALL`. Unknown names throw.
 */
export function normalizeCapability(name: string): string {
  const upper = name.trim().toUpperCase();
  if (upper === 'ALL') return 'ALL';
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!capIndex.has(full)) throw new InvalidArgumentError(`unknown capability: ${name}`);
  return full;
}

/** Sort capability names by their number, dropping duplicates. */
function ordered(names: Iterable<string>): string[] {
  return [...new Set(names)].sort((a, b) => (capIndex.get(a) ?? 0) - (capIndex.get(b) ?? 0));
}

/**
 * The capabilities a container gets, with docker's rules:
 * - privileged: every capability (after checking the names given);
 * - `--cap-add ALL`: every capability except those dropped;
 * - `--cap-drop ALL`: only those added;
 * - otherwise the default set, minus the dropped, plus the added.
 * Names may be given with or without `CAP_`, in any case. The result is ordered by number.
 */
export function resolveCapabilities(
  capAdd: readonly string[],
  capDrop: readonly string[],
  privileged: boolean,
): string[] {
  const add = capAdd.map(normalizeCapability);
  const drop = capDrop.map(normalizeCapability);
  if (privileged) return [...ALL_CAPABILITIES];
  const added = add.filter((c) => c !== 'ALL');
  const dropped = new Set(drop.filter((c) => c !== 'ALL'));
  if (add.includes('ALL')) return ordered(ALL_CAPABILITIES.filter((c) => !dropped.has(c)));
  if (drop.includes('ALL')) return ordered(added);
  return ordered([...DEFAULT_CAPABILITIES.filter((c) => !dropped.has(c)), ...added]);
}

/** Decode a hexadecimal capability mask (as in /proc/PID/status) into names, ordered by number. */
export function capabilitiesFromMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim()}`);
  return ALL_CAPABILITIES.filter((_, i) => (mask >> BigInt(i)) & 1n);
}

/** Encode capability names as the hexadecimal mask /proc/PID/status shows (16 digits). */
export function capabilitiesToMask(names: readonly string[]): string {
  let mask = 0n;
  for (const name of names) {
    const i = capIndex.get(normalizeCapability(name));
    if (i !== undefined) mask |= 1n << BigInt(i);
  }
  return mask.toString(16).padStart(16, '0');
}

/**
 * The capabilities hull itself can hand on: its own bounding set (CapBnd of /proc/self/status),
 * which lacks e.g. CAP_SYS_RESOURCE on hosts that run hull in a restricted container. A runtime
 * cannot give a container a capability outside this set.
 */
export function hostCapabilities(): string[] {
  const status = readFileSync('/proc/self/status', 'utf8');
  const line = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status);
  return line ? capabilitiesFromMask(line[1]!) : [...ALL_CAPABILITIES];
}
