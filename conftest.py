"""pytest settings shared by the unit tests and the nbval run of the notebooks."""


def pytest_collectstart(collector):
    """nbval compares text outputs of cells marked ``# NBVAL_CHECK_OUTPUT`` only; never stderr
    (TensorFlow and Keras log there, differently on every machine) nor HTML/JS reprs."""
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr", "text/html", "application/javascript")
