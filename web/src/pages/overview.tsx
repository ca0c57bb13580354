/** The host at a glance: CPU, memory, disk and network charts; instances by state and kind; recent events. */
import { useEffect, useState } from 'preact/hooks';
import { follow, get, type HostMetrics, type HullEvent } from '../api.js';
import { Chart } from '../parts/chart.js';
import { ErrorLine, Link } from '../parts/common.js';
import { recentEvents, useEvents, useInstances } from '../live.js';
import { ago, bytes } from '../util.js';

const KEEP = 120;

interface Series {
  t: number[];
  cpu: number[];
  mem: number[];
  disk: number[];
  rx: number[];
  tx: number[];
}

export function useHostSeries(): { s: Series; last: HostMetrics | undefined } {
  const [state, setState] = useState<{ s: Series; last: HostMetrics | undefined }>({
    s: { t: [], cpu: [], mem: [], disk: [], rx: [], tx: [] },
    last: undefined,
  });
  useEffect(() => {
    const s: Series = { t: [], cpu: [], mem: [], disk: [], rx: [], tx: [] };
    let prev: HostMetrics | undefined;
    const net = (h: HostMetrics) =>
      h.network.filter((i) => i.name !== 'lo').reduce((a, i) => [a[0]! + i.rxBytes, a[1]! + i.txBytes], [0, 0]);
    return follow<HostMetrics>(
      '/host/metrics/stream',
      (h) => {
        if (!h?.cpu) return;
        const t = Date.parse(h.time) / 1000;
        if (prev) {
          const dt = t - Date.parse(prev.time) / 1000;
          if (dt <= 0) return;
          const busy = h.cpu.totalSeconds - h.cpu.idleSeconds - (prev.cpu.totalSeconds - prev.cpu.idleSeconds);
          const total = h.cpu.totalSeconds - prev.cpu.totalSeconds;
          const [rx, tx] = net(h);
          const [prx, ptx] = net(prev);
          s.t.push(t);
          s.cpu.push(total > 0 ? (100 * busy) / total : 0);
          s.mem.push(h.memory.totalBytes - h.memory.availableBytes);
          s.disk.push(h.disk.totalBytes - h.disk.availableBytes);
          s.rx.push(Math.max(0, (rx! - prx!) / dt));
          s.tx.push(Math.max(0, (tx! - ptx!) / dt));
          if (s.t.length > KEEP) for (const a of Object.values(s)) a.shift();
        }
        prev = h;
        setState({ s: { ...s, t: [...s.t] }, last: h });
      },
      { everyMs: 2000, fetch: () => get<HostMetrics>('/host/metrics') },
    );
  }, []);
  return state;
}

const pct = (v: number) => `${v < 10 ? v.toFixed(1) : v.toFixed(0)}%`;
const rate = (v: number) => `${bytes(v)}/s`;

export function EventList(props: { events: HullEvent[] }) {
  if (!props.events.length) return <p class="muted">No events yet.</p>;
  return (
    <ul class="events">
      {props.events.map((e) => (
        <li key={e.seq}>
          <time dateTime={e.time} title={e.time}>
            {new Date(e.time).toLocaleTimeString()}
          </time>{' '}
          <span class="muted">{e.type}</span> <strong>{e.action}</strong>{' '}
          {e.type === 'container' || e.type === 'vm' ? <Link href={`/instances/${e.id}`}>{e.name}</Link> : e.name}
        </li>
      ))}
    </ul>
  );
}

export function Overview() {
  const { s, last } = useHostSeries();
  const { list, error } = useInstances();
  const [events, setEvents] = useState<HullEvent[]>(recentEvents.slice(-15).reverse());
  useEvents(() => setEvents(recentEvents.slice(-15).reverse()));
  const counts = new Map<string, number>();
  for (const i of list ?? []) counts.set(`${i.kind}:${i.state}`, (counts.get(`${i.kind}:${i.state}`) ?? 0) + 1);
  const states = [...new Set((list ?? []).map((i) => i.state))].sort();
  return (
    <section>
      <h1>Overview</h1>
      <ErrorLine error={error} />
      <div class="cards">
        <div class="card">
          <h2>Instances</h2>
          <table class="counts">
            <caption class="sr-only">Instances by kind and state</caption>
            <thead>
              <tr>
                <th scope="col">kind</th>
                {states.map((st) => (
                  <th scope="col" key={st}>
                    {st}
                  </th>
                ))}
                <th scope="col">all</th>
              </tr>
            </thead>
            <tbody>
              {(['container', 'vm'] as const).map((k) => (
                <tr key={k}>
                  <th scope="row">{k === 'vm' ? 'VMs' : 'containers'}</th>
                  {states.map((st) => (
                    <td key={st}>{counts.get(`${k}:${st}`) ?? 0}</td>
                  ))}
                  <td>{(list ?? []).filter((i) => i.kind === k).length}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p>
            <Link href="/instances">All instances</Link> · <Link href="/create">Create one</Link>
          </p>
        </div>
        <div class="card">
          <h2>Host</h2>
          {last ? (
            <dl class="facts">
              <dt>CPUs</dt>
              <dd>
                {last.cpu.count} · load {last.cpu.load.map((l) => l.toFixed(2)).join(' ')}
              </dd>
              <dt>Memory</dt>
              <dd>
                {bytes(last.memory.totalBytes - last.memory.availableBytes)} of {bytes(last.memory.totalBytes)}
              </dd>
              <dt>Disk ({last.disk.path})</dt>
              <dd>
                {bytes(last.disk.totalBytes - last.disk.availableBytes)} of {bytes(last.disk.totalBytes)}
              </dd>
            </dl>
          ) : (
            <p class="muted">Loading…</p>
          )}
        </div>
      </div>
      <div class="charts">
        <Chart title="CPU" series={[{ label: 'busy', color: '#d9480f' }]} data={[s.t, s.cpu]} format={pct} max={100} />
        <Chart
          title="Memory"
          series={[{ label: 'used', color: '#1971c2' }]}
          data={[s.t, s.mem]}
          format={bytes}
          max={last?.memory.totalBytes ?? 0}
        />
        <Chart
          title="Disk"
          series={[{ label: 'used', color: '#2f9e44' }]}
          data={[s.t, s.disk]}
          format={bytes}
          max={last?.disk.totalBytes ?? 0}
        />
        <Chart
          title="Network"
          series={[
            { label: 'received', color: '#7048e8' },
            { label: 'sent', color: '#e64980' },
          ]}
          data={[s.t, s.rx, s.tx]}
          format={rate}
        />
      </div>
      <h2>Recent events</h2>
      <EventList events={events} />
      <p>
        <Link href="/events">All events</Link> · updated {ago(last?.time)}
      </p>
    </section>
  );
}
