"""The archive generator: a WFC3-like archive with planted features and its truth table (``ql generate``)."""
