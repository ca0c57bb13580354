/** Events as they happen (the app's one events socket, with the last hour replayed), filtered by type and text. */
import { useState } from 'preact/hooks';
import { recentEvents, useEvents } from '../live.js';
import { EventList } from './overview.js';

export function Events() {
  const [all, setAll] = useState(recentEvents.slice());
  const [type, setType] = useState('');
  const [query, setQuery] = useState('');
  useEvents(() => setAll(recentEvents.slice()));
  const types = [...new Set(all.map((e) => e.type))].sort();
  const q = query.trim().toLowerCase();
  const shown = all
    .filter(
      (e) =>
        (!type || e.type === type) &&
        (!q || e.name.toLowerCase().includes(q) || e.action.toLowerCase().includes(q) || e.id.startsWith(q)),
    )
    .reverse();
  return (
    <section>
      <h1>Events</h1>
      <search class="toolbar">
        <label>
          Type{' '}
          <select value={type} onChange={(e) => setType(e.currentTarget.value)}>
            <option value="">all</option>
            {types.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label>
          Search <input type="search" value={query} onInput={(e) => setQuery(e.currentTarget.value)} />
        </label>
        <span class="muted" role="status">
          {shown.length} events (live)
        </span>
      </search>
      <EventList events={shown} />
    </section>
  );
}
