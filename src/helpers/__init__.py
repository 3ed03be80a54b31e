"""Shared helpers of the Keras experiment suite (data, models, training records, metrics, plots).

Importing ``helpers`` does not import Keras: call ``helpers.setup(...)`` first in a notebook, so
that ``KERAS_BACKEND`` is settled before any Keras import. Submodules are imported by name::

    import helpers
    session = helpers.setup("03_mlp_hyperparameters", profile=PROFILE, seed=SEED)
    from helpers import data, training, plotting, metrics
"""

from .profiles import PROFILES, Profile, get_profile
from .session import current, setup

__all__ = ["PROFILES", "Profile", "current", "get_profile", "setup"]
__version__ = "0.1.0"
