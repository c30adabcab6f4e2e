"""Exported candidates as .tar.gz archives, built on first download and kept on disk.

The model is compressed exactly as the worker evaluated it
(search.evaluate_task.compress) and saved with search.compress.export; this is
the only place the service imports torch, and only when a download is asked for.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import threading
from pathlib import Path

from search.recipe import CompressionConfig
from search.spec import SearchSpec
from service.tables import Job


class Archives:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def archive(self, job: Job, k: int, recipe: CompressionConfig) -> Path:
        digest = hashlib.sha1(recipe.to_json().encode()).hexdigest()[:10]
        target = self.root / job.id / f"devicefit-{job.id}-candidate{k}-{digest}.tar.gz"
        with self._lock_for(str(target)):
            if not target.is_file():
                self._build(SearchSpec.model_validate_json(job.spec), recipe, target)
        return target

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    @staticmethod
    def _build(spec: SearchSpec, recipe: CompressionConfig, target: Path) -> None:
        import torch
        from search.evaluate_task import compress, loaded_model
        from search.evaluators.pipeline import export

        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            folder = Path(tmp) / target.name.removesuffix(".tar.gz")
            with torch.inference_mode():
                compressed = compress(spec, recipe)
            export(loaded_model(spec.model), recipe, folder, compressed=compressed)
            partial = Path(tmp) / "archive.tar.gz"
            with tarfile.open(partial, "w:gz") as tar:
                tar.add(folder, arcname=folder.name)
            shutil.move(partial, target)  # atomic within one filesystem: no half archive is served
