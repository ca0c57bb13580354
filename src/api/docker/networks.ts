/** docker's `/networks/…` endpoints over hull's networks (bridge networks with their own subnet and DNS). */
import { NotFoundError } from '../../common/errors.js';
import type { Engine } from '../../engine/engine.js';
import { type NetworkDef, removeNetwork } from '../../engine/networking.js';
import { ApiError, filters, noContent, type Router, sendJson } from '../http.js';

function find(engine: Engine, ref: string): NetworkDef {
  try {
    return engine.networks.store.get(ref);
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
    const byId = engine.networks.store.list().filter((d) => d.id.startsWith(ref));
    if (byId.length === 1) return byId[0]!;
    throw new ApiError(404, `network ${ref} not found`);
  }
}

function entry(engine: Engine, d: NetworkDef): Record<string, unknown> {
  return {
    Name: d.name,
    Id: d.id,
    Created: new Date(d.createdAt).toISOString(),
    Scope: 'local',
    Driver: d.driver,
    EnableIPv6: false,
    IPAM: {
      Driver: 'default',
      Options: null,
      Config: [{ Subnet: d.subnet, Gateway: d.gateway, ...(d.ipRange ? { IPRange: d.ipRange } : {}) }],
    },
    Internal: d.internal,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: Object.fromEntries(engine.networks.users(d.name).map((id) => [id, {}])),
    Options: d.mtu ? { 'com.docker.network.driver.mtu': String(d.mtu) } : {},
    Labels: d.labels,
  };
}

export function networkRoutes(r: Router): void {
  r.on('GET', '/networks', async (c, res) => {
    const f = filters(c.query);
    const defs = c.engine.networks.store.list().filter(
      (d) =>
        (!f.name?.length || f.name.some((n) => d.name.includes(n))) &&
        (!f.id?.length || f.id.some((i) => d.id.startsWith(i))) &&
        (f.label ?? []).every((v) => {
          const i = v.indexOf('=');
          return i < 0 ? v in d.labels : d.labels[v.slice(0, i)] === v.slice(i + 1);
        }),
    );
    sendJson(
      res,
      200,
      defs.map((d) => entry(c.engine, d)),
    );
  });

  r.on('GET', '/networks/{id}', async (c, res) => {
    sendJson(res, 200, entry(c.engine, find(c.engine, c.params.id!)));
  });

  r.on('POST', '/networks/create', async (c, res) => {
    const b = await c.body();
    if (typeof b.Name !== 'string' || !b.Name) throw new ApiError(400, 'network create needs a Name');
    if (b.Driver !== undefined && b.Driver !== '' && b.Driver !== 'bridge')
      throw new ApiError(400, `unknown network driver "${String(b.Driver)}": only bridge exists`);
    if (b.EnableIPv6 === true) throw new ApiError(400, 'IPv6 networks are not supported yet');
    const ipam = (b.IPAM ?? {}) as { Config?: { Subnet?: string; Gateway?: string; IPRange?: string }[] };
    const cfg = Array.isArray(ipam.Config) ? ipam.Config[0] : undefined;
    const labels = (b.Labels ?? {}) as Record<string, string>;
    const mtu = Number((b.Options as Record<string, string> | undefined)?.['com.docker.network.driver.mtu'] ?? 0);
    const def = await c.engine.networks.create({
      name: b.Name,
      ...(cfg?.Subnet ? { subnet: cfg.Subnet } : {}),
      ...(cfg?.Gateway ? { gateway: cfg.Gateway } : {}),
      ...(cfg?.IPRange ? { ipRange: cfg.IPRange } : {}),
      internal: b.Internal === true,
      dns: true,
      ...(mtu ? { mtu } : {}),
      labels,
    });
    sendJson(res, 201, { Id: def.id, Warning: '' });
  });

  r.on('DELETE', '/networks/{id}', async (c, res) => {
    const def = find(c.engine, c.params.id!);
    await removeNetwork(c.engine, def.name);
    noContent(res);
  });
}
