"""The Quicklake site: Streamlit pages in ``app_pages``; their data layer, without Streamlit, in
``app.data``."""
