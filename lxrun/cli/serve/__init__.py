"""`lxrun serve`: a long-running process that runs `lxrun exec` tasks for local clients.

wire.py is the relay's format (native/client.c is the other end), session.py one client's task,
server.py the listening socket, its permissions and who may connect.
"""
