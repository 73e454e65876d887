# The fleet's load client (bench/FLEET.md, scripts/fleet.sh, docs/FLEET.md):
# plain epoll, one thread, nothing of Troupe.
add_executable(fleet_client fleet_client.c)
set_target_properties(fleet_client PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                      ${CMAKE_CURRENT_BINARY_DIR})
