#!/bin/bash
# One-shot, in the st2client container: register the aegis pack (mounted in packs.dev), build
# its virtualenv from requirements.txt on an action runner, store the secrets its config reads
# from the datastore, then stay up as the place to run `st2` commands.
set -uo pipefail
until st2 action list >/dev/null 2>&1; do echo "waiting for st2api..."; sleep 5; done
st2 pack register /opt/stackstorm/packs.dev/aegis
# st2's own action; installs requirements.txt into /opt/stackstorm/virtualenvs/aegis
# (a volume the action runners and the sensor container share). Takes minutes the first time.
st2 run packs.setup_virtualenv packs=aegis --timeout 3600
# Secrets referenced by demo/compose/aegis.yaml as {{ st2kv.system.aegis.* | decrypt_kv }}.
st2 key set aegis.alertmanager_token "$(cat /run/secrets/aegis/alertmanager_token)" --encrypt
st2 key set aegis.deploy_token "$(cat /run/secrets/aegis/deploy_token)" --encrypt
# Configs and sensors come up with the virtualenv in place.
st2 pack register /opt/stackstorm/packs.dev/aegis
st2 key set aegis.mode "${AEGIS_MODE:-advisory}"
echo "aegis registered; try: st2 execution list"
sleep infinity
