"""The oVirt scheduler proxy called from Python's standard xmlrpc.client, a
caller independent of the service's codec. Reads [{method, params}] from a
JSON file, prints one answer per call: {ok: value} with each int/float/bool
tagged by its Python type, or {fault: {code, message}}."""
import json
import sys
import xmlrpc.client


def tagged(v):
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        return {"int": v}
    if isinstance(v, float):
        return {"float": v}
    if isinstance(v, list):
        return [tagged(x) for x in v]
    if isinstance(v, dict):
        return {k: tagged(x) for k, x in v.items()}
    return v


def main():
    url, calls_file = sys.argv[1], sys.argv[2]
    with open(calls_file) as f:
        calls = json.load(f)
    proxy = xmlrpc.client.ServerProxy(url)
    out = []
    for c in calls:
        try:
            out.append({"ok": tagged(getattr(proxy, c["method"])(*c["params"]))})
        except xmlrpc.client.Fault as e:
            out.append({"fault": {"code": e.faultCode, "message": e.faultString}})
    json.dump(out, sys.stdout)


main()
