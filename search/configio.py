"""Writing a SearchConfig back to YAML, with any storage password masked."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from search.config import SearchConfig, load_config
from search.study import strip_password


def dump_config(cfg: SearchConfig, path: Path) -> None:
    data = cfg.model_dump(mode="json", exclude={"directory"})
    if data.get("storage"):
        data["storage"] = strip_password(data["storage"])
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def load_study_config(study_dir: str | Path, overrides: list[str] | None = None) -> SearchConfig:
    """The config a study was started with (``attnas resume``), with ``--set`` overrides.

    The folder's own ``config.yaml`` names the study (not the folder's name), and the folder
    is where the study lives: a moved, renamed or copied ``runs/<study>`` is still that study,
    with its own SQLite file when the storage is the default one.
    """
    from search.config import ConfigError

    root = Path(study_dir).resolve()
    if not (root / "config.yaml").is_file():
        raise ConfigError(
            f"{study_dir} is not a study folder (no config.yaml); start one with `attnas search`"
        )
    place = [f"directory={root}"]
    if os.environ.get("ATTNAS_STORAGE"):  # e.g. a PostgreSQL URL with its password
        place.append(f"storage={os.environ['ATTNAS_STORAGE']}")
    return load_config(root / "config.yaml", place + list(overrides or []))
