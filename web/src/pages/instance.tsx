/**
 * One instance: its configuration, live stats, logs, a terminal (an exec'd shell: containers and image VMs), a
 * VM's serial console, the graphical console (VMs with a display), the lifecycle actions and live resource changes.
 */
import { useEffect, useState } from 'preact/hooks';
import { call, get, type Instance, post, seg } from '../api.js';
import { Chart } from '../parts/chart.js';
import { Badge, ErrorLine, Link, useAction, useLoad } from '../parts/common.js';
import { Logs } from '../parts/logs.js';
import { Terminal } from '../parts/terminal.js';
import { Vnc } from '../parts/vnc.js';
import { useEvents, useInstanceStats } from '../live.js';
import { ago, bytes, hasDisplay, navigate } from '../util.js';

type Tab = 'overview' | 'stats' | 'logs' | 'terminal' | 'console' | 'display';

const MiB = 1024 * 1024;

function Resources(props: { inst: Instance; onDone: () => void }) {
  const i = props.inst;
  const [memory, setMemory] = useState(i.resources.memory ? String(Math.round(i.resources.memory / MiB)) : '');
  const [cpus, setCpus] = useState(i.resources.cpus ? String(i.resources.cpus) : '');
  const [done, setDone] = useState('');
  const act = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    setDone('');
    void act
      .run(async () => {
        const resources: { memory?: number; cpus?: number } = {};
        if (memory.trim()) {
          const m = Number(memory);
          if (!(m > 0)) throw new Error('memory: a number of MiB above 0');
          resources.memory = Math.round(m * MiB);
        }
        if (cpus.trim()) {
          const c = Number(cpus);
          if (!(c > 0)) throw new Error('CPUs: a number above 0');
          resources.cpus = c;
        }
        if (!Object.keys(resources).length) throw new Error('give a memory limit or a CPU count');
        await call('PATCH', `/instances/${seg(i.id)}`, { resources });
      })
      .then((ok) => {
        if (ok) {
          setDone('applied');
          props.onDone();
        }
      });
  };
  return (
    <form class="resources" onSubmit={submit} aria-label="resources">
      <h2>Resources</h2>
      <div class="row">
        <label>
          Memory limit (MiB)
          <input
            name="memory"
            type="number"
            min="1"
            step="1"
            inputMode="numeric"
            value={memory}
            onInput={(e) => setMemory(e.currentTarget.value)}
          />
        </label>
        <label>
          CPUs
          <input
            name="cpus"
            type="number"
            min="0.01"
            step="0.01"
            inputMode="decimal"
            value={cpus}
            onInput={(e) => setCpus(e.currentTarget.value)}
          />
        </label>
        <button type="submit" disabled={act.busy}>
          Apply
        </button>
        <span role="status" class="muted">
          {done}
        </span>
      </div>
      <ErrorLine error={act.error} />
    </form>
  );
}

