"""asyncio streams over a pynet stack.

pynet sockets have real descriptors (fileno), so the stock selector event
loop drives them; these two helpers only make the socket on the stack and
hand it to asyncio as an already made socket (sock=...).

    reader, writer = await pynet.asyncio.open_connection(stack, "198.18.0.1", 80)
    server = await pynet.asyncio.start_server(handle, stack, "198.18.0.2", 8080)
"""
import asyncio as _asyncio
import socket as _socket

from pynet.socket import socket


async def open_connection(stack, host, port, **kwds):
    """asyncio.open_connection over `stack`: (StreamReader, StreamWriter)."""
    sock = socket(stack, _socket.AF_INET, _socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await _asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return await _asyncio.open_connection(sock=sock, **kwds)


async def start_server(client_connected_cb, stack, host, port, *, backlog=100, **kwds):
    """asyncio.start_server over `stack` (SO_REUSEADDR, as asyncio sets it)."""
    sock = socket(stack, _socket.AF_INET, _socket.SOCK_STREAM)
    try:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return await _asyncio.start_server(client_connected_cb, sock=sock, **kwds)
