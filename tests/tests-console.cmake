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
# Real sockets: Unix 0600, TCP token rules, hostile clients, troupectl.
tp_add_test(console_net LABELS console net TIMEOUT 240 LIBS tp_console_testlib)
target_compile_definitions(test_console_net PRIVATE
  TROUPECTL="$<TARGET_FILE:troupectl>")
add_dependencies(test_console_net troupectl)

# The dashboard in a real headless browser (Debian's chromium driven by
# playwright-core from npm; see tests/browser/run.sh). Needs
# the packages scripts/setup-deps.sh --test installs.
add_executable(console_demo ${CMAKE_CURRENT_SOURCE_DIR}/browser/console_demo.c)
target_link_libraries(console_demo PRIVATE troupe_static)
add_test(NAME console_browser
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/browser/run.sh
          $<TARGET_FILE:console_demo> ${CMAKE_CURRENT_BINARY_DIR}/browser)
set_tests_properties(console_browser PROPERTIES LABELS "browser;console"
  TIMEOUT 240)

# Attacks from issue 14: another uid at the Unix socket, slot lockouts,
# slowloris, token guessing, the root supervisor and sampler, idle times.
tp_add_test(console_attack LABELS console net TIMEOUT 180
  LIBS tp_console_testlib)
target_compile_definitions(test_console_attack PRIVATE _GNU_SOURCE)

# troupectl against impostors, relays, drips and escape sequences.
tp_add_test(console_ctl LABELS console net TIMEOUT 120
  LIBS tp_console_testlib)
target_compile_definitions(test_console_ctl PRIVATE
  TROUPECTL="$<TARGET_FILE:troupectl>")
add_dependencies(test_console_ctl troupectl)
