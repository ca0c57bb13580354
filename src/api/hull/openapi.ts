/**
 * The OpenAPI 3.1 document of hull's own API (`/hull/v1`, `/metrics`), served at `/hull/v1/openapi.json`. Its
 * schemas are JSON Schema 2020-12: the daemon validates request bodies with them (ajv) and the tests validate
 * every answer against them. Keep it true when a route or shape changes.
 */
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const nullable = (type: string) => ({ type: [type, 'null'] });
const str = { type: 'string' };
const int = { type: 'integer' };
const ISO = '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z$';
const isoTime = { type: 'string', pattern: ISO };
const strMap = { type: 'object', additionalProperties: str };
const strList = { type: 'array', items: str };
const obj = (properties: Record<string, unknown>, required = Object.keys(properties), extra = false) => ({
  type: 'object',
  properties,
  required,
  additionalProperties: extra,
});

const imageProps = {
  id: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' },
  names: strList,
  digest: str,
  created: str,
  size: int,
  architecture: str,
  os: str,
};

const json = (schema: unknown, description = 'OK') => ({
  description,
  content: { 'application/json': { schema } },
});
const errors = Object.fromEntries(
  ['400', '404', '409', '500'].map((s) => [
    s,
    json(ref('Error'), { '400': 'bad input', '404': 'not found', '409': 'conflict (state)', '500': 'failure' }[s]),
  ]),
);
const idParam = { name: 'id', in: 'path', required: true, schema: str, description: 'name, id or id prefix' };
const pathParam = (name: string, description: string) => ({
  name,
  in: 'path',
  required: true,
  schema: str,
  description,
});
const op = (summary: string, responses: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  summary,
  ...extra,
  responses: { ...responses, ...errors },
});
const action = (verb: string, params: unknown[] = []) => ({
  post: op(
    `${verb} an instance; answers with the instance after it`,
    { '200': json(ref('Instance')) },
    {
      parameters: [idParam, ...params],
    },
  ),
});
const websocket = (summary: string, description: string, params: unknown[] = []) => ({
  get: op(
    summary,
    { '101': { description: 'switched to the WebSocket protocol' } },
    {
      description,
      parameters: [{ name: 'Upgrade', in: 'header', required: true, schema: { const: 'websocket' } }, ...params],
    },
  ),
});

