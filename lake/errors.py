"""Every exception Quicklake raises on purpose.

Library code raises these; only the CLI turns them into exit messages.
Messages name the file, HDU and keyword where there is one, and say what to do.
"""

from __future__ import annotations


class QuicklakeError(Exception):
    """Base class of all Quicklake errors."""


class ConfigError(QuicklakeError):
    """A setting is missing, malformed or contradicts another."""


class NotConfigured(ConfigError):
    """A job that needs a setting nobody set: its run is ``skipped`` with this message, not ``failed``."""

    def __init__(self, setting: str, why: str) -> None:
        self.setting = setting
        super().__init__(f"not configured: {why}; set '{setting}' to run it")


class LayoutError(QuicklakeError):
    """A path does not fit the archive layout template."""


class MisfiledError(LayoutError):
    """A path of the right shape in the wrong folder (visit folder and rootname disagree)."""


class FitsError(QuicklakeError):
    """A FITS file could not be read.

    ``path``, ``hdu`` and ``keyword`` locate the problem as precisely as is known.
    """

    def __init__(self, path: str, reason: str, hdu: int | None = None, keyword: str | None = None) -> None:
        self.path = path
        self.hdu = hdu
        self.keyword = keyword
        self.reason = reason
        where = path
        if hdu is not None:
            where += f": HDU {hdu}"
        if keyword is not None:
            where += f": card {keyword!r}"
        super().__init__(f"{where}: {reason}")


class LakeError(QuicklakeError):
    """The lake could not be read or written."""


class LakeNotFound(LakeError):
    """No lake exists at the given path."""

    @classmethod
    def at(cls, root: object, missing: str) -> LakeNotFound:
        """The error for a folder without the lake's ``missing`` file, saying what to do: an archive
        given for the lake is named as one (an ingest there would write a lake into the archive)."""
        if _looks_like_archive(str(root)):
            return cls(
                f"{root} is an archive (it holds FITS files or proposal folders), not a lake; give the "
                "lake's folder with --lake (or the lake setting) and this folder with --archive"
            )
        return cls(
            f"no lake at {root} (no {missing}); run 'ql ingest --lake {root}' or 'ql demo' to create one"
        )


def _looks_like_archive(folder: str, look: int = 200) -> bool:
    """Whether ``folder`` holds FITS files or ``<PROPOSID>`` folders among its first ``look`` entries."""
    import itertools
    import os

    try:
        with os.scandir(folder) as it:
            for e in itertools.islice(it, look):
                if e.name.lower().endswith((".fits", ".fits.gz")) or (e.name.isdigit() and e.is_dir()):
                    return True
    except OSError:
        return False
    return False


class LakeMoved(LakeError):
    """The lake was published in another folder (moved or copied): 'ql relocate' makes it whole."""


class LakeLocked(LakeError):
    """Another writer holds the lake's lock."""


class SchemaConflict(QuicklakeError):
    """A keyword value does not fit the column type fixed for it."""


class QueryError(QuicklakeError):
    """A SQL query failed or was refused."""


class GeneratorError(QuicklakeError):
    """The demo-archive generator was given options it cannot honour."""


class AccessDenied(QuicklakeError, PermissionError):
    """The viewer may not see or do this (proprietary data, or an action that needs a team member)."""
