# The fleet (samples/fleet, bench/fleet_client.c, scripts/fleet.sh; see
# docs/FLEET.md) and the console's health endpoint it relies on.
tp_add_test(console_health LABELS console net TIMEOUT 60
  LIBS tp_console_testlib)

# The proto's framing and parser alone.
tp_add_test(fleet_proto LABELS unit sample TIMEOUT 30
  SOURCES test_fleet_proto.c ${PROJECT_SOURCE_DIR}/samples/fleet/fleet_proto.c)

if(TP_BUILD_SAMPLES)
  # The node as a program (protocol, supervision, two nodes on one port,
  # health and drain order, SIGTERM, refused options).
  tp_add_test(sample_fleet LABELS sample net fleet console TIMEOUT 120
    LIBS tp_sample_testlib)
  target_compile_definitions(test_sample_fleet PRIVATE
    TROUPE_FLEET_NODE="$<TARGET_FILE:troupe-fleet-node>"
    TROUPECTL="$<TARGET_FILE:troupectl>")
  add_dependencies(test_sample_fleet troupe-fleet-node troupectl)
endif()

if(TP_BUILD_SAMPLES AND TP_BUILD_BENCH)
  # scripts/fleet.sh: real processes (nats-server, nodes, clients, haproxy).
  # Exit 77 (skipped) when nats-server or haproxy is not installed.
  function(tp_fleet_test name labels timeout)
    add_test(NAME ${name}
      COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/fleet.sh --build
              ${CMAKE_BINARY_DIR} ${ARGN})
    set_tests_properties(${name} PROPERTIES LABELS "${labels}"
      TIMEOUT ${timeout} SKIP_RETURN_CODE 77)
  endfunction()
  # The CI versions (default set): 3 nodes x 2,000 connections, SIGKILL
  # of one; 2 nodes behind HAProxy, spread and drain.
  tp_fleet_test(fleet_short "fleet;sample;net" 120 --short)
  tp_fleet_test(fleet_haproxy "fleet;sample;net" 120 --short --haproxy)
  # The same behind HAProxy's send-proxy-v2: the nodes parse the PROXY
  # headers and see the clients' own addresses.
  tp_fleet_test(fleet_haproxy_proxy "fleet;sample;net" 120 --short --haproxy
    --proxy)
  # The real ones (label long, not in CI): 200,000 and 1,000,000.
  tp_fleet_test(fleet "fleet;long" 1800)
  tp_fleet_test(fleet_1m "fleet;long" 3600 --conns 1000000)
endif()
