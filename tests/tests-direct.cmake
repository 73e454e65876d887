# Direct-style actors (direct/).
tp_add_test(direct LABELS unit TIMEOUT 120)
tp_add_test(direct_many LABELS unit stress TIMEOUT 120)
