#!/usr/bin/env bash
# Debian packages the tests call, installed when missing: python3-grpcio, python3-protobuf and
# python3-grpc-tools (the generated Python client test), openssl (the TLS tests make their
# certificates with it), tini (the container image's PID 1, run as such in a test), and systemd for `systemd-analyze verify` of the unit (best effort: where it
# cannot be installed, that test says it skipped and why).
set -euo pipefail
need=()
/usr/bin/python3 -c 'import grpc, google.protobuf, grpc_tools.protoc' 2>/dev/null || need+=(python3-grpcio python3-protobuf python3-grpc-tools)
command -v openssl >/dev/null || need+=(openssl)
command -v tini >/dev/null || need+=(tini)
command -v promtool >/dev/null || need+=(prometheus)
command -v systemd-analyze >/dev/null || want_systemd=1
if [ ${#need[@]} -eq 0 ] && [ -z "${want_systemd:-}" ]; then exit 0; fi
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (Debian packages) for the Python client, TLS and PID 1 tests..."
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ -n "${want_systemd:-}" ]; then
  echo "installing systemd (Debian package) for systemd-analyze verify..."
  $SUDO apt-get install -y -qq --no-install-recommends systemd >/dev/null ||
    echo "could not install systemd: the systemd unit test will skip systemd-analyze verify"
fi
