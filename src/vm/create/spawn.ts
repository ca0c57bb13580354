/**
 * VmDriver.create, phase 3 of 3: spawn. Starts the VM's monitor (src/vm/monitor.ts) detached, in the
 * instance dir prepare (./prepare.ts) laid out; the monitor starts QEMU, which begins booting at once, and
 * writes one line: `ok <QEMU's pid>` or `error <why>`. On an error the monitor and whatever it started
 * are stopped (`rollback`, the driver's cleanupAfterExit) before the error is thrown; the rest of what
 * prepare made is the engine's to undo.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import type { CreateResult, InstanceContext } from '../../common/instance.js';
import { VmBootError } from '../errors.js';
import { monitorCommand } from '../programs.js';
import { instancePaths } from '../../common/paths.js';

/** Start the monitor and wait for its first line (QEMU started, or why not). */
export async function spawnMonitor(ctx: InstanceContext, rollback: () => Promise<void>): Promise<CreateResult> {
  const [cmd, ...args] = monitorCommand(ctx.dir);
  const log = openSync(instancePaths(ctx.dir).monitorLog, 'a');
  const mon = spawn(cmd!, args, { cwd: ctx.dir, detached: true, stdio: ['ignore', 'pipe', log] });
  closeSync(log);
  const line = await new Promise<string>((resolve) => {
    let out = '';
    mon.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    mon.stdout!.on('close', () => resolve(out.trim()));
    mon.on('error', (e) => resolve(`error ${e.message}`));
  });
  mon.unref();
  if (!line.startsWith('ok ')) {
    const why =
      line.replace(/^error /, '') ||
      readFileSync(instancePaths(ctx.dir).monitorLog, 'utf8').trim().split('\n').slice(-3).join('; ');
    await rollback().catch(() => undefined);
    throw new VmBootError(`the VM monitor of ${ctx.name} could not start QEMU: ${why}`);
  }
  return { supervisorPid: mon.pid!, pid: parseInt(line.slice(3), 10) || 0 };
}
