"""A training run's output folder (``--out``): always one consistent run.

A run folder is in one of three states:

* **new** — missing or empty;
* **interrupted** — ``run.json`` (the run's configuration, written first), the ``CSVLogger``
  history and the ``BackupAndRestore`` backup of a run that was killed or crashed; started
  again with the same configuration it continues from its last completed epoch;
* **finished** — ``model.keras``, ``metrics.json``, ``history.csv``, the plots and
  ``run.json``, all from one run.  They are written into a staging folder beside it and
  switched in as a whole (:func:`lstm_zoo.files.atomic_directory`), so a kill leaves either
  the interrupted run or the finished one, never one run's model beside another's metrics.

:func:`prepare` refuses what would mix two runs: a finished run (unless ``overwrite``), an
interrupted run with a different configuration (unless ``resume=False`` or ``overwrite``),
a folder holding other files, a file where the folder should be.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lstm_zoo.errors import ConfigError, OutputError
from lstm_zoo.files import atomic_directory, atomic_write_json, atomic_write_text

MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
BACKUP_DIR = "backup"
RUN_FILE = "run.json"
BACKUP_METADATA = "training_metadata.json"  # BackupAndRestore's record of the epochs done

NEW, INTERRUPTED, FINISHED = "new", "interrupted", "finished"
_RUN_MARKERS = (RUN_FILE, HISTORY_FILE, BACKUP_DIR)

# write errors that a user fixes outside lstm_zoo, and what to do about each
_WRITE_ADVICE = {
    errno.ENOSPC: "free space on that disk or choose an --out on another disk",
    errno.EDQUOT: "free space within your disk quota or choose an --out elsewhere",
    errno.EROFS: "the file system is read-only: choose an --out on a writable disk",
    errno.EACCES: "you may not write there: choose an --out you own or fix its permissions",
}


def identity(recipe: str, data: Any, seed: int, train_config: dict[str, Any],
             hparams: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """What makes two runs the same run (as JSON would record it): a run folder is resumed
    only by a run with an equal identity."""
    record = {
        "recipe": recipe,
        "data": None if data is None else os.fspath(data),
        "seed": seed,
        "train_config": train_config,
        "hparams": hparams,
        "options": {k: v for k, v in options.items() if v is not None},
    }
    return json.loads(json.dumps(record, default=str))


def state(out_dir: Path) -> str:
    """``new``, ``interrupted`` or ``finished``; raises for a path that is no run folder."""
    for ancestor in [out_dir, *out_dir.parents]:
        if ancestor.exists():
            if not ancestor.is_dir():
                what = "is a file" if ancestor == out_dir else f"is inside {ancestor}, a file"
                raise OutputError(f"--out {out_dir} {what}, not a folder: give the path of a "
                                  f"folder for the run (a new one, or an existing run's)")
            break
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return NEW
    if (out_dir / METRICS_FILE).exists():
        return FINISHED
    if any((out_dir / marker).exists() for marker in _RUN_MARKERS):
        return INTERRUPTED
    example = min(p.name for p in out_dir.iterdir())
    raise OutputError(f"--out {out_dir} holds files that are not an lstm_zoo training run (e.g. "
                      f"{example}); a run owns its folder as a whole: choose a new or empty one")


def prepare(out_dir: Path, run: dict[str, Any], resume: bool | None, overwrite: bool) -> bool:
    """Make ``out_dir`` the in-progress folder of ``run``; True when it resumes from a backup.

    ``resume=None`` continues an interrupted run with the same configuration and starts a new
    one; ``True`` insists on continuing one; ``False`` discards an interrupted run.
    ``overwrite`` replaces a finished (or interrupted) run as a whole.
    """
    if resume is True and overwrite:
        raise ConfigError("--resume continues a run and --overwrite replaces it: give one")
    _refuse_current_folder(out_dir)
    found = state(out_dir)
    if found == FINISHED and not overwrite:
        raise OutputError(f"--out {out_dir} holds a finished run ({METRICS_FILE}); pass "
                          f"--overwrite (overwrite=True) to replace it, or choose another --out")
    if resume is True and found != INTERRUPTED:
        raise OutputError(f"--resume: --out {out_dir} holds no interrupted run to continue "
                          f"(it is empty or missing); leave out --resume to start one")
    if found == INTERRUPTED and not overwrite and resume is not False:
        _check_same_run(out_dir, run)
    else:
        _discard(out_dir)
    atomic_write_json(out_dir / RUN_FILE, {"status": "running", "config": run})
    return _align_history_with_backup(out_dir)


def _refuse_current_folder(out_dir: Path) -> None:
    """A run replaces its folder as a whole (a rename), which must not pull the working
    folder away and cannot move a mount point."""
    cwd = Path.cwd().resolve()
    if out_dir == cwd or out_dir in cwd.parents:
        raise OutputError(f"--out {out_dir} is (or holds) the current folder; a run replaces "
                          f"its folder as a whole: choose a subfolder such as runs/NAME")
    if os.path.ismount(out_dir):
        raise OutputError(f"--out {out_dir} is a mount point, which a run cannot replace as a "
                          f"whole: choose a subfolder of it such as {out_dir / 'run'}")


def _check_same_run(out_dir: Path, run: dict[str, Any]) -> None:
    """Refuse to continue an interrupted run with a different configuration."""
    try:
        recorded = json.loads((out_dir / RUN_FILE).read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        recorded = None
    if recorded == run:
        return
    why = ("its configuration was not recorded (older lstm_zoo, or run.json damaged)"
           if recorded is None else "it differs in " + differences(recorded, run))
    raise OutputError(f"--out {out_dir} holds an interrupted run that this one cannot continue: "
                      f"{why}; start it again with the same settings to resume it, pass "
                      f"--no-resume (resume=False) to start over, or choose another --out")


def differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``seed 0 -> 1, train_config.epochs 4 -> 8``: what differs between two identities."""
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += [f"{key}.{k} {a.get(k)!r} -> {b.get(k)!r}"
                        for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            changed.append(f"{key} {a!r} -> {b!r}")
    return ", ".join(changed)


def _discard(out_dir: Path) -> None:
    """Leave ``out_dir`` an empty folder, the old run moved away in one rename first (a kill
    while deleting it leaves no half run behind)."""
    if out_dir.exists() and any(out_dir.iterdir()):
        trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".discarded",
                                      dir=out_dir.parent))
        os.replace(out_dir, trash / "run")
        shutil.rmtree(trash, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def _align_history_with_backup(out_dir: Path) -> bool:
    """Keep only the history rows of the epochs the backup holds; True when there is one.

    The CSV row of an epoch is written before its backup, and ``BackupAndRestore`` deletes
    the backup when fitting ends: without this a resumed run logged some epochs twice.
    """
    epochs_done = 0
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        meta = json.loads((out_dir / BACKUP_DIR / BACKUP_METADATA).read_text())
        epochs_done = int(meta["epoch"])
    history = out_dir / HISTORY_FILE
    if epochs_done == 0:
        history.unlink(missing_ok=True)
        shutil.rmtree(out_dir / BACKUP_DIR, ignore_errors=True)
        return False
    if history.exists():
        with history.open(newline="") as handle:
            rows = list(csv.reader(handle))
        kept = rows[:1] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) < epochs_done]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(kept)
        atomic_write_text(history, buffer.getvalue())
    return True


