# Supervisor tests (owned by the supervisor subsystem).
tp_add_test(sup_logic LABELS unit TIMEOUT 60)
tp_add_test(sup_strategy LABELS unit TIMEOUT 120)
tp_add_test(sup_shutdown LABELS unit TIMEOUT 120)
tp_add_test(sup_api LABELS unit TIMEOUT 120)