export const openapi = {
  openapi: '3.1.0',
  info: {
    title: 'hull API',
    version: '1',
    description:
      "hull's own API, beside the Docker Engine API on the same listener: instances of both kinds (containers and VMs), images, networks, volumes, events, long operations, exec/attach/console over WebSocket, metrics. Errors are always an Error object. Authentication is the daemon's: the unix socket's permissions; on TCP (HTTPS) TLS client certificates, `Authorization: Bearer TOKEN`, or the web console's session cookie (`hull_session`, from the one-time link of `hull console url`: `GET /login?token=…`). A request authenticated by the session cookie that changes anything (POST, PUT, PATCH, DELETE) must send the `hull_csrf` cookie's value in the `X-Hull-CSRF` header and, if it sends an Origin, the listener's own; a WebSocket upgrade must send the listener's own Origin; else 403 with code HULL_CSRF. Without authentication: 401.",
  },
  servers: [{ url: '/hull/v1' }],
  paths: {
    '/openapi.json': { get: op('this document', { '200': json({ type: 'object' }) }) },
    '/instances': {
      get: op(
        'instances of every kind',
        { '200': json({ type: 'array', items: ref('Instance') }) },
        {
          parameters: [
            { name: 'kind', in: 'query', schema: { enum: ['container', 'vm'] } },
            { name: 'state', in: 'query', schema: str },
            { name: 'label', in: 'query', schema: str, description: 'KEY or KEY=VALUE; repeat: all must match' },
            { name: 'name', in: 'query', schema: str },
            { name: 'filters', in: 'query', schema: str, description: "docker ps's filters as JSON" },
          ],
        },
      ),
      post: op(
        'create an instance (not started)',
        { '201': json(ref('Instance'), 'created') },
        {
          requestBody: { required: true, content: { 'application/json': { schema: ref('CreateInstance') } } },
        },
      ),
    },
    '/instances/{id}': {
      get: op('one instance', { '200': json(ref('Instance')) }, { parameters: [idParam] }),
      patch: op(
        "change a running (or stopped) instance's resources live; kept for later starts",
        { '200': json(ref('Instance')) },
        {
          parameters: [idParam],
          requestBody: { required: true, content: { 'application/json': { schema: ref('UpdateInstance') } } },
        },
      ),
      delete: op(
        'remove an instance',
        { '204': { description: 'removed' } },
        {
          parameters: [idParam, { name: 'force', in: 'query', schema: { enum: ['0', '1', 'true', 'false'] } }],
        },
      ),
    },
    '/instances/{id}/stats/stream': websocket(
      "an instance's resource use, live",
      "One InstanceMetrics message per interval (1 s), from the daemon's sampler hub: however many clients watch, the instance is sampled once per interval. Closes with 1000 when the instance is removed.",
      [idParam],
    ),
    '/instances/{id}/logs': websocket(
      "an instance's output, line by line",
      'One LogFrame message per line: the last `tail` lines (default all), then, with follow, new lines as they come until the instance stops (then close 1000). `time` is always sent; `timestamps` is accepted for docker-style clients.',
      [
        idParam,
        { name: 'follow', in: 'query', schema: { enum: ['0', '1', 'true', 'false'] } },
        { name: 'tail', in: 'query', schema: str, description: 'a number of lines, or all' },
        { name: 'timestamps', in: 'query', schema: { enum: ['0', '1', 'true', 'false'] } },
      ],
    ),
    '/stats/stream': websocket(
      "every running or paused instance's resource use, live",
      'One StatsFrame message per interval (1 s), every running or paused instance in it; sampled once per interval however many clients watch.',
    ),
    '/host/metrics/stream': websocket(
      "the host's figures, live",
      'One HostMetrics message per interval (1 s); sampled once per interval however many clients watch.',
    ),
    '/instances/{id}/start': {
      post: op(
        'start an instance; answers with the instance after it, or with ?async=1 at once with a boot operation (202) whose phases tell the boot',
        { '200': json(ref('Instance')), '202': json(ref('Operation'), 'started (?async=1)') },
        {
          parameters: [
            idParam,
            {
              name: 'async',
              in: 'query',
              schema: str,
              description: '1: answer at once with an Operation of kind boot',
            },
          ],
        },
      ),
    },
    '/instances/{id}/stop': action('stop', [{ name: 't', in: 'query', schema: int, description: 'seconds' }]),
    '/instances/{id}/restart': action('restart', [{ name: 't', in: 'query', schema: int }]),
    '/instances/{id}/kill': action('kill', [{ name: 'signal', in: 'query', schema: str }]),
    '/instances/{id}/pause': action('pause'),
    '/instances/{id}/unpause': action('unpause'),
    '/instances/{id}/metrics': {
      get: op(
        'resource use of an instance (zeros when it is not running)',
        { '200': json(ref('InstanceMetrics')) },
        {
          parameters: [idParam],
        },
      ),
    },
    '/instances/{id}/exec': websocket(
      'run a command in a running instance',
      'Binary frames to the server are stdin; binary frames from it are output, the first byte naming the stream (1 stdout, 2 stderr; with a TTY always 1). Text frames are JSON control messages: ExecControl to the server (resize, close-stdin), ServerMessage from it (exit with the exit code, or error); the server closes with 1000 after the exit message.',
      [
        { name: 'cmd', in: 'query', required: true, schema: str, description: 'repeat: the argv' },
        { name: 'tty', in: 'query', schema: { enum: ['0', '1', 'true', 'false'] } },
        { name: 'stdin', in: 'query', schema: { enum: ['0', '1', 'true', 'false'] } },
        { name: 'env', in: 'query', schema: str, description: 'repeat: KEY=VALUE' },
        { name: 'user', in: 'query', schema: str },
        { name: 'workdir', in: 'query', schema: str },
        { name: 'rows', in: 'query', schema: int },
        { name: 'cols', in: 'query', schema: int },
      ],
    ),
    '/instances/{id}/attach': websocket(
      "the instance's main process: its stdio (as exec's frames) until it exits or the client leaves",
      'Output frames as exec; stdin only for an instance created with stdin. Ends with an exit message (exitCode null when the client detached).',
    ),
    '/instances/{id}/console': websocket(
      "a VM's serial console (kinds with a console): binary frames both ways, resize as exec",
      'Ends with {"type":"exit","reason":"stopped"|"detached"}.',
    ),
    '/instances/{id}/vnc': websocket(
      "the instance's graphical display (a VM's screen, a graphical container's X display): raw RFB over binary frames",
      "For noVNC and other WebSocket VNC clients: binary frames both ways carry the RFB protocol unchanged (the server's version line first); subprotocol 'binary' is accepted. 404 when the instance has no display (created without --display vnc), 409 when it is not running (or paused).",
    ),
    '/images': { get: op('images', { '200': json({ type: 'array', items: ref('Image') }) }) },
    '/images/pull': {
      post: op(
        'pull an image: a long operation',
        { '202': json(ref('Operation'), 'started') },
        {
          requestBody: {
            required: true,
            content: { 'application/json': { schema: ref('PullImage') } },
          },
        },
      ),
    },
    '/images/{name}/history': {
      get: op(
        'the steps that made an image, newest first',
        { '200': json({ type: 'array', items: ref('HistoryStep') }) },
        { parameters: [pathParam('name', 'image reference')] },
      ),
    },
    '/images/build': {
      post: op(
        'build an image from a tar context (plain or gzip; a Containerfile or Dockerfile in it): a long operation whose progress is the step, with the last output lines',
        { '202': json(ref('Operation'), 'started') },
        {
          parameters: [
            {
              name: 'dockerfile',
              in: 'query',
              schema: str,
              description: 'the file in the context (default Containerfile, else Dockerfile)',
            },
            { name: 't', in: 'query', schema: str, description: 'a tag (repeatable)' },
            { name: 'buildargs', in: 'query', schema: str, description: 'a JSON object of strings' },
            { name: 'labels', in: 'query', schema: str, description: 'a JSON object of strings' },
            { name: 'target', in: 'query', schema: str },
            { name: 'nocache', in: 'query', schema: str },
          ],
          requestBody: {
            required: true,
            content: { 'application/x-tar': { schema: { type: 'string', format: 'binary' } } },
          },
        },
      ),
    },
    '/images/{name}': {
      get: op(
        'one image, by name, id or id prefix (URL-encode slashes)',
        { '200': json(ref('ImageDetail')) },
        {
          parameters: [pathParam('name', 'image reference')],
        },
      ),
      delete: op(
        'remove an image',
        { '200': json(ref('ImageRemoved')) },
        {
          parameters: [pathParam('name', 'image reference'), { name: 'force', in: 'query', schema: str }],
        },
      ),
    },
    '/networks': {
      get: op('networks', { '200': json({ type: 'array', items: ref('Network') }) }),
      post: op(
        'create a bridge network',
        { '201': json(ref('Network'), 'created') },
        {
          requestBody: { required: true, content: { 'application/json': { schema: ref('CreateNetwork') } } },
        },
      ),
    },
    '/networks/{name}': {
      get: op('one network', { '200': json(ref('Network')) }, { parameters: [pathParam('name', 'name or id')] }),
      delete: op(
        'remove a network',
        { '204': { description: 'removed' } },
        {
          parameters: [pathParam('name', 'name or id')],
        },
      ),
    },
    '/volumes': {
      get: op(
        "volumes in storage pools (docker's local driver), with their pool, type, quota size and the instances using each",
        {
          '200': json(ref('VolumeList')),
        },
      ),
      post: op(
        'create a volume (a random name when none is given); 409 when the name is taken',
        { '201': json(ref('Volume'), 'created') },
        { requestBody: { required: true, content: { 'application/json': { schema: ref('CreateVolume') } } } },
      ),
    },
    '/volumes/{name}': {
      get: op('one volume', { '200': json(ref('Volume')) }, { parameters: [pathParam('name', 'volume name')] }),
      delete: op(
        'remove a volume and its data; 409 while an instance uses it',
        { '204': { description: 'removed' } },
        { parameters: [pathParam('name', 'volume name')] },
      ),
    },
    '/storage/pools': {
      get: op('storage pools (the default one first), with their space and volumes', {
        '200': json({ type: 'array', items: ref('StoragePool') }),
      }),
      post: op(
        'make a storage pool (dir, btrfs or xfs): a loop image under the root of `size` bytes (btrfs, xfs; default 1 GiB), or `source`: a block device or image file to format, or a directory to use as it is; 409 when the name is taken',
        { '201': json(ref('StoragePool'), 'created') },
        {
          requestBody: { required: true, content: { 'application/json': { schema: ref('CreateStoragePool') } } },
        },
      ),
    },
    '/storage/pools/{name}': {
      get: op(
        'one storage pool',
        { '200': json(ref('StoragePool')) },
        { parameters: [pathParam('name', 'pool name')] },
      ),
      delete: op(
        'unmount and remove a storage pool (its image file too when hull made it); 409 for the default pool and while it holds volumes',
        { '204': { description: 'removed' } },
        { parameters: [pathParam('name', 'pool name')] },
      ),
    },
    '/session': {
      get: op("the web console's session (only for a request authenticated by its cookie)", {
        '200': json(ref('Session')),
        '401': json(ref('Error'), 'no session'),
      }),
    },
    '/session/logout': {
      post: op('end the web console session (needs X-Hull-CSRF); clears its cookies', {
        '204': { description: 'logged out' },
        '401': json(ref('Error'), 'no session'),
        '403': json(ref('Error'), 'CSRF check failed (HULL_CSRF)'),
      }),
    },
    '/events': websocket(
      'events as they happen',
      'The first message is {"subscribed":true,"seq":N}; then one Event per message. Filters (each repeatable, any of its values): type, action, instance (name or id prefix); since (ms since the epoch) replays recorded events from then.',
      [
        { name: 'type', in: 'query', schema: str },
        { name: 'action', in: 'query', schema: str },
        { name: 'instance', in: 'query', schema: str },
        { name: 'since', in: 'query', schema: int },
      ],
    ),
    '/operations': {
      get: op(
        'long operations (pulls, builds, boots), oldest first; recorded in the store: after a daemon restart those that were running are failed with "interrupted by a daemon restart"',
        { '200': json({ type: 'array', items: ref('Operation') }) },
      ),
    },
    '/operations/{id}': {
      get: op(
        'one operation; with Upgrade: websocket, a stream of Operation messages until it ends (then close 1000)',
        { '200': json(ref('Operation')), '101': { description: 'switched to the WebSocket protocol' } },
        { parameters: [pathParam('id', 'operation id')] },
      ),
      delete: op(
        'cancel a running operation',
        { '200': json(ref('Operation')) },
        {
          parameters: [pathParam('id', 'operation id')],
        },
      ),
    },
    '/host/metrics': {
      get: op("the host's CPU, memory, root file system and network", { '200': json(ref('HostMetrics')) }),
    },
    '/metrics': {
      servers: [{ url: '/' }],
      get: op('Prometheus text format (version 0.0.4)', {
        '200': { description: 'OK', content: { 'text/plain': { schema: str } } },
      }),
    },
  },
  components: {
    schemas: {
      Error: obj({
        status: int,
        code: { type: 'string', pattern: '^HULL_[A-Z_]+$' },
        message: str,
      }),
      Instance: obj({
        id: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        name: str,
        kind: { enum: ['container', 'vm'] },
        state: { enum: ['created', 'running', 'paused', 'exited', 'removing'] },
        image: str,
        imageId: str,
        command: strList,
        created: isoTime,
        startedAt: { type: ['string', 'null'], pattern: ISO },
        finishedAt: { type: ['string', 'null'], pattern: ISO },
        exitCode: nullable('integer'),
        restartCount: int,
        restartPolicy: str,
        health: { enum: ['starting', 'healthy', 'unhealthy', null] },
        tty: { type: 'boolean' },
        labels: strMap,
        networks: { type: 'array', items: obj({ name: str, address: nullable('string') }) },
        ports: {
          type: 'array',
          items: obj({ hostIp: str, hostPort: int, containerPort: int, protocol: { enum: ['tcp', 'udp'] } }),
        },
        resources: obj({ memory: nullable('integer'), cpus: nullable('number'), pidsLimit: nullable('integer') }),
        container: { oneOf: [{ type: 'null' }, obj({ runtime: str, privileged: { type: 'boolean' } })] },
        vm: {
          oneOf: [
            { type: 'null' },
            obj({
              mode: { enum: ['agent', 'disk'] },
              machine: nullable('string'),
              accel: str,
              deviceModel: { enum: ['virtio', 'emulated'] },
              cpus: nullable('integer'),
              memory: { type: ['integer', 'null'], description: 'guest RAM in bytes' },
              kernel: nullable('string'),
              disk: nullable('string'),
              console: { type: 'boolean' },
            }),
          ],
        },
        display: {
          description: 'the graphical display (--display), served at /instances/{id}/vnc; null: none',
          oneOf: [{ type: 'null' }, obj({ type: { const: 'vnc' } })],
        },
      }),
      CreateInstance: obj(
        {
          kind: { enum: ['container', 'vm'], default: 'container' },
          image: { type: 'string', minLength: 1 },
          name: str,
          command: strList,
          entrypoint: strList,
          env: { type: 'array', items: { type: 'string', pattern: '^[^=]+=' } },
          workdir: str,
          user: str,
          hostname: str,
          tty: { type: 'boolean' },
          stdin: { type: 'boolean' },
          labels: strMap,
          networks: strList,
          publish: { type: 'array', items: str, description: "docker's -p syntax" },
          volumes: {
            type: 'array',
            items: str,
            description: "docker's -v syntax: NAME:/path or /host/path:/path[:ro]",
          },
          restart: { type: 'string', description: 'no, always, unless-stopped, on-failure[:N]' },
          autoRemove: { type: 'boolean' },
          resources: obj(
            { memory: { type: 'integer', minimum: 1 }, cpus: { type: 'number', exclusiveMinimum: 0 } },
            [],
          ),
          vm: obj(
            {
              accel: { enum: ['auto', 'kvm', 'tcg'] },
              deviceModel: { enum: ['virtio', 'emulated'] },
              kernel: str,
              template: { type: 'boolean', description: 'false: boot instead of restoring a VM template' },
              pool: { type: 'string', description: 'the storage pool of the root disk (default: default)' },
              diskSize: {
                type: 'integer',
                minimum: 67108864,
                description: "the root disk's size in bytes (its filesystem is grown to it)",
              },
            },
            [],
          ),
          display: {
            enum: ['vnc', 'none'],
            description:
              'vnc: a container runs an X11 application on a virtual display of its own; a VM gets a graphics card (deviceModel emulated: the virtio model is a microvm without one). Default none',
          },
        },
        ['image'],
      ),
      Image: obj(imageProps),
      ImageDetail: obj({
        ...imageProps,
        config: obj({
          env: strList,
          cmd: strList,
          entrypoint: strList,
          workdir: str,
          user: str,
          labels: strMap,
          exposedPorts: strList,
        }),
        layers: { type: 'array', items: obj({ digest: str, diffId: str, size: int }) },
      }),
      PullImage: obj({ image: { type: 'string', minLength: 1 }, platform: str }, ['image']),
      ImageRemoved: obj({ untagged: strList, deleted: strList }),
      Network: obj({
        id: str,
        name: str,
        driver: { const: 'bridge' },
        subnet: str,
        gateway: str,
        ipRange: nullable('string'),
        ipv6: { oneOf: [{ type: 'null' }, obj({ subnet: str, gateway: str })] },
        internal: { type: 'boolean' },
        dns: { type: 'boolean' },
        mtu: nullable('integer'),
        labels: strMap,
        created: str,
        instances: { type: 'array', items: str, description: 'ids of the instances on it' },
      }),
      CreateNetwork: obj(
        {
          name: { type: 'string', minLength: 1 },
          subnet: str,
          gateway: str,
          ipRange: str,
          internal: { type: 'boolean' },
          mtu: { type: 'integer', minimum: 68 },
          labels: strMap,
        },
        ['name'],
      ),
      UpdateInstance: obj(
        {
          resources: obj(
            {
              memory: { type: 'integer', minimum: 6291456, description: 'bytes (at least 6 MiB)' },
              cpus: { type: 'number', exclusiveMinimum: 0 },
              pidsLimit: { type: 'integer' },
            },
            [],
          ),
        },
        ['resources'],
      ),
      HistoryStep: obj({
        created: str,
        createdBy: str,
        comment: str,
        size: int,
        layer: nullable('string'),
      }),
      CreateVolume: obj(
        {
          name: { type: 'string', minLength: 1 },
          labels: strMap,
          pool: { type: 'string', minLength: 1 },
          size: { type: 'integer', minimum: 1 },
          type: { enum: ['filesystem', 'block'] },
        },
        [],
      ),
      StatsFrame: obj({ time: isoTime, instances: { type: 'array', items: ref('InstanceMetrics') } }),
      LogFrame: obj({ stream: { enum: ['stdout', 'stderr'] }, time: str, line: str }),
      Session: obj({ expiresAt: isoTime }),
      CreateStoragePool: obj(
        {
          name: { type: 'string', minLength: 1 },
          driver: { enum: ['dir', 'btrfs', 'xfs'] },
          size: { type: 'integer', minimum: 1, description: 'bytes: the loop image (btrfs, xfs)' },
          source: { type: 'string', pattern: '^/', description: 'a block device, image file or directory' },
        },
        ['name', 'driver'],
      ),
      StoragePool: obj({
        name: str,
        driver: { enum: ['dir', 'btrfs', 'xfs'] },
        path: str,
        source: nullable('string'),
        quotas: { type: 'boolean', description: 'whether volumes of it can have a size' },
        size: { ...int, description: "bytes: its filesystem's size" },
        used: int,
        free: int,
        volumes: strList,
        created: nullable('string'),
      }),
      VolumeList: obj({ volumes: { type: 'array', items: ref('Volume') } }),
      Volume: obj({
        name: str,
        driver: { enum: ['local'] },
        mountpoint: str,
        created: str,
        labels: strMap,
        anonymous: { type: 'boolean' },
        pool: str,
        type: { enum: ['filesystem', 'block'] },
        size: nullable('integer'),
        usedBy: { type: 'array', items: str },
      }),
      Operation: obj({
        id: str,
        kind: { enum: ['pull', 'build', 'boot'] },
        target: str,
        state: { enum: ['running', 'succeeded', 'failed', 'cancelled'] },
        created: str,
        finished: nullable('string'),
        progress: obj({
          current: int,
          total: int,
          layers: { type: 'array', items: obj({ digest: str, state: str, current: int, total: int }) },
          phase: { ...nullable('string'), description: "what happens now (a build's step, a boot's phase)" },
          log: { ...strList, description: "a build's last output lines (at most 100)" },
        }),
        result: { type: ['object', 'null'] },
        error: nullable('string'),
      }),
      InstanceMetrics: obj({
        id: str,
        name: str,
        kind: { enum: ['container', 'vm'] },
        state: str,
        live: { type: 'boolean' },
        time: str,
        cpuSeconds: { type: 'number', minimum: 0 },
        cpuPercent: { type: 'number', minimum: 0, description: 'of one CPU, since the previous sample of it' },
        memoryBytes: int,
        memoryLimitBytes: int,
        pids: int,
        blockReadBytes: int,
        blockWriteBytes: int,
        networkReceiveBytes: int,
        networkTransmitBytes: int,
      }),
      HostMetrics: obj({
        time: isoTime,
        cpu: obj({
          count: int,
          load: { type: 'array', items: { type: 'number' }, minItems: 3, maxItems: 3 },
          userSeconds: { type: 'number' },
          systemSeconds: { type: 'number' },
          idleSeconds: { type: 'number' },
          totalSeconds: { type: 'number' },
        }),
        memory: obj({
          totalBytes: int,
          availableBytes: int,
          usedBytes: int,
          swapTotalBytes: int,
          swapFreeBytes: int,
        }),
        disk: obj({ path: str, totalBytes: int, freeBytes: int, availableBytes: int, usedBytes: int }),
        network: {
          type: 'array',
          items: obj({ name: str, rxBytes: int, txBytes: int, rxPackets: int, txPackets: int }),
        },
      }),
      Event: obj({
        seq: int,
        time: str,
        type: str,
        action: str,
        id: str,
        name: str,
        attributes: strMap,
      }),
      EventMessage: { oneOf: [obj({ subscribed: { const: true }, seq: int }), ref('Event')] },
      ExecControl: {
        oneOf: [
          obj({
            type: { const: 'resize' },
            rows: { type: 'integer', minimum: 1 },
            cols: { type: 'integer', minimum: 1 },
          }),
          obj({ type: { const: 'close-stdin' } }),
        ],
      },
      ServerMessage: {
        oneOf: [
          obj({ type: { const: 'exit' }, exitCode: nullable('integer') }, ['type', 'exitCode']),
          obj({ type: { const: 'exit' }, reason: { enum: ['stopped', 'detached'] } }),
          obj({ type: { const: 'error' }, message: str }),
        ],
      },
    },
  },
} as const;
