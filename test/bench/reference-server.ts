/**
 * The reference limit: a bare grpc-js server with the same service path whose
 * handler answers with pre-encoded bytes (identity serializer), so it costs
 * only what grpc-js and HTTP/2 cost. Args: [--transport] response files; the
 * first answers ScoreHosts, and file i also answers at ScoreHosts<i> (so a mix
 * of requests, each on a path of its own, gets answers of the same sizes).
 * --transport: with the service's own grpc-js options (transport limits and
 * their interceptor, at their defaults), to tell what those cost. Prints its port.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { loadConfig } from '../../src/config/load';
import { grpcServerOptions } from '../../src/server/server';

const PATH = '/ksmscorer.v1.HostScorerService/ScoreHosts';
const transport = process.argv[2] === '--transport';
const responses = process.argv.slice(transport ? 3 : 2).map((file) => readFileSync(file));
const identity = (b: Buffer) => b;
const method = (path: string) => ({
  path,
  requestStream: false,
  responseStream: false,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});
const answer = (response: Buffer) => (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, response);
const names = ['ScoreHosts', ...responses.map((_, i) => `ScoreHosts${i}`)];
const server = new grpc.Server(transport ? grpcServerOptions(loadConfig({}).server) : {});
server.addService(
  Object.fromEntries(names.map((name) => [name, method(name === 'ScoreHosts' ? PATH : `${PATH}${name.slice('ScoreHosts'.length)}`)])),
  Object.fromEntries(names.map((name, i) => [name, answer(responses[Math.max(0, i - 1)]!)])),
);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
