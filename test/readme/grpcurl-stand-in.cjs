#!/usr/bin/env node
/*
 * A stand-in for grpcurl, which Debian does not package, so the README test can run the
 * README's grpcurl commands where grpcurl is not installed. It takes the flags the README uses
 * (-plaintext, -d JSON), `list` (through the server's reflection, as grpcurl does) and
 * SERVICE/METHOD calls; it refuses request fields the method's message does not have, as
 * grpcurl does, and prints the answer as JSON. Exit code 0, or 64 + the gRPC status.
 */
'use strict';
const path = require('node:path');
const ROOT = path.join(__dirname, '..', '..');
const grpc = require(path.join(ROOT, 'node_modules', '@grpc', 'grpc-js'));
const protoLoader = require(path.join(ROOT, 'node_modules', '@grpc', 'proto-loader'));
const { loadPackageDefinition } = require(path.join(ROOT, 'dist', 'contract', 'proto.js'));

function fail(message, code = 2) {
  process.stderr.write(`grpcurl stand-in: ${message}\n`);
  process.exit(code);
}

const args = process.argv.slice(2);
let data;
const rest = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '-plaintext') continue;
  if (args[i] === '-d') data = args[++i];
  else if (args[i].startsWith('-')) fail(`unsupported flag ${args[i]}`);
  else rest.push(args[i]);
}
const [address, verb] = rest;
if (address === undefined || verb === undefined || rest.length > 2)
  fail('usage: grpcurl -plaintext [-d JSON] ADDRESS (list | SERVICE/METHOD)');

const definition = loadPackageDefinition();
const packages = grpc.loadPackageDefinition(definition);
const lookup = (name) => name.split('.').reduce((o, k) => (o === undefined ? undefined : o[k]), packages);
const done = (err, res) => {
  if (err) fail(`${grpc.status[err.code]}: ${err.details}`, 64 + err.code);
  process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
};

/** Every field of `value` must be one of the message's (recursively), as grpcurl's JSON parsing demands. */
function check(value, typeName, where) {
  const message = definition[typeName];
  if (message === undefined) fail(`no message type ${typeName}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${where}: not a ${typeName} object`);
  for (const [key, v] of Object.entries(value)) {
    const field = message.type.field.find((f) => f.name === key || f.jsonName === key);
    if (field === undefined) fail(`${where}: message type ${typeName} has no known field named ${key}`);
    if (field.type === 'TYPE_MESSAGE') {
      // Type names are relative to the message's package, or fully qualified.
      const name = field.typeName.replace(/^\./, '');
      const nested = definition[name] !== undefined ? name : `${typeName.slice(0, typeName.lastIndexOf('.'))}.${name}`;
      for (const item of field.label === 'LABEL_REPEATED' ? v : [v]) check(item, nested, `${where}.${key}`);
    }
  }
}

if (verb === 'list') {
  const reflectionProto = path.join(
    require.resolve(path.join(ROOT, 'node_modules', '@grpc', 'reflection')),
    '..',
    '..',
    'proto',
    'grpc',
    'reflection',
    'v1',
    'reflection.proto',
  );
  const reflection = grpc.loadPackageDefinition(protoLoader.loadSync(reflectionProto, { keepCase: true }));
  const client = new reflection.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
  const stream = client.ServerReflectionInfo();
  stream.on('data', (res) => {
    process.stdout.write(
      `${res.list_services_response.service
        .map((s) => s.name)
        .sort()
        .join('\n')}\n`,
    );
    stream.end();
    client.close();
  });
  stream.on('error', (err) => fail(`${grpc.status[err.code]}: ${err.details}`, 64 + err.code));
  stream.write({ list_services: '' });
} else {
  const [service, method] = verb.split('/');
  const Client = lookup(service);
  if (Client === undefined || Client.service[method] === undefined) fail(`no method ${verb}`);
  let request = {};
  if (data !== undefined) {
    try {
      request = JSON.parse(data);
    } catch {
      fail('-d is not JSON');
    }
  }
  const requestType = `${service.slice(0, service.lastIndexOf('.'))}.${definition[service][method].requestType.type.name}`;
  check(request, requestType, 'request');
  const client = new Client(address, grpc.credentials.createInsecure());
  client[method](request, { deadline: Date.now() + 10_000 }, (err, res) => {
    client.close();
    done(err, res);
  });
}
