# Console tests (label console). The strict Prometheus parser is a test
# helper library; the client helper drives sessions.
add_library(tp_console_testlib STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/test_console_client.c
  ${PROJECT_SOURCE_DIR}/console/promcheck.c)
target_link_libraries(tp_console_testlib PUBLIC tp_testutil m)
target_compile_definitions(tp_console_testlib PRIVATE _GNU_SOURCE)

tp_add_test(console_unit LABELS console unit TIMEOUT 60 LIBS tp_console_testlib)
tp_add_test(console_prom LABELS console unit TIMEOUT 60
  LIBS tp_console_testlib)
tp_add_test(console_cmds LABELS console TIMEOUT 180 LIBS tp_console_testlib)
tp_add_test(console_http LABELS console TIMEOUT 120 LIBS tp_console_testlib)
tp_add_test(console_tree LABELS console TIMEOUT 120 LIBS tp_console_testlib)
