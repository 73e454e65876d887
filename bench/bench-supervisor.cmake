tp_add_bench(restart)
