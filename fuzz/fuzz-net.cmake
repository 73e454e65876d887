# fuzz_ws: the WebSocket frame decoder (net/ws.c), both directions.
tp_add_fuzz(ws)
