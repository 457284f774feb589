# gso.pxi - included by _core.pyx (empty until its room is built).
