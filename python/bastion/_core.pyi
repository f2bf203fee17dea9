"""Type stubs for the Rust extension ``bastion._core`` (hand-written; checked by ``mypy.stubtest``)."""

__version__: str
#: Every error code the core can raise, in table order (see ``bastion.errors.ERRORS_BY_CODE``).
ERROR_CODES: list[str]

# -- jwt (issue 2) --

# -- opaque (issue 3) --

# -- ratelimit (issue 4) --
