# Supervisor tests (owned by the supervisor subsystem).
tp_add_test(sup_logic LABELS unit TIMEOUT 60)
tp_add_test(sup_strategy LABELS unit TIMEOUT 120)
tp_add_test(sup_shutdown LABELS unit TIMEOUT 120)
tp_add_test(sup_api LABELS unit TIMEOUT 120)
# notsan: real SIGSEGV/SIGFPE recovered by siglongjmp (see the file).
tp_add_test(sup_crash LABELS unit notsan TIMEOUT 60)
tp_add_test(sup_dynamic LABELS unit TIMEOUT 300)
# 10 s of chaos (TP_TEST_SCALE scales it).
tp_add_test(sup_chaos LABELS stress TIMEOUT 300)
