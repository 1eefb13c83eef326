/**
 * deploy/kubernetes and the Dockerfile, checked against the code: ports, probe
 * service names, environment names and values, the Secret as a file. The
 * manifests are parsed with a YAML library; nothing here needs a cluster.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/load';
import { SCORER_SERVICE_NAME } from '../../src/contract/proto';
import { configEnvNames, loadDeployedConfig } from './config-env';

const ROOT = join(__dirname, '..', '..');
const K8S = join(ROOT, 'deploy', 'kubernetes');

/**
 * Settings the manifests set before src/config/settings.ts declares them (another branch adds them).
 * The service ignores unknown variables, so until then they do nothing. A name here that the
 * settings table has gained fails the test below: then it no longer belongs here.
 */
const PENDING_SETTINGS: readonly string[] = [];

// The shapes read here, as far as this test reads them.
interface Probe { grpc?: { port: number; service?: string } }
interface Container {
  name: string;
  image: string;
  ports: { name: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  envFrom?: { configMapRef?: { name: string } }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: { cpu?: string; memory?: string } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Volume { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] }; configMap?: { name: string; items?: { key: string; path: string }[] } }
interface Deployment {
  spec: { template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: { terminationGracePeriodSeconds: number; securityContext?: { runAsNonRoot?: boolean }; containers: Container[]; volumes: Volume[] } } };
}
interface Service { spec: { clusterIP?: string; selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number }[] } }
interface ConfigMap { metadata: { name: string }; data: Record<string, string> }
type Resource = { kind: string; metadata: { name: string } } & Record<string, unknown>;

function loadManifests(): Resource[] {
  const kustomization = parseAllDocuments(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8'))[0]!.toJS() as { resources: string[] };
  return kustomization.resources.flatMap((file) =>
    parseAllDocuments(readFileSync(join(K8S, file), 'utf8')).map((doc) => {
      expect(doc.errors, file).toEqual([]);
      return doc.toJS() as Resource;
    }),
  );
}

const resources = loadManifests();
const one = <T>(kind: string): T => {
  const found = resources.filter((r) => r.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0] as unknown as T;
};
const deployment = one<Deployment>('Deployment');
const pod = deployment.spec.template.spec;
const container = pod.containers[0]!;
const configMap = one<ConfigMap>('ConfigMap');
const portOf = (listen: { readonly port: number }) => listen.port;

/** The container's environment as the service sees it: the ConfigMap's keys, then env (literal values). */
function containerEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    expect(from.configMapRef?.name).toBe(configMap.metadata.name);
    Object.assign(env, configMap.data);
  }
  for (const e of container.env ?? []) {
    expect(e.value, `${e.name} has a literal value`).toBeTypeOf('string');
    env[e.name] = e.value!;
  }
  return env;
}

