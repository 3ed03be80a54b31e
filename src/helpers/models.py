"""Model builders for architectures that several notebooks share.

Only what notebooks really share lives here; each notebook still shows the layers it trains
(a notebook that uses a builder prints ``model.summary()`` and explains the knobs it turns).
Builders return *uncompiled* models: the notebook compiles them, so the optimizer and loss are
visible where the experiment is described.
"""

from __future__ import annotations


# ---- MLP (03, 04, 06) -------------------------------------------------------------------------

# ---- VGG-style convolutional blocks (05, 06, 11) ----------------------------------------------
