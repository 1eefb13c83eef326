/**
 * `engine record --anonymize`: host, VM and cluster names become host-0001,
 * vm-00001, cluster-01 wherever they appear (names, addresses, event texts),
 * and free text that may name anything else (descriptions, comments, FQDNs)
 * is emptied. Ids, OS types and versions, statuses and numbers stay, so the
 * recording scores the same. The scheduling set-up is kept: its names are
 * the engine's and the administrator's policy names, not the site's machines.
 */

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Free text that may name people or places: emptied. */
const EMPTIED = new Set(['description', 'comment', 'fqdn', 'hostname', 'user_name']);
/** Values kept as they are: identities and OS facts. */
const KEPT = new Set(['id', 'href', 'rel', 'type', 'version', 'full_version', 'major', 'minor', 'build', 'revision', 'distribution', 'family', 'status', 'code', 'severity']);

export class Anonymizer {
  private readonly names = new Map<string, string>();
  private pattern: RegExp | undefined;

  /** Learns the names in a list answer: `kind` is host, vm or cluster. */
  learn(kind: 'host' | 'vm' | 'cluster', body: unknown): void {
    const list = isObject(body) ? body[kind] : undefined;
    const items = Array.isArray(list) ? list : isObject(list) ? [list] : [];
    const width = { host: 4, vm: 5, cluster: 2 }[kind];
    for (const item of items) {
      if (!isObject(item)) continue;
      for (const key of ['name', 'address']) {
        const name = item[key];
        if (typeof name !== 'string' || name === '' || this.names.has(name)) continue;
        const count = [...this.names.values()].filter((v) => v.startsWith(`${kind}-`)).length;
        this.names.set(name, `${kind}-${String(count + 1).padStart(width, '0')}`);
      }
    }
    this.pattern = undefined;
  }

  /** A copy of `body` with the learned names replaced and free text emptied. */
  apply(body: unknown): unknown {
    this.pattern ??= this.compile();
    return this.walk(body, undefined);
  }

  private walk(v: unknown, key: string | undefined): unknown {
    if (Array.isArray(v)) return v.map((x) => this.walk(x, key));
    if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.walk(x, k)]));
    if (typeof v !== 'string' || key === undefined || KEPT.has(key)) return v;
    if (EMPTIED.has(key)) return '';
    const exact = this.names.get(v);
    if (exact !== undefined) return exact;
    return this.pattern === undefined ? v : v.replace(this.pattern, (m) => this.names.get(m) ?? m);
  }

  /** Longest names first, whole words only (a name inside another word is left). */
  private compile(): RegExp | undefined {
    if (this.names.size === 0) return undefined;
    const escaped = [...this.names.keys()].sort((a, b) => b.length - a.length).map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    return new RegExp(`(?<![\\w.-])(?:${escaped.join('|')})(?![\\w-])`, 'g');
  }
}
