import type { Command } from 'commander';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { Writable } from 'node:stream';
import type { CliContext } from '../context.js';
import {
  addCreateFlags,
  displayPositionals,
  parseResources,
  toCreateRequest,
  type CreateFlags,
} from './create-flags.js';
import {
  ago,
  binarySize,
  checkFormat,
  decimalSize,
  duration,
  formatItems,
  inspectOutput,
  json,
  parseFormat,
  table,
} from '../format.js';
import { psContext, psHeaders, statsContext, statsHeaders } from '../contexts.js';
import { terminalStdio } from '../stdio.js';
import { ensureImage } from '../transfer.js';
import { pruneInstances } from '../../engine/prune.js';
import { parseNumber, parseRestart, parseSignal, parseTimeArg } from '../../common/parse.js';
import { InvalidArgumentError, NoSuchInstanceError, NotATtyError } from '../../common/errors.js';
import { errorLine } from '../errors.js';
import type { Engine } from '../../engine/engine.js';
import type { InstanceRecord } from '../../engine/store.js';
import { createInstance } from '../../engine/lifecycle/create.js';
import { startInstance } from '../../engine/lifecycle/start.js';
import { stopInstance } from '../../engine/lifecycle/stop.js';
import { killInstance } from '../../engine/lifecycle/kill.js';
import { removeInstance } from '../../engine/lifecycle/remove.js';
import { restartInstance } from '../../engine/lifecycle/restart.js';
import { pauseInstance, unpauseInstance } from '../../engine/lifecycle/pause.js';
import { updateInstance } from '../../engine/lifecycle/update.js';
import { execInstance } from '../../engine/lifecycle/exec.js';
import { waitInstance } from '../../engine/lifecycle/wait.js';
import { exitMessage, handleExit, refresh, refreshForView } from '../../engine/lifecycle/exit.js';
import { instanceLogs } from '../../engine/output.js';
import { describeInstance } from '../../engine/describe.js';
import {
  displayPorts,
  instanceAddresses,
  instancePorts,
  listInstances,
  parseFilterArgs,
  type ListOptions,
} from '../../engine/list.js';
import { cpuPercent, sampleInstance } from '../../engine/metrics.js';
import type { InstanceStats } from '../../common/instance.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/**
 * --cidfile: claimed (made, empty) before the instance is made, as docker does, so that an existing file refuses
 * the command before anything is made; the id is written once the instance exists.
 */
function claimCidfile(path: string): { write: (id: string) => void; release: () => void } {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST')
      throw new InvalidArgumentError(
        `container ID file found, make sure the other container isn't running or delete ${path}`,
      );
    throw new InvalidArgumentError(`cannot write --cidfile ${path}: ${(e as Error).message}`);
  }
  return {
    write: (id) => {
      writeSync(fd, id);
      closeSync(fd);
    },
    release: () => {
      closeSync(fd);
      rmSync(path, { force: true });
    },
  };
}

/**
 * Run `fn` for each named instance, docker-style: report each failure on stderr, exit 1 if any failed.
 * `skipMissing` (rm -f): an instance that is not there is no failure and says nothing, as docker's rm -f.
 */
async function eachInstance(
  ctx: CliContext,
  names: string[],
  fn: (e: Engine, rec: InstanceRecord) => Promise<void>,
  opts: { skipMissing?: boolean } = {},
): Promise<void> {
  const engine = await ctx.engine();
  let failed: unknown;
  for (const name of names) {
    try {
      await fn(engine, engine.store.lookup(name));
    } catch (e) {
      if (opts.skipMissing && e instanceof NoSuchInstanceError) continue;
      if (names.length === 1) throw e;
      process.stderr.write(`hull: ${errorLine(e)}\n`);
      failed = e;
    }
  }
  if (failed) ctx.exitCode = 1;
}

