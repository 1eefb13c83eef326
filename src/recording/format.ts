/**
 * A recording of an engine's answers (`ksm-scorer engine record DIR`): one
 * file per answer, as the engine sent it (inflated), and an index,
 * recording.json, naming the request of each. Written without the engine's
 * URL, credentials or token: a request's path and query are all it keeps.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const INDEX_FILE = 'recording.json';
export const FORMAT = 'ksm-scorer-recording/1';

export interface RecordedAnswer {
  /** Below the API root, e.g. "/vms". */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** The answer's file, relative to the recording's directory. */
  readonly file: string;
}

export interface RecordingIndex {
  readonly format: typeof FORMAT;
  readonly recordedAt: string;
  readonly anonymized: boolean;
  readonly answers: readonly RecordedAnswer[];
}

/** The largest recording read back: an answer file or all of them past this is not one we wrote for an engine we can serve. */
export const MAX_RECORDING_BYTES = 2 * 1024 ** 3;

/** The index and each answer's parsed JSON; throws an Error naming the file that is missing or bad. */
export function readRecording(dir: string): { index: RecordingIndex; bodies: Map<RecordedAnswer, unknown> } {
  let index: RecordingIndex;
  try {
    index = JSON.parse(readFileSync(join(dir, INDEX_FILE), 'utf8')) as RecordingIndex;
  } catch (err) {
    throw new Error(`${join(dir, INDEX_FILE)}: not a readable recording index (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (index?.format !== FORMAT || !Array.isArray(index.answers)) throw new Error(`${join(dir, INDEX_FILE)}: not a ${FORMAT} index`);
  const bodies = new Map<RecordedAnswer, unknown>();
  let total = 0;
  for (const answer of index.answers) {
    if (typeof answer?.path !== 'string' || typeof answer.file !== 'string' || !/^[\w.-]+$/.test(answer.file)) throw new Error(`${join(dir, INDEX_FILE)}: an answer entry without a path or a plain file name`);
    const bytes = readFileSync(join(dir, answer.file));
    total += bytes.length;
    if (total > MAX_RECORDING_BYTES) throw new Error(`${dir}: recording larger than ${MAX_RECORDING_BYTES / 1024 ** 3} GiB`);
    try {
      bodies.set(answer, JSON.parse(bytes.toString('utf8')));
    } catch {
      throw new Error(`${join(dir, answer.file)}: not JSON`);
    }
  }
  return { index, bodies };
}
