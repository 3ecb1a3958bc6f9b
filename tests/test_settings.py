from __future__ import annotations

from pathlib import Path

import pytest

from lake import settings
from lake.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "settings.md").read_text()
    for s in settings.REGISTRY:
        assert f"`{s.name}`" in doc, s.name
        assert s.help
    assert doc == settings.markdown(), "docs/settings.md is stale: ql settings --markdown > docs/settings.md"


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "q.toml"
    cfg.write_text('[quicklake]\nlake = "from-file"\nbatch_files = 10\n')
    monkeypatch.setenv("QUICKLAKE_CONFIG", str(cfg))
    assert settings.load()["lake"] == "from-file"
    monkeypatch.setenv("QUICKLAKE_LAKE", "from-env")
    assert settings.load()["lake"] == "from-env"
    assert settings.load({"lake": "from-option"})["lake"] == "from-option"
    assert settings.load()["batch_files"] == 10
    monkeypatch.setenv("QUICKLAKE_BATCH_FILES", "many")
    with pytest.raises(ConfigError, match="batch_files"):
        settings.load()
