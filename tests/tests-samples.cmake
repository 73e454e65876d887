# The samples (samples/), each driven as a program over loopback (label
# sample), and the guide's example programs (docs/examples/guide_*.c).
# The samples exist only with TP_BUILD_SAMPLES=ON (the sanitizer builds
# turn it off); the guide's examples use the library alone.
add_library(tp_sample_testlib STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/test_sample_util.c)
target_link_libraries(tp_sample_testlib PUBLIC PkgConfig::CMOCKA)

if(TP_BUILD_SAMPLES)
  # tp_sample_test(<name> <sample>... TIMEOUT <s>): test_sample_<name>.c
  # gets TROUPE_<SAMPLE>="<path of troupe-<sample>>" for each sample.
  function(tp_sample_test name)
    cmake_parse_arguments(S "" "TIMEOUT" "SAMPLES;EXTRA" ${ARGN})
    tp_add_test(sample_${name} LABELS sample net ${S_EXTRA}
      TIMEOUT ${S_TIMEOUT} LIBS tp_sample_testlib)
    foreach(s ${S_SAMPLES})
      string(TOUPPER ${s} S_UP)
      target_compile_definitions(test_sample_${name} PRIVATE
        TROUPE_${S_UP}="$<TARGET_FILE:troupe-${s}>")
      add_dependencies(test_sample_${name} troupe-${s})
    endforeach()
  endfunction()

  tp_sample_test(echo SAMPLES echo TIMEOUT 120)
  tp_sample_test(chat SAMPLES chat TIMEOUT 120)
  tp_sample_test(chat_attack SAMPLES chat TIMEOUT 180)
  tp_sample_test(chat_cluster SAMPLES chat TIMEOUT 180 EXTRA cluster)
  # The same chat tests against the direct-style member (--style direct).
  foreach(t chat chat_attack chat_cluster)
    get_test_property(sample_${t} TIMEOUT t_timeout)
    get_test_property(sample_${t} LABELS t_labels)
    get_test_property(sample_${t} ENVIRONMENT t_env)
    add_test(NAME sample_${t}_direct COMMAND test_sample_${t} --style direct)
    set_tests_properties(sample_${t}_direct PROPERTIES
      LABELS "${t_labels};direct" TIMEOUT ${t_timeout} ENVIRONMENT "${t_env}")
  endforeach()
  tp_sample_test(http SAMPLES http TIMEOUT 120)
  tp_sample_test(idle SAMPLES idle TIMEOUT 120)
  tp_sample_test(demo SAMPLES demo TIMEOUT 120 EXTRA console)
  target_compile_definitions(test_sample_demo PRIVATE
    TROUPECTL="$<TARGET_FILE:troupectl>")
  add_dependencies(test_sample_demo troupectl)
  # The browser chat (tests/browser/chat.test.mjs): two headless-Chromium
  # pages and a TCP client chat through troupe-demo (label browser).
  add_test(NAME sample_chat_browser
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/browser/run.sh
            $<TARGET_FILE:troupe-demo> ${CMAKE_CURRENT_BINARY_DIR}/browser
            chat.test.mjs)
  set_tests_properties(sample_chat_browser PROPERTIES
    LABELS "browser;sample" TIMEOUT 240)
endif()

# The guide's programs, run and checked by test_sample_guide.c.
include(${PROJECT_SOURCE_DIR}/docs/examples/guide.cmake)
tp_add_test(sample_guide LABELS sample net console TIMEOUT 120
  LIBS tp_sample_testlib)
target_compile_definitions(test_sample_guide PRIVATE
  GUIDE_DIR="${CMAKE_BINARY_DIR}/docs/examples"
  TROUPECTL="$<TARGET_FILE:troupectl>")
add_dependencies(test_sample_guide troupectl)
foreach(g ${TP_GUIDE_EXAMPLES})
  add_dependencies(test_sample_guide guide_${g})
endforeach()
