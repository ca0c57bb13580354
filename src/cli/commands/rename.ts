import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { renameInstance } from '../../engine/lifecycle/rename.js';

/** `hull rename OLD NEW` (and `hull container rename`): docker's rules, any state, DNS names follow. */
export function registerRenameCommand(program: Command, ctx: CliContext): void {
  program
    .command('rename')
    .description('give an instance another name (running ones too; their DNS name on their networks follows)')
    .argument('<instance>')
    .argument('<new-name>')
    .action(async (name: string, newName: string) => {
      const engine = await ctx.engine();
      await renameInstance(engine, engine.store.lookup(name), newName);
    });
}
