# TLS and WebSocket benchmarks (see bench/TLS.md, bench/WS.md).
#   tls_bench  handshakes/s, echo round trips/s at 100 conns, idle bytes
tp_add_bench(tls_bench LIBS PkgConfig::OPENSSL)
target_compile_definitions(tls_bench PRIVATE TP_SRC_DIR="${PROJECT_SOURCE_DIR}")
#   ws_bench   echo messages/s at 100 conns, idle bytes per ws conn
tp_add_bench(ws_bench)
