/** Volumes: list (with their pool and size), create (in a chosen pool, with a size), remove. */
import { useState } from 'preact/hooks';
import { call, get, post, seg, type StoragePool, type Volume } from '../api.js';
import { ErrorLine, useAction, useLoad } from '../parts/common.js';
import { bytes } from '../util.js';

export function Volumes() {
  const list = useLoad(async () => {
    const v = await get<{ volumes: Volume[] } | Volume[]>('/volumes');
    return Array.isArray(v) ? v : v.volumes;
  });
  const pools = useLoad(() => get<StoragePool[]>('/storage/pools'));
  const [name, setName] = useState('');
  const [pool, setPool] = useState('default');
  const [size, setSize] = useState('');
  const act = useAction();
  const quotas = pools.value?.find((p) => p.name === pool)?.quotas ?? false;
  const create = (e: Event) => {
    e.preventDefault();
    void act.run(async () => {
      const body: Record<string, unknown> = { name: name.trim() };
      if (pool !== 'default') body.pool = pool;
      if (size.trim()) {
        const m = Number(size);
        if (!(m > 0)) throw new Error('size: a number of MiB above 0');
        body.size = Math.round(m * 1024 * 1024);
      }
      await post('/volumes', body);
      setName('');
      setSize('');
      list.reload();
      pools.reload();
    });
  };
  const remove = (n: string) =>
    act.run(async () => {
      if (!confirm(`Remove volume ${n} and its data?`)) return;
      await call('DELETE', `/volumes/${seg(n)}`);
      list.reload();
      pools.reload();
    });
  return (
    <section>
      <h1>Volumes</h1>
      <form class="toolbar" onSubmit={create} aria-label="create a volume">
        <label>
          Name <input required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Pool{' '}
          <select name="pool" value={pool} onChange={(e) => setPool(e.currentTarget.value)}>
            {(pools.value ?? [{ name: 'default', driver: 'dir' }]).map((p) => (
              <option key={p.name} value={p.name}>
                {p.name} ({p.driver})
              </option>
            ))}
          </select>
        </label>
        <label>
          Size (MiB){' '}
          <input
            name="size"
            inputMode="numeric"
            disabled={!quotas}
            value={quotas ? size : ''}
            placeholder={quotas ? 'no limit' : 'pool without sizes'}
            onInput={(e) => setSize(e.currentTarget.value)}
          />
        </label>
        <button type="submit" disabled={act.busy}>
          Create
        </button>
      </form>
      <ErrorLine error={act.error || list.error || pools.error} />
      <div class="table-wrap">
        <table class="list">
          <caption class="sr-only">Volumes</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Pool</th>
              <th scope="col">Size</th>
              <th scope="col">Mount point</th>
              <th scope="col">Used by</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {(list.value ?? []).map((v) => (
              <tr key={v.name} data-volume={v.name}>
                <td data-label="Name" class="wrap">
                  {v.name}
                  {v.anonymous ? <span class="muted"> (anonymous)</span> : null}
                </td>
                <td data-label="Pool">{v.pool}</td>
                <td data-label="Size">
                  {v.size === null ? <span class="muted">no limit</span> : bytes(v.size)}
                  {v.type === 'block' ? <span class="muted"> (block)</span> : null}
                </td>
                <td data-label="Mount point" class="wrap">
                  <code>{v.mountpoint}</code>
                </td>
                <td data-label="Used by">{v.usedBy.length ? v.usedBy.map((u) => u.slice(0, 12)).join(', ') : '—'}</td>
                <td data-label="Actions">
                  <button
                    type="button"
                    class="danger"
                    disabled={act.busy}
                    onClick={() => remove(v.name)}
                    aria-label={`remove volume ${v.name}`}
                  >
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.value?.length === 0 && <p class="muted">No volumes yet.</p>}
    </section>
  );
}
