#!/usr/bin/env bash
# Debian packages the tests call, installed when missing (the README lists them):
#   python3-grpcio, python3-protobuf, python3-grpc-tools  the generated Python client test;
#   openssl     the TLS tests make their certificates with it;
#   tini        the container image's PID 1, run as such in a test;
#   prometheus  for promtool: `check metrics` on a live /metrics, `check rules` and `test rules`
#               on deploy/prometheus/ (the package's own server is not started by the tests);
#   systemd     `systemd-analyze verify` of the unit (best effort: where it cannot be installed,
#               that test says it skipped and why);
#   systemd-container  systemd-nspawn, to boot a real systemd (the host's /usr) and run the unit
#               under it (best effort too: where nspawn cannot run, that test says why it skipped).
# Another apt or dpkg process (unattended-upgrades, a second checkout's `make test`) may hold the
# dpkg lock: apt waits for it up to APT_LOCK_TIMEOUT seconds (default 300) instead of failing at once.
set -euo pipefail
# INSTALL_DEPS_ALSO: packages to install even when present (test/deploy/install-deps.test.ts uses it
# to show the wait for the dpkg lock with a package that is already there).
read -r -a need <<<"${INSTALL_DEPS_ALSO:-}"
/usr/bin/python3 -c 'import grpc, google.protobuf, grpc_tools.protoc' 2>/dev/null || need+=(python3-grpcio python3-protobuf python3-grpc-tools)
command -v openssl >/dev/null || need+=(openssl)
command -v tini >/dev/null || need+=(tini)
command -v promtool >/dev/null || need+=(prometheus)
command -v systemd-analyze >/dev/null && command -v systemd-nspawn >/dev/null || want_systemd=1
if [ ${#need[@]} -eq 0 ] && [ -z "${want_systemd:-}" ]; then exit 0; fi
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
lock_timeout="${APT_LOCK_TIMEOUT:-300}"
apt=($SUDO apt-get -o "DPkg::Lock::Timeout=$lock_timeout")
# apt-get update takes the lists lock, which DPkg::Lock::Timeout does not cover: retried until the same bound.
deadline=$((SECONDS + lock_timeout))
until out=$("${apt[@]}" update -qq 2>&1); do
  if ! grep -qi 'lock' <<<"$out"; then echo "$out" >&2; exit 1; fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "$out" >&2
    echo "install-deps: another apt process held the lock for more than ${lock_timeout} s (APT_LOCK_TIMEOUT); giving up" >&2
    exit 1
  fi
  [ -n "${told:-}" ] || echo "apt-get update: another apt process holds the lock; waiting up to ${lock_timeout} s..."
  told=1
  sleep 2
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (Debian packages) for the Python client, TLS, PID 1 and promtool tests..."
  # Installing prometheus must not start its server here (no init system, or a shared test box).
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy" && trap '$SUDO rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ -n "${want_systemd:-}" ]; then
  echo "installing systemd and systemd-container (Debian packages) for systemd-analyze verify and systemd-nspawn..."
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends systemd systemd-container >/dev/null ||
    echo "could not install systemd or systemd-container: the systemd tests will skip what needs them, saying why"
fi
