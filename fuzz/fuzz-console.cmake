# Admin console: the line protocol (assembly, splitting, a whole session
# through the in-process transport) and the HTTP request handling.
tp_add_fuzz(console_line)
tp_add_fuzz(console_http)
