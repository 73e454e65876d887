# TLS and WebSocket tests (owned by the TLS/WebSocket connection modes).
# Real clients (openssl s_client, curl, python3) are started by the tests
# on loopback ports; a missing one makes its test skip.
tp_add_test(tls LABELS net TIMEOUT 120 SOURCES test_tls.c test_net_util.c
  LIBS tp_console_testlib)
target_compile_definitions(test_tls PRIVATE TP_SRC_DIR="${PROJECT_SOURCE_DIR}")
# The same tests with every connection keeping its SSL object (the path of
# TLS 1.2, and of TLS 1.3 with TP_TLS_KEEP_SSL=1; see net/tls.c).
add_test(NAME tls_keep_ssl COMMAND test_tls)
get_test_property(tls ENVIRONMENT tp_tls_env)
set_tests_properties(tls_keep_ssl PROPERTIES LABELS net TIMEOUT 120
  ENVIRONMENT "${tp_tls_env};TP_TLS_KEEP_SSL=1")
tp_add_test(ws LABELS net TIMEOUT 120 SOURCES test_ws.c test_net_util.c
  LIBS PkgConfig::OPENSSL)
tp_add_test(ws_python LABELS net TIMEOUT 120
  SOURCES test_ws_python.c test_net_util.c)
target_compile_definitions(test_ws_python PRIVATE
  TP_SRC_DIR="${PROJECT_SOURCE_DIR}")
# Headless Chromium as the WebSocket client (playwright-core from
# tests/browser/node_modules, Debian's chromium); label browser like the
# console's browser test.
tp_add_test(ws_browser LABELS net browser TIMEOUT 120
  SOURCES test_ws_browser.c test_net_util.c)
target_compile_definitions(test_ws_browser PRIVATE
  TP_SRC_DIR="${PROJECT_SOURCE_DIR}")
# Node's ws package as the WebSocket client (tests/node: npm ci, pinned);
# CTest shows it as skipped, with the reason, when node or ws is missing.
tp_add_test(ws_node LABELS net TIMEOUT 180
  SOURCES test_ws_node.c test_net_util.c)
target_compile_definitions(test_ws_node PRIVATE
  TP_SRC_DIR="${PROJECT_SOURCE_DIR}")
set_tests_properties(ws_node PROPERTIES SKIP_REGULAR_EXPRESSION "SKIP: ")
