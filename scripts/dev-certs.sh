#!/usr/bin/env bash
# Creates a development PKI for pdpd's mTLS with the openssl CLI.
#
# Usage: scripts/dev-certs.sh [--force] [--ca-name NAME] OUT_DIR
#
# OUT_DIR gets an EC P-256 CA (ca.pem, ca.key; 10 years) and leaf
# certificates signed by it (825 days), keys mode 0600:
#   server.pem/.key   CN=pdpd      DNS:localhost, DNS:pdpd, IP:127.0.0.1, IP:::1   serverAuth
#   gateway.pem/.key  CN=gateway   URI:spiffe://pdp.local/gateway/dev    clientAuth
#   admin.pem/.key    CN=admin     URI:spiffe://pdp.local/admin/dev      clientAuth
#   other.pem/.key    CN=stranger  URI:spiffe://pdp.local/other/dev      clientAuth
#                     (trusted CA, but mapped to no role)
#
# Does nothing when OUT_DIR/ca.pem exists, unless --force.
# --ca-name NAME sets the CA's common name (default "pdp dev CA"); tests use
# it to make an independent "foreign" CA in another directory.
set -euo pipefail

usage() {
  echo "usage: $0 [--force] [--ca-name NAME] OUT_DIR" >&2
  exit 2
}

force=0
ca_name="pdp dev CA"
out_dir=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) force=1; shift ;;
    --ca-name)
      [[ $# -ge 2 && -n "$2" ]] || usage
      ca_name="$2"; shift 2 ;;
    --ca-name=*) ca_name="${1#--ca-name=}"; [[ -n "$ca_name" ]] || usage; shift ;;
    -h|--help) usage ;;
    --) shift; [[ $# -eq 1 ]] || usage; out_dir="$1"; shift ;;
    -*) echo "$0: unknown option $1" >&2; usage ;;
    *) [[ -z "$out_dir" ]] || usage; out_dir="$1"; shift ;;
  esac
done
[[ -n "$out_dir" ]] || usage

command -v openssl >/dev/null 2>&1 || { echo "$0: openssl not found" >&2; exit 1; }

if [[ -e "$out_dir/ca.pem" && $force -eq 0 ]]; then
  echo "dev-certs: $out_dir/ca.pem exists; nothing to do (use --force to regenerate)"
  exit 0
fi

mkdir -p "$out_dir"
umask 077
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# EC P-256 private key in PKCS#8 PEM, mode 0600.
new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null
  chmod 0600 "$1"
}

# The CA: self-signed, 10 years. A self-contained config so the system
# openssl.cnf cannot add or change extensions.
new_key "$tmp/ca.key"
cat >"$tmp/ca.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
O = pdp dev
CN = ${ca_name}
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
openssl req -new -x509 -sha256 -config "$tmp/ca.cnf" -key "$tmp/ca.key" \
  -days 3650 -out "$tmp/ca.pem"

# leaf NAME CN SAN EKU: key, CSR and a certificate signed by the CA.
leaf() {
  local name="$1" cn="$2" san="$3" eku="$4" ku
  if [[ "$eku" == serverAuth ]]; then
    ku="critical, digitalSignature, keyAgreement"
  else
    ku="critical, digitalSignature"
  fi
  new_key "$tmp/$name.key"
  openssl req -new -sha256 -key "$tmp/$name.key" -subj "/O=pdp dev/CN=${cn}" \
    -out "$tmp/$name.csr" 2>/dev/null
  cat >"$tmp/$name.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = $ku
extendedKeyUsage = $eku
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF
  openssl x509 -req -sha256 -in "$tmp/$name.csr" -CA "$tmp/ca.pem" \
    -CAkey "$tmp/ca.key" -CAcreateserial -CAserial "$tmp/ca.srl" -days 825 \
    -extfile "$tmp/$name.ext" -out "$tmp/$name.pem" 2>/dev/null
}

leaf server pdpd "DNS:localhost, DNS:pdpd, IP:127.0.0.1, IP:::1" serverAuth
leaf gateway gateway "URI:spiffe://pdp.local/gateway/dev" clientAuth
leaf admin admin "URI:spiffe://pdp.local/admin/dev" clientAuth
leaf other stranger "URI:spiffe://pdp.local/other/dev" clientAuth

for name in server gateway admin other; do
  openssl verify -CAfile "$tmp/ca.pem" "$tmp/$name.pem" >/dev/null || {
    echo "dev-certs: $name.pem does not verify against ca.pem" >&2
    exit 1
  }
done

# Install into OUT_DIR only once everything verified; ca.pem last, since its
# presence marks the directory complete.
for name in server gateway admin other ca; do
  install -m 0600 "$tmp/$name.key" "$out_dir/$name.key"
  install -m 0644 "$tmp/$name.pem" "$out_dir/$name.pem"
done

echo "dev-certs: wrote CA \"${ca_name}\" and server, gateway, admin, other certs to $out_dir"
