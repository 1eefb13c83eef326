/**
 * The reference limit: a bare grpc-js server with the same service path whose
 * handler answers with pre-encoded bytes (identity serializer), so it costs
 * only what grpc-js and HTTP/2 cost. Args: response file. Prints its port.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';

const response = readFileSync(process.argv[2]!);
const identity = (b: Buffer) => b;
const server = new grpc.Server();
server.addService(
  {
    ScoreHosts: {
      path: '/ksmscorer.v1.HostScorerService/ScoreHosts',
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  },
  { ScoreHosts: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, response) },
);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
