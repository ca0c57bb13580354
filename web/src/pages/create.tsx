/** Create an instance: image, container or VM, CPUs, memory, networks, ports, volumes, environment, command. */
import { useState } from 'preact/hooks';
import { get, type Image, type Instance, type Network, post, seg } from '../api.js';
import { ErrorLine, useAction, useLoad } from '../parts/common.js';
import { navigate, splitWords } from '../util.js';

const lines = (s: string) =>
  s
    .split(/[\n,]/)
    .map((x) => x.trim())
    .filter(Boolean);

export function Create() {
  const images = useLoad(() => get<Image[]>('/images'));
  const networks = useLoad(() => get<Network[]>('/networks'));
  const [f, setF] = useState({
    image: '',
    kind: 'container' as 'container' | 'vm',
    name: '',
    cpus: '',
    memory: '',
    ports: '',
    volumes: '',
    env: '',
    command: '',
    tty: false,
    display: false,
    start: true,
  });
  const [nets, setNets] = useState<Set<string>>(new Set());
  const act = useAction();
  const set = (k: keyof typeof f) => (e: Event) => {
    const t = e.currentTarget as HTMLInputElement;
    setF({ ...f, [k]: t.type === 'checkbox' ? t.checked : t.value });
  };
  const submit = (e: Event) => {
    e.preventDefault();
    void act.run(async () => {
      if (!f.image.trim()) throw new Error('image: name an image (pull one on the Images page)');
      const body: Record<string, unknown> = { kind: f.kind, image: f.image.trim() };
      if (f.name.trim()) body.name = f.name.trim();
      const command = splitWords(f.command);
      if (command.length) body.command = command;
      const env = f.env
        .split('\n')
        .map((x) => x.trim())
        .filter(Boolean);
      for (const v of env) if (!/^[^=]+=/.test(v)) throw new Error(`environment: "${v}" is not NAME=VALUE`);
      if (env.length) body.env = env;
      const resources: Record<string, number> = {};
      if (f.cpus.trim()) {
        const c = Number(f.cpus);
        if (!(c > 0)) throw new Error('CPUs: a number above 0');
        resources.cpus = c;
      }
      if (f.memory.trim()) {
        const m = Number(f.memory);
        if (!(m > 0)) throw new Error('memory: a number of MiB above 0');
        resources.memory = Math.round(m * 1024 * 1024);
      }
      if (Object.keys(resources).length) body.resources = resources;
      if (nets.size) body.networks = [...nets];
      if (lines(f.ports).length) body.publish = lines(f.ports);
      if (lines(f.volumes).length) body.volumes = lines(f.volumes);
      if (f.display) body.display = 'vnc';
      if (f.tty) {
        body.tty = true;
        body.stdin = true;
      }
      const inst = await post<Instance>('/instances', body);
      if (f.start) await post(`/instances/${seg(inst.id)}/start`);
      navigate(`/instances/${inst.id}`);
    });
  };
  const imageNames = (images.value ?? []).flatMap((i) => i.names);
  return (
    <section>
      <h1>Create an instance</h1>
      <form class="form" onSubmit={submit} aria-label="create an instance">
        <fieldset>
          <legend>Kind</legend>
          <label>
            <input type="radio" name="kind" value="container" checked={f.kind === 'container'} onChange={set('kind')} />{' '}
            Container
          </label>
          <label>
            <input type="radio" name="kind" value="vm" checked={f.kind === 'vm'} onChange={set('kind')} /> Virtual
            machine
          </label>
        </fieldset>
        <label>
          Image
          <input name="image" list="image-names" required value={f.image} onInput={set('image')} autoComplete="off" />
          <datalist id="image-names">
            {imageNames.map((n) => (
              <option key={n} value={n} />
            ))}
          </datalist>
        </label>
        <label>
          Name <span class="muted">(optional)</span>
          <input name="name" value={f.name} onInput={set('name')} pattern="[a-zA-Z0-9][a-zA-Z0-9_.\-]*" />
        </label>
        <label>
          Command <span class="muted">(words as a shell splits them; empty: the image's)</span>
          <input name="command" value={f.command} onInput={set('command')} placeholder="sleep 3600" />
        </label>
        <div class="row">
          <label>
            CPUs
            <input name="cpus" type="number" min="0.01" step="0.01" value={f.cpus} onInput={set('cpus')} />
          </label>
          <label>
            Memory (MiB)
            <input name="memory" type="number" min="1" step="1" value={f.memory} onInput={set('memory')} />
          </label>
        </div>
        <fieldset>
          <legend>Networks</legend>
          {(networks.value ?? []).length === 0 && <span class="muted">the default network</span>}
          {(networks.value ?? []).map((n) => (
            <label key={n.name}>
              <input
                type="checkbox"
                checked={nets.has(n.name)}
                onChange={() => {
                  const s = new Set(nets);
                  if (s.has(n.name)) s.delete(n.name);
                  else s.add(n.name);
                  setNets(s);
                }}
              />{' '}
              {n.name} <span class="muted">{n.subnet}</span>
            </label>
          ))}
        </fieldset>
        <label>
          Ports <span class="muted">(HOST:CONTAINER, one a line or comma-separated)</span>
          <textarea name="ports" rows={2} value={f.ports} onInput={set('ports')} placeholder="8080:80" />
        </label>
        <label>
          Volumes <span class="muted">(NAME:/path or /host/path:/path[:ro], one a line)</span>
          <textarea name="volumes" rows={2} value={f.volumes} onInput={set('volumes')} placeholder="data:/data" />
        </label>
        <label>
          Environment <span class="muted">(NAME=VALUE, one a line)</span>
          <textarea name="env" rows={3} value={f.env} onInput={set('env')} />
        </label>
        <label>
          <input type="checkbox" name="tty" checked={f.tty} onChange={set('tty')} /> Allocate a terminal (TTY and stdin)
        </label>
        <label>
          <input type="checkbox" name="display" checked={f.display} onChange={set('display')} /> Graphical display (VNC:
          a VM's screen, or a container's X11 application), shown on the instance's Display tab
        </label>
        <label>
          <input type="checkbox" name="start" checked={f.start} onChange={set('start')} /> Start it now
        </label>
        <ErrorLine error={act.error || images.error || networks.error} />
        <button type="submit" disabled={act.busy}>
          {act.busy ? 'Creating…' : 'Create'}
        </button>
      </form>
    </section>
  );
}
