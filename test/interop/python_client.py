"""A Python scheduler client on Google's gRPC (C core) and protobuf runtimes.

Builds the message classes from a FileDescriptorSet of the contract (no code
generation), calls the running service, and prints what it decoded as JSON, so
the test can check the service's hand-written codec against this
implementation. Usage: python_client.py HOST:PORT DESCRIPTOR_SET_FILE REQUESTS_JSON
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

address, descriptor_file, requests_json = sys.argv[1], sys.argv[2], sys.argv[3]

files = descriptor_pb2.FileDescriptorSet.FromString(open(descriptor_file, "rb").read())


def absolute(name, package):
    if name.startswith("."):
        return name
    return "." + name if "." in name else "." + package + "." + name


# protobufjs writes type names relative (no leading dot, bare names within the
# package) and leaves out file dependencies; Google's pool needs them absolute.
google = [f.name for f in files.file if f.package == "google.protobuf"]
for file in files.file:
    if file.package != "google.protobuf":
        file.dependency.extend(google)
    for msg in file.message_type:
        for field in msg.field:
            if field.type_name:
                field.type_name = absolute(field.type_name, file.package)
    for service in file.service:
        for method in service.method:
            method.input_type = absolute(method.input_type, file.package)
            method.output_type = absolute(method.output_type, file.package)

pool = descriptor_pool.DescriptorPool()
for file in sorted(files.file, key=lambda f: 0 if f.package == "google.protobuf" else 1):
    pool.Add(file)


def message(name):
    descriptor = pool.FindMessageTypeByName(name)
    factory = getattr(message_factory, "GetMessageClass", None)
    return factory(descriptor) if factory else message_factory.MessageFactory(pool).GetPrototype(descriptor)


Request = message("ksmscorer.v1.ScoreHostsRequest")
Response = message("ksmscorer.v1.ScoreHostsResponse")
BatchRequest = message("ksmscorer.v1.ScoreHostsBatchRequest")
BatchResponse = message("ksmscorer.v1.ScoreHostsBatchResponse")

channel = grpc.insecure_channel(address)
calls = {
    "ScoreHosts": (Request, Response),
    "ScoreHostsBatch": (BatchRequest, BatchResponse),
}
out = []
for item in json.loads(open(requests_json).read()):
    request_type, response_type = calls[item["method"]]
    stub = channel.unary_unary(
        "/ksmscorer.v1.HostScorerService/" + item["method"],
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_type.FromString,
    )
    request = json_format.ParseDict(item["request"], request_type(), ignore_unknown_fields=False)
    try:
        response = stub(request, timeout=10)
        out.append({"ok": json_format.MessageToDict(response, preserving_proto_field_name=True, including_default_value_fields=True)})
    except grpc.RpcError as err:
        out.append({"code": err.code().name, "details": err.details()})
print(json.dumps(out))
