/** Bridge networks: list, create, remove. */
import { useState } from 'preact/hooks';
import { call, get, type Network, post, seg } from '../api.js';
import { ErrorLine, useAction, useLoad } from '../parts/common.js';
import { ago } from '../util.js';

export function Networks() {
  const list = useLoad(() => get<Network[]>('/networks'));
  const [name, setName] = useState('');
  const [subnet, setSubnet] = useState('');
  const [internal, setInternal] = useState(false);
  const act = useAction();
  const create = (e: Event) => {
    e.preventDefault();
    void act.run(async () => {
      await post('/networks', { name: name.trim(), ...(subnet.trim() ? { subnet: subnet.trim() } : {}), internal });
      setName('');
      setSubnet('');
      list.reload();
    });
  };
  const remove = (n: string) =>
    act.run(async () => {
      if (!confirm(`Remove network ${n}?`)) return;
      await call('DELETE', `/networks/${seg(n)}`);
      list.reload();
    });
  return (
    <section>
      <h1>Networks</h1>
      <form class="toolbar" onSubmit={create} aria-label="create a network">
        <label>
          Name <input required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Subnet{' '}
          <input
            value={subnet}
            placeholder="10.89.5.0/24 (optional)"
            onInput={(e) => setSubnet(e.currentTarget.value)}
          />
        </label>
        <label>
          <input type="checkbox" checked={internal} onChange={(e) => setInternal(e.currentTarget.checked)} /> internal
        </label>
        <button type="submit" disabled={act.busy}>
          Create
        </button>
      </form>
      <ErrorLine error={act.error || list.error} />
      <div class="table-wrap">
        <table class="list">
          <caption class="sr-only">Networks</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Subnet</th>
              <th scope="col">Gateway</th>
              <th scope="col">Instances</th>
              <th scope="col">Created</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {(list.value ?? []).map((n) => (
              <tr key={n.id} data-network={n.name}>
                <td data-label="Name">
                  {n.name}
                  {n.internal ? <span class="muted"> (internal)</span> : null}
                </td>
                <td data-label="Subnet">{n.subnet}</td>
                <td data-label="Gateway">{n.gateway}</td>
                <td data-label="Instances">{n.instances.length}</td>
                <td data-label="Created">{ago(n.created)}</td>
                <td data-label="Actions">
                  <button
                    type="button"
                    class="danger"
                    disabled={act.busy}
                    onClick={() => remove(n.name)}
                    aria-label={`remove network ${n.name}`}
                  >
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