describe('deploy/kubernetes', () => {
  it('kustomization lists every manifest in the directory', () => {
    const files = readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    const listed = (parseAllDocuments(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8'))[0]!.toJS() as { resources: string[] }).resources;
    expect([...listed].sort()).toEqual(files.sort());
  });

  it('sets only variables the service reads, with values it accepts', () => {
    const env = containerEnv();
    const known = configEnvNames();
    expect(PENDING_SETTINGS.filter((name) => known.has(name)), 'declared in src/config/settings.ts now: remove from PENDING_SETTINGS').toEqual([]);
    expect(Object.keys(env).filter((name) => !known.has(name) && !PENDING_SETTINGS.includes(name))).toEqual([]);
    expect(env).not.toHaveProperty('OVIRT_PASSWORD');
    const config = loadDeployedConfig(env);
    expect(config.engine.connection?.url).toBe(env.OVIRT_URL);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(config.server.shutdownGraceMs);
  });

  it('serves on the port the service listens on (and /metrics on its own), and the probes ask grpc.health.v1 there', () => {
    const listen = loadDeployedConfig(containerEnv()).server.listen;
    expect(listen).toEqual(loadConfig({}).server.listen);
    const port = portOf(listen);
    const metricsPort = portOf(loadConfig({}).metrics.listen!);
    expect(container.ports).toEqual([
      { name: 'grpc', containerPort: port },
      { name: 'metrics', containerPort: metricsPort },
    ]);
    expect(deployment.spec.template.metadata.annotations).toMatchObject({ 'prometheus.io/port': String(metricsPort), 'prometheus.io/path': '/metrics' });
    expect(container.readinessProbe?.grpc).toEqual({ port, service: SCORER_SERVICE_NAME });
    expect(container.livenessProbe?.grpc).toEqual({ port, service: '' });
    expect(container.startupProbe?.grpc).toEqual({ port, service: '' });
  });

  it('a headless Service selects the pods and forwards to the grpc port', () => {
    const service = one<Service>('Service');
    expect(service.spec.clusterIP).toBe('None');
    expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    expect(service.spec.ports).toEqual([{ name: 'grpc', port: container.ports[0]!.containerPort, targetPort: 'grpc' }]);
  });

  it('reads the password and the engine CA from mounted files: a Secret and a ConfigMap', () => {
    const env = containerEnv();
    const mountedFrom = (path: string): Volume => {
      const mount = (container.volumeMounts ?? []).find((m) => path.startsWith(`${m.mountPath}/`));
      expect(mount, path).toBeDefined();
      const volume = pod.volumes.find((v) => v.name === mount!.name)!;
      const items = volume.secret?.items ?? volume.configMap?.items ?? [];
      expect(items.map((i) => `${mount!.mountPath}/${i.path}`)).toContain(path);
      return volume;
    };
    expect(mountedFrom(env.OVIRT_PASSWORD_FILE!).secret?.secretName).toBe('ksm-scorer-ovirt');
    expect(mountedFrom(env.OVIRT_CA_FILE!).configMap?.name).toBe('ksm-scorer-engine-ca');
  });

  it('asks for resources, runs as non-root, and names the image of this version', () => {
    expect(container.resources?.requests?.cpu).toBeTruthy();
    expect(container.resources?.requests?.memory).toBeTruthy();
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(container.image.endsWith(`/ksm-scorer:${version}`)).toBe(true);
  });
});

describe('Dockerfile', () => {
  const lines = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'));
  const instructions = (name: string) => lines.filter((l) => l.startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim());

  it('runs `ksm-scorer serve` in exec form as a non-root user and exposes the default ports', () => {
    // tini as PID 1, which forwards signals: PID 1 ignores those it has no handler for (test/stop-signals.test.ts).
    expect(instructions('ENTRYPOINT').map((e) => JSON.parse(e) as unknown)).toEqual([['tini', '--', 'ksm-scorer', 'serve']]);
    expect(instructions('RUN').some((r) => /apt-get install .*\btini\b/.test(r))).toBe(true);
    const defaults = loadConfig({});
    expect(instructions('EXPOSE')).toEqual([`${portOf(defaults.server.listen)} ${portOf(defaults.metrics.listen!)}`]);
    expect(instructions('USER')).toEqual(['node']);
  });

  it('builds with the Makefile\'s commands and keeps production dependencies only', () => {
    const makefile = readFileSync(join(ROOT, 'Makefile'), 'utf8');
    expect(makefile).toContain('$(NPM) ci --no-audit --no-fund');
    expect(makefile).toContain('$(NPM) run build');
    const runs = instructions('RUN');
    expect(runs).toContain('npm ci --no-audit --no-fund');
    expect(runs).toContain('npm run build');
    expect(runs.some((r) => r.startsWith('npm ci --omit=dev '))).toBe(true);
    expect(instructions('FROM').length).toBeGreaterThanOrEqual(2);
  });

  it('copies files that exist and that .dockerignore lets into the build context', () => {
    const allowed = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1));
    const sources = instructions('COPY')
      .filter((c) => !c.startsWith('--from'))
      .flatMap((c) => c.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(existsSync(join(ROOT, source)), source).toBe(true);
      expect(allowed, source).toContain(source);
    }
  });
});