function Config(props: { inst: Instance }) {
  const i = props.inst;
  const rows: [string, string][] = [
    ['ID', i.id],
    ['Kind', i.kind === 'vm' ? `VM (${i.vm?.mode ?? ''})` : `container (${i.container?.runtime ?? ''})`],
    ['Image', i.image],
    ['Command', i.command.join(' ') || '—'],
    ['Created', `${i.created} (${ago(i.created)})`],
    ['Started', i.startedAt ? `${i.startedAt} (${ago(i.startedAt)})` : '—'],
    ['Finished', i.finishedAt ?? '—'],
    ['Exit code', i.exitCode === null ? '—' : String(i.exitCode)],
    ['Restart policy', `${i.restartPolicy} (restarted ${i.restartCount} times)`],
    ['Health', i.health ?? '—'],
    ['TTY', i.tty ? 'yes' : 'no'],
    ['Networks', i.networks.map((n) => `${n.name}${n.address ? ` ${n.address}` : ''}`).join(', ') || '—'],
    ['Ports', i.ports.map((p) => `${p.hostIp}:${p.hostPort} → ${p.containerPort}/${p.protocol}`).join(', ') || '—'],
    ['Memory limit', i.resources.memory ? bytes(i.resources.memory) : 'none'],
    ['CPUs', i.resources.cpus ? String(i.resources.cpus) : 'all'],
    [
      'Labels',
      Object.entries(i.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ') || '—',
    ],
  ];
  if (i.vm)
    rows.push(
      ['Machine', `${i.vm.machine ?? '—'} · ${i.vm.accel} · ${i.vm.deviceModel}`],
      ['VM CPUs / memory', `${i.vm.cpus ?? '—'} / ${i.vm.memory ? bytes(i.vm.memory) : '—'}`],
      ['Kernel', i.vm.kernel ?? '—'],
      ['Disk', i.vm.disk ?? '—'],
    );
  return (
    <dl class="facts config">
      {rows.map(([k, v]) => (
        <>
          <dt key={`${k}-t`}>{k}</dt>
          <dd key={`${k}-d`}>{v}</dd>
        </>
      ))}
    </dl>
  );
}

function Stats(props: { inst: Instance }) {
  const h = useInstanceStats(props.inst.id);
  const t = h.map((x) => Date.parse(x.time) / 1000);
  const last = h.at(-1);
  const limit = last && last.memoryLimitBytes > 0 && last.memoryLimitBytes < 2 ** 50 ? last.memoryLimitBytes : 0;
  return (
    <div class="charts">
      <Chart
        title="CPU"
        series={[{ label: 'CPU', color: '#d9480f' }]}
        data={[t, h.map((x) => x.cpuPercent)]}
        format={(v) => `${v < 10 ? v.toFixed(1) : v.toFixed(0)}%`}
      />
      <Chart
        title={`Memory${limit ? ` (limit ${bytes(limit)})` : ''}`}
        series={[{ label: 'used', color: '#1971c2' }]}
        data={[t, h.map((x) => x.memoryBytes)]}
        format={bytes}
        max={limit}
      />
      <p class="muted">
        {last
          ? `${last.pids} processes · network ${bytes(last.networkReceiveBytes)} in, ${bytes(last.networkTransmitBytes)} out · disk ${bytes(last.blockReadBytes)} read, ${bytes(last.blockWriteBytes)} written`
          : 'waiting for figures…'}
      </p>
    </div>
  );
}

export function InstancePage(props: { id: string }) {
  const { value: inst, error, reload } = useLoad(() => get<Instance>(`/instances/${seg(props.id)}`), [props.id]);
  const initial = (new URLSearchParams(location.search).get('tab') as Tab | null) ?? 'overview';
  const [tab, setTabState] = useState<Tab>(initial);
  const act = useAction();
  useEvents(
    (e) => {
      if (inst && e.id === inst.id) reload();
    },
    [inst?.id],
  );
  const setTab = (t: Tab) => {
    setTabState(t);
    history.replaceState(null, '', `${location.pathname}${t === 'overview' ? '' : `?tab=${t}`}`);
  };
  useEffect(() => {
    if (inst) document.title = `${inst.name} · hull`;
  }, [inst?.name]);
  if (!inst)
    return (
      <section>
        <h1>Instance {props.id}</h1>
        {error ? <ErrorLine error={error} /> : <p class="muted">Loading…</p>}
        <Link href="/instances">All instances</Link>
      </section>
    );
  const running = inst.state === 'running';
  const live = running || inst.state === 'paused';
  const terminalOk = inst.kind === 'container' || inst.vm?.mode !== 'disk';
  const tabs: [Tab, string, boolean][] = [
    ['overview', 'Configuration', true],
    ['stats', 'Stats', true],
    ['logs', 'Logs', true],
    ['terminal', 'Terminal', terminalOk],
    ['console', 'Serial console', inst.kind === 'vm' && !!inst.vm?.console],
    ['display', 'Display', inst.kind === 'vm' || hasDisplay(inst.display)],
  ];
  const action =
    (verb: string, q = '') =>
    () =>
      act.run(async () => {
        await post(`/instances/${seg(inst.id)}/${verb}${q}`);
        reload();
      });
  const remove = () =>
    act.run(async () => {
      if (!confirm(`Remove ${inst.name}?${live ? ' It is stopped first.' : ''}`)) return;
      await call('DELETE', `/instances/${seg(inst.id)}?force=1`);
      navigate('/instances');
    });
  return (
    <section>
      <div class="page-head">
        <h1>
          {inst.name} <Badge state={inst.state} />
        </h1>
        <span class="muted">
          {inst.kind === 'vm' ? 'VM' : 'container'} · {inst.image}
        </span>
      </div>
      <fieldset class="toolbar actions">
        <legend class="sr-only">actions</legend>
        <button type="button" disabled={act.busy || live} onClick={action('start')}>
          Start
        </button>
        <button type="button" disabled={act.busy || !live} onClick={action('stop')}>
          Stop
        </button>
        <button type="button" disabled={act.busy} onClick={action('restart')}>
          Restart
        </button>
        {inst.state === 'paused' ? (
          <button type="button" disabled={act.busy} onClick={action('unpause')}>
            Resume
          </button>
        ) : (
          <button type="button" disabled={act.busy || !running} onClick={action('pause')}>
            Pause
          </button>
        )}
        <button type="button" disabled={act.busy || !live} onClick={action('kill')}>
          Kill
        </button>
        <button type="button" class="danger" disabled={act.busy} onClick={remove}>
          Remove
        </button>
      </fieldset>
      <ErrorLine error={act.error || error} />
      <div role="tablist" class="tabs" aria-label="views">
        {tabs
          .filter(([, , ok]) => ok)
          .map(([t, label]) => (
            <button
              key={t}
              type="button"
              role="tab"
              id={`tab-${t}`}
              aria-selected={tab === t}
              aria-controls="tabpanel"
              onClick={() => setTab(t)}
            >
              {label}
            </button>
          ))}
      </div>
      <div role="tabpanel" id="tabpanel" aria-labelledby={`tab-${tab}`}>
        {tab === 'overview' && (
          <>
            <Config inst={inst} />
            <Resources key={inst.id} inst={inst} onDone={reload} />
          </>
        )}
        {tab === 'stats' && <Stats inst={inst} />}
        {tab === 'logs' && <Logs id={inst.id} name={inst.name} />}
        {tab === 'terminal' &&
          (running ? (
            <Terminal
              key={`exec-${inst.id}-${inst.startedAt}`}
              path={`/instances/${seg(inst.id)}/exec?cmd=/bin/sh&tty=1&stdin=1&env=TERM=xterm-256color`}
              streamByte
              label={`shell in ${inst.name}`}
            />
          ) : (
            <p class="muted">Start the instance for a shell.</p>
          ))}
        {tab === 'console' &&
          (live ? (
            <>
              {inst.vm?.mode !== 'disk' && (
                <p class="muted" data-hint="serial">
                  The guest's serial port (ttyS0). An image VM's kernel boots quietly and nothing in it reads the port:
                  this shows what the guest writes to /dev/ttyS0 (and kernel messages). For a shell, use Terminal.
                </p>
              )}
              <Terminal
                key={`console-${inst.id}-${inst.startedAt}`}
                path={`/instances/${seg(inst.id)}/console`}
                streamByte={false}
                label={`serial console of ${inst.name}`}
              />
            </>
          ) : (
            <p class="muted">Start the VM for its console.</p>
          ))}
        {tab === 'display' &&
          (!hasDisplay(inst.display) ? (
            <p class="muted">
              This instance has no graphical display: create a VM, or a container that runs an X11 application, with
              one.
            </p>
          ) : live ? (
            <Vnc id={inst.id} name={inst.name} kind={inst.kind} />
          ) : (
            <p class="muted">Start the instance for its display.</p>
          ))}
      </div>
    </section>
  );
}
