# The programs of docs/GUIDE.md, built with the tests so the guide's code
# cannot rot (tests/tests-samples.cmake runs them: test sample_guide).
# They use the public API only, like a program outside this tree.
set(TP_GUIDE_EXAMPLES first_actor request supervisor conn flow console direct)
foreach(g ${TP_GUIDE_EXAMPLES})
  add_executable(guide_${g} ${CMAKE_CURRENT_LIST_DIR}/guide_${g}.c)
  target_link_libraries(guide_${g} PRIVATE troupe_static)
  set_target_properties(guide_${g} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/docs/examples)
endforeach()
