# Supervisor tests (owned by the supervisor subsystem).
tp_add_test(sup_logic LABELS unit TIMEOUT 60)
