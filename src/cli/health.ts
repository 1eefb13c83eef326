/** `ksm-scorer health`: the grpc.health.v1 status of a running service; exit 0 only when SERVING. */
import { CLIENT_OPTIONS, CLIENT_USAGE, healthClient, parseCommand, withConnection } from './command';

export const HEALTH_USAGE = `  ksm-scorer health [--service NAME] [--target HOST:PORT] [--timeout SECONDS]
      Prints the service's health (SERVING, NOT_SERVING); exit code 0 only when SERVING.
      --service: "" (the default) for the whole server, or ksmscorer.v1.HostScorerService.
${CLIENT_USAGE}`;

const OPTIONS = { ...CLIENT_OPTIONS, service: { type: 'string', default: '' } } as const;

export async function healthCommand(args: string[]): Promise<number> {
  const parsed = parseCommand(args, OPTIONS, HEALTH_USAGE);
  if (parsed === undefined) return 0;
  return withConnection('health', parsed.values, async (conn) => {
    const health = healthClient(conn);
    try {
      const { status } = await conn.call<{ status: string }>(health, 'Check', { service: parsed.values.service });
      process.stdout.write(`${status}\n`);
      return status === 'SERVING' ? 0 : 1;
    } finally {
      health.close();
    }
  });
}
