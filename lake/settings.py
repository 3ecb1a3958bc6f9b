"""The one registry of Quicklake settings.

Each setting has a name, a default and a help text. Values come, in increasing precedence, from the
defaults, ``quicklake.toml`` (the file named by ``QUICKLAKE_CONFIG``, else ``./quicklake.toml``), the
``QUICKLAKE_<NAME>`` environment variables, and explicit overrides (CLI options).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lake.errors import ConfigError
from lake.layout import DEFAULT_TEMPLATES


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    type: type = str


REGISTRY: tuple[Setting, ...] = (
    Setting("archive", "demo/archive", "Root of the FITS archive (local path or fsspec URL)."),
    Setting("lake", "demo/lake", "Directory of the lake: warehouse, catalogs, logs (local path)."),
    Setting(
        "catalog_uri",
        "",
        "SQLAlchemy URL of the Iceberg SQL catalog; empty means sqlite:///<lake>/catalog.sqlite. "
        "Use postgresql+psycopg://user@host/db for a shared PostgreSQL catalog.",
    ),
    Setting(
        "state_url",
        "",
        "Where job runs, locks, anomaly flags, alerts and the commit history live; empty means "
        "<lake>/state.sqlite (SQLite, file locks). postgresql://user@host/db keeps them in PostgreSQL "
        "with advisory locks: for hosts that share the lake over a network filesystem.",
    ),
    Setting(
        "layout",
        list(DEFAULT_TEMPLATES),
        "Archive path templates below the archive root, in order: a path is read by the first it fits, "
        "and the first builds paths (get-missing-files). A TOML list, or templates separated by ';' "
        "(QUICKLAKE_LAYOUT). Fields: proposid, visit, rootname, filetype, dir (one or more folders), "
        "folders (none or more, each with its '/'), stem (any name), and for HAP names instrument, "
        "detector, filter, dataset (ipppss[oo]), skycell, layer. What a name does not give (rootname, "
        "proposid) is taken from the file's primary header; a path fitting no template is an error row.",
        list,
    ),
    Setting(
        "scheduler",
        "local",
        "Dask scheduler for ingest: 'local' (a LocalCluster, one worker per core), 'synchronous' "
        "(in this process), or the address of a running scheduler (tcp://host:8786).",
    ),
    Setting("workers", 0, "Workers of the local cluster; 0 means one per core.", int),
    Setting(
        "batch_files",
        2000,
        "Files per ingest task and per lake commit; tasks are kept coarse because Dask's per-task "
        "overhead dominates small ones.",
        int,
    ),
    Setting(
        "batch_cards",
        1_000_000,
        "Cards a worker holds at once: a batch whose headers reach this many is written in parts (one "
        "Parquet file per table each), which bounds a worker's memory (about 0.45 GB per 10^6 cards over a "
        "base of 0.3 GB, bench/worker_memory.py) whatever the mix of files; IR ima and raw files carry "
        "some 80 HDUs each.",
        int,
    ),
    Setting(
        "commit_interval",
        10.0,
        "Seconds between lake commits during a long ingest: the batches finished meanwhile become "
        "visible together (one Iceberg snapshot per table, then pins.json and catalog.duckdb). A "
        "commit that took t seconds is followed by the next no sooner than 20 t.",
        float,
    ),
    Setting("progress", True, "Show progress bars on a terminal.", bool),
    Setting(
        "keep_hours",
        24.0,
        "Maintenance ('ql maintain', job maintain-lake): hours a superseded snapshot, and the files only "
        "it reads, stay on disk (a DuckDB session or notebook opened before then can still read them, and "
        "'as_of' / 'ql sql --as-of' reach back that far; card_changes is kept for good); also how long "
        "the tables a rebuild replaced are kept.",
        float,
    ),
    Setting(
        "target_file_mb",
        128.0,
        "Maintenance: size of the data files that small ones are compacted into (MB).",
        float,
    ),
    Setting(
        "schedule",
        "",
        "TOML file of cron expressions per job (job = \"m h dom mon dow\", UTC) read by 'ql run-due'; "
        "empty: the built-in schedule ('ql cron-line' shows it).",
    ),
    Setting(
        "mast_listing",
        "",
        "CSV or VOTable export of MAST holdings (path or fsspec URL) that check-mast2lake compares with.",
    ),
    Setting(
        "mirror",
        "",
        "Where get-missing-files fetches missing files from: a directory or fsspec URL laid out like "
        "the archive.",
    ),
    Setting(
        "proprietary_mode",
        "0o750",
        "check-filesystem: the most a proprietary proposal folder may allow (octal); world access is "
        "a finding.",
    ),
    Setting(
        "proposals",
        "",
        "CSV of proposals with columns proposid, proprietary_months (path or fsspec URL); empty: "
        "<archive>/proposals.csv if it exists.",
    ),
    Setting(
        "uvis_anneals",
        "",
        "UVIS anneal dates, one MJD per line (path or fsspec URL), for the darks monitors' anneal "
        "cycles; empty: <archive>/uvis_anneals.txt if it exists.",
    ),
    Setting(
        "proprietary_months",
        12.0,
        "Proprietary period of a proposal missing from the proposals file (months after EXPSTART).",
        float,
    ),
    Setting(
        "team_group",
        "wfc3-team",
        "Site: a user whose OIDC 'groups' claim contains this group is a team member (sees everything).",
    ),
    Setting(
        "team_members",
        "",
        "Site: comma-separated emails or OIDC subjects of team members (besides team_group).",
    ),
    Setting(
        "auth_secrets",
        "",
        "Site: a Streamlit secrets.toml with the [auth] OIDC provider for st.login (kept outside the "
        "repository); empty: no login, every visitor is a guest unless local_user is set.",
    ),
    Setting(
        "local_user",
        "",
        "Site without OIDC: treat every visitor as this team member (single-user use on 127.0.0.1 "
        "only); empty: visitors are guests.",
    ),
    Setting("app_port", 8501, "Site: port of 'ql app' (it listens on 127.0.0.1).", int),
    Setting("console_rows", 10000, "Site SQL console: most rows a query returns.", int),
    Setting("console_timeout", 30.0, "Site SQL console: seconds before a query is interrupted.", float),
    Setting(
        "console_memory",
        "2GB",
        "Site: memory all users' queries (SQL consoles, plot conditions) of the server share, together; "
        "a query that needs more fails (they never spill to disk).",
    ),
    Setting(
        "console_threads",
        1,
        "Site: threads all users' queries of the server share, together (the pages' own queries keep "
        "the rest of the machine).",
        int,
    ),
    Setting(
        "console_queries",
        4,
        "Site: most users' queries (SQL consoles, plot conditions) running at once in the server; more "
        "wait their turn. They run at a lower CPU priority than the pages.",
        int,
    ),
    Setting(
        "alert_rules",
        "",
        "TOML file of alert rules (docs/alerts.md), evaluated after every job and monitor run; empty: "
        "<lake>/alerts.toml if it exists (the site's Alerts page edits that file).",
    ),
    Setting(
        "site_url",
        "",
        "Alerts: the site's public address (https://host/), for links in alert messages; empty: messages "
        "name the plot's path in the lake instead.",
    ),
    Setting(
        "smtp_host", "", "Alerts: SMTP server for e-mail; empty: e-mail alerts fail and are recorded so."
    ),
    Setting("smtp_port", 587, "Alerts: SMTP server port (587: submission with STARTTLS).", int),
    Setting(
        "smtp_starttls",
        True,
        "Alerts: upgrade the SMTP connection with STARTTLS before logging in (refuse a server without it).",
        bool,
    ),
    Setting(
        "smtp_cafile",
        "",
        "Alerts: CA certificates (PEM) that sign the SMTP server's certificate; empty: the system's.",
    ),
    Setting("smtp_user", "", "Alerts: SMTP login; empty: send without logging in."),
    Setting(
        "smtp_password",
        "",
        "Alerts: SMTP password (set it as QUICKLAKE_SMTP_PASSWORD or in a quicklake.toml only its owner "
        "can read).",
    ),
    Setting("smtp_from", "quicklake@localhost", "Alerts: the From address of alert e-mail."),
)
_BY_NAME = {s.name: s for s in REGISTRY}


def _convert(setting: Setting, value: Any, source: str) -> Any:
    if setting.type is list:
        items = value.split(";") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise ConfigError(f"{source}: {setting.name} must be a list of strings, not {value!r}")
        return [v.strip() for v in items if v.strip()]
    if setting.type is bool and isinstance(value, str):
        if value.lower() in {"1", "true", "yes", "on"}:
            return True
        if value.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{source}: {setting.name} must be true or false, not {value!r}")
    try:
        return setting.type(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source}: {setting.name} must be of type {setting.type.__name__}, not {value!r}"
        ) from None


def config_file() -> Path:
    return Path(os.environ.get("QUICKLAKE_CONFIG", "quicklake.toml"))


def load(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Resolve every setting; ``overrides`` (e.g. CLI options) win, ``None`` values are ignored."""
    values = {s.name: s.default for s in REGISTRY}
    path = config_file()
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(
                f"{path}: not valid TOML ({e}); fix the file or unset QUICKLAKE_CONFIG"
            ) from None
        table = data.get("quicklake", data)
        for key, value in table.items():
            if key not in _BY_NAME:
                raise ConfigError(f"{path}: unknown setting {key!r}; known: {', '.join(_BY_NAME)}")
            values[key] = _convert(_BY_NAME[key], value, str(path))
    for s in REGISTRY:
        env = f"QUICKLAKE_{s.name.upper()}"
        if env in os.environ:
            values[s.name] = _convert(s, os.environ[env], env)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in _BY_NAME:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = _convert(_BY_NAME[key], value, "option")
    return values


