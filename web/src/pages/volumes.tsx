/** Volumes: list, create, remove. */
import { useState } from 'preact/hooks';
import { call, get, post, seg, type Volume } from '../api.js';
import { ErrorLine, useAction, useLoad } from '../parts/common.js';

export function Volumes() {
  const list = useLoad(async () => {
    const v = await get<{ volumes: Volume[] } | Volume[]>('/volumes');
    return Array.isArray(v) ? v : v.volumes;
  });
  const [name, setName] = useState('');
  const act = useAction();
  const create = (e: Event) => {
    e.preventDefault();
    void act.run(async () => {
      await post('/volumes', { name: name.trim() });
      setName('');
      list.reload();
    });
  };
  const remove = (n: string) =>
    act.run(async () => {
      if (!confirm(`Remove volume ${n} and its data?`)) return;
      await call('DELETE', `/volumes/${seg(n)}`);
      list.reload();
    });
  return (
    <section>
      <h1>Volumes</h1>
      <form class="toolbar" onSubmit={create} aria-label="create a volume">
        <label>
          Name <input required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={act.busy}>
          Create
        </button>
      </form>
      <ErrorLine error={act.error || list.error} />
      <div class="table-wrap">
        <table class="list">
          <caption class="sr-only">Volumes</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Driver</th>
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
                <td data-label="Driver">{v.driver}</td>
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
