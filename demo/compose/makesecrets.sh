#!/bin/bash
# One-shot: the datastore's encryption key (st2 key set --encrypt), generated once into a volume.
set -euo pipefail
KEYPATH=/etc/st2/keys/datastore_key.json
if [ ! -f "$KEYPATH" ]; then
  st2-generate-symmetric-crypto-key --key-path "$KEYPATH"
  chown -R st2:st2 /etc/st2/keys
  chmod -R 750 /etc/st2/keys
fi
