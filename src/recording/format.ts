/**
 * A recording of an engine's answers (`ksm-scorer engine record DIR`): one
 * file per answer, as the engine sent it (inflated), and an index,
 * recording.json, naming the request of each. Written without the engine's
 * URL, credentials or token: a request's path and query are all it keeps.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SETTINGS, type SettingName } from '../config/settings';

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

/** Most answers a recording may index: a million VMs in pages of 100, and the rest. */
export const MAX_ANSWERS = 20_000;
const MAX_INDEX_BYTES = 16 * 2 ** 20;

/** A file's bytes, refused unread past `limit` (a file swapped for a huge one must not exhaust memory). */
function readBounded(file: string, limit: number, setting: SettingName | 'the index'): Buffer {
  const size = statSync(file).size;
  if (size > limit) throw new Error(`${file}: ${size} bytes, more than the ${limit} an answer may have (${setting})`);
  return readFileSync(file);
}

/**
 * The index and each answer's parsed JSON; throws an Error naming the file
 * that is missing or bad. `maxAnswerBytes`: the largest answer file read, as
 * for a live engine (OVIRT_MAX_ANSWER_MB).
 */
const isList = (v: unknown): v is readonly unknown[] => Array.isArray(v);

export function readRecording(dir: string, maxAnswerBytes: number): { index: RecordingIndex; bodies: Map<RecordedAnswer, unknown> } {
  let index: RecordingIndex;
  try {
    index = JSON.parse(readBounded(join(dir, INDEX_FILE), MAX_INDEX_BYTES, 'the index').toString('utf8')) as RecordingIndex;
  } catch (err) {
    throw new Error(
      `${join(dir, INDEX_FILE)}: not a readable recording index (${(err as NodeJS.ErrnoException).code ?? (err instanceof SyntaxError ? 'not JSON' : (err as Error).message)})`,
    );
  }
  // A type guard, not Array.isArray: that narrows a typed array to any[].
  if (index?.format !== FORMAT || !isList(index.answers)) throw new Error(`${join(dir, INDEX_FILE)}: not a ${FORMAT} index`);
  if (index.answers.length > MAX_ANSWERS)
    throw new Error(`${join(dir, INDEX_FILE)}: ${index.answers.length} answers, more than the ${MAX_ANSWERS} read`);
  const bodies = new Map<RecordedAnswer, unknown>();
  for (const answer of index.answers) {
    // A plain name in the directory: an index cannot make the service read other files.
    if (
      typeof (answer as Partial<RecordedAnswer> | null)?.path !== 'string' ||
      typeof answer.file !== 'string' ||
      !/^[\w-][\w.-]*$/.test(answer.file)
    )
      throw new Error(`${join(dir, INDEX_FILE)}: an answer entry without a path or a plain file name`);
    let bytes: Buffer;
    try {
      bytes = readBounded(join(dir, answer.file), maxAnswerBytes, SETTINGS.engine.maxAnswerBytes.env);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw code === undefined ? err : new Error(`${join(dir, answer.file)}: cannot read it (${code})`);
    }
    try {
      bodies.set(answer, JSON.parse(bytes.toString('utf8')));
    } catch {
      throw new Error(`${join(dir, answer.file)}: not JSON`);
    }
  }
  return { index, bodies };
}
