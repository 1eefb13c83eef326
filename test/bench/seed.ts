/**
 * The seed plugin's approach (ksm_same_os_score.do_score), replayed against
 * the same engine: a fresh login, one hosts query, one VM query per host, one
 * VM get, every call. Used only to compare engine requests and wall time.
 */
import { request } from 'undici';

interface Engine {
  url: string;
  username: string;
  password: string;
}

export interface SeedResult {
  readonly scores: [string, number][];
  readonly requests: number;
}

export async function seedScore(engine: Engine, hostIds: readonly string[], vmId: string): Promise<SeedResult> {
  let requests = 0;
  const api = new URL(engine.url);
  const tokenRes = await request(`${api.origin}${api.pathname.replace(/\/api$/, '')}/sso/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'password',
      scope: 'ovirt-app-api',
      username: engine.username,
      password: engine.password,
    }).toString(),
  });
  requests++;
  const { access_token: token } = (await tokenRes.body.json()) as { access_token: string };
  const get = async (path: string, search?: string): Promise<any> => {
    const qs = search === undefined ? '' : `?${new URLSearchParams({ search })}`;
    const res = await request(`${engine.url}${path}${qs}`, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/json', version: '4' },
    });
    requests++;
    return res.body.json();
  };
  const hosts: { id: string; name: string }[] = (await get('/hosts', hostIds.map((id) => `id=${id}`).join(' or '))).host ?? [];
  const vm = await get(`/vms/${vmId}`);
  const scores: [string, number][] = [];
  for (const host of hosts) {
    const hostVms: any[] = (await get('/vms', `host=${host.name}`)).vm ?? [];
    if (hostVms.length === 0) {
      scores.push([host.id, 0]);
      continue;
    }
    let score = 0;
    for (const other of hostVms) {
      if (vm.os?.type === other.os?.type) score += vm.os?.version === other.os?.version ? 100 : 20;
    }
    scores.push([host.id, score / hostVms.length]);
  }
  return { scores, requests };
}
