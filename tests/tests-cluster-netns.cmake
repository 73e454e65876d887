# The cluster across a real network partition (tests/test_cluster_partition.c):
# one node per network namespace, joined by a veth pair, the link cut with
# ip link. Needs root and iproute2 (skipped otherwise). cluster_node is the
# node program it runs in each namespace.
if(TP_HAVE_CLUSTER)
  add_executable(cluster_node ${CMAKE_CURRENT_SOURCE_DIR}/cluster_node.c)
  target_link_libraries(cluster_node PRIVATE troupe_static)
  tp_add_test(cluster_partition LABELS net cluster netns TIMEOUT 180)
  target_compile_definitions(test_cluster_partition PRIVATE
    CLUSTER_NODE="$<TARGET_FILE:cluster_node>")
  add_dependencies(test_cluster_partition cluster_node)
endif()