/** Foreground part of `run` and `start -a`: stream output (or attach), wait, handle the exit; returns the exit code. */
async function runAttached(
  engine: Engine,
  rec: InstanceRecord,
  start: boolean,
  streams: ReadonlySet<string> = new Set(rec.config.attach ?? ['stdin', 'stdout', 'stderr']),
): Promise<number> {
  const driver = engine.driver(rec.kind);
  const ctx = engine.context(rec);
  const { tty } = rec.config;
  const stdin = rec.config.stdin && streams.has('stdin');
  const term = terminalStdio({ stdin, tty });
  // -a: the streams not attached go nowhere
  const discard = new Writable({ write: (_c, _e, cb) => cb() });
  if (!streams.has('stdout')) term.stdio.stdout = discard;
  if (!streams.has('stderr')) term.stdio.stderr = discard;
  let output: Promise<unknown>;
  const stopOutput = new AbortController();
  // --log-driver none keeps no log to follow: the output comes through attach, as docker's does
  if (tty || stdin || rec.config.log?.driver === 'none') {
    output = driver.attach(ctx, term.stdio);
  } else {
    output = instanceLogs(
      engine,
      rec,
      { follow: true },
      (l) => {
        if (streams.has(l.stream === 'stderr' ? 'stderr' : 'stdout'))
          (l.stream === 'stderr' ? process.stderr : process.stdout).write(l.text);
      },
      stopOutput.signal,
    );
  }
  // proxy signals to the instance (docker's --sig-proxy) when no terminal does it for us
  const proxies: [NodeJS.Signals, () => void][] = [];
  if (!tty) {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as NodeJS.Signals[]) {
      const h = () => {
        void driver.kill(ctx, sig).catch(() => undefined);
      };
      process.on(sig, h);
      proxies.push([sig, h]);
    }
  }
  try {
    if (start) rec = await startInstance(engine, rec);
    const info = await driver.waitExit(ctx);
    const won = await handleExit(engine, rec, info);
    if (!won && rec.config.autoRemove) await waitGone(engine, rec.id);
    await Promise.race([output, new Promise((r) => setTimeout(r, 2000))]);
    // after the output: why it ended, when the code does not say (a guest kernel panic, an OOM kill)
    const why = exitMessage(info);
    if (why) process.stderr.write(`hull: ${rec.name}: ${why}\n`);
    return info.exitCode;
  } finally {
    stopOutput.abort();
    for (const [sig, h] of proxies) process.off(sig, h);
    term.restore();
  }
}

