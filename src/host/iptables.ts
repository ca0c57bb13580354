/**
 * Typed wrappers over iptables(8) (iptables-nft on Debian 12; the CNI plugins call the same binary), for
 * the rules hull owns itself (isolation between networks) and for the clean-up of what the CNI plugins
 * leave behind on DEL: portmap's CNI-HOSTPORT-* chains and firewall's CNI-FORWARD/CNI-ADMIN chains stay
 * (with the jumps to them) even when empty. `-w` waits for the xtables lock that concurrent plugins take.
 * Changes go through iptables-restore in batches: one program start per table instead of one per rule.
 * `ipv6` selects ip6tables (dual-stack networks: the plugins add their rules there too).
 */
import { runProgram } from './proc.js';

export type Table = 'filter' | 'nat' | 'mangle' | 'raw';

/** Every chain ("-N CHAIN", "-P CHAIN POLICY") and rule ("-A CHAIN ...") of a table in `-S` form. */
export async function tableRules(table: Table, ipv6 = false): Promise<string[]> {
  const r = await runProgram(ipv6 ? 'ip6tables' : 'iptables', ['-w', '-t', table, '-S'], { allowFailure: true });
  return r.status === 0 ? r.stdout.split('\n').filter(Boolean) : [];
}

/**
 * Apply several changes to one table in a single iptables-restore --noflush run (the table is changed
 * atomically). `lines` are commands in `-S` syntax: "-N CHAIN", "-A CHAIN ...", "-I CHAIN 1 ...",
 * "-D CHAIN ...", "-F CHAIN", "-X CHAIN".
 */
export async function applyBatch(table: Table, lines: string[], ipv6 = false): Promise<void> {
  if (lines.length === 0) return;
  await runProgram(ipv6 ? 'ip6tables-restore' : 'iptables-restore', ['-w', '--noflush'], {
    input: `*${table}\n${lines.join('\n')}\nCOMMIT\n`,
  });
}

/** The filter and nat tables of one family, as `iptables-save` prints them (one program start). */
export async function saveTables(ipv6 = false): Promise<string> {
  const r = await runProgram(ipv6 ? 'ip6tables-save' : 'iptables-save', [], { allowFailure: true });
  return r.status === 0 ? r.stdout : '';
}

/**
 * Apply an iptables-restore --noflush script spanning several tables in one run. Resolves false when the program
 * refused it (a rule to delete was not there, a chain was missing): nothing of it was applied then.
 */
export async function restoreTables(script: string, ipv6 = false): Promise<boolean> {
  if (script === '') return true;
  const r = await runProgram(ipv6 ? 'ip6tables-restore' : 'iptables-restore', ['-w', '--noflush'], {
    input: script,
    allowFailure: true,
  });
  return r.status === 0;
}
