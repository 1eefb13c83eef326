"""An idle Python grpcio client: one call to open its connection, then it holds the channel idle until stdin closes."""
import sys

import grpc

channel = grpc.insecure_channel(sys.argv[1])
check = channel.unary_unary('/grpc.health.v1.Health/Check', request_serializer=lambda b: b, response_deserializer=lambda b: b)
check(b'', timeout=10)
print('ready', flush=True)
sys.stdin.read()
channel.close()
