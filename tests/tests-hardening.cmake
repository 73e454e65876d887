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
