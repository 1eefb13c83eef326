/** Trouble the simulated engine can be told to make, for fault-injection tests, and its broken answers. */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface EngineFaults {
  /** Answer every API request with this HTTP status (e.g. 503), a JSON fault body. */
  status?: number;
  /** Answer API requests with a broken 200: cut-off JSON, an HTML page, or fields of the wrong type. */
  garbage?: 'truncated' | 'html' | 'wrong-types';
  /** Hold API requests without answering until the fault is cleared. */
  hang?: boolean;
  /** 401 to every API request, fresh tokens included. */
  unauthorized?: boolean;
  /** After this many more API requests, forget every token once (expiry mid-refresh). */
  expireTokensAfter?: number;
  /** Hold logins without answering until the fault is cleared. */
  hangLogin?: boolean;
  /** Hand out this text as the next access tokens (a hostile or broken SSO), instead of good ones. */
  badToken?: () => string | undefined;
  /**
   * A hostile answer: called for each authorised API request with its path below /api;
   * returns true when it answered (oversized, dripped, deeply nested, duplicated...).
   */
  respond?: (path: string, req: IncomingMessage, res: ServerResponse) => boolean;
}

/** A broken 200, as an engine that is starting or a proxy in front of it sends one. */
export function writeGarbage(res: ServerResponse, kind: NonNullable<EngineFaults['garbage']>): void {
  if (kind === 'html') {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Engine is starting, please wait</body></html>');
  } else if (kind === 'truncated') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"vm": [{"id": "a1293e54-dae8-496f-baa4-277195921');
  } else {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"vm": "none", "host": 5, "event": true, "id": {"x": 1}}');
  }
}
