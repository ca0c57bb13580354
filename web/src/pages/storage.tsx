/** Storage pools (where volumes live): list with their space and volumes, create (dir, btrfs, xfs), remove. */
import { useState } from 'preact/hooks';
import { call, get, post, seg, type StoragePool } from '../api.js';
import { ErrorLine, useAction, useLoad } from '../parts/common.js';
import { bytes } from '../util.js';

const MiB = 1024 * 1024;

export function Storage() {
  const list = useLoad(() => get<StoragePool[]>('/storage/pools'));
  const [f, setF] = useState({ name: '', driver: 'btrfs' as StoragePool['driver'], size: '', source: '' });
  const act = useAction();
  const loop = f.driver !== 'dir' && !f.source.trim();
  const create = (e: Event) => {
    e.preventDefault();
    void act.run(async () => {
      const body: Record<string, unknown> = { name: f.name.trim(), driver: f.driver };
      if (f.source.trim()) body.source = f.source.trim();
      if (f.size.trim()) {
        const m = Number(f.size);
        if (!(m > 0)) throw new Error('size: a number of MiB above 0');
        body.size = Math.round(m * MiB);
      }
      await post('/storage/pools', body);
      setF({ ...f, name: '', size: '', source: '' });
      list.reload();
    });
  };
  const remove = (n: string) =>
    act.run(async () => {
      if (!confirm(`Remove storage pool ${n}? (It must hold no volumes.)`)) return;
      await call('DELETE', `/storage/pools/${seg(n)}`);
      list.reload();
    });
  return (
    <section>
      <h1>Storage</h1>
      <p class="muted">
        Storage pools hold volumes: <code>dir</code> (a directory, no sizes), <code>btrfs</code> and <code>xfs</code>{' '}
        (volumes with a size; a loop image under hull's root unless a source is given).
      </p>
      <form class="toolbar" onSubmit={create} aria-label="create a storage pool">
        <label>
          Name{' '}
          <input required name="name" value={f.name} onInput={(e) => setF({ ...f, name: e.currentTarget.value })} />
        </label>
        <label>
          Driver{' '}
          <select
            name="driver"
            value={f.driver}
            onChange={(e) => setF({ ...f, driver: e.currentTarget.value as StoragePool['driver'] })}
          >
            <option value="dir">dir</option>
            <option value="btrfs">btrfs</option>
            <option value="xfs">xfs</option>
          </select>
        </label>
        <label>
          Size (MiB){' '}
          <input
            name="size"
            inputMode="numeric"
            disabled={f.driver === 'dir'}
            value={f.driver === 'dir' ? '' : f.size}
            placeholder={loop ? '1024' : ''}
            onInput={(e) => setF({ ...f, size: e.currentTarget.value })}
          />
        </label>
        <label>
          Source{' '}
          <input
            name="source"
            value={f.source}
            placeholder="/dev/sdb, /path/img or /dir (optional)"
            onInput={(e) => setF({ ...f, source: e.currentTarget.value })}
          />
        </label>
        <button type="submit" disabled={act.busy}>
          {act.busy ? 'Working…' : 'Create'}
        </button>
      </form>
      <ErrorLine error={act.error || list.error} />
      <div class="table-wrap">
        <table class="list">
          <caption class="sr-only">Storage pools</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Driver</th>
              <th scope="col">Size</th>
              <th scope="col">Used</th>
              <th scope="col">Free</th>
              <th scope="col">Volumes</th>
              <th scope="col">Path</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {(list.value ?? []).map((p) => (
              <tr key={p.name} data-pool={p.name}>
                <td data-label="Name">{p.name}</td>
                <td data-label="Driver">
                  {p.driver}
                  {p.quotas ? <span class="muted"> (sizes)</span> : null}
                </td>
                <td data-label="Size">{bytes(p.size)}</td>
                <td data-label="Used">
                  {bytes(p.used)} <meter min={0} max={p.size || 1} value={p.used} aria-label={`${p.name} used`} />
                </td>
                <td data-label="Free">{bytes(p.free)}</td>
                <td data-label="Volumes" class="wrap">
                  {p.volumes.length ? p.volumes.join(', ') : '—'}
                </td>
                <td data-label="Path" class="wrap">
                  <code>{p.path}</code>
                </td>
                <td data-label="Actions">
                  {p.name === 'default' ? (
                    <span class="muted">—</span>
                  ) : (
                    <button
                      type="button"
                      class="danger"
                      disabled={act.busy || p.volumes.length > 0}
                      title={p.volumes.length ? 'remove its volumes first' : undefined}
                      onClick={() => remove(p.name)}
                      aria-label={`remove pool ${p.name}`}
                    >
                      Remove
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
