/**
 * The messages between the primary process and its workers (node:cluster IPC
 * with advanced serialization, so Maps and typed arrays pass as they are).
 * Each carries `ksm`, so other users of the channel pass by.
 */
import type { BoundPorts } from '../endpoints';
import type { EngineStatus } from '../engine-view/status';
import type { ScorerErrorCode } from '../errors';
import type { GenerationMessage } from '../inventory/replica';
import type { EngineHost } from '../ovirt/model';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';

/** An on-demand engine read a worker asks of the primary (the OnDemandSource methods). */
export type OnDemandRead =
  { readonly op: 'getHost' | 'getVm'; readonly id: string } | { readonly op: 'listVmsOnHost'; readonly host: EngineHost };

/** A ScorerError across the channel; the cause stays in the primary's log. */
export interface WireError {
  readonly code: ScorerErrorCode;
  readonly message: string;
  readonly endpoint?: string;
  readonly status?: number;
}

export type ToWorker =
  /** The answer to hello: the current generation (none before the first load), and why nothing has loaded yet, if a sync failed. */
  | { readonly ksm: 'welcome'; readonly generation: GenerationMessage | undefined; readonly loadFailure: string | undefined }
  | { readonly ksm: 'generation'; readonly generation: GenerationMessage }
  | { readonly ksm: 'sync-failed'; readonly reason: string }
  | { readonly ksm: 'read-result'; readonly id: number; readonly value?: unknown; readonly error?: WireError }
  /** Go NOT_SERVING, finish the calls in flight within the grace period, exit. */
  | { readonly ksm: 'drain' }
  /** Send this worker's metric values, for the scrape the primary serves. */
  | { readonly ksm: 'metrics-ask'; readonly id: number }
  /** The answer to engine-status-ask. */
  | { readonly ksm: 'engine-status'; readonly id: number; readonly status: EngineStatus };

export type ToPrimary =
  /** Ready for messages: send the current generation, then every next one. */
  | { readonly ksm: 'hello' }
  | { readonly ksm: 'listening'; readonly ports: BoundPorts }
  | { readonly ksm: 'read'; readonly id: number; readonly read: OnDemandRead }
  | { readonly ksm: 'read-cancel'; readonly id: number }
  | { readonly ksm: 'metrics'; readonly id: number; readonly values: MetricObjectWithValues<MetricValue<string>>[] }
  /** An XML-RPC call this worker answered: the primary keeps the last hour for engine status. */
  | { readonly ksm: 'xmlrpc-call'; readonly method: string; readonly outcome: 'ok' | 'fault' }
  /** GetEngineStatus asked of this worker: the primary holds the engine's view. */
  | { readonly ksm: 'engine-status-ask'; readonly id: number };

/** A message of this protocol (anything else on the channel is someone else's). */
export function isOurs<T extends { ksm: string }>(message: unknown): message is T {
  return typeof message === 'object' && message !== null && typeof (message as { ksm?: unknown }).ksm === 'string';
}
