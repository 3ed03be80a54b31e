"""Run profiles: how much data, how many epochs and which image size a notebook uses.

* ``smoke``: what CI runs. Small stratified subsets, one epoch, small images, random weights
  where pretrained ones cannot be had. The whole suite in minutes on two CPU cores.
* ``quick``: meaningful numbers on a CPU in about an hour for the whole suite.
* ``full``: the reports' own settings (all data, the reports' epochs and image sizes).

The profile is chosen by the ``PROFILE`` parameter of a notebook, which defaults to the
environment variable ``SUITE_PROFILE`` (and to ``quick`` when that is unset).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

ENV_VAR = "SUITE_PROFILE"
DEFAULT = "quick"


@dataclass(frozen=True)
class Profile:
    """Sizes and limits of one profile.

    Attributes:
        name: ``smoke``, ``quick`` or ``full``.
        train_per_class: training images kept per class (``None``: all of them).
        test_per_class: test images kept per class (``None``: all of them).
        max_epochs: upper bound on any run's epochs (``None``: the report's own epochs).
        image_size: side in pixels of the images fed to ImageNet backbones.
        requires_pretrained: whether ImageNet weights must be available (smoke falls back to
            random weights and says so; quick and full stop with a message).
    """

    name: str
    train_per_class: int | None
    test_per_class: int | None
    max_epochs: int | None
    image_size: int
    requires_pretrained: bool

    def epochs(self, full: int) -> int:
        """The number of epochs to run for an experiment whose report used ``full`` epochs."""
        if full < 1:
            raise ValueError(f"epochs must be at least 1, got {full}")
        return full if self.max_epochs is None else min(full, self.max_epochs)

    def pick(self, **by_profile: Any) -> Any:
        """Return the value given for this profile, e.g. ``profile.pick(smoke=1, quick=8, full=60)``."""
        missing = sorted({"smoke", "quick", "full"} - by_profile.keys())
        if missing:
            raise ValueError(
                f"pick() needs a value for every profile; missing: {', '.join(missing)}"
            )
        return by_profile[self.name]


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke",
        train_per_class=40,
        test_per_class=20,
        max_epochs=1,
        image_size=32,
        requires_pretrained=False,
    ),
    "quick": Profile(
        "quick",
        train_per_class=1000,
        test_per_class=500,
        max_epochs=10,
        image_size=96,
        requires_pretrained=True,
    ),
    "full": Profile(
        "full",
        train_per_class=None,
        test_per_class=None,
        max_epochs=None,
        image_size=224,
        requires_pretrained=True,
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """Return the profile called ``name``, or the one named by ``$SUITE_PROFILE`` (default quick).

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.
    """
    if isinstance(name, Profile):
        return name
    chosen = name if name not in (None, "") else os.environ.get(ENV_VAR) or DEFAULT
    key = str(chosen).strip().lower()
    if key not in PROFILES:
        where = "PROFILE parameter" if name not in (None, "") else f"${ENV_VAR}"
        raise ValueError(
            f"Unknown profile {chosen!r} (from the {where}); valid profiles: {', '.join(PROFILES)}."
        )
    return PROFILES[key]
