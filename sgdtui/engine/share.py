"""Share strings: a whole script (header, lanes, events) as one compact, URL-safe string.

    sgd1.<base64url of zlib(JSON of the script table)>

The script table is written as JSON (floats by ``repr``, so every number reads back to the
bit), compressed with zlib against a fixed preset dictionary of the script format's own words
(which makes short scripts much shorter), and encoded as base64url without padding. The string
uses only ``A-Z a-z 0-9 - _ .``: it survives a URL query, a shell argument and a chat message
unquoted. zlib's checksum catches a corrupt or truncated string; decoding then raises
``ShareError`` with one line saying so.

The preset dictionary is part of format ``sgd1``: changing it needs a new prefix.
"""

from __future__ import annotations

import base64
import binascii
import json
import tomllib
import zlib
from typing import Any

from sgdtui.engine.script import Script, ScriptError, validate_script
from sgdtui.engine.surfaces import SurfaceRegistry

PREFIX = "sgd1."
MAX_DECODED = 16 * 1024 * 1024  # bytes a share string may expand to (a bound against zip bombs)
SOURCE = "<script string>"  # what error messages call a decoded script

# Words that recur in scripts, most frequent last (zlib favours the end of the dictionary).
_ZDICT = (
    '"T_max": "warmup_steps": "milestones": "step_size": "gamma": "eta_min": "max_lr": '
    '"cosine" "one-cycle" "warmup-cosine" "cosine-restarts" "exponential" "constant" "step" '
    '"mlp": {"dataset": "moons", "hidden": [32, 32], "activation": "relu", "norm": "none"}, "device": "auto", '
    '"expr": "xlim": "ylim": "starts": [[ "start": [ "remove": "reset": true "add": {'
    '"momentum": "betas": [0.9, 0.999] "weight_decay": "beta": 0.9 "eps": '
    '"sgd" "adam" "rmsprop" "ema-momentum" "nesterov" "adamw" "sgld" "temperature": '
    '"surface": "pathological" "rosenbrock" "himmelblau" '
    '{"version": 1, "seed": 0, "steps": "problem": {"surface": '
    '"lanes": [{"name": "optimizer": "lr": "batch": 1, "coupling": "none", "noise": 0.0}, '
    '"schedule": {"name": "events": [{"step": "lane": "set": {"lr": '
).encode()


class ShareError(ScriptError):
    """A share string that does not decode (corrupt, truncated, or not a share string)."""


def encode_table(table: dict[str, Any]) -> str:
    """The share string of a script table (as tomllib reads it, or ``Session.to_script()``)."""
    try:
        text = json.dumps(table, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:  # a date, or a NaN: nothing a valid script holds
        raise ShareError(f"{SOURCE}: cannot encode this script ({exc})") from None
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS, 9, zlib.Z_DEFAULT_STRATEGY, _ZDICT)
    packed = packer.compress(text.encode("utf-8")) + packer.flush()
    return PREFIX + base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")


def encode_text(text: str) -> str:
    """The share string of a script's TOML text (ValueError if it is not TOML)."""
    return encode_table(tomllib.loads(text))


def decode_table(share: str) -> dict[str, Any]:
    """The script table a share string holds; ShareError (one line) if it does not decode."""
    if not isinstance(share, str):
        raise ShareError(f"{SOURCE}: expected a string, got {type(share).__name__}")
    share = share.strip()
    if not share.startswith(PREFIX):
        shown = share[:12] + ("…" if len(share) > 12 else "")
        raise ShareError(f"{SOURCE}: not an sgdtui share string (it should start with {PREFIX!r}, got {shown!r})")
    body = share[len(PREFIX):]
    try:
        packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise ShareError(f"{SOURCE}: corrupt share string (characters outside A-Z a-z 0-9 - _, or cut short)") from None
    unpacker = zlib.decompressobj(zlib.MAX_WBITS, _ZDICT)
    try:
        data = unpacker.decompress(packed, MAX_DECODED)
        complete = unpacker.eof and not unpacker.unconsumed_tail
    except zlib.error:
        raise ShareError(f"{SOURCE}: corrupt share string (its checksum or data does not match)") from None
    if not complete:
        if unpacker.unconsumed_tail:
            raise ShareError(f"{SOURCE}: share string expands to more than {MAX_DECODED} bytes")
        raise ShareError(f"{SOURCE}: truncated share string (copy the whole string)")
    if unpacker.unused_data:
        raise ShareError(f"{SOURCE}: corrupt share string (extra data after its end)")
    try:
        table = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError):
        raise ShareError(f"{SOURCE}: corrupt share string (it does not hold a script)") from None
    if not isinstance(table, dict):
        raise ShareError(f"{SOURCE}: corrupt share string (it does not hold a script table)")
    return table


def _reject_constant(name: str) -> float:
    raise ValueError(name)  # NaN and Infinity never come from encode_table


def load_share(share: str, *, registry: SurfaceRegistry | None = None) -> Script:
    """The validated Script a share string holds (ScriptError naming the key if it is invalid)."""
    table = decode_table(share)
    try:
        return validate_script(table, path=SOURCE, text="", registry=registry)
    except RecursionError:
        raise ShareError(f"{SOURCE}: values nested too deeply") from None

