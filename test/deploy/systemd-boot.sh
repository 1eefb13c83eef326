#!/bin/bash
# Runs inside a container booted by systemd-nspawn (test/deploy/systemd-boot.test.ts) as the unit
# ksm-boot-check.service: puts deploy/systemd's unit under the real systemd and writes what it saw
# to /out/result (KEY=VALUE lines), then powers the container off.
set -u
exec >/out/check.log 2>&1
say() { echo "$1=$2" >>/out/result; echo "$(date +%T) $1=$2"; }
unit=/etc/systemd/system/ksm-scorer.service
mkdir -p /etc/ksm-scorer /etc/systemd/system
# The container has loopback only: nothing to wait for before network-online.target (the unit's After=).
systemctl mask --now systemd-networkd-wait-online.service
# The shipped unit, its ExecStart pointed at the checkout mounted on /opt/ksm.
sed 's|^ExecStart=.*|ExecStart=/opt/ksm/dist/cli.js serve|' /opt/ksm/deploy/systemd/ksm-scorer.service >"$unit"
echo 'secret' >/etc/ksm-scorer/ovirt-password
chmod 600 /etc/ksm-scorer/ovirt-password

# 1. A bad configuration: `systemctl start` fails (Type=notify, exit 2 before ready), the error is
#    in the journal at priority err, and exit 2 is not restarted.
printf 'OVIRT_URL=https://engine.invalid/ovirt-engine/api\nOVIRT_USERNAME=u\nKSM_SCORER_REFRESH_SECONDS=often\n' >/etc/ksm-scorer/ksm-scorer.env
systemctl daemon-reload
systemctl start ksm-scorer; say bad_start_rc $?
say bad_main_status "$(systemctl show -P ExecMainStatus ksm-scorer)"
sleep 6
say bad_restarts "$(systemctl show -P NRestarts ksm-scorer)"
say bad_err_lines "$(journalctl -u ksm-scorer -p err -o cat --no-pager | grep -c 'KSM_SCORER_REFRESH_SECONDS')"
say bad_info_lines_at_err "$(journalctl -u ksm-scorer -p err -o cat --no-pager | grep -c '"level":"info"')"
journalctl -u ksm-scorer -o verbose --no-pager | grep -E '^\s+(PRIORITY|MESSAGE)=' | head -4

# 2. On the simulator with the drop-in: start succeeds once ready; info lines are not at err.
systemctl reset-failed ksm-scorer
mkdir -p "$unit.d" && cp /opt/ksm/deploy/systemd/ksm-scorer-simulator.conf "$unit.d/simulator.conf"
systemctl daemon-reload
systemctl start ksm-scorer; say sim_start_rc $?
say sim_active "$(systemctl is-active ksm-scorer)"
say sim_listening "$(journalctl -u ksm-scorer -o cat --no-pager | grep -c '"msg":"ksm-scorer listening"')"
say sim_warn_lines "$(journalctl -u ksm-scorer -p warning -o cat --no-pager | grep -c 'SIMULATED')"
say sim_status_text "$(systemctl show -P StatusText ksm-scorer)"
systemctl stop ksm-scorer; say sim_stop_rc $?
say sim_stopped_result "$(systemctl show -P Result ksm-scorer)"

# 3. A failure that keeps coming (the password file gone): retried every RestartSec until the
#    start limit, then failed, not retried forever.
rm -f "$unit.d/simulator.conf" /etc/ksm-scorer/ovirt-password
printf 'OVIRT_URL=https://engine.invalid/ovirt-engine/api\nOVIRT_USERNAME=u\n' >/etc/ksm-scorer/ksm-scorer.env
systemctl daemon-reload
systemctl reset-failed ksm-scorer
systemctl start ksm-scorer; say limit_first_start_rc $?
repeated() { journalctl -u ksm-scorer -o cat --no-pager | grep -c 'Start request repeated too quickly'; }
for _ in $(seq 1 60); do
  [ "$(repeated)" -gt 0 ] && break
  sleep 1
done
say limit_repeated "$(repeated)"
say limit_restarts "$(systemctl show -P NRestarts ksm-scorer)"
# RestartSec=5s: without the limit it would have started twice more by now.
sleep 11
say limit_restarts_later "$(systemctl show -P NRestarts ksm-scorer)"
say limit_state_later "$(systemctl show -P ActiveState ksm-scorer)"
say done 1
systemctl --no-block poweroff