/** The exit is being handled by another hull process (conmon's exit command): wait for its --rm to finish. */
async function waitGone(engine: Engine, id: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (engine.store.get(id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

export function registerInstanceCommands(program: Command, ctx: CliContext): void {
  addCreateFlags(program.command('run').description('create and start an instance from an image'))
    .option('-d, --detach', 'run in the background and print the instance id')
    .action(async (image: string, command: string[], f: CreateFlags & { detach?: boolean }) => {
      [image, command] = displayPositionals(image, command, f);
      const engine = await ctx.engine();
      const req = toCreateRequest(image, command, f);
      if (f.detach && f.attach?.length) throw new InvalidArgumentError('conflicting options: -a and -d');
      if (f.tty && f.interactive && !f.detach && !process.stdin.isTTY) throw new NotATtyError();
      if (f.detach && req.autoRemove === undefined) req.autoRemove = false;
      await ensureImage(engine, image, f.pull, f);
      const cid = f.cidfile === undefined ? undefined : claimCidfile(f.cidfile);
      let rec = await createInstance(engine, req, f.detach ? {} : { watcherPid: process.pid }).catch((e) => {
        cid?.release();
        throw e;
      });
      cid?.write(rec.id);
      if (f.detach) {
        rec = await startInstance(engine, rec).catch(async (e) => {
          if (rec.config.autoRemove) await removeInstance(engine, rec, { force: true }).catch(() => undefined);
          throw e;
        });
        process.stdout.write(rec.id + '\n');
        return;
      }
      try {
        ctx.exitCode = await runAttached(engine, rec, true);
      } catch (e) {
        if (rec.config.autoRemove) await removeInstance(engine, rec, { force: true }).catch(() => undefined);
        throw e;
      }
    });

  addCreateFlags(program.command('create').description('create an instance without starting it')).action(
    async (image: string, command: string[], f: CreateFlags) => {
      [image, command] = displayPositionals(image, command, f);
      const engine = await ctx.engine();
      const req = toCreateRequest(image, command, f);
      await ensureImage(engine, image, f.pull, f);
      const cid = f.cidfile === undefined ? undefined : claimCidfile(f.cidfile);
      const rec = await createInstance(engine, req).catch((e) => {
        cid?.release();
        throw e;
      });
      cid?.write(rec.id);
      process.stdout.write(rec.id + '\n');
    },
  );

  program
    .command('start')
    .description('start created or stopped instances')
    .option('-a, --attach', 'attach to output and wait for the exit')
    .argument('<instance...>')
    .action(async (names: string[], o: { attach?: boolean }) => {
      if (o.attach) {
        if (names.length !== 1) throw new InvalidArgumentError('start --attach takes exactly one instance');
        const engine = await ctx.engine();
        ctx.exitCode = await runAttached(engine, engine.store.lookup(names[0]!), true);
        return;
      }
      await eachInstance(ctx, names, async (engine, rec) => {
        await startInstance(engine, rec);
        process.stdout.write(`${rec.name}\n`);
      });
    });

  program
    .command('stop')
    .description('stop running instances (stop signal, then SIGKILL after the timeout)')
    .option('-t, --time <seconds>', 'seconds to wait before killing')
    .argument('<instance...>')
    .action(async (names: string[], o: { time?: string }) => {
      const t = o.time === undefined ? undefined : parseNumber(o.time, '--time', { integer: true, min: 0 });
      await eachInstance(ctx, names, async (engine, rec) => {
        await stopInstance(engine, rec, t);
        process.stdout.write(`${rec.name}\n`);
      });
    });

  program
    .command('restart')
    .description('restart instances')
    .option('-t, --time <seconds>', 'seconds to wait before killing')
    .argument('<instance...>')
    .action(async (names: string[], o: { time?: string }) => {
      const t = o.time === undefined ? undefined : parseNumber(o.time, '--time', { integer: true, min: 0 });
      await eachInstance(ctx, names, async (engine, rec) => {
        await restartInstance(engine, rec, t);
        process.stdout.write(`${rec.name}\n`);
      });
    });

  program
    .command('kill')
    .description('send a signal to running instances (default SIGKILL)')
    .option('-s, --signal <signal>', 'signal to send', 'SIGKILL')
    .argument('<instance...>')
    .action(async (names: string[], o: { signal: string }) => {
      const sig = parseSignal(o.signal);
      await eachInstance(ctx, names, async (engine, rec) => {
        await killInstance(engine, rec, sig);
        process.stdout.write(`${rec.name}\n`);
      });
    });

  program
    .command('container')
    .description('manage instances (containers and VMs alike)')
    .command('prune')
    .description('remove every instance that is not running (exited or created)')
    .option('-f, --force', 'do not ask for confirmation (accepted for docker compatibility)')
    .option('--format <format>', 'output format: table or json')
    .action(async (o: { format?: string }) => {
      const format = checkFormat(o.format);
      const errors: string[] = [];
      const removed = await pruneInstances(await ctx.engine(), errors);
      for (const e of errors) process.stderr.write(`hull: ${e}\n`);
      if (format === 'json') process.stdout.write(json({ InstancesDeleted: removed }));
      else for (const id of removed) process.stdout.write(`${id}\n`);
    });

  program
    .command('rm')
    .description('remove instances')
    .option('-f, --force', 'kill and remove running instances')
    .option('-v, --volumes', 'remove their anonymous volumes too')
    .argument('<instance...>')
    .action(async (names: string[], o: { force?: boolean; volumes?: boolean }) => {
      await eachInstance(
        ctx,
        names,
        async (engine, rec) => {
          await removeInstance(engine, rec, { force: !!o.force, volumes: !!o.volumes });
          process.stdout.write(`${rec.name}\n`);
        },
        { skipMissing: !!o.force },
      );
    });

  program
    .command('pause')
    .description('freeze all processes of instances')
    .argument('<instance...>')
    .action(async (names: string[]) =>
      eachInstance(ctx, names, async (e, r) => {
        await pauseInstance(e, r);
        process.stdout.write(`${r.name}\n`);
      }),
    );
  program
    .command('unpause')
    .description('thaw paused instances')
    .argument('<instance...>')
    .action(async (names: string[]) =>
      eachInstance(ctx, names, async (e, r) => {
        await unpauseInstance(e, r);
        process.stdout.write(`${r.name}\n`);
      }),
    );

  program
    .command('wait')
    .description('wait for instances to stop and print their exit codes')
    .argument('<instance...>')
    .action(async (names: string[]) =>
      eachInstance(ctx, names, async (e, r) => {
        process.stdout.write(`${await waitInstance(e, r)}\n`);
      }),
    );

  program
    .command('ps')
    .description('list instances')
    .option('-a, --all', 'show all instances (default shows running ones)')
    .option(
      '-f, --filter <key=value>',
      'filter (repeatable): id, name, label, status, ancestor, network, volume, exited, health, isolation, before, since, publish, expose',
      collect,
    )
    .option('-n, --last <n>', 'show the n last created instances (all states)')
    .option('-l, --latest', 'show the last created instance (all states)')
    .option('-q, --quiet', 'only ids')
    .option('--no-trunc', 'do not truncate ids and commands')
    .option('--format <format>', 'table, json (one object per line) or a Go template')
    .action(async (o: PsFlags) => {
      const format = parseFormat(o.format);
      const engine = await ctx.engine();
      const recs = await listInstances(engine, psOptions(o));
      if (o.quiet) {
        process.stdout.write(recs.map((r) => (o.trunc ? r.id.slice(0, 12) : r.id) + '\n').join(''));
        return;
      }
      const ports = (r: InstanceRecord) => displayPorts(instancePorts(engine, r));
      if (format.kind !== 'default') {
        const rows = recs.map((r) =>
          psContext(r, {
            trunc: o.trunc,
            status: statusText(r),
            ports: ports(r),
            addresses: () => instanceAddresses(engine, r),
          }),
        );
        process.stdout.write(formatItems(format, rows, psHeaders));
        return;
      }
      const rows = recs.map((r) => {
        const cmd = JSON.stringify(r.config.command.join(' '));
        return [
          o.trunc ? r.id.slice(0, 12) : r.id,
          r.config.image,
          o.trunc && cmd.length > 22 ? cmd.slice(0, 19) + '..."' : cmd,
          ago(r.createdAt),
          statusText(r),
          ports(r),
          r.kind,
          r.name,
        ];
      });
      process.stdout.write(
        table(['INSTANCE ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'TYPE', 'NAMES'], rows),
      );
    });

  program
    .command('logs')
    .description("show an instance's output")
    .option('-f, --follow', 'keep following new output until the instance stops')
    .option('-n, --tail <lines>', 'number of lines from the end ("all" for everything)')
    .option('-t, --timestamps', 'show timestamps')
    .option('--since <time>', 'only lines since a time (RFC 3339, unix seconds, or a duration like 10m)')
    .option('--until <time>', 'only lines before a time (RFC 3339, unix seconds, or a duration like 10m)')
    .option('--details', 'show extra attributes of the log (its labels/env log-opts)')
    .argument('<instance>')
    .action(
      async (
        name: string,
        o: { follow?: boolean; tail?: string; timestamps?: boolean; since?: string; until?: string; details?: boolean },
      ) => {
        const engine = await ctx.engine();
        const rec = engine.store.lookup(name);
        const tail =
          o.tail === undefined || o.tail === 'all'
            ? undefined
            : parseNumber(o.tail, '--tail', { integer: true, min: 0 });
        const ac = new AbortController();
        process.once('SIGINT', () => ac.abort());
        await instanceLogs(
          engine,
          rec,
          {
            follow: !!o.follow,
            ...(tail !== undefined ? { tail } : {}),
            ...(o.since ? { since: parseTimeArg(o.since, '--since') } : {}),
            ...(o.until ? { until: parseTimeArg(o.until, '--until') } : {}),
            details: !!o.details,
          },
          (l) => {
            (l.stream === 'stderr' ? process.stderr : process.stdout).write(
              o.timestamps ? `${l.time} ${l.text}` : l.text,
            );
          },
          ac.signal,
        );
      },
    );

  program
    .command('exec')
    .description('run a command in a running instance')
    .helpOption('--help', 'show help')
    .option('-i, --interactive', 'keep stdin open')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option('-d, --detach', 'run in the background')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('-u, --user <user[:group]>', 'user to run as')
    .option('-w, --workdir <dir>', 'working directory')
    .option('--privileged', 'give the process extended privileges')
    .argument('<instance>')
    .argument('<command...>')
    .passThroughOptions()
    .action(
      async (
        name: string,
        command: string[],
        o: {
          interactive?: boolean;
          tty?: boolean;
          detach?: boolean;
          env?: string[];
          user?: string;
          workdir?: string;
          privileged?: boolean;
        },
      ) => {
        const engine = await ctx.engine();
        const rec = engine.store.lookup(name);
        if (o.tty && o.interactive && !o.detach && !process.stdin.isTTY) throw new NotATtyError();
        const term = terminalStdio({ stdin: !!o.interactive && !o.detach, tty: !!o.tty });
        try {
          ctx.exitCode = await execInstance(
            engine,
            rec,
            {
              command,
              env: o.env ?? [],
              tty: !!o.tty,
              stdin: !!o.interactive,
              privileged: !!o.privileged,
              detach: !!o.detach,
              ...(o.user !== undefined ? { user: o.user } : {}),
              ...(o.workdir !== undefined ? { workdir: o.workdir } : {}),
            },
            term.stdio,
          );
        } finally {
          term.restore();
        }
      },
    );

  program
    .command('attach')
    .description("attach to a running instance's input and output")
    .argument('<instance>')
    .action(async (name: string) => {
      const engine = await ctx.engine();
      const rec = await refresh(engine, engine.store.lookup(name));
      if (!rec || rec.state !== 'running')
        throw new InvalidArgumentError(`cannot attach to ${name}: it is not running`);
      ctx.exitCode = await runAttached(engine, rec, false);
    });

  program
    .command('inspect')
    .description('show low-level information on instances (JSON)')
    .option('-f, --format <format>', 'a Go template run on each instance (json: the JSON array)')
    .argument('<instance...>')
    .action(async (names: string[], o: { format?: string }) => {
      const engine = await ctx.engine();
      const out = [];
      for (const n of names) {
        const rec = await refreshForView(engine, engine.store.lookup(n));
        if (rec) out.push(describeInstance(engine, rec));
      }
      process.stdout.write(inspectOutput(out, o.format));
    });

  program
    .command('top')
    .description('show the processes of an instance')
    .argument('<instance>')
    .argument('[ps-options...]', "options for the host's ps (default -ef), as docker top takes them")
    .passThroughOptions()
    .action(async (name: string, psArgs: string[]) => {
      const engine = await ctx.engine();
      const rec = await refresh(engine, engine.store.lookup(name));
      if (!rec || (rec.state !== 'running' && rec.state !== 'paused'))
        throw new InvalidArgumentError(`cannot list processes of ${name}: it is not running`);
      const info = await engine.driver(rec.kind).top(engine.context(rec), psArgs);
      process.stdout.write(table(info.titles, info.rows));
    });

  program
    .command('update')
    .description('change resource limits of instances, live')
    .option('-m, --memory <bytes>', 'memory limit')
    .option('--memory-swap <bytes>', 'memory plus swap limit; -1 for unlimited')
    .option('--cpus <n>', 'number of CPUs')
    .option('-c, --cpu-shares <n>', 'CPU shares')
    .option('--cpuset-cpus <list>', 'CPUs to run on')
    .option('--pids-limit <n>', 'maximum number of processes')
    .option('--blkio-weight <n>', 'block IO weight (10-1000)')
    .option('--restart <policy>', 'restart policy')
    .argument('<instance...>')
    .action(async (names: string[], o: CreateFlags) => {
      const res = parseResources(o);
      const restart = o.restart === undefined ? undefined : parseRestart(o.restart);
      if (Object.keys(res).length === 0 && !restart)
        throw new InvalidArgumentError('nothing to update: give at least one of --memory, --cpus, ... or --restart');
      await eachInstance(ctx, names, async (engine, rec) => {
        await updateInstance(engine, rec, res, restart);
        process.stdout.write(`${rec.name}\n`);
      });
    });

  program
    .command('stats')
    .description('live resource usage of instances')
    .option('--no-stream', 'print one sample and exit')
    .option('-a, --all', 'include stopped instances')
    .option('--format <format>', 'table, json (one object per line) or a Go template')
    .argument('[instance...]')
    .action(async (names: string[], o: { stream: boolean; all?: boolean; format?: string }) => {
      const format = parseFormat(o.format);
      const engine = await ctx.engine();
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      // docker: named instances whatever their state; else the running ones, or all with --all; one that
      // is not running shows zeros
      const pick = () =>
        names.length
          ? names.map((n) => engine.store.lookup(n))
          : engine.store.list().filter((r) => r.state === 'running' || r.state === 'paused' || o.all);
      let prev = new Map<string, { cpuUsageNs: number; atNs: number }>();
      const sample = async () => {
        const out: (InstanceStats & { id: string; name: string; cpuPercent: number })[] = [];
        for (const rec of pick()) {
          const s = await sampleInstance(engine, rec);
          const pct = cpuPercent(prev.get(rec.id), s);
          if (s.live) prev.set(rec.id, { cpuUsageNs: s.stats.cpuUsageNs, atNs: s.atNs });
          out.push({ id: rec.id, name: rec.name, ...s.stats, cpuPercent: pct });
        }
        return out;
      };
      await sample();
      for (;;) {
        await new Promise((r) => setTimeout(r, o.stream ? 1000 : 250));
        const rows = await sample();
        if (format.kind !== 'default') {
          if (o.stream && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
          const typed = rows as unknown as Parameters<typeof statsContext>[0][];
          const asGiven = (r: { id: string; name: string }) =>
            names.find((n) => n === r.name || r.id.startsWith(n)) ?? r.id.slice(0, 12);
          const ctxs = typed.map((r) => statsContext(r, asGiven(r)));
          process.stdout.write(formatItems(format, ctxs, statsHeaders));
        } else {
          if (o.stream && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
          // docker's columns and units: binary for memory, decimal for I/O
          process.stdout.write(
            table(
              ['INSTANCE ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS'],
              rows.map((s) => [
                s.id.slice(0, 12),
                s.name,
                `${s.cpuPercent.toFixed(2)}%`,
                `${binarySize(s.memoryUsage)} / ${binarySize(s.memoryLimit)}`,
                `${s.memoryLimit ? ((s.memoryUsage / s.memoryLimit) * 100).toFixed(2) : '0.00'}%`,
                `${decimalSize(s.netRx)} / ${decimalSize(s.netTx)}`,
                `${decimalSize(s.blkioRead)} / ${decimalSize(s.blkioWrite)}`,
                String(s.pids),
              ]),
            ),
          );
        }
        if (!o.stream || ac.signal.aborted) return;
        prev = new Map(prev);
      }
    });
}

interface PsFlags {
  all?: boolean;
  filter?: string[];
  last?: string;
  latest?: boolean;
  quiet?: boolean;
  trunc: boolean;
  format?: string;
}

/** ps flags → the engine's list options (the Docker API builds the same from its query). */
function psOptions(o: PsFlags): ListOptions {
  return {
    all: !!o.all,
    filters: parseFilterArgs(o.filter ?? []),
    latest: !!o.latest,
    ...(o.last !== undefined ? { last: parseNumber(o.last, '--last', { integer: true, min: -1 }) } : {}),
  };
}

function statusText(r: InstanceRecord): string {
  switch (r.state) {
    case 'running':
      return `Up ${duration(Date.now() - (r.startedAt ?? r.createdAt))}${healthText(r)}`;
    case 'paused':
      return `Up ${duration(Date.now() - (r.startedAt ?? r.createdAt))} (Paused)`;
    case 'exited':
      return `Exited (${r.exitCode ?? 0}) ${ago(r.finishedAt ?? r.createdAt)}`;
    case 'created':
      return 'Created';
    case 'removing':
      return 'Removing';
  }
}

/** docker's ps suffix: ` (health: starting)`, ` (healthy)`, ` (unhealthy)`; empty without a healthcheck. */
function healthText(r: InstanceRecord): string {
  if (!r.config.healthcheck || !r.health) return '';
  return r.health.status === 'starting' ? ' (health: starting)' : ` (${r.health.status})`;
}
