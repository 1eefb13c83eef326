/** `ksm-scorer engine record DIR`: the engine as serve would reach it (OVIRT_URL unset: the embedded simulator), saved by recording/record.ts. */
import { ConfigError, loadConfig } from '../config/load';
import { connectEngine } from '../engine';
import { ScorerError } from '../errors';
import { createLogger, type Logger } from '../log';
import { EngineClient } from '../ovirt/client';
import { recordAnswers } from '../recording/record';
import { SETTINGS } from '../config/settings';

export async function recordEngine(dir: string, options: { anonymize: boolean }, logger: Logger = createLogger('warn')): Promise<number> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`ksm-scorer engine record: ${err.message}\n`);
    return 2;
  }
  const { connection, simulator } = await connectEngine(config, logger);
  const client = new EngineClient({ ...config.engine, connection, logger });
  try {
    const index = await recordAnswers(client, dir, {
      anonymize: options.anonymize,
      pageSize: config.engine.pageSize,
      maxVms: config.engine.maxVms,
    });
    process.stdout.write(
      `recorded ${index.answers.length} answers into ${dir}${options.anonymize ? ' (anonymized)' : ''}; serve from it with ${SETTINGS.connection.url.env}=file:${dir}\n`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`ksm-scorer engine record: ${ScorerError.from(err).message}\n`);
    return 1;
  } finally {
    await client.close();
    await simulator?.stop();
  }
}
