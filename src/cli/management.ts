/**
 * docker's management commands: `hull container ls`, `hull image rm`, `hull system events`, … are the top-level
 * commands themselves, registered a second time under their group, with docker's verb and aliases.
 *
 * Every register function of ./commands (registerInstanceCommands, …) is a factory: it adds its commands to
 * whatever parent it is given. To mount verbs under a group it runs on a scratch parent, and the commands the
 * group wants are moved from there under the group (renamed to docker's verb). So each verb has one definition
 * (flags, arguments, action) and one code path, whichever way it is called; a flag added to `ps` is a flag of
 * `container ls` too. The rest of the scratch parent is dropped.
 */
import { Command } from 'commander';
import type { CliContext } from './context.js';

/** A command factory: adds its commands to `parent`. */
export type Register = (parent: Command, ctx: CliContext) => void;

/** A top-level command (`from`) as a verb of a group: docker's name (`as`, default the same) and aliases. */
export interface Verb {
  from: string;
  as?: string;
  aliases?: string[];
}

/** A management group: its description, and the verbs each factory contributes. */
export interface Group {
  name: string;
  description: string;
  verbs: [Register, Verb[]][];
}

/** the top-level name of each mounted verb: `container ls` is `ps` for the space reserve and the exit statuses */
const canonical = new WeakMap<Command, string>();

export const MANAGEMENT_HEADING = 'Management Commands:';

/**
 * Mount the groups' verbs on `program`. A group that exists already (its own commands, e.g. `image prune`, are
 * registered by a factory) is extended; a missing one is made. Groups are listed apart in `hull --help`.
 */
export function registerManagementCommands(program: Command, ctx: CliContext, groups: Group[]): void {
  for (const g of groups) {
    let group = program.commands.find((c) => c.name() === g.name);
    if (!group) group = program.command(g.name).description(g.description);
    group.helpGroup(MANAGEMENT_HEADING);
    for (const [register, verbs] of g.verbs) mount(group, ctx, register, verbs);
  }
}

function mount(group: Command, ctx: CliContext, register: Register, verbs: Verb[]): void {
  const scratch = new Command().enablePositionalOptions();
  register(scratch, ctx);
  for (const v of verbs) {
    const cmd = scratch.commands.find((c) => c.name() === v.from);
    if (!cmd) throw new Error(`hull: no command "${v.from}" to mount under "${group.name()}"`);
    cmd.name(v.as ?? v.from);
    cmd.aliases(v.aliases ?? []);
    cmd.helpGroup('Commands:');
    group.addCommand(cmd);
    cmd.copyInheritedSettings(group);
    // known by its top-level name where there is one (`container ls` is `ps`; `system df` is itself)
    if (group.parent?.commands.some((c) => c.name() === v.from)) canonical.set(cmd, v.from);
  }
}

/** The path of the command that runs (`image rm`), or the top-level name it mounts (`rmi`); without "hull". */
export function commandPath(action: Command, program: Command): string {
  const mounted = canonical.get(action);
  if (mounted) return mounted;
  const path: string[] = [];
  for (let c: Command | null = action; c && c !== program; c = c.parent) path.unshift(c.name());
  return path.join(' ');
}
