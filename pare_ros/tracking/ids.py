"""REP-155 body IDs: short, identifier-like, unique per run and, with high probability, across
restarts (a node restarted mid-scene must not hand a new person an old person's ID).

``body_id = id_prefix + session + base36(track_id)``, e.g. ``"kqz1"``, ``"kqz2"``, …, ``"kqza"``:

- ``session``: 3 random lowercase letters drawn once per tracker from the OS's random source
  (or from ``seed``, for reproducible tests). It starts the ID with a letter and separates runs:
  two runs share a session with probability 1/26³ ≈ 5.7e-5.
- ``track_id``: the tracker's increasing counter (never reused within a run).
"""
from __future__ import annotations

import random
import re
import string
from typing import Optional

_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)?$")
_DIGITS = string.digits + string.ascii_lowercase


def base36(n: int) -> str:
    if n < 0:
        raise ValueError("negative id")
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


class BodyIdFormat:
    """Args:
        id_prefix: prepended (multi-camera set-ups); empty, or a letter then letters, digits, _.
        seed: None = ``random.SystemRandom`` (os.urandom); an int gives a reproducible session.
        letters: length of the random session part.
    """

    def __init__(self, id_prefix: str = "", seed: Optional[int] = None, letters: int = 3) -> None:
        id_prefix = id_prefix or ""
        if not _PREFIX.match(id_prefix):
            raise ValueError(f"tracker.id_prefix {id_prefix!r} must be empty or start with a letter "
                             "and contain only letters, digits and '_' (it becomes part of TF frame names)")
        rng = random.SystemRandom() if seed is None else random.Random(seed)
        self.prefix = id_prefix
        self.session = "".join(rng.choice(string.ascii_lowercase) for _ in range(letters))

    def __call__(self, track_id: int) -> str:
        return f"{self.prefix}{self.session}{base36(track_id)}"
