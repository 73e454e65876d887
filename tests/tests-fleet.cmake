# The fleet (samples/fleet, bench/fleet_client.c, scripts/fleet.sh; see
# docs/FLEET.md) and the console's health endpoint it relies on.
tp_add_test(console_health LABELS console net TIMEOUT 60
  LIBS tp_console_testlib)
