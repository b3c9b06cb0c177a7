"""Error types the entry points turn into one readable line and a non-zero exit.

Everything the user can fix (bad input, an API that failed, a store in a bad state) is a
`CryptocastError`; anything else is a bug and is reported as such.
"""


class CryptocastError(Exception):
    """A failure the user can act on; its message is the one line they will read."""


class SettingsError(CryptocastError):
    """A setting (environment, `.env` or flag) has an unusable value."""


class SourceError(CryptocastError):
    """An upstream API or export could not be read: network, HTTP, or response shape."""


class DataValidationError(CryptocastError):
    """Rows violate a feature group's schema or rules; nothing was written."""


class StoreError(CryptocastError):
    """The feature store or model registry is missing, locked, or damaged."""
