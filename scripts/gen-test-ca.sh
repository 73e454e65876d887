#!/bin/sh
# scripts/gen-test-ca.sh DIR - a throwaway test CA and certificates for
# trying TLS and wss locally (the tests run it in a temporary directory).
# Never use these keys for anything real; never commit them.
#
# Writes into DIR:
#   ca.pem / ca.key          the test CA (P-256, 2 days)
#   server.pem / server.key  "localhost" + 127.0.0.1 + ::1, signed by the CA
#   wrong.pem / wrong.key    "wrong.example" only, signed by the CA
#   client.pem / client.key  a client certificate (CN "troupe-client")
#   other-ca.pem / other-ca.key  a second CA that signed nothing above
#   other.pem / other.key    "localhost", signed by other-ca (untrusted)
set -eu
dir=${1:?usage: gen-test-ca.sh DIR}
mkdir -p "$dir"
cd "$dir"
days=2
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$1" 2>/dev/null; }
ca() { # name subject
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days $days \
        -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign -out "$1.pem" 2>/dev/null
}
leaf() { # name cn ca ext
    key "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$4" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" \
        -CAcreateserial -days $days -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
ca ca "troupe test CA"
ca other-ca "troupe other CA"
leaf server localhost ca \
    "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage=serverAuth"
leaf wrong wrong.example ca \
    "subjectAltName=DNS:wrong.example
extendedKeyUsage=serverAuth"
leaf client troupe-client ca "extendedKeyUsage=clientAuth"
leaf other localhost other-ca \
    "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
rm -f ./*.srl
