"""Keywords: the header keywords' documentation from ``schemas/``: doc, unit, type, and which tables
(HDUs) have each; a keyword opens its column in the SQL console."""

from urllib.parse import quote

import streamlit as st
import ui

from lake.keywords import keywords


def sql_link(column: str, tables: str) -> str:
    """The Query page's SQL console on the keyword's column in its first table (a shareable URL)."""
    table = tables.split(", ")[0]
    sql = f"SELECT rootname, {column} FROM {table} LIMIT 100" if table else ""
    return f"query?tab=SQL&sql_text={quote(sql)}"


st.title("Keywords")
st.caption(
    "Every header keyword the lake declares a column for, with the comment the headers give it, its "
    "unit and type, and the tables that have it (one table per file type and HDU: uvisflt_1 is HDU 1 "
    "of UVIS flt files); fixed tables' columns (master, files, …) too. Result tables show the same "
    "as the help of their column headers."
)

with ui.shown_errors():
    scope = ui.scope()
    with st.container(horizontal=True):
        text = st.text_input(
            "Keyword, or words of its description",
            key="kw_text",
            placeholder="EXPTIME, temperature, PFLTFILE, …",
            **ui.BOUND,
        )
        tables = sorted({t.rsplit("_", 1)[0] for t in scope.tables if t[-1:].isdigit()})
        table = st.selectbox(
            "In table", [None, *tables], format_func=ui.any_value, key="kw_table", **ui.BOUND
        )
    found = keywords(text, table=table, present={t: scope.columns(t) for t in scope.tables}).to_pandas()
    st.caption(f"{len(found):,} keywords" + (f" matching “{text}”" if text else ""))
    if len(found) and text and found["keyword"].iloc[0].lower() == text.strip().lower():
        top = found.iloc[0]
        unit = f" · unit **{top['unit']}**" if top["unit"] else ""
        st.markdown(f"**{top['keyword']}**: {top['doc']}{unit} · type {top['type']}")
        st.caption(f"In {top['tables']}")
    links = [sql_link(c, t) for c, t in zip(found["column"], found["tables"], strict=True)]
    found = found.assign(query=links)
    st.dataframe(
        found[["keyword", "unit", "type", "doc", "tables", "column", "query"]],
        column_config={
            "query": st.column_config.LinkColumn("query", display_text="SQL", help="Open in the SQL console"),
            "column": st.column_config.Column("column", help="The column's name in SQL"),
            "tables": st.column_config.Column("tables", help="The lake's tables (file type_HDU) with it"),
        },
        hide_index=True,
        width="stretch",
        key="kw_df",
    )
