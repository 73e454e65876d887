# TLS (net/tls.c, OpenSSL 3) and WebSocket (net/ws*.c) connection modes.
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET openssl>=3)
list(APPEND TP_SOURCES
  net/tls.c
)
list(APPEND TP_PRIVATE_LIBS PkgConfig::OPENSSL)
list(APPEND TP_PC_REQUIRES_PRIVATE openssl)
list(APPEND TP_PC_FIND "OPENSSL openssl>=3")
