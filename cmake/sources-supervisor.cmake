# supervisor/ sources (owned by the supervisor subsystem).
list(APPEND TP_SOURCES
  supervisor/attach.c
  supervisor/intensity.c
  supervisor/strategy.c
  supervisor/backoff.c
  supervisor/spec.c
  supervisor/supervisor.c
  supervisor/dynamic.c
  supervisor/api.c
  supervisor/root.c
  supervisor/walk.c
)
