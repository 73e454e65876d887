# Hardening: out-of-memory injection (tests/faultalloc.c), socket faults,
# overload and soak tests. Owned by the hardening work; see docs/HARDENING.md.

# The fault-injecting allocator, shared by every test_faults_* binary.
add_library(tp_faultalloc STATIC ${CMAKE_CURRENT_SOURCE_DIR}/faultalloc.c)
target_link_libraries(tp_faultalloc PUBLIC troupe_internal ${CMAKE_DL_LIBS})

tp_add_test(faults_core LABELS unit fault TIMEOUT 600 LIBS tp_faultalloc)
tp_add_test(faults_sup LABELS unit fault TIMEOUT 600 LIBS tp_faultalloc)
tp_add_test(faults_net LABELS net fault TIMEOUT 600
  SOURCES test_faults_net.c soak/soakutil.c LIBS tp_faultalloc)
tp_add_test(faults_console LABELS console fault TIMEOUT 600
  SOURCES test_faults_console.c soak/soakutil.c LIBS tp_faultalloc)
# Socket faults: reset mid-write, short writes, refused connects.
tp_add_test(net_sockfaults LABELS net TIMEOUT 120
  SOURCES test_net_sockfaults.c test_net_util.c)

# Soak: troupe-demo under mixed load with chaos (tests/soak/soak.c). The
# default run lasts 120 s (TP_SOAK_SECONDS); scripts/soak.sh MINUTES runs it
# long and plots docs/soak.png. Needs the samples (not in the sanitizer
# builds, which build without them).
if(TP_BUILD_SAMPLES AND EXISTS ${PROJECT_SOURCE_DIR}/samples/CMakeLists.txt)
  add_executable(soak soak/soak.c soak/soakutil.c)
  target_link_libraries(soak PRIVATE Threads::Threads)
  target_compile_definitions(soak PRIVATE
    SOAK_DEMO="$<TARGET_FILE:troupe-demo>")
  add_dependencies(soak troupe-demo)
  add_test(NAME soak COMMAND soak)
  set_tests_properties(soak PROPERTIES LABELS "soak" TIMEOUT 400
    ENVIRONMENT "TP_SOAK_CSV=${CMAKE_CURRENT_BINARY_DIR}/soak.csv")
endif()

# Overload: slowloris, never-reading clients, connect flood, 10x mailbox
# bursts per policy, while the console and a well-behaved echo client
# measure the server.
tp_add_test(overload LABELS net TIMEOUT 180
  SOURCES test_overload.c test_net_util.c soak/soakutil.c
  LIBS troupe_internal)
