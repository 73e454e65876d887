# fuzz_ws: the WebSocket frame decoder (net/ws.c), both directions.
tp_add_fuzz(ws)
# fuzz_tls: the server side of the TLS read path (net/tls.c compiled in,
# the connection layer replaced), seeds recorded from real handshakes.
tp_add_fuzz(tls LIBS PkgConfig::OPENSSL)
