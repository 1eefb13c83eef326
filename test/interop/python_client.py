"""A Python scheduler client on Google's gRPC (C core) and protobuf runtimes.

Uses the stubs `python3 -m grpc_tools.protoc` generated from the contract into
GENERATED_DIR, calls the running service, and prints what it decoded as JSON,
so the test can compare it with what grpc-js decodes. With CA_PEM (and CERT_PEM KEY_PEM)
it calls over TLS (mutual TLS).
Usage: python_client.py HOST:PORT GENERATED_DIR REQUESTS_JSON [CA_PEM [CERT_PEM KEY_PEM]]
"""
import json
import sys

address, generated_dir, requests_json = sys.argv[1], sys.argv[2], sys.argv[3]
tls_files = sys.argv[4:]
sys.path.insert(0, generated_dir)

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from ksmscorer.v1 import scorer_pb2, scorer_pb2_grpc  # noqa: E402

def read(path):
    with open(path, "rb") as f:
        return f.read()


if tls_files:
    ca, cert, key = (tls_files + [None, None])[:3]
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(ca), private_key=key and read(key), certificate_chain=cert and read(cert)
    )
    channel = grpc.secure_channel(address, credentials)
else:
    channel = grpc.insecure_channel(address)
stub = scorer_pb2_grpc.HostScorerServiceStub(channel)
calls = {
    "ScoreHosts": (stub.ScoreHosts, scorer_pb2.ScoreHostsRequest),
    "ScoreHostsBatch": (stub.ScoreHostsBatch, scorer_pb2.ScoreHostsBatchRequest),
    "ListOperatingSystems": (stub.ListOperatingSystems, scorer_pb2.ListOperatingSystemsRequest),
    "ListHosts": (stub.ListHosts, scorer_pb2.ListHostsRequest),
    "ListVms": (stub.ListVms, scorer_pb2.ListVmsRequest),
}
out = []
for item in json.loads(open(requests_json).read()):
    method, request_type = calls[item["method"]]
    request = json_format.ParseDict(item["request"], request_type(), ignore_unknown_fields=False)
    try:
        response = method(request, timeout=10)
        out.append({"ok": json_format.MessageToDict(response, preserving_proto_field_name=True, including_default_value_fields=True)})
    except grpc.RpcError as err:
        out.append({"code": err.code().name, "details": err.details()})
print(json.dumps(out))
