"""TCP, shaped like Linux's net/ipv4/tcp*.c and sans-IO.

sock (TcpSock), tcp_output, tcp_input, tcp_timer, tcp_ipv4 (demux, the
IPv4 af ops), cong/ (congestion control modules).
"""
