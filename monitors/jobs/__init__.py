"""The maintenance jobs of the original Quicklook system (``ql run JOB``), contributed by
:mod:`monitors.plugin`."""
