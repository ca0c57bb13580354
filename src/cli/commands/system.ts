import { runHealthcheckNow, runHealthMonitor } from '../../engine/lifecycle/health.js';
import type { Command } from 'commander';
import { createRequire } from 'node:module';
import type { CliContext } from '../context.js';
import { checkFormat, compileTemplate, json, runTemplate } from '../format.js';
import { eventContext } from '../contexts.js';
import { arch, cpus, hostname, release, totalmem } from 'node:os';
import { systemInfo } from '../../engine/info.js';
import { pruneSystem } from '../../engine/prune.js';
import { handleExit } from '../../engine/lifecycle/exit.js';
import { restoreAfterBoot, reconcileAll } from '../../engine/lifecycle/boot.js';
import { parseTimeArg } from '../../common/parse.js';
import { isHullError } from '../../common/errors.js';
import { recoverInstances, setAsideDatabase } from '../../engine/recover.js';
import { databaseCondition } from '../../engine/store.js';

declare const HULL_VERSION: string | undefined;
export const VERSION =
  typeof HULL_VERSION === 'string'
    ? HULL_VERSION
    : (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

export function registerSystemCommands(program: Command, ctx: CliContext): void {
  const system = program.command('system').description('host information and maintenance');

  // `hull info` (docker's) and `hull system info`: one definition on both parents
  const addInfo = (parent: Command): void => {
    parent
      .command('info')
      .description('what hull finds on this host')
      .option(
        '-f, --format <format>',
        "table, json or a Go template over docker's info fields (.ServerVersion, .Containers, ...)",
      )
      .action(async (o: { format?: string }) => {
        const template =
          o.format && o.format !== 'table' ? compileTemplate(o.format === 'json' ? '{{json .}}' : o.format) : undefined;
        const engine = await ctx.engine();
        const info = await systemInfo(engine, VERSION);
        if (template) {
          process.stdout.write(runTemplate(template, dockerInfo(info)) + '\n');
          return;
        }
        const lines = [
          `hull version:       ${info.version}`,
          `root:               ${info.root}`,
          `instances:          ${info.instances.total} (${info.instances.running} running, ${info.instances.paused} paused, ${info.instances.stopped} stopped)`,
          `images:             ${info.images}`,
          `default runtime:    ${info.defaultRuntime}`,
          ...info.runtimes.map(
            (r) =>
              `  ${r.name.padEnd(6)} ${r.version ?? '-'}${r.usable ? '' : ` (unusable: ${r.reason})`}${r.note ? ` (${r.note})` : ''}`,
          ),
          `cgroups:            ${info.cgroups}${info.cgroupNamespace ? ', cgroup namespaces' : ''}`,
          `user namespaces:    ${info.userNamespaces ? 'yes' : 'no'}`,
          `seccomp:            ${info.seccomp ? 'yes' : 'no'}`,
          `virtualization:     ${info.virtualization.accelerator} (${info.virtualization.reason})${info.virtualization.qemu ? '' : ', QEMU not installed'}`,
          `open files limit:   ${info.nofileHardLimit} (hard)${info.capSysResource ? '' : ', no CAP_SYS_RESOURCE'}`,
          `kernel:             ${info.kernel}`,
        ];
        process.stdout.write(lines.join('\n') + '\n');
      });
  };
  addInfo(system);
  addInfo(program);

  system
    .command('prune')
    .description(
      'remove stopped instances, unused networks, dangling images (-a: every unused image) and the build cache',
    )
    .option('-a, --all', 'remove every image no instance uses, and the whole build cache')
    .option('-f, --force', 'do not ask for confirmation (accepted for docker compatibility)')
    .option('--format <format>', 'output format: table or json')
    .action(async (o: { all?: boolean; format?: string }) => {
      const format = checkFormat(o.format);
      const r = await pruneSystem(await ctx.engine(), !!o.all);
      for (const e of r.errors) process.stderr.write(`hull: ${e}\n`);
      if (format === 'json') {
        process.stdout.write(
          json({
            InstancesDeleted: r.instances,
            NetworksDeleted: r.networks,
            ImagesDeleted: r.images,
            CacheEntriesDeleted: r.cacheEntries,
            SpaceReclaimed: r.gc?.reclaimed ?? 0,
          }),
        );
        return;
      }
      const section = (title: string, items: string[]) => {
        if (items.length) process.stdout.write(`${title}:\n${items.map((i) => `  ${i}\n`).join('')}`);
      };
      section('Deleted instances', r.instances);
      section('Deleted networks', r.networks);
      section('Deleted images', r.images);
      process.stdout.write(
        `Deleted build cache entries: ${r.cacheEntries}\nTotal reclaimed space: ${((r.gc?.reclaimed ?? 0) / 1048576).toFixed(2)}MiB\n`,
      );
    });

  system
    .command('restore')
    .description('after a host restart: mark instances exited and restart those whose policy says so')
    .action(async () => {
      const engine = await ctx.engine();
      const restarted = await restoreAfterBoot(engine);
      await reconcileAll(engine);
      for (const n of restarted) process.stdout.write(`${n}\n`);
    });

  system
    .command('recover')
    .description(
      'after hull.db was lost or damaged: rebuild the records of the instances on disk, clean up what cannot be rebuilt',
    )
    .option('--format <format>', 'table or json')
    .action(async (o: { format?: string }) => {
      const format = checkFormat(o.format);
      const movedAside = setAsideDatabase(ctx.root);
      const engine = await ctx.engine({ unchecked: true });
      const r = await recoverInstances(engine);
      if (r.failed.length > 0 || r.removed.some((x) => x.problems.length > 0)) ctx.exitCode = 125;
      if (format === 'json') {
        process.stdout.write(
          json({ MovedAside: movedAside, Recovered: r.recovered, Removed: r.removed, Failed: r.failed }),
        );
        return;
      }
      for (const p of movedAside) process.stdout.write(`moved the old database file aside: ${p}\n`);
      for (const x of r.recovered) {
        const state = x.state === 'exited' ? `exited (${x.exitCode})` : x.state;
        process.stdout.write(
          `recovered ${x.id.slice(0, 12)} ${x.name} ${state}${x.notes.length ? ` (${x.notes.join('; ')})` : ''}\n`,
        );
      }
      for (const x of r.removed) {
        process.stdout.write(`removed ${x.id.slice(0, 12)}${x.name ? ` ${x.name}` : ''}: ${x.why}\n`);
        for (const p of x.problems) process.stderr.write(`hull: ${x.id.slice(0, 12)} left behind: ${p}\n`);
      }
      for (const x of r.failed)
        process.stderr.write(
          `hull: ${x.id.slice(0, 12)} ${x.name} not recovered: ${x.error}; it is left as it is (run hull system recover again)\n`,
        );
      if (r.recovered.length === 0 && r.removed.length === 0 && r.failed.length === 0)
        process.stdout.write(`nothing to recover: the state database records every instance of ${engine.root}\n`);
    });

  // Run by conmon when an instance's process exits: record the exit, clean up, --rm, restart policy.
  system
    .command('instance-exited', { hidden: true })
    .argument('<id>')
    .action(async (id: string) => {
      // a lost or damaged database: leave the exit file to `hull system recover` (and make no empty database)
      if (databaseCondition(ctx.root) !== 'present') return;
      let engine;
      try {
        engine = await ctx.engine({ unchecked: true });
      } catch (e) {
        if (isHullError(e) && e.code === 'HULL_STATE_CORRUPT') return;
        throw e;
      }
      const rec = engine.store.get(id);
      if (!rec) return;
      const info = engine.observedExit(rec);
      if (info) await handleExit(engine, rec, info);
    });

  // Started by `start` for an instance with a healthcheck: probes it until its run ends (engine/lifecycle/health.ts).
  system
    .command('health-monitor', { hidden: true })
    .argument('<id>')
    .action(async (id: string) => {
      if (databaseCondition(ctx.root) !== 'present') return;
      await runHealthMonitor(await ctx.engine({ unchecked: true }), id);
    });

  program
    .command('healthcheck')
    .description("healthchecks (podman's command)")
    .command('run')
    .description("run an instance's healthcheck now; exit 0 when healthy, 1 otherwise")
    .argument('<instance>')
    .action(async (name: string) => {
      const engine = await ctx.engine();
      const h = await runHealthcheckNow(engine, engine.store.lookup(name));
      if (h.status !== 'healthy') {
        process.stdout.write(`${h.status === 'starting' ? 'unhealthy (in the start period)' : h.status}\n`);
        ctx.exitCode = 1;
      }
    });

  program
    .command('events')
    .description('show instance events')
    .option('--since <time>', 'events since a time (RFC 3339, unix seconds, or a duration like 10m)')
    .option('--until <time>', 'stop at this time instead of following')
    .option('--format <format>', "json (docker's event JSON, one per line) or a Go template over it")
    .option('--no-follow', 'print past events and exit')
    .action(async (o: { since?: string; until?: string; format?: string; follow: boolean }) => {
      const template =
        o.format && o.format !== 'table' ? compileTemplate(o.format === 'json' ? '{{json .}}' : o.format) : undefined;
      const engine = await ctx.engine();
      const since = o.since ? parseTimeArg(o.since, '--since') : o.follow && !o.until ? Date.now() : 0;
      const until = o.until ? parseTimeArg(o.until, '--until') : undefined;
      let seq = 0;
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      for (;;) {
        const evs = engine.store.events(seq, { since, ...(until !== undefined ? { until } : {}) });
        for (const e of evs) {
          seq = e.seq;
          if (template) process.stdout.write(runTemplate(template, eventContext(e)) + '\n');
          else
            process.stdout.write(
              `${new Date(e.time).toISOString()} ${e.type} ${e.action} ${e.id} (${Object.entries(e.attributes)
                .map(([k, v]) => `${k}=${v}`)
                .join(', ')})\n`,
            );
        }
        if (!o.follow || ac.signal.aborted || (until !== undefined && Date.now() > until)) return;
        if (evs.length === 0) seq = Math.max(seq, 0);
        await new Promise((r) => setTimeout(r, 200));
      }
    });

  program
    .command('version')
    .description('show the hull version')
    .option(
      '-f, --format <format>',
      "json or a Go template over docker's version fields (.Client.Version, .Server.Version)",
    )
    .action((o: { format?: string }) => {
      if (o.format) {
        const t = compileTemplate(o.format === 'json' ? '{{json .}}' : o.format);
        process.stdout.write(runTemplate(t, versionData()) + '\n');
        return;
      }
      process.stdout.write(`hull ${VERSION}\n`);
    });
}

/** `version`'s template data in docker's shape: hull is its own client and server. */
function versionData() {
  const goArch = arch() === 'x64' ? 'amd64' : arch();
  const common = {
    Version: VERSION,
    ApiVersion: '1.43',
    GitCommit: '',
    GoVersion: `node ${process.versions.node}`,
    Os: 'linux',
    Arch: goArch,
  };
  return {
    Client: { Platform: { Name: 'hull' }, ...common, BuildTime: '', Context: 'default' },
    Server: {
      Platform: { Name: 'hull' },
      Components: [{ Name: 'Engine', Version: VERSION, Details: { ApiVersion: '1.43', Os: 'linux', Arch: goArch } }],
      ...common,
      MinAPIVersion: '1.24',
      KernelVersion: release(),
      BuildTime: '',
    },
  };
}

/** `info`'s template data: docker's field names where hull has the fact, and hull's own report under .Hull. */
function dockerInfo(info: Awaited<ReturnType<typeof systemInfo>>) {
  return {
    ID: '',
    Containers: info.instances.total,
    ContainersRunning: info.instances.running,
    ContainersPaused: info.instances.paused,
    ContainersStopped: info.instances.stopped,
    Images: info.images,
    Driver: 'overlay',
    DockerRootDir: info.root,
    CgroupDriver: 'cgroupfs',
    CgroupVersion: info.cgroups === 'v2' ? '2' : '1',
    KernelVersion: info.kernel,
    OperatingSystem: 'linux',
    OSType: 'linux',
    Architecture: arch() === 'x64' ? 'x86_64' : arch(),
    NCPU: cpus().length,
    MemTotal: totalmem(),
    Name: hostname(),
    ServerVersion: info.version,
    DefaultRuntime: info.defaultRuntime,
    Runtimes: Object.fromEntries(info.runtimes.map((r) => [r.name, { path: r.path }])),
    SecurityOptions: [
      ...(info.seccomp ? ['name=seccomp,profile=builtin'] : []),
      ...(info.cgroupNamespace ? ['name=cgroupns'] : []),
    ],
    Hull: info,
  };
}
