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
const KEPT = new Set([
  'id',
  'href',
  'rel',
  'type',
  'version',
  'full_version',
  'major',
  'minor',
  'build',
  'revision',
  'distribution',
  'family',
  'status',
  'code',
  'severity',
]);

/** Host, VM and cluster names are made of these (oVirt's name rules): a run of them is one word. */
const WORD = /[\w.-]+/g;

export class Anonymizer {
  private readonly names = new Map<string, string>();
  private readonly counts = { host: 0, vm: 0, cluster: 0 };

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
        this.names.set(name, `${kind}-${String(++this.counts[kind]).padStart(width, '0')}`);
      }
    }
  }

  /** A copy of `body` with the learned names replaced and free text emptied. */
  apply(body: unknown): unknown {
    return this.walk(body, undefined);
  }

  private walk(v: unknown, key: string | undefined): unknown {
    if (Array.isArray(v)) return v.map((x) => this.walk(x, key));
    if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.walk(x, k)]));
    if (typeof v !== 'string' || key === undefined || KEPT.has(key)) return v;
    if (EMPTIED.has(key)) return '';
    return this.names.get(v) ?? v.replace(WORD, (word) => this.replaceWord(word));
  }

  /** A word of free text (an event's), a name with a sentence's full stop after it, or neither. One lookup each, whatever the number of names. */
  private replaceWord(word: string): string {
    const exact = this.names.get(word);
    if (exact !== undefined) return exact;
    const trimmed = word.replace(/[.]+$/, '');
    const name = trimmed === word ? undefined : this.names.get(trimmed);
    return name === undefined ? word : `${name}${word.slice(trimmed.length)}`;
  }
}
