# console/ sources (owned by the console subsystem): the admin console, its
# HTTP side (Debian's libhttp-parser, found by hand: it ships no .pc file)
# and the dashboard page embedded as a C array at build time.
find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h REQUIRED)
find_library(HTTP_PARSER_LIBRARY http_parser REQUIRED)

set(TP_CONSOLE_DASHBOARD_C ${CMAKE_CURRENT_BINARY_DIR}/console_dashboard.c)
add_custom_command(
  OUTPUT ${TP_CONSOLE_DASHBOARD_C}
  COMMAND ${CMAKE_COMMAND} -DIN=${CMAKE_CURRENT_SOURCE_DIR}/console/dashboard.html
          -DOUT=${TP_CONSOLE_DASHBOARD_C} -DNAME=tp__dashboard_html
          -DNAME_LEN=tp__dashboard_len
          -P ${CMAKE_CURRENT_SOURCE_DIR}/console/embed.cmake
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/console/dashboard.html
          ${CMAKE_CURRENT_SOURCE_DIR}/console/embed.cmake
  COMMENT "Embedding console/dashboard.html")

list(APPEND TP_SOURCES
  console/buf.c console/emit.c console/line.c console/exec.c
  console/cmd_rt.c console/cmd_ps.c console/cmd_info.c console/cmd_sup.c
  console/cmd_trace.c console/cmd_metrics.c console/cmd_net.c
  console/cmd_cluster.c
  console/prom.c console/sampler.c console/session.c
  console/http.c console/local.c console/console.c console/listen.c
  console/guard.c console/login.c console/sha256.c console/unixsock.c
  console/health.c
  ${TP_CONSOLE_DASHBOARD_C}
)
