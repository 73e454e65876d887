# TLS (net/tls.c, OpenSSL 3) and WebSocket (net/ws*.c) connection modes.
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET openssl>=3)
list(APPEND TP_SOURCES
  net/tls.c
)
list(APPEND TP_PRIVATE_LIBS PkgConfig::OPENSSL)
list(APPEND TP_PC_REQUIRES_PRIVATE openssl)
list(APPEND TP_PC_FIND "OPENSSL openssl>=3")
# WebSocket: own frame decoder (see net/ws_frame.c for why not libwslay);
# the upgrade request is parsed with Debian's libhttp-parser, as the
# console does (it ships no .pc file: found by hand).
find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h REQUIRED)
find_library(HTTP_PARSER_LIBRARY http_parser REQUIRED)
list(APPEND TP_SOURCES
  net/ws_frame.c
  net/ws.c
)
list(APPEND TP_PRIVATE_LIBS ${HTTP_PARSER_LIBRARY})
