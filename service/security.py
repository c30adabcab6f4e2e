"""What the service refuses before any work starts: unsafe model references and unauthorised changes.

A model reference is accepted only as a ``demo:`` model, a Hugging Face Hub id,
or a path inside one of the configured model roots (after resolving ``..`` and
symlinks). Accepted local paths are rewritten to absolute ones so a worker in
another directory finds the same files.
"""

from __future__ import annotations

import hmac
import json
import os
import re
from pathlib import Path

from search.errors import ModelError
from service.settings import Settings

# org/name or name: letters, digits, '.', '_', '-' (the Hub's own rules); no '..' anywhere
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")


class Forbidden(ModelError):
    """A request the server refuses on principle (answered 400 with the reason)."""


class Unauthorized(ModelError):
    """Missing or wrong API token (answered 401)."""


def check_model_ref(ref: str, settings: Settings) -> str:
    """The reference to run (local paths made absolute), or Forbidden saying why it is refused."""
    if ref.startswith("demo:"):
        from search.models import resolve_ref

        try:
            resolve_ref(ref)  # unknown demo names fail here with the list of known ones
        except ModelError as exc:
            raise ModelError(f"model: {exc}") from None
        return ref
    looks_like_path = (ref.startswith(("/", "~", ".", "\\")) or ".." in ref or "\\" in ref
                       or ref.endswith(".json") or ":" in ref)
    if not looks_like_path and _HUB_ID.fullmatch(ref):
        local = _under_roots(ref, settings.model_roots)
        if local is not None:  # a relative path inside a root wins over the Hub
            return _checked_local(local, ref, settings)
        if any(os.path.lexists(root / ref) for root in settings.model_roots):
            raise Forbidden(f"model: {ref!r} leads outside the server's model roots")
        if Path(ref).exists():  # a worker would read it as a local path, outside the roots
            raise Forbidden(f"model: {ref!r} names a local path outside the server's model roots")
        _check_hub_config(ref, settings)
        return ref
    if not settings.model_roots:
        raise Forbidden(f"model: {ref!r} is a local path, and local paths are disabled on this server (no DEVICEFIT_MODEL_ROOTS); "
                        "give a Hub id like 'org/name' or a demo: model")
    path = _resolve_path(ref, settings.model_roots)
    if path is None:
        roots = ", ".join(str(r) for r in settings.model_roots)
        raise Forbidden(f"model: {ref!r} is not inside the server's model roots ({roots})")
    return _checked_local(path, ref, settings)


def _resolve_path(ref: str, roots: tuple[Path, ...]) -> Path | None:
    candidate = Path(ref).expanduser()
    tries = [candidate] if candidate.is_absolute() else [root / candidate for root in roots]
    for path in tries:
        real = Path(os.path.realpath(path))
        if any(real == root or real.is_relative_to(root) for root in roots):
            if real.exists():
                return real
    return None


def _under_roots(ref: str, roots: tuple[Path, ...]) -> Path | None:
    return _resolve_path(ref, roots) if roots else None


def _checked_local(path: Path, ref: str, settings: Settings) -> str:
    config = path if path.is_file() else path / "config.json"
    if not config.is_file():
        raise ModelError(f"model: {ref!r} has no config.json")
    _check_remote_code(_read_json(config), ref, settings)
    return str(path)


def _check_hub_config(ref: str, settings: Settings) -> None:
    """A Hub model already in the local cache is checked for custom code (no network here)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return
    cached = try_to_load_from_cache(ref, "config.json")
    if isinstance(cached, str):
        _check_remote_code(_read_json(Path(cached)), ref, settings)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise ModelError(f"model: its {path.name} is not readable JSON") from None


def _check_remote_code(config: dict, ref: str, settings: Settings) -> None:
    if config.get("auto_map") and not settings.trust_remote_code:
        raise Forbidden(f"model: {ref!r} needs custom code from its repository (trust_remote_code), "
                        "which this server does not allow")


def check_token(authorization: str | None, settings: Settings) -> None:
    """When the server has a token, a mutating request must carry it as a Bearer token."""
    if not settings.api_token:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), settings.api_token.encode()):
        raise Unauthorized("this server needs an API token: send 'Authorization: Bearer <token>'")
