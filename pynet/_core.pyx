# cython: language_level=3
"""pynet's compiled core: the C in csrc/ behind a thin Cython layer.

One extension module, one .pxi per room, so each layer's glue sits beside
its name: skbuff (the packet buffer), checksum, gso (segmentation and IPv4
fragmentation), hdr (header build/parse of the hot fields), tap and packet
(device I/O with the GIL released).
"""
include "skbuff.pxi"
include "checksum.pxi"
include "gso.pxi"
include "hdr.pxi"
include "tap.pxi"
include "packet.pxi"
include "gro.pxi"
