/** Images: pull with progress (an Operation followed over its WebSocket), remove, history. */
import { useState } from 'preact/hooks';
import { call, get, type Image, type ImageDetail, type Operation, post, seg, socket } from '../api.js';
import { ErrorLine, useAction, useLoad } from '../parts/common.js';
import { ago, bytes, shortId } from '../util.js';

interface HistoryEntry {
  created?: string;
  createdBy?: string;
  created_by?: string;
  size?: number;
  comment?: string;
  emptyLayer?: boolean;
}

function History(props: { name: string }) {
  const h = useLoad(async () => {
    try {
      const v = await get<HistoryEntry[] | { history: HistoryEntry[] }>(`/images/${seg(props.name)}/history`);
      return { entries: Array.isArray(v) ? v : v.history, layers: undefined };
    } catch (e) {
      // a daemon without /history: the layers from the image's detail
      if ((e as { status?: number }).status !== 404) throw e;
      const d = await get<ImageDetail>(`/images/${seg(props.name)}`);
      return { entries: undefined, layers: d.layers };
    }
  }, [props.name]);
  if (h.error) return <ErrorLine error={h.error} />;
  if (!h.value) return <p class="muted">Loading…</p>;
  if (h.value.layers)
    return (
      <ol class="history">
        {h.value.layers.map((l) => (
          <li key={l.digest}>
            {l.digest.slice(0, 19)} · {bytes(l.size)}
          </li>
        ))}
      </ol>
    );
  return (
    <ol class="history">
      {(h.value.entries ?? []).map((e, i) => (
        <li key={i}>
          <code>{e.createdBy ?? e.created_by ?? ''}</code>{' '}
          <span class="muted">
            {e.size !== undefined ? bytes(e.size) : ''} {e.created ? ago(e.created) : ''}
          </span>
        </li>
      ))}
    </ol>
  );
}

export function Images() {
  const list = useLoad(() => get<Image[]>('/images'));
  const [ref, setRef] = useState('');
  const [op, setOp] = useState<Operation | undefined>(undefined);
  const [open, setOpen] = useState('');
  const act = useAction();
  const pull = (e: Event) => {
    e.preventDefault();
    void act.run(async () => {
      const start = await post<Operation>('/images/pull', { image: ref.trim() });
      setOp(start);
      await new Promise<void>((resolve) => {
        const ws = socket(`/operations/${start.id}`);
        ws.onmessage = (m) => {
          if (typeof m.data === 'string') setOp(JSON.parse(m.data) as Operation);
        };
        ws.onclose = () => resolve();
      });
      const final = await get<Operation>(`/operations/${start.id}`);
      setOp(final);
      list.reload();
      if (final.state === 'failed') throw new Error(final.error ?? 'the pull failed');
    });
  };
  const remove = (name: string) =>
    act.run(async () => {
      if (!confirm(`Remove image ${name}?`)) return;
      await call('DELETE', `/images/${seg(name)}`);
      list.reload();
    });
  const pctOf = (o: Operation) => (o.progress.total ? Math.round((100 * o.progress.current) / o.progress.total) : 0);
  return (
    <section>
      <h1>Images</h1>
      <form class="toolbar" onSubmit={pull} aria-label="pull an image">
        <label>
          Image{' '}
          <input
            name="pull"
            required
            value={ref}
            placeholder="docker.io/library/alpine:3"
            onInput={(e) => setRef(e.currentTarget.value)}
          />
        </label>
        <button type="submit" disabled={act.busy}>
          Pull
        </button>
        {op && (
          <span role="status" class="pull-status">
            {op.target}: {op.state}{' '}
            <progress max={100} value={pctOf(op)} aria-label="pull progress">
              {pctOf(op)}%
            </progress>{' '}
            {bytes(op.progress.current)} of {bytes(op.progress.total)}
          </span>
        )}
      </form>
      <ErrorLine error={act.error || list.error} />
      <div class="table-wrap">
        <table class="list">
          <caption class="sr-only">Images</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">ID</th>
              <th scope="col">Size</th>
              <th scope="col">Created</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {(list.value ?? []).map((i) => {
              const name = i.names[0] ?? i.id;
              return (
                <>
                  <tr key={i.id} data-image={name}>
                    <td data-label="Name" class="wrap">
                      {i.names.join(', ') || '<none>'}
                    </td>
                    <td data-label="ID">
                      <code>{shortId(i.id.replace(/^sha256:/, ''))}</code>
                    </td>
                    <td data-label="Size">{bytes(i.size)}</td>
                    <td data-label="Created">{ago(i.created)}</td>
                    <td data-label="Actions">
                      <button
                        type="button"
                        aria-expanded={open === i.id}
                        onClick={() => setOpen(open === i.id ? '' : i.id)}
                        aria-label={`history of ${name}`}
                      >
                        History
                      </button>{' '}
                      <button
                        type="button"
                        class="danger"
                        disabled={act.busy}
                        onClick={() => remove(name)}
                        aria-label={`remove ${name}`}
                      >
                        Remove
                      </button>
                    </td>
                  </tr>
                  {open === i.id && (
                    <tr key={`${i.id}-h`}>
                      <td colSpan={5}>
                        <History name={name} />
                      </td>
                    </tr>
                  )}
                </>
              );
            })}
          </tbody>
        </table>
      </div>
      {list.value?.length === 0 && <p class="muted">No images yet: pull one.</p>}
    </section>
  );
}
