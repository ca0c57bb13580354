/** Containers and VMs in one table: state, kind, image, addresses, ports, CPU and memory sparklines; bulk actions. */
import { useState } from 'preact/hooks';
import { call, type Instance, post } from '../api.js';
import { Badge, ErrorLine, Link, useAction } from '../parts/common.js';
import { Spark } from '../parts/spark.js';
import { useAllStats, useInstances } from '../live.js';
import { bytes } from '../util.js';

const live = (i: Instance) => i.state === 'running' || i.state === 'paused';

export function Instances() {
  const { list, error, reload } = useInstances();
  const [query, setQuery] = useState('');
  const [kind, setKind] = useState('');
  const [state, setState] = useState('');
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const act = useAction();
  const running = (list ?? []).filter(live).map((i) => i.id);
  const stats = useAllStats(running);
  const q = query.trim().toLowerCase();
  const shown = (list ?? []).filter(
    (i) =>
      (!kind || i.kind === kind) &&
      (!state || i.state === state) &&
      (!q ||
        i.name.toLowerCase().includes(q) ||
        i.id.startsWith(q) ||
        i.image.toLowerCase().includes(q) ||
        i.networks.some((n) => n.address?.includes(q))),
  );
  const states = [...new Set((list ?? []).map((i) => i.state))].sort();
  const toggle = (id: string) => {
    const n = new Set(picked);
    if (n.has(id)) n.delete(id);
    else n.add(id);
    setPicked(n);
  };
  const allPicked = shown.length > 0 && shown.every((i) => picked.has(i.id));
  const bulk = (verb: 'start' | 'stop' | 'remove') =>
    act.run(async () => {
      const targets = (list ?? []).filter((i) => picked.has(i.id));
      if (verb === 'remove' && !confirm(`Remove ${targets.length} instance(s)? Running ones are stopped first.`))
        return;
      const failures: string[] = [];
      await Promise.all(
        targets.map(async (i) => {
          try {
            if (verb === 'start' && !live(i)) await post(`/instances/${i.id}/start`);
            if (verb === 'stop' && live(i)) await post(`/instances/${i.id}/stop`);
            if (verb === 'remove') await call('DELETE', `/instances/${i.id}?force=1`);
          } catch (e) {
            failures.push(`${i.name}: ${(e as Error).message}`);
          }
        }),
      );
      if (verb === 'remove') setPicked(new Set());
      reload();
      if (failures.length) throw new Error(failures.join('; '));
    });
  return (
    <section>
      <div class="page-head">
        <h1>Instances</h1>
        <Link href="/create" class="button">
          Create
        </Link>
      </div>
      <search class="toolbar">
        <label>
          Search{' '}
          <input
            type="search"
            value={query}
            placeholder="name, id, image, address"
            onInput={(e) => setQuery(e.currentTarget.value)}
          />
        </label>
        <label>
          Kind{' '}
          <select value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
            <option value="">all</option>
            <option value="container">containers</option>
            <option value="vm">VMs</option>
          </select>
        </label>
        <label>
          State{' '}
          <select value={state} onChange={(e) => setState(e.currentTarget.value)}>
            <option value="">all</option>
            {states.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
      </search>
      <fieldset class="toolbar">
        <legend class="sr-only">bulk actions</legend>
        <span class="muted">{picked.size} selected</span>
        <button type="button" disabled={!picked.size || act.busy} onClick={() => bulk('start')}>
          Start
        </button>
        <button type="button" disabled={!picked.size || act.busy} onClick={() => bulk('stop')}>
          Stop
        </button>
        <button type="button" class="danger" disabled={!picked.size || act.busy} onClick={() => bulk('remove')}>
          Remove
        </button>
      </fieldset>
      <ErrorLine error={error || act.error} />
      {list === undefined ? (
        <p class="muted">Loading…</p>
      ) : (
        <div class="table-wrap">
          <table class="list instances">
            <caption class="sr-only">Containers and VMs</caption>
            <thead>
              <tr>
                <th scope="col">
                  <input
                    type="checkbox"
                    aria-label="select all shown"
                    checked={allPicked}
                    onChange={() => setPicked(allPicked ? new Set() : new Set(shown.map((i) => i.id)))}
                  />
                </th>
                <th scope="col">Name</th>
                <th scope="col">State</th>
                <th scope="col">Kind</th>
                <th scope="col">Image</th>
                <th scope="col">Addresses</th>
                <th scope="col">Ports</th>
                <th scope="col">CPU</th>
                <th scope="col">Memory</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((i) => {
                const h = stats.get(i.id) ?? [];
                const lastS = h.at(-1);
                return (
                  <tr key={i.id} data-instance={i.name}>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`select ${i.name}`}
                        checked={picked.has(i.id)}
                        onChange={() => toggle(i.id)}
                      />
                    </td>
                    <td data-label="Name">
                      <Link href={`/instances/${i.id}`}>{i.name}</Link>
                    </td>
                    <td data-label="State">
                      <Badge state={i.state} />
                    </td>
                    <td data-label="Kind">{i.kind === 'vm' ? 'VM' : 'container'}</td>
                    <td data-label="Image" class="wrap">
                      {i.image}
                    </td>
                    <td data-label="Addresses">
                      {i.networks
                        .map((n) => n.address)
                        .filter(Boolean)
                        .join(', ') || '—'}
                    </td>
                    <td data-label="Ports">
                      {i.ports.map((p) => `${p.hostPort}→${p.containerPort}/${p.protocol}`).join(', ') || '—'}
                    </td>
                    <td data-label="CPU">
                      {live(i) ? (
                        <Spark
                          label={`CPU of ${i.name}`}
                          values={h.map((x) => x.cpuPercent)}
                          text={lastS ? `${lastS.cpuPercent.toFixed(1)}%` : '…'}
                        />
                      ) : (
                        '—'
                      )}
                    </td>
                    <td data-label="Memory">
                      {live(i) ? (
                        <Spark
                          label={`memory of ${i.name}`}
                          values={h.map((x) => x.memoryBytes)}
                          max={lastS?.memoryLimitBytes && lastS.memoryLimitBytes < 2 ** 50 ? lastS.memoryLimitBytes : 0}
                          text={lastS ? bytes(lastS.memoryBytes) : '…'}
                        />
                      ) : (
                        '—'
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          {!shown.length && <p class="muted">No instances{q || kind || state ? ' match' : ' yet'}.</p>}
        </div>
      )}
    </section>
  );
}
