# supervisor/ sources (owned by the supervisor subsystem).
list(APPEND TP_SOURCES
  supervisor/attach.c
)
