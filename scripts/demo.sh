#!/usr/bin/env bash
# From a fresh clone to a running pdpd with the demo rules:
#   installs dependencies (apt), builds, makes a development PKI in
#   .dev/certs, and runs pdpd in the foreground on 127.0.0.1:50051 with mTLS,
#   the SQLite file .dev/pdp.db and the demo rule set (rules/demo.json,
#   stored as version 1 on first start). Ctrl-C stops it gracefully; running
#   it again keeps every stored version.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
scripts/dev-certs.sh .dev/certs
exec build/service/pdpd \
  --listen=127.0.0.1:50051 \
  --db=.dev/pdp.db \
  --tls_cert=.dev/certs/server.pem --tls_key=.dev/certs/server.key --tls_ca=.dev/certs/ca.pem \
  --admin_identities='spiffe://pdp.local/admin/*' \
  --gateway_identities='spiffe://pdp.local/gateway/*' \
  --default_rule_set=shop \
  --bootstrap_rule_set=rules/demo.json \
  "$@"
