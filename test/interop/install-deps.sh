#!/usr/bin/env bash
# The Python interop test needs Debian's python3-grpcio and python3-protobuf (for /usr/bin/python3).
set -euo pipefail
if /usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null; then exit 0; fi
echo "installing python3-grpcio and python3-protobuf (Debian packages) for the interop test..."
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq python3-grpcio python3-protobuf >/dev/null
