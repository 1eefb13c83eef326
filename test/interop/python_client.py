"""A Python scheduler client on Google's gRPC (C core) and protobuf runtimes.

Uses the stubs `python3 -m grpc_tools.protoc` generated from the contract into
GENERATED_DIR, calls the running service, and prints what it decoded as JSON,
so the test can compare it with what grpc-js decodes.
Usage: python_client.py HOST:PORT GENERATED_DIR REQUESTS_JSON
"""
import json
import sys

address, generated_dir, requests_json = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, generated_dir)

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from ksmscorer.v1 import scorer_pb2, scorer_pb2_grpc  # noqa: E402

stub = scorer_pb2_grpc.HostScorerServiceStub(grpc.insecure_channel(address))
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
