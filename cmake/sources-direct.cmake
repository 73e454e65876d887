# Direct-style actors (direct/): fibers with an assembly context switch on
# x86-64 and aarch64, a ucontext fallback elsewhere or when asked for.
option(TP_DIRECT_UCONTEXT "Direct actors: portable ucontext switch instead of assembly" OFF)
set(TP_DIRECT_ASM "")
if(NOT TP_DIRECT_UCONTEXT)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
    set(TP_DIRECT_ASM direct/ctx_x86_64.S)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
    set(TP_DIRECT_ASM direct/ctx_aarch64.S)
  endif()
endif()
list(APPEND TP_SOURCES direct/fiber.c direct/direct.c)
if(TP_DIRECT_ASM)
  enable_language(ASM)
  set_source_files_properties(${TP_DIRECT_ASM} PROPERTIES LANGUAGE ASM)
  if(TP_DIRECT_ASM STREQUAL "direct/ctx_x86_64.S")
    # The switch is inline and pushes below the stack pointer: no red zone
    # where it is used (tp__fctx_switch() in direct/direct_int.h; the
    # benchmark that times it sets the same, bench/bench-direct.cmake).
    set_source_files_properties(direct/direct.c PROPERTIES
      COMPILE_OPTIONS -mno-red-zone COMPILE_DEFINITIONS TP__NO_RED_ZONE=1)
  endif()
  list(APPEND TP_SOURCES ${TP_DIRECT_ASM})
else()
  # Every file that includes direct/direct_int.h must agree (the
  # benchmarks too): directory-wide.
  add_compile_definitions(TP_DIRECT_UCONTEXT=1)
endif()
