"""Unit constants: the one place that says how many bytes a GiB holds or seconds a day.

Everything inside planner is SI (bytes, seconds, FLOPs, US dollars); these convert only at the edges (tables,
exports, the units sources publish in). GB is the vendor's and the SI gigabyte (1e9 bytes), GiB the binary one
(2**30 bytes): device capacities as the driver reports them are GiB, datasheet bandwidths GB/s.
"""

KIB = 2**10  #: bytes per KiB
MIB = 2**20  #: bytes per MiB
GIB = 2**30  #: bytes per GiB
TIB = 2**40  #: bytes per TiB
GB = 1e9  #: bytes per GB (SI; vendors' and papers' "GB")
TB = 1e12  #: bytes per TB
TERA = 1e12  #: TFLOP/s -> FLOP/s
GIGA = 1e9  #: billions (parameters, tokens)

SECONDS_PER_MINUTE = 60.0
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0
