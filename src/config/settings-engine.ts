/**
 * The settings table's rows for the engine side: how to reach the engine, its REST client, and the
 * inventory kept from it (settings.ts assembles the table).
 */
import { count, flag, inCode, mebibytes, seconds, text } from './kinds';

// Named by other rows' texts, so declared first.
export const ENGINE_URL = text({
  env: 'OVIRT_URL',
  defaultText: 'unset: embedded simulator',
  description:
    'engine API base, e.g. `https://engine.example.com/ovirt-engine/api`; must end in `/api`, must not contain credentials; or `file:DIR`, a recording made by `ksm-scorer engine record DIR`',
});
const ENGINE_PASSWORD = text({
  env: 'OVIRT_PASSWORD',
  defaultText: `one of the two required with ${inCode(ENGINE_URL)}`,
  description: 'the password; never logged',
  secret: true,
});
const ENGINE_CA_FILE = text({
  env: 'OVIRT_CA_FILE',
  defaultText: 'system roots',
  description:
    "PEM bundle to verify the engine's certificate (the engine CA is at `/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA`)",
});

/** How to reach the engine; turned into an EngineConnection (or none: the simulator). */
export const connection = {
  url: ENGINE_URL,
  username: text({ env: 'OVIRT_USERNAME', defaultText: `required with ${inCode(ENGINE_URL)}`, description: 'e.g. `admin@internal`' }),
  password: ENGINE_PASSWORD,
  passwordFile: text({
    env: 'OVIRT_PASSWORD_FILE',
    defaultText: 'unset',
    description: `a file holding the password (a trailing newline is dropped); preferred over ${inCode(ENGINE_PASSWORD)}`,
  }),
  caFile: ENGINE_CA_FILE,
  insecure: flag({
    env: 'OVIRT_INSECURE',
    default: false,
    description: `\`true\` turns certificate verification off; refused together with ${inCode(ENGINE_CA_FILE)}`,
  }),
} as const;

/** The engine REST client. */
export const engine = {
  pageSize: count('VMs', { env: 'OVIRT_PAGE_SIZE', default: 500, min: 1, max: 100_000, description: 'VMs per page of `GET /vms`' }),
  requestTimeoutMs: seconds({
    env: 'OVIRT_TIMEOUT_SECONDS',
    default: 30,
    min: 0.1,
    max: 3_600,
    description: 'connect and header timeout of each engine request, and the longest pause allowed between body bytes',
  }),
  requestDeadlineMs: seconds({
    env: 'OVIRT_REQUEST_DEADLINE_SECONDS',
    default: 120,
    min: 0.1,
    max: 3_600,
    description: 'total time one engine request may take, body included (an engine that drips its answer is cut off here)',
  }),
  maxVms: count('VMs', {
    env: 'OVIRT_MAX_VMS',
    default: 1_000_000,
    min: 1,
    max: 10_000_000,
    description:
      'most VMs one full refresh reads (pages x page size); past it the refresh fails, so an engine that ignores paging cannot keep it reading',
  }),
  maxAnswerBytes: mebibytes({
    env: 'OVIRT_MAX_ANSWER_MB',
    default: 64,
    min: 1,
    max: 1_024,
    description:
      'largest engine answer read, after gunzip (a page of 500 VMs is about 2 MiB); a larger one fails that sync, the last good inventory stays',
  }),
} as const;

/** The inventory: sync loop, freshness, on-demand reads. */
export const inventory = {
  refreshIntervalMs: seconds({
    env: 'KSM_SCORER_REFRESH_SECONDS',
    default: 300,
    min: 1,
    max: 86_400,
    description: 'interval of the full inventory refresh (resync)',
  }),
  eventsIntervalMs: seconds({
    env: 'KSM_SCORER_EVENTS_SECONDS',
    default: undefined,
    defaultText: '5 s, or half the refresh interval when that is less',
    min: 0,
    max: 3_600,
    description:
      'interval of the engine events poll between full refreshes; `0` turns events off (full refreshes only); must be less than the refresh interval',
  }),
  staleAfterMs: seconds({
    env: 'KSM_SCORER_STALE_SECONDS',
    default: undefined,
    defaultText: '2 x the sync interval',
    min: 0.1,
    max: 86_400,
    description:
      'age after which answers carry `inventory.stale = true`; the sync interval is the events interval, or the refresh interval without events, and must be less than this',
  }),
  maxStalenessMs: seconds({
    env: 'KSM_SCORER_MAX_STALENESS_SECONDS',
    default: undefined,
    defaultText: '600 s, or 2 x the stale age when that is more',
    min: 1,
    max: 7 * 86_400,
    description:
      'age after which ScoreHosts answers `UNAVAILABLE` and health goes `NOT_SERVING` (both recover by themselves); must be more than the stale age',
  }),
  backoffMaxMs: seconds({
    env: 'KSM_SCORER_BACKOFF_MAX_SECONDS',
    default: 60,
    min: 1,
    max: 3_600,
    description: 'cap of the exponential backoff (from 1 s, with jitter) after engine failures',
  }),
  maxRejectedPercent: count('%', {
    env: 'KSM_SCORER_MAX_REJECTED_PERCENT',
    default: 10,
    min: 0,
    max: 100,
    description:
      'a full refresh that leaves out more than this share of the hosts and VMs the engine listed (records it cannot use) is not published: the last good inventory stays, ageing; `100` publishes whatever is usable',
  }),
  maxDropPercent: count('%', {
    env: 'KSM_SCORER_MAX_DROP_PERCENT',
    default: 25,
    min: 0,
    max: 100,
    description:
      'a full refresh with this share fewer hosts or VMs than the last good inventory is held as a possibly broken answer; it is published once 3 refreshes in a row agree (a real mass change); `100` never holds',
  }),
  onDemandCacheSize: count('entries', {
    env: 'KSM_SCORER_CACHE_HOSTS',
    default: 20_000,
    min: 1,
    max: 10_000_000,
    description:
      'bound of what on-demand reads remember until the next generation (hosts and VMs the snapshot did not hold, found or not); the snapshot itself always holds every host the engine listed',
  }),
  onDemandConcurrency: count('requests', {
    env: 'KSM_SCORER_ON_DEMAND_CONCURRENCY',
    default: 4,
    min: 1,
    max: 256,
    description: 'engine requests of on-demand reads in flight at once, for all calls together (sync requests are separate and sequential)',
  }),
  onDemandPerSecond: count('reads/s', {
    env: 'KSM_SCORER_ON_DEMAND_READS_PER_SECOND',
    default: 20,
    min: 1,
    max: 10_000,
    description:
      'most on-demand reads started per second, for all calls together (a host read is 2 engine requests, a VM read 1); calls beyond it get `RESOURCE_EXHAUSTED`. With workers, each worker gets this divided by their number (at least 1)',
  }),
  onDemandPerCall: count('reads', {
    env: 'KSM_SCORER_ON_DEMAND_PER_CALL',
    default: 16,
    min: 0,
    max: 10_000,
    description:
      'most on-demand reads one call (or batch) may cause; a call that needs more gets `RESOURCE_EXHAUSTED` without any engine request',
  }),
  notFoundTtlMs: seconds({
    env: 'KSM_SCORER_NOT_FOUND_TTL_SECONDS',
    default: 60,
    min: 1,
    max: 86_400,
    description: 'how long a host or VM id the engine does not have is remembered as unknown (also forgotten at each new generation)',
  }),
} as const;