# settings that name a local file or folder: made absolute when written for cron (which starts in $HOME)
PATH_SETTINGS = ("archive", "lake", "schedule", "mast_listing", "mirror", "proposals", "uvis_anneals",
                 "auth_secrets", "alert_rules", "smtp_cafile")  # fmt: skip


def toml_for(cfg: Mapping[str, Any]) -> str:
    """A ``quicklake.toml`` that gives ``cfg`` from any working directory: the values that differ from
    the defaults, local paths made absolute (``ql cron-line`` writes it)."""
    import json

    lines = ["# written by 'ql cron-line': the settings in force when it ran", "[quicklake]"]
    for s in REGISTRY:
        value = cfg.get(s.name, s.default)
        if s.name in PATH_SETTINGS and value and "://" not in str(value):
            value = str(Path(value).resolve())
        if value == s.default and s.name not in ("archive", "lake"):
            continue
        text = json.dumps(value) if isinstance(value, (str, list)) else str(value).lower() if isinstance(
            value, bool) else repr(value)  # fmt: skip
        lines.append(f"{s.name} = {text}")
    return "\n".join(lines) + "\n"


def markdown() -> str:
    """docs/settings.md, generated from the registry."""
    lines = [
        "# Settings",
        "",
        "Read from `quicklake.toml` (`[quicklake]` table, or top level; path in `QUICKLAKE_CONFIG`), then "
        "`QUICKLAKE_<NAME>` variables, then command-line options. Generated by `ql settings --markdown`.",
        "",
        "| name | default | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| `{s.name}` | `{s.default!r}` | {s.help} |" for s in REGISTRY]
    return "\n".join(lines) + "\n"
