"""Errors the index raises; each message is one sentence saying what is wrong and what to do."""


class CorpusError(Exception):
    """The corpus folder or a file in it cannot be used."""


class IndexStoreError(Exception):
    """The index on disk is missing, incomplete, corrupt or built with other settings."""


class BuildLockedError(IndexStoreError):
    """Another build holds the index's lock."""


class DistributedBuildError(IndexStoreError):
    """Ray could not be reached, or could not do the build's work; the index is left as it was."""


class FeedError(Exception):
    """A feed cannot be read: not an http/https address, no answer, an error status, or not RSS/Atom."""
