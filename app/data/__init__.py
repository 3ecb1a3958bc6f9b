"""The site's data layer: what the pages show, scoped to the viewer; no Streamlit import (tested
alone)."""