@contextlib.contextmanager
def finishing(out_dir: Path) -> Iterator[Path]:
    """A staging folder for the finished run's artefacts, switched in for ``out_dir`` as a
    whole on success (the history is copied in first; the in-progress folder goes)."""
    with atomic_directory(out_dir, overwrite=True) as staging:
        if (out_dir / HISTORY_FILE).exists():
            shutil.copy2(out_dir / HISTORY_FILE, staging / HISTORY_FILE)
        yield staging


def finished_record(run: dict[str, Any], staging: Path) -> None:
    """Write ``run.json`` of a finished run: its configuration and its artefacts."""
    files = sorted(p.name for p in staging.iterdir() if p.name != RUN_FILE)
    atomic_write_json(staging / RUN_FILE, {"status": "finished", "config": run, "files": files})


@contextlib.contextmanager
def explained_write_errors(out_dir: Path) -> Iterator[None]:
    """Turn a full disk, a read-only disk or a refused write into an :class:`OutputError`
    naming the file and what to do (a bare ``OSError: [Errno 28]`` names neither)."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        advice = _WRITE_ADVICE.get(exc.errno)
        if advice is None:
            raise
        where = _as_seen_by_user(exc.filename, out_dir) if exc.filename else out_dir
        raise OutputError(f"cannot write {where}: {exc.strerror or os.strerror(exc.errno)}; "
                          f"{advice}. Nothing finished was replaced: started again with the "
                          f"same settings and --out, the run continues from its last saved "
                          f"epoch") from exc


def _as_seen_by_user(filename: str | os.PathLike, out_dir: Path) -> Path:
    """A path inside the staging folder (``.run.x1y2.tmp/model.keras``) as the user will know
    it (``run/model.keras``); other paths unchanged."""
    path = Path(filename)
    for ancestor in path.parents:
        if ancestor.parent == out_dir.parent and ancestor.name.startswith(f".{out_dir.name}."):
            return out_dir / path.relative_to(ancestor)
    return path
