/**
 * docker's management commands and the top-level commands they are (./management.ts mounts them): `hull
 * container ls` is `hull ps`, `hull image rm` is `hull rmi`, and so on. Verbs a group defines itself (`image
 * inspect`, `image prune`, `container prune`, `system info`, …) come from the group's own factory.
 */
import type { Group } from './management.js';
import { registerInstanceCommands } from './commands/instances.js';
import { registerImageCommands } from './commands/images.js';
import { registerArchiveCommands, registerRegistryCommands } from './commands/registry.js';
import { registerSystemCommands } from './commands/system.js';
import { registerBuildCommand } from './commands/build.js';
import { registerNetworkCommands } from './commands/network.js';
import { registerRenameCommand } from './commands/rename.js';
import { registerDiskUsageCommand } from './commands/df.js';
import { registerDiffCommand } from './commands/diff.js';
import { registerCpCommands } from './commands/cp.js';

const same = (...names: string[]) => names.map((from) => ({ from }));

export const MANAGEMENT_GROUPS: Group[] = [
  {
    name: 'container',
    description: 'manage instances (containers and VMs alike)',
    verbs: [
      [
        registerInstanceCommands,
        [
          { from: 'ps', as: 'ls', aliases: ['ps', 'list'] },
          ...same('run', 'create', 'start', 'stop', 'restart', 'kill', 'rm', 'pause', 'unpause', 'wait'),
          ...same('inspect', 'logs', 'exec', 'attach', 'top', 'stats', 'update'),
        ],
      ],
      [registerNetworkCommands, same('port')],
      [registerRenameCommand, same('rename')],
      [registerDiffCommand, same('diff', 'commit')],
      [registerCpCommands, same('cp', 'export')],
    ],
  },
  {
    name: 'image',
    description: 'manage images',
    verbs: [
      [
        registerImageCommands,
        [
          { from: 'images', as: 'ls', aliases: ['list'] },
          { from: 'rmi', as: 'rm', aliases: ['rmi', 'remove'] },
          ...same('tag', 'history', 'import'),
        ],
      ],
      [registerRegistryCommands, same('pull', 'push')],
      [registerArchiveCommands, same('save', 'load')],
      [registerBuildCommand, same('build')],
    ],
  },
  {
    name: 'system',
    description: 'host information and maintenance',
    verbs: [
      [registerSystemCommands, same('events')],
      [registerDiskUsageCommand, same('df')],
    ],
  },
  { name: 'network', description: 'manage virtual networks', verbs: [] },
  { name: 'volume', description: 'manage volumes', verbs: [] },
  { name: 'builder', description: 'manage the build cache', verbs: [] },
  { name: 'vm', description: 'virtual machines from full OS disk images', verbs: [] },
];
